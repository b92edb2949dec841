//! Model-file commands: `bench-load`, `inspect`, `tokenize`, `to-hf`.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;

use crate::pretrained::source::{self, load_model};
use crate::pretrained::tokenizer::Tokenizer;

pub fn bench_load(model: &Path, repeat: usize) -> Result<()> {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!("loading {} ({threads} threads)", model.display());
    let mut times = Vec::new();
    for i in 0..repeat.max(1) {
        let start = Instant::now();
        let loaded = load_model(model)?;
        let secs = start.elapsed().as_secs_f64();
        let params: usize = loaded.tensors.values().map(|t| t.numel()).sum();
        let tok_start = Instant::now();
        let tokenizer = match &loaded.tokenizer {
            Some(_) => Some(Tokenizer::for_model(&loaded)?),
            None => None,
        };
        let tok_secs = tok_start.elapsed().as_secs_f64();
        println!(
            "  load {}: {secs:.3} s ({params} parameters, {} tensors); tokenizer {}: {tok_secs:.3} s",
            i + 1,
            loaded.tensors.len(),
            if tokenizer.is_some() { "built" } else { "absent" }
        );
        times.push(secs);
    }
    times.sort_by(f64::total_cmp);
    println!("median {:.3} s, min {:.3} s", times[times.len() / 2], times[0]);
    Ok(())
}

pub fn inspect(model: &Path, tensors: bool) -> Result<()> {
    if !tensors {
        let config = model_source::load_config(model)?;
        println!("{}", serde_json::to_string_pretty(&config)?);
        return Ok(());
    }
    let loaded = load_model(model)?;
    println!("{}", serde_json::to_string_pretty(&loaded.config)?);
    for (name, t) in &loaded.tensors {
        println!("{name:60} {:?}", t.shape);
    }
    Ok(())
}

pub fn tokenize(model: &Path, text: &str) -> Result<()> {
    let (format, path) = model_source::detect_format(model)?;
    let tokenizer = match format {
        model_source::ModelFormat::Gguf => {
            let g = crate::pretrained::gguf::GgufFile::open(&path)?;
            let source = crate::pretrained::gguf::llama::tokenizer_from_gguf(&g)?
                .ok_or_else(|| anyhow::anyhow!("{} has no tokenizer.ggml.* metadata", path.display()))?;
            Tokenizer::from_source(&source)?
        }
        model_source::ModelFormat::HfDir => Tokenizer::from_json_file(&path.join(crate::pretrained::hf_dir::TOKENIZER_FILE))?,
    };
    let ids = tokenizer.encode(text)?;
    let pieces: Vec<String> = ids
        .iter()
        .map(|&i| tokenizer.id_to_token(i).unwrap_or_default())
        .collect();
    println!("{} tokens", ids.len());
    println!("ids:    {ids:?}");
    println!("tokens: {pieces:?}");
    Ok(())
}

/// Convert a model (GGUF or HF directory) to an HF directory.
pub fn to_hf(model: &Path, out: &Path) -> Result<()> {
    let loaded = load_model(model)?;
    crate::pretrained::hf_dir::save_hf_dir(&loaded, out)?;
    println!("wrote {}", out.display());
    Ok(())
}
