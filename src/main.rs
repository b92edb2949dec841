// Training allocates and frees many large tensors per step; glibc returns each
// big block to the kernel (mmap/munmap) and every reuse page-faults fresh
// zeroed pages. mimalloc with purging off keeps them (see `main`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    Run(peftc::run::RunArgs),
    /// Bake a trained adapter into the base weights: an HF-style model directory.
    Merge(peftc::merge::MergeArgs),
    /// Write a trained LoRA/rsLoRA/DoRA adapter in HF PEFT's layout.
    ExportPeft(peftc::merge::ExportArgs),
    /// Training throughput (real tokens/s) and MFU of one scheme on a backend.
    Bench(peftc::bench::BenchArgs),
    /// Base-model loss in bits per token on a dataset split (all tokens and completion only).
    Eval(peftc::eval::EvalArgs),
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

/// `mi_option_purge_delay` (index 15 of `mi_option_e` in mimalloc 2 and 3).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> ExitCode {
    // Never hand freed memory back to the OS: a training step frees and
    // re-allocates the same large activations, and purging them made a CPU
    // step 37 % slower (30.4 s vs 22.1 s, LoRA r 8, 8 × 256, 2 cores; a
    // 1 s delay: 17.8 s vs 13.4 s). `MIMALLOC_PURGE_DELAY=<ms>` overrides.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets a process-wide allocator option; no other thread exists yet.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
    // SAFETY: still single-threaded.
    unsafe { peftc::parallel::one_thread_per_worker() };
    let cli = Cli::parse();
    let code: u8 = match cli.cmd {
        Cmd::Check { paths } => peftc::lang::cli::cmd_check(&paths) as u8,
        Cmd::Params { spec, model } => peftc::lang::cli::cmd_params(&spec, model.as_deref()) as u8,
        Cmd::Explain { spec, model, json } => peftc::lang::cli::cmd_explain(&spec, model.as_deref(), json) as u8,
        Cmd::Report { path, out } => report(peftc::report::render_path(&path, &out).map(|written| {
            for p in written {
                println!("{}", p.display());
            }
        })),
        Cmd::Run(args) => peftc::run::cmd_run(&args) as u8,
        Cmd::Merge(args) => report(peftc::merge::cmd_merge(&args)),
        Cmd::ExportPeft(args) => report(peftc::merge::cmd_export_peft(&args)),
        Cmd::Bench(args) => report(peftc::bench::cmd_bench(&args)),
        Cmd::Eval(args) => report(peftc::eval::run_eval_cli(&args)),
        Cmd::BenchLoad { model, repeat } => report(peftc::io_cli::bench_load(&model, repeat)),
        Cmd::Inspect { model, tensors } => report(peftc::io_cli::inspect(&model, tensors)),
        Cmd::Tokenize { model, text } => report(peftc::io_cli::tokenize(&model, &text)),
        Cmd::ToHf { model, out } => report(peftc::io_cli::to_hf(&model, &out)),
    };
    ExitCode::from(code)
}
