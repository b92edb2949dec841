use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// peftc: a declarative experiment-spec compiler for parameter-efficient fine-tuning.
#[derive(Parser)]
#[command(name = "peftc", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Check .peft files and directories; print every diagnostic, exit 1 on error.
    Check {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Exact trainable-parameter counts per run and per tensor.
    Params {
        #[arg(required = true)]
        spec: Vec<PathBuf>,
        /// Model shapes: a preset (smollm2-135m, llama-3.1-8b, gemma-2b), a GGUF file or an HF directory.
        #[arg(long)]
        model: Option<String>,
    },
    /// The resolved IR: storage per tying mode, contraction order and FLOPs, merged weight.
    Explain {
        #[arg(required = true)]
        spec: Vec<PathBuf>,
        /// Model shapes: a preset (smollm2-135m, llama-3.1-8b, gemma-2b), a GGUF file or an HF directory.
        #[arg(long)]
        model: Option<String>,
        /// Print the checked IR as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.cmd {
        Cmd::Check { paths } => peftc::lang::cli::cmd_check(&paths),
        Cmd::Params { spec, model } => peftc::lang::cli::cmd_params(&spec, model.as_deref()),
        Cmd::Explain { spec, model, json } => peftc::lang::cli::cmd_explain(&spec, model.as_deref(), json),
    };
    ExitCode::from(code as u8)
}
