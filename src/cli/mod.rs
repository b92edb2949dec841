//! The command line: one file per subcommand, holding its arguments and
//! its handler.
//!
//! Enters: `argv`. Leaves: an exit code (0 ok, 1 failure, 2 usage) and
//! whatever the subcommand writes. This is the only stage that names a
//! concrete Burn backend (through [`crate::train::backend::dispatch`]).

pub mod bench;
pub mod bench_load;
pub mod check;
pub mod eval;
pub mod explain;
pub mod export_peft;
pub mod inspect;
pub mod logits;
pub mod merge;
pub mod params;
pub mod report;
pub mod run;
pub mod slurm;
pub mod status;
pub mod to_hf;
pub mod tokenize;

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::lang::{Options, Program, check, preset};

/// peftc: a declarative experiment-spec compiler for parameter-efficient fine-tuning.
#[derive(Parser)]
#[command(name = "peftc", version, about)]
pub struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Check .peft files and directories; print every diagnostic, exit 1 on error.
    Check(check::CheckArgs),
    /// Exact trainable-parameter counts per run and per tensor.
    Params(params::ParamsArgs),
    /// The resolved IR: storage per tying mode, contraction order and FLOPs, merged weight.
    Explain(explain::ExplainArgs),
    /// Render Markdown + self-contained HTML comparison reports from recorded runs.
    Report(report::ReportArgs),
    /// Time loading a model (GGUF file or HF directory) to f32 tensors.
    BenchLoad(bench_load::BenchLoadArgs),
    /// Print a model's resolved configuration and tensor table.
    Inspect(inspect::InspectArgs),
    /// The base model's logits on given token ids: the top 5 per position, all of them with --out.
    Logits(logits::LogitsArgs),
    /// Print the token ids of a text (no special tokens added), as the model's tokenizer produces them.
    Tokenize(tokenize::TokenizeArgs),
    /// Convert a model (GGUF or HF directory) to an HF directory (config.json, model.safetensors in f32, tokenizer.json).
    ToHf(to_hf::ToHfArgs),
    /// Train every run of the experiments in the given specs (skips complete
    /// runs, resumes interrupted ones) into runs/<experiment>/<run>/.
    Run(run::RunArgs),
    /// Write a Slurm array job for the sweep (plan.json, array.sbatch,
    /// report.sbatch), and with --submit submit it.
    Slurm(slurm::SlurmArgs),
    /// Where each planned run of a sweep stands; exit 0 only when all are complete.
    Status(status::StatusArgs),
    /// Bake a trained adapter into the base weights: an HF-style model directory.
    Merge(merge::MergeArgs),
    /// Write a trained LoRA/rsLoRA/DoRA adapter in HF PEFT's layout.
    ExportPeft(export_peft::ExportArgs),
    /// Training throughput (real tokens/s) and MFU of one scheme on a backend.
    Bench(bench::BenchArgs),
    /// Base-model loss in bits per token on a dataset split (all tokens and completion only).
    Eval(eval::EvalArgs),
}

/// Parse `argv` and run the subcommand; returns the process exit code.
pub fn main() -> u8 {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Check(a) => check::cmd_check(&a),
        Cmd::Params(a) => params::cmd_params(&a),
        Cmd::Explain(a) => explain::cmd_explain(&a),
        Cmd::Run(a) => run::cmd_run(&a),
        Cmd::Slurm(a) => exit_code(slurm::cmd_slurm(&a)),
        Cmd::Status(a) => status::cmd_status(&a),
        Cmd::Report(a) => exit_code(report::cmd_report(&a)),
        Cmd::Merge(a) => exit_code(merge::cmd_merge(&a)),
        Cmd::ExportPeft(a) => exit_code(export_peft::cmd_export_peft(&a)),
        Cmd::Bench(a) => exit_code(bench::cmd_bench(&a)),
        Cmd::Eval(a) => exit_code(eval::cmd_eval(&a)),
        Cmd::BenchLoad(a) => exit_code(bench_load::cmd_bench_load(&a)),
        Cmd::Inspect(a) => exit_code(inspect::cmd_inspect(&a)),
        Cmd::Logits(a) => exit_code(logits::cmd_logits(&a)),
        Cmd::Tokenize(a) => exit_code(tokenize::cmd_tokenize(&a)),
        Cmd::ToHf(a) => exit_code(to_hf::cmd_to_hf(&a)),
    }
}

/// Exit code of a command that returns `anyhow::Result`: errors are printed with their causes.
fn exit_code(result: anyhow::Result<()>) -> u8 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}

/// Colored diagnostics only on a terminal, and never under `NO_COLOR`.
fn color() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// The spec arguments `params` and `explain` share.
#[derive(Debug, Clone, Args)]
pub struct SpecArgs {
    /// `.peft` files or directories.
    #[arg(required = true)]
    pub spec: Vec<PathBuf>,
    /// Model shapes: a preset (smollm2-135m, llama-3.1-8b, llama-3.2-1b, gemma-2b, gemma-2-2b, gemma-3-270m, qwen2.5-0.5b, mistral-7b), a GGUF file or an HF directory.
    #[arg(long)]
    pub model: Option<String>,
}

/// Check the specs (with `--model`'s shapes) and print `f(program)`; every
/// diagnostic goes to stderr. Returns the exit code: 2 for a bad
/// `--model`, 1 when the specs have errors.
fn with_program(args: &SpecArgs, f: impl Fn(&Program) -> String) -> u8 {
    let opts = match &args.model {
        None => Options::default(),
        Some(m) => match preset::resolve_model_arg(m) {
            Ok(s) => Options { model: Some(s) },
            Err(e) => {
                eprintln!("error: --model: {e}");
                return 2;
            }
        },
    };
    let (p, d) = check(&args.spec, &opts);
    if d.has_errors() || !d.items.is_empty() {
        eprint!("{}", d.render(color()));
    }
    match p {
        Some(p) => {
            print!("{}", f(&p));
            0
        }
        None => {
            eprintln!("failed: {}", d.summary());
            1
        }
    }
}
