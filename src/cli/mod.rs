//! The command line: one file per subcommand (its arguments and handler).
//!
//! Enters: `argv`. Leaves: an exit code (0 ok, 1 failure, 2 usage). This is
//! the only stage that names a concrete Burn backend (through
//! [`crate::train::backend::dispatch`]).

pub mod bench;
pub mod merge;
pub mod model_files;
pub mod spec_cmds;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// peftc: a declarative experiment-spec compiler for parameter-efficient fine-tuning.
#[derive(Parser)]
#[command(name = "peftc", version, about)]
pub struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
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
    /// Render Markdown + self-contained HTML comparison reports from recorded runs.
    Report {
        /// A runs directory (one report per experiment in it) or one experiment's directory.
        path: PathBuf,
        /// Output folder for `<experiment>.md`, `<experiment>.html` and `<experiment>/*.svg`.
        #[arg(short, long, default_value = "reports")]
        out: PathBuf,
    },
    /// Time loading a model (GGUF file or HF directory) to f32 tensors.
    BenchLoad {
        /// GGUF file or HF model directory.
        model: PathBuf,
        /// Number of timed loads.
        #[arg(long, default_value_t = 3)]
        repeat: usize,
    },
    /// Print a model's resolved configuration and tensor table.
    Inspect {
        /// GGUF file or HF model directory.
        model: PathBuf,
        /// Also list every tensor with its shape.
        #[arg(long)]
        tensors: bool,
    },
    /// Print the token ids of a text (no special tokens added), as the model's tokenizer produces them.
    Tokenize {
        /// GGUF file or HF model directory.
        #[arg(long)]
        model: PathBuf,
        /// The text to tokenize.
        text: String,
    },
    /// Convert a model (GGUF or HF directory) to an HF directory (config.json, model.safetensors in f32, tokenizer.json).
    ToHf {
        /// GGUF file or HF model directory.
        model: PathBuf,
        /// Output directory.
        out: PathBuf,
    },
    /// Train every run of the experiments in the given specs (skips complete
    /// runs, resumes interrupted ones) into runs/<experiment>/<run>/.
    Run(crate::train::session::RunArgs),
    /// Bake a trained adapter into the base weights: an HF-style model directory.
    Merge(crate::cli::merge::MergeArgs),
    /// Write a trained LoRA/rsLoRA/DoRA adapter in HF PEFT's layout.
    ExportPeft(crate::cli::merge::ExportArgs),
    /// Training throughput (real tokens/s) and MFU of one scheme on a backend.
    Bench(crate::cli::bench::BenchArgs),
    /// Base-model loss in bits per token on a dataset split (all tokens and completion only).
    Eval(crate::train::evaluate::EvalArgs),
}

/// Exit code of a command that returns `anyhow::Result`: errors are printed with their causes.
fn report(result: anyhow::Result<()>) -> u8 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}

/// Parse `argv` and run the subcommand; returns the process exit code.
pub fn main() -> u8 {
    let cli = Cli::parse();
    let code: u8 = match cli.cmd {
        Cmd::Check { paths } => crate::cli::spec_cmds::cmd_check(&paths) as u8,
        Cmd::Params { spec, model } => crate::cli::spec_cmds::cmd_params(&spec, model.as_deref()) as u8,
        Cmd::Explain { spec, model, json } => crate::cli::spec_cmds::cmd_explain(&spec, model.as_deref(), json) as u8,
        Cmd::Report { path, out } => report(crate::report::render_path(&path, &out).map(|written| {
            for p in written {
                println!("{}", p.display());
            }
        })),
        Cmd::Run(args) => crate::train::session::cmd_run(&args) as u8,
        Cmd::Merge(args) => report(crate::cli::merge::cmd_merge(&args)),
        Cmd::ExportPeft(args) => report(crate::cli::merge::cmd_export_peft(&args)),
        Cmd::Bench(args) => report(crate::cli::bench::cmd_bench(&args)),
        Cmd::Eval(args) => report(crate::train::evaluate::run_eval_cli(&args)),
        Cmd::BenchLoad { model, repeat } => report(crate::cli::model_files::bench_load(&model, repeat)),
        Cmd::Inspect { model, tensors } => report(crate::cli::model_files::inspect(&model, tensors)),
        Cmd::Tokenize { model, text } => report(crate::cli::model_files::tokenize(&model, &text)),
        Cmd::ToHf { model, out } => report(crate::cli::model_files::to_hf(&model, &out)),
    };
    code
}
