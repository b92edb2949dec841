//! `peftc to-hf <model> <out>`: convert a model (GGUF or HF directory) to an
//! HF directory (`config.json`, `model.safetensors` in f32, `tokenizer.json`).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::pretrained::source::load_model;

#[derive(Debug, Clone, Args)]
pub struct ToHfArgs {
    /// GGUF file or HF model directory.
    pub model: PathBuf,
    /// Output directory.
    pub out: PathBuf,
}

/// Convert a model (GGUF or HF directory) to an HF directory.
pub fn cmd_to_hf(args: &ToHfArgs) -> Result<()> {
    let (model, out) = (&args.model, &args.out);
    let loaded = load_model(model)?;
    crate::pretrained::hf_dir::save_hf_dir(&loaded, out)?;
    println!("wrote {}", out.display());
    Ok(())
}
