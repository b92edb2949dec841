//! `peftc bench-load <model>`: time loading a model (GGUF file or HF
//! directory) to f32 tensors, and building its tokenizer.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args;

use crate::pretrained::source::load_model;
use crate::pretrained::tokenizer::Tokenizer;

#[derive(Debug, Clone, Args)]
pub struct BenchLoadArgs {
    /// GGUF file or HF model directory.
    pub model: PathBuf,
    /// Number of timed loads.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
}

pub fn cmd_bench_load(args: &BenchLoadArgs) -> Result<()> {
    let (model, repeat) = (&args.model, args.repeat);
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
