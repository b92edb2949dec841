//! `peftc inspect <model> [--tensors]`: a model's resolved configuration
//! and, optionally, its tensor table.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::pretrained::source::{self, load_model};

#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// GGUF file or HF model directory.
    pub model: PathBuf,
    /// Also list every tensor with its shape.
    #[arg(long)]
    pub tensors: bool,
}

pub fn cmd_inspect(args: &InspectArgs) -> Result<()> {
    let (model, tensors) = (&args.model, args.tensors);
    if !tensors {
        let config = source::load_config(model)?;
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
