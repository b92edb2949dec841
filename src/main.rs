use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use clap::{Parser, Subcommand};

use peftc::model_source::{self, load_model};
use peftc::tokenizer::Tokenizer;

#[derive(Parser)]
#[command(
    name = "peftc",
    version,
    about = "A declarative experiment-spec compiler for parameter-efficient fine-tuning"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
    /// Train every run of the experiments in the given specs (skips complete
    /// runs, resumes interrupted ones) into runs/<experiment>/<run>/.
    Run(peftc::run::RunArgs),
    /// Bake a trained adapter into the base weights: an HF-style model directory.
    Merge(peftc::merge::MergeArgs),
    /// Write a trained LoRA/rsLoRA/DoRA adapter in HF PEFT's layout.
    ExportPeft(peftc::merge::ExportArgs),
    /// Training throughput (real tokens/s) and MFU of one scheme on a backend.
    Bench(peftc::bench::BenchArgs),
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
    /// Print the token ids of a text (no special tokens added), as the
    /// model's tokenizer produces them.
    Tokenize {
        /// GGUF file or HF model directory.
        #[arg(long)]
        model: PathBuf,
        /// The text to tokenize.
        text: String,
    },
    /// Convert a model (GGUF or HF directory) to an HF directory
    /// (config.json, model.safetensors in f32, tokenizer.json).
    ToHf {
        /// GGUF file or HF model directory.
        model: PathBuf,
        /// Output directory.
        out: PathBuf,
    },
}

fn bench_load(model: &Path, repeat: usize) -> Result<()> {
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

fn inspect(model: &Path, tensors: bool) -> Result<()> {
    if !tensors {
        let config = model_source::load_config(model)?;
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

fn tokenize(model: &Path, text: &str) -> Result<()> {
    let (format, path) = model_source::detect_format(model)?;
    let tokenizer = match format {
        model_source::ModelFormat::Gguf => {
            let g = peftc::gguf::GgufFile::open(&path)?;
            let source = peftc::gguf::llama::tokenizer_from_gguf(&g)?
                .ok_or_else(|| anyhow::anyhow!("{} has no tokenizer.ggml.* metadata", path.display()))?;
            Tokenizer::from_source(&source)?
        }
        model_source::ModelFormat::HfDir => Tokenizer::from_json_file(&path.join(peftc::hf_dir::TOKENIZER_FILE))?,
    };
    let ids = tokenizer.encode(text)?;
    let pieces: Vec<String> = ids
        .iter()
        .map(|&i| tokenizer.id_to_token(i).unwrap_or_default())
        .collect();
    println!("{} tokens", ids.len());
    println!("ids:    {ids:?}");
    println!("tokens: {pieces:?}");
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    let code = |c: i32| if c == 0 { Ok(()) } else { Err(anyhow::anyhow!("exit {c}")) };
    match cli.command {
        Command::Check { paths } => std::process::exit(peftc::lang::cli::cmd_check(&paths)),
        Command::Params { spec, model } => std::process::exit(peftc::lang::cli::cmd_params(&spec, model.as_deref())),
        Command::Explain { spec, model, json } => std::process::exit(peftc::lang::cli::cmd_explain(&spec, model.as_deref(), json)),
        Command::Run(args) => {
            let c = peftc::run::cmd_run(&args);
            if c != 0 {
                std::process::exit(c);
            }
            code(0)
        }
        Command::Report { path, out } => peftc::report::render_path(&path, &out).map(|written| {
            for p in written {
                println!("{}", p.display());
            }
        }),
        Command::Merge(args) => peftc::merge::cmd_merge(&args),
        Command::ExportPeft(args) => peftc::merge::cmd_export_peft(&args),
        Command::Bench(args) => peftc::bench::cmd_bench(&args),
        Command::BenchLoad { model, repeat } => bench_load(&model, repeat),
        Command::Inspect { model, tensors } => inspect(&model, tensors),
        Command::Tokenize { model, text } => tokenize(&model, &text),
        Command::ToHf { model, out } => {
            let loaded = load_model(&model)?;
            peftc::hf_dir::save_hf_dir(&loaded, &out)?;
            println!("wrote {}", out.display());
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
