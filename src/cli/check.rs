//! `peftc check <files|dirs>...`: every diagnostic of the specs; exit 1 on error.

use std::path::PathBuf;

use clap::Args;

use super::color;
use crate::lang::{Options, check};

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// `.peft` files or directories (searched recursively).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

/// Returns the exit code.
pub fn cmd_check(args: &CheckArgs) -> u8 {
    let (p, d) = check(&args.paths, &Options::default());
    eprint!("{}", d.render(color()));
    match p {
        Some(p) => {
            let runs: usize = p.experiments.iter().map(|e| e.runs.len()).sum();
            eprintln!("ok: {} scheme(s), {} experiment(s), {runs} run(s); {}", p.schemes.len(), p.experiments.len(), d.summary());
            0
        }
        None => {
            eprintln!("failed: {}", d.summary());
            1
        }
    }
}
