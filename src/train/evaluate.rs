//! Cross-entropy loss helpers and dataset evaluation in bits per token.
//!
//! Evaluation runs on whatever backend the model is on; pass the inner
//! (non-autodiff) model (`model.valid()`) so no graph is recorded.

use std::time::Instant;

use burn::prelude::*;

use crate::data::batcher::BatchData;
use crate::data::gsm8k::EncodedExample;
use crate::data::sorted_batches;
use crate::model::head_loss::head_loss;
use crate::model::hook::LinearHook;
use crate::model::Llama;

/// Per-token negative log-likelihood in nats: `logsumexp(logits) - logits[target]`.
///
/// # Shapes
/// - `logits`: `[batch, seq, vocab]`
/// - `targets`: `[batch, seq]`
/// - returns `[batch, seq]`
pub fn token_nll<B: Backend>(logits: Tensor<B, 3>, targets: Tensor<B, 2, Int>) -> Tensor<B, 2> {
    let [batch, seq, _] = logits.dims();
    let max = logits.clone().max_dim(2).detach();
    let target_logit = logits.clone().gather(2, targets.reshape([batch, seq, 1]));
    let lse = logits.sub(max.clone()).exp().sum_dim(2).log().add(max);
    lse.sub(target_logit).reshape([batch, seq])
}

/// Sum of per-token NLL (nats) under a 0/1 mask, and the mask's count.
///
/// # Shapes
/// - `logits`: `[batch, seq, vocab]`
/// - `targets`, `mask`: `[batch, seq]`
/// - returns (`[1]` summed nats, number of masked-in tokens)
pub fn token_losses<B: Backend>(logits: Tensor<B, 3>, targets: Tensor<B, 2, Int>, mask: Tensor<B, 2>) -> (Tensor<B, 1>, f32) {
    let count = mask.clone().sum().into_scalar().elem::<f32>();
    (token_nll(logits, targets).mul(mask).sum(), count)
}

/// Mean NLL (nats) over the masked tokens: the training loss (differentiable).
///
/// # Shapes
/// - `logits`: `[batch, seq, vocab]`
/// - `targets`, `mask`: `[batch, seq]`
/// - `count`: number of masked-in tokens (`LmBatch::num_tokens`)
/// - returns `[1]`
pub fn mean_nll<B: Backend>(logits: Tensor<B, 3>, targets: Tensor<B, 2, Int>, mask: Tensor<B, 2>, count: usize) -> Tensor<B, 1> {
    token_nll(logits, targets).mul(mask).sum().div_scalar(count.max(1) as f32)
}

/// Losses of one example, in nats, and their token counts.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct ExampleLoss {
    pub nats_all: f64,
    pub tokens_all: usize,
    pub nats_completion: f64,
    pub tokens_completion: usize,
}

/// The result of evaluating a dataset.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EvalReport {
    /// Per-example losses, in the order of the input examples.
    pub examples: Vec<ExampleLoss>,
    pub seconds: f64,
    /// Input tokens pushed through the model (padding excluded).
    pub tokens_processed: usize,
}

impl EvalReport {
    pub fn total(&self) -> ExampleLoss {
        self.examples.iter().fold(ExampleLoss::default(), |a, e| ExampleLoss {
            nats_all: a.nats_all + e.nats_all,
            tokens_all: a.tokens_all + e.tokens_all,
            nats_completion: a.nats_completion + e.nats_completion,
            tokens_completion: a.tokens_completion + e.tokens_completion,
        })
    }

    /// Bits per predicted token, averaged over all predicted tokens of all examples.
    pub fn bits_all(&self) -> f64 {
        let t = self.total();
        t.nats_all / t.tokens_all.max(1) as f64 / std::f64::consts::LN_2
    }

    /// Bits per completion token, averaged over all completion tokens of all examples.
    pub fn bits_completion(&self) -> f64 {
        let t = self.total();
        t.nats_completion / t.tokens_completion.max(1) as f64 / std::f64::consts::LN_2
    }

    pub fn tokens_per_second(&self) -> f64 {
        self.tokens_processed as f64 / self.seconds.max(1e-9)
    }
}

/// Evaluates the model (with `hook`) on `examples`, `batch_size` at a time
/// (batches of similar length), the batches spread over `workers` threads;
/// the output head and its loss go through [`crate::model::head_loss`], so at most
/// a few hundred tokens' logits exist at once.
/// `progress(done, total)` is called after each batch.
#[allow(clippy::too_many_arguments)]
pub fn evaluate<B: Backend, H: LinearHook<B> + Sync>(
    model: &Llama<B>,
    hook: &H,
    examples: &[EncodedExample],
    batch_size: usize,
    pad_id: u32,
    workers: usize,
    device: &B::Device,
    progress: impl FnMut(usize, usize) + Send,
) -> EvalReport {
    let start = Instant::now();
    let lengths: Vec<usize> = examples.iter().map(|e| e.ids.len()).collect();
    let batches = sorted_batches(&lengths, batch_size);
    let progress = std::sync::Mutex::new((0usize, progress));
    let (head, head_t) = model.head();
    let results = crate::train::parallel::par_map(&batches, workers, |batch_idx| {
        let refs: Vec<&EncodedExample> = batch_idx.iter().map(|&i| &examples[i]).collect();
        let data = BatchData::new(&refs, pad_id);
        let batch = data.to_batch::<B>(device);
        let tokens = batch.padding.clone().int().sum().into_scalar().elem::<i64>() as usize;
        let hidden = model.forward_hidden(batch.tokens, batch.padding, hook);
        let [bsz, seq, d] = hidden.dims();
        let nll = head_loss(hidden.reshape([bsz * seq, d]), &head, &head_t, batch.targets.reshape([bsz * seq]), None).nll;
        let nll = nll.reshape([bsz, seq]);
        let sums = Tensor::cat(vec![nll.clone().mul(batch.mask_all).sum_dim(1), nll.mul(batch.mask_completion).sum_dim(1)], 1);
        let sums = sums.into_data().convert::<f32>().into_vec::<f32>().expect("f32 sums");
        let losses: Vec<(usize, ExampleLoss)> = batch_idx
            .iter()
            .enumerate()
            .map(|(row, &i)| {
                let ex = &examples[i];
                let loss = ExampleLoss {
                    nats_all: sums[2 * row] as f64,
                    tokens_all: ex.num_predicted(),
                    nats_completion: sums[2 * row + 1] as f64,
                    tokens_completion: ex.num_completion(),
                };
                (i, loss)
            })
            .collect();
        if let Ok(mut p) = progress.lock() {
            p.0 += batch_idx.len();
            let done = p.0;
            (p.1)(done, examples.len());
        }
        (losses, tokens)
    });
    let mut out = vec![ExampleLoss::default(); examples.len()];
    let mut tokens_processed = 0;
    for (losses, tokens) in results {
        tokens_processed += tokens;
        for (i, loss) in losses {
            out[i] = loss;
        }
    }
    EvalReport { examples: out, seconds: start.elapsed().as_secs_f64(), tokens_processed }
}

