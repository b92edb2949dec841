//! `peftc tokenize --model <model> <text>`: the token ids of a text (no
//! special tokens added), as the model's tokenizer produces them.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::pretrained::source;
use crate::pretrained::tokenizer::Tokenizer;

#[derive(Debug, Clone, Args)]
pub struct TokenizeArgs {
    /// GGUF file or HF model directory.
    #[arg(long)]
    pub model: PathBuf,
    /// The text to tokenize.
    pub text: String,
}

pub fn cmd_tokenize(args: &TokenizeArgs) -> Result<()> {
    let (model, text) = (&args.model, &args.text);
    let (format, path) = source::detect_format(model)?;
    let tokenizer = match format {
        source::ModelFormat::Gguf => {
            let g = crate::pretrained::gguf::GgufFile::open(&path)?;
            let source = crate::pretrained::gguf::llama::tokenizer_from_gguf(&g)?
                .ok_or_else(|| anyhow::anyhow!("{} has no tokenizer.ggml.* metadata", path.display()))?;
            Tokenizer::from_source(&source)?
        }
        source::ModelFormat::HfDir => Tokenizer::from_json_file(&path.join(crate::pretrained::hf_dir::TOKENIZER_FILE))?,
    };
    let ids = tokenizer.encode(text)?;
    let pieces: Vec<String> = ids.iter().map(|&i| tokenizer.id_to_token(i).unwrap_or_default()).collect();
    println!("{} tokens", ids.len());
    println!("ids:    {ids:?}");
    println!("tokens: {pieces:?}");
    Ok(())
}
