//! `peftc explain <spec> [--model M] [--json]`: the resolved IR in words
//! (storage per tying mode, contraction order and FLOPs, merged weight), or
//! the whole checked [`crate::lang::Program`] as JSON.

use clap::Args;

use super::{SpecArgs, with_program};
use crate::lang::explain;

#[derive(Debug, Clone, Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Print the checked IR as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Returns the exit code.
pub fn cmd_explain(args: &ExplainArgs) -> u8 {
    if args.json {
        with_program(&args.spec, |p| serde_json::to_string_pretty(p).unwrap_or_default() + "\n")
    } else {
        with_program(&args.spec, explain::report)
    }
}