/// Arguments of `peftc eval`.
#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    /// GGUF file or HF model directory.
    #[arg(long)]
    pub model: std::path::PathBuf,
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
    /// Examples per forward pass.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Compute backend: ndarray (CPU), or tch / cuda when built with those features.
    #[arg(long, default_value = "ndarray")]
    pub backend: String,
    /// Also write the report (totals and per-example losses) as JSON to this file.
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
}

/// `peftc eval`: base-model loss in bits on a GSM8K split.
pub fn run_eval_cli(args: &EvalArgs) -> anyhow::Result<()> {
    use anyhow::Context;
    if args.batch == 0 {
        anyhow::bail!("--batch must be at least 1");
    }
    let t0 = Instant::now();
    let loaded = crate::pretrained::source::load_model(&args.model)?;
    let load_secs = t0.elapsed().as_secs_f64();
    let tokenizer = crate::pretrained::tokenizer::Tokenizer::for_model(&loaded)
        .with_context(|| format!("building the tokenizer of {}", args.model.display()))?;
    let path = crate::data::gsm8k::resolve_split(&args.data, &args.split)?;
    let mut examples = crate::data::read_jsonl(&path)?;
    examples.drain(..args.skip.min(examples.len()));
    if let Some(n) = args.limit {
        examples.truncate(n);
    }
    if examples.is_empty() {
        anyhow::bail!("{}: no examples to evaluate", path.display());
    }
    let max_pos = loaded.config.max_position_embeddings.min(crate::model::llama::MAX_ROPE_POSITIONS);
    if args.max_len > max_pos {
        anyhow::bail!("--max-len {} exceeds the model's {} positions", args.max_len, max_pos);
    }
    let eos = loaded.config.eos_token_id;
    let encoded = crate::data::gsm8k::encode_all(tokenizer.inner(), &examples, eos, args.max_len)?;
    eprintln!(
        "model {} loaded in {load_secs:.1}s; {} examples from {}",
        args.model.display(),
        encoded.len(),
        path.display()
    );
    let report = match args.backend.as_str() {
        "ndarray" => eval_on::<burn::backend::NdArray<f32>>(&loaded, &encoded, args, eos, &Default::default())?,
        #[cfg(feature = "tch")]
        "tch" => eval_on::<burn::backend::LibTorch<f32>>(&loaded, &encoded, args, eos, &Default::default())?,
        #[cfg(feature = "cuda")]
        "cuda" => eval_on::<burn::backend::Cuda<f32, i32>>(&loaded, &encoded, args, eos, &Default::default())?,
        other => anyhow::bail!("unknown or not compiled-in backend `{other}` (this build has: {})", compiled_backends()),
    };
    let total = report.total();
    println!("examples:                 {}", report.examples.len());
    println!("loss (all tokens):        {:.4} bits/token over {} tokens", report.bits_all(), total.tokens_all);
    println!("loss (completion):        {:.4} bits/token over {} tokens", report.bits_completion(), total.tokens_completion);
    println!(
        "time: {:.1}s, {:.1} tokens/s ({} backend, batch {}, max_len {})",
        report.seconds,
        report.tokens_per_second(),
        args.backend,
        args.batch,
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
        crate::runs::atomic::write_atomic(out, serde_json::to_string_pretty(&json)?.as_bytes())?;
        println!("wrote {}", out.display());
    }
    Ok(())
}

fn compiled_backends() -> &'static str {
    if cfg!(all(feature = "tch", feature = "cuda")) {
        "ndarray, tch, cuda"
    } else if cfg!(feature = "tch") {
        "ndarray, tch"
    } else if cfg!(feature = "cuda") {
        "ndarray, cuda"
    } else {
        "ndarray"
    }
}

fn eval_on<B: Backend>(
    loaded: &crate::pretrained::weights::LoadedModel,
    encoded: &[EncodedExample],
    args: &EvalArgs,
    pad_id: u32,
    device: &B::Device,
) -> anyhow::Result<EvalReport> {
    let model = Llama::<B>::from_loaded(loaded, device)?;
    let total = encoded.len();
    let mut last = Instant::now();
    let workers = crate::train::backend::training_workers(&args.backend);
    Ok(evaluate(&model, &crate::model::hook::NoAdapter, encoded, args.batch, pad_id, workers, device, |done, n| {
        if done == n || last.elapsed().as_secs_f64() > 5.0 {
            eprintln!("  {done}/{total} examples");
            last = Instant::now();
        }
    }))
}
