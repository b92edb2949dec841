//! `peftc eval`: the base model's loss in bits per token on a GSM8K split
//! (all predicted tokens and completion only), through the same data and
//! evaluation path as `peftc run`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;

use crate::data::{Example, gsm8k};
use crate::model::Llama;
use crate::model::hook::NoAdapter;
use crate::pretrained::weights::LoadedModel;
use crate::runs::atomic::write_atomic;
use crate::train::backend::{BackendKind, BackendTask, dispatch, training_workers};
use crate::train::evaluate::{EvalPlan, EvalReport, evaluate};

/// Arguments of `peftc eval`.
#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    /// GGUF file or HF model directory.
    #[arg(long)]
    pub model: PathBuf,
    /// Dataset: `gsm8k`, a directory holding `{split}.jsonl`, or a jsonl file.
    #[arg(long, default_value = "gsm8k")]
    pub data: String,
    /// Split name (`test`, `train`).
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Skip the first N examples of the split.
    #[arg(long, default_value_t = 0)]
    pub skip: usize,
    /// Only the first N examples (after `--skip`).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Truncate every example to this many tokens.
    #[arg(long, default_value_t = 512)]
    pub max_len: usize,
    /// Padded tokens per forward pass (examples are grouped by length;
    /// passes are spread over the CPU workers).
    #[arg(long, default_value_t = 2048)]
    pub micro_tokens: usize,
    /// Compute backend: ndarray (CPU), or tch / cuda when built with those features.
    #[arg(long, default_value = "ndarray")]
    pub backend: String,
    /// Also write the report (totals and per-example losses) as JSON to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Evaluates the base model on the inner (non-autodiff) backend of the one
/// the CLI picked.
struct EvalTask<'a> {
    loaded: &'a LoadedModel,
    examples: &'a [Example],
    args: &'a EvalArgs,
}

impl BackendTask for EvalTask<'_> {
    type Output = Result<EvalReport>;
    fn run<B: AutodiffBackend>(self, device: B::Device, backend: &str, _device_name: &str) -> Result<EvalReport> {
        let model = Llama::<B>::from_loaded(self.loaded, &device)?.valid();
        let total = self.examples.len();
        let mut last = Instant::now();
        let plan = EvalPlan {
            micro_tokens: self.args.micro_tokens.max(self.args.max_len),
            max_len: self.args.max_len,
            workers: training_workers(backend),
        };
        Ok(evaluate(&model, &NoAdapter, self.examples, plan, &device, |done, n| {
            if done == n || last.elapsed().as_secs_f64() > 5.0 {
                eprintln!("  {done}/{total} examples");
                last = Instant::now();
            }
        }))
    }
}

/// `peftc eval`: base-model loss in bits on a GSM8K split.
pub fn cmd_eval(args: &EvalArgs) -> Result<()> {
    let kind: BackendKind = args.backend.parse()?;
    kind.available()?;
    let t0 = Instant::now();
    let loaded = crate::pretrained::source::load_model(&args.model)?;
    let load_secs = t0.elapsed().as_secs_f64();
    let tokenizer = crate::pretrained::tokenizer::Tokenizer::for_model(&loaded)
        .with_context(|| format!("building the tokenizer of {}", args.model.display()))?;
    let path = gsm8k::resolve_split(&args.data, &args.split)?;
    let mut examples = gsm8k::read_jsonl(&path)?;
    examples.drain(..args.skip.min(examples.len()));
    if let Some(n) = args.limit {
        examples.truncate(n);
    }
    if examples.is_empty() {
        bail!("{}: no examples to evaluate", path.display());
    }
    let max_pos = loaded.config.max_position_embeddings.min(crate::model::llama::MAX_ROPE_POSITIONS);
    if args.max_len > max_pos {
        bail!("--max-len {} exceeds the model's {} positions", args.max_len, max_pos);
    }
    let encoded = gsm8k::encode_all(tokenizer.inner(), &examples, gsm8k::Framing::for_model(&loaded.config), args.max_len)?;
    eprintln!("model {} loaded in {load_secs:.1}s; {} examples from {}", args.model.display(), encoded.len(), path.display());
    let report = dispatch(kind, EvalTask { loaded: &loaded, examples: &encoded, args })??;
    let total = report.total();
    println!("examples:                 {}", report.examples.len());
    println!("loss (all tokens):        {:.4} bits/token over {} tokens", report.bits_all(), total.tokens_all);
    println!("loss (completion):        {:.4} bits/token over {} tokens", report.bits_completion(), total.tokens_completion);
    println!(
        "time: {:.1}s, {:.1} tokens/s ({} backend, micro-batches of {} padded tokens, max_len {})",
        report.seconds,
        report.tokens_per_second(),
        args.backend,
        args.micro_tokens.max(args.max_len),
        args.max_len
    );
    if let Some(out) = &args.out {
        let json = serde_json::json!({
            "model": args.model.display().to_string(),
            "data": path.display().to_string(),
            "skip": args.skip,
            "examples": report.examples.len(),
            "max_len": args.max_len,
            "bits_all": report.bits_all(),
            "bits_completion": report.bits_completion(),
            "tokens_all": total.tokens_all,
            "tokens_completion": total.tokens_completion,
            "seconds": report.seconds,
            "tokens_per_second": report.tokens_per_second(),
            "per_example": report.examples,
        });
        write_atomic(out, serde_json::to_string_pretty(&json)?.as_bytes())?;
        println!("wrote {}", out.display());
    }
    Ok(())
}
