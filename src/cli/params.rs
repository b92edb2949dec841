//! `peftc params <spec> [--model M]`: exact trainable-parameter counts per
//! run and per tensor.

use clap::Args;

use super::{SpecArgs, with_program};
use crate::lang::params;

#[derive(Debug, Clone, Args)]
pub struct ParamsArgs {
    #[command(flatten)]
    pub spec: SpecArgs,
}

/// Returns the exit code.
pub fn cmd_params(args: &ParamsArgs) -> u8 {
    with_program(&args.spec, params::report)
}
