//! `peftc bench`: training throughput of one scheme on one backend.
//!
//! Times full training steps (forward, backward, clipping, AdamW update) on
//! a batch of `batch × seq` real tokens (no padding) and reports tokens/s and
//! an MFU estimate. With `--data`, on the real batches of a spec's data
//! instead (its model, batch, max_len and first epoch's order): real
//! (unpadded) tokens/s, the padding fraction, each worker's busy time and
//! the peak RSS beside the memory estimate.
//!
//! FLOP model (per trained token): `4·P + 12·L·s·d`, where `P` is the weights
//! of every matmul the token goes through (all target linears of every layer
//! plus the output head), `L` the layers, `s` the sequence length and `d` the
//! model width. `4·P` is the forward (2P) plus the backward to the
//! activations (2P); frozen weights need no weight gradient. Attention scores
//! and their use cost `4·s·d` per layer forward and twice that backward
//! (no causal halving). Adapter FLOPs are left out (< 1 % for LoRA r 8).
//! Peak: `--peak-tflops`, or for the CPU `cores × clock × 32` f32 FLOP/cycle
//! (two 8-wide FMA units, AVX2), for CUDA 494.7 TFLOP/s (H100/H200 SXM dense
//! TF32: burn-cuda's f32 matmuls run on the tensor cores) or, with
//! `--precision bf16`, 989.4 TFLOP/s (dense bf16). Host reads per step come
//! from [`crate::train::host_reads`]; `--phases` times forward, backward and
//! optimizer with a sync at each boundary, in extra steps.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use clap::Args;

use crate::data::{Example, LossOn};
use crate::lang::ir;
use crate::lower::{Adapter, from_lang};
use crate::model::Llama;
use crate::model::causal_lm::CausalLm;
use crate::train::backend::{BackendKind, BackendTask, dispatch};
use crate::train::evaluate::{EvalPlan, evaluate};
use crate::train::fit::{apply_gradients, shuffled};
use crate::train::loss::{StepGradients, StepPlan, step_gradients};
use crate::train::optim::{Optimizer, OptimizerConfig, OptimizerKind};
use crate::train::session::ExperimentData;
use crate::train::{host_reads, memory};

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// GGUF file or HF model directory, or `random:<preset>` (e.g.
    /// `random:smollm2-135m`) for random weights of a preset's shapes
    /// (required unless `--data`, which uses the experiment's model).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Spec file(s) holding the run to bench.
    #[arg(long)]
    pub scheme: Vec<PathBuf>,
    /// Run name (default: the first run of the first experiment), or a scheme
    /// name instantiated with its defaults.
    #[arg(long)]
    pub run: Option<String>,
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    #[arg(long, default_value_t = 256)]
    pub seq: usize,
    #[arg(long, default_value = "ndarray")]
    pub backend: String,
    /// Timed steps (after the warm-up steps).
    #[arg(long, default_value_t = 3)]
    pub steps: usize,
    /// Untimed steps first (kernel compilation, autotuning, allocator warm-up).
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Also time the phases of a step — forward, backward, optimizer — with
    /// a device sync at each boundary (extra steps, after the timed ones).
    #[arg(long)]
    pub phases: bool,
    /// Peak throughput for MFU, TFLOP/s (default: the CPU's cores × clock ×
    /// 32; on cuda the H100/H200 SXM dense tensor-core peak: TF32 494.7 for
    /// f32, as burn-cuda's f32 matmuls run on tensor cores, bf16 989.4).
    #[arg(long)]
    pub peak_tflops: Option<f64>,
    /// Also time evaluation (forward only, no autodiff).
    #[arg(long)]
    pub eval: bool,
    /// `f32`, or `bf16`: a bf16 base model with f32 adapters and loss (GPU
    /// backends and tch; see `crate::model::precision`).
    #[arg(long, default_value = "f32")]
    pub precision: String,
    /// Real batches of the run's experiment: its model, data, batch and
    /// max_len, in its first epoch's order (`--batch`/`--seq` are ignored).
    #[arg(long)]
    pub data: bool,
    /// Padded tokens per micro-batch (default: as `peftc run` chooses, from
    /// the spec's `micro_tokens` or the backend and the memory available).
    #[arg(long)]
    pub micro_tokens: Option<usize>,
    /// Memory peftc may use, in GiB (as `peftc run --max-memory`).
    #[arg(long, value_name = "GIB")]
    pub max_memory: Option<f64>,
}

/// The run to bench (by name, else the first), with its experiment; or a
/// scheme instantiated with its defaults (no experiment).
fn pick_instance<'p>(
    program: &'p ir::Program,
    name: Option<&str>,
) -> Result<(ir::SchemeInstance, Option<(&'p ir::Experiment, &'p ir::Run)>)> {
    let mut runs = program.experiments.iter().flat_map(|e| e.runs.iter().map(move |r| (e, r)));
    let found = match name {
        Some(n) => runs.find(|(_, r)| r.name == n),
        None => runs.next(),
    };
    if let Some((e, r)) = found {
        return Ok((r.instance.clone(), Some((e, r))));
    }
    let scheme = match name {
        Some(n) => program.schemes.iter().find(|s| s.name == n).ok_or_else(|| anyhow!("no run or scheme named `{n}`"))?,
        None => program.schemes.first().ok_or_else(|| anyhow!("the spec has no scheme"))?,
    };
    Ok((scheme.clone(), None))
}

fn cpu_peak_tflops() -> f64 {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
    let mhz = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines().find(|l| l.starts_with("cpu MHz")).and_then(|l| l.split(':').nth(1)).and_then(|v| v.trim().parse::<f64>().ok())
        })
        .unwrap_or(2500.0);
    cores * mhz * 1e6 * 32.0 / 1e12
}

struct BenchTask<'a> {
    args: &'a BenchArgs,
    instance: ir::SchemeInstance,
    run: Option<(&'a ir::Experiment, &'a ir::Run)>,
}

/// What the timed steps run on: the batches (one per step, the first one
/// the warm-up), the cut length, and the model file.
struct BenchData {
    loaded: crate::pretrained::weights::LoadedModel,
    steps: Vec<Vec<Example>>,
    max_len: usize,
}

impl BenchTask<'_> {
    fn data(&self) -> Result<BenchData> {
        let a = self.args;
        if a.data {
            let (e, run) =
                self.run.ok_or_else(|| anyhow!("--data needs a run of an experiment (its data); the spec names only a scheme"))?;
            let data = ExperimentData::load(e)?;
            let batch = run.train.batch.max(1);
            let order = shuffled(data.train.len(), run.train.seed, 1);
            let steps: Vec<Vec<Example>> =
                order.chunks(batch).take(a.warmup + a.steps).map(|c| c.iter().map(|&i| data.train[i].clone()).collect()).collect();
            if steps.len() < a.warmup + 1 {
                return Err(anyhow!(
                    "the experiment's {} training examples make fewer than {} batches of {batch}",
                    data.train.len(),
                    a.warmup + 1
                ));
            }
            return Ok(BenchData { loaded: data.loaded, steps, max_len: e.data.max_len });
        }
        let model = a.model.as_ref().ok_or_else(|| anyhow!("--model is required (or --data, to use the experiment's model)"))?;
        let loaded = load_or_random(model)?;
        let vocab = loaded.config.vocab_size;
        // Deterministic real tokens, no padding.
        let batch: Vec<Example> = (0..a.batch)
            .map(|b| Example { tokens: (0..a.seq + 1).map(|i| ((i * 7919 + b * 104729) % vocab) as u32).collect(), prompt_len: 1 })
            .collect();
        Ok(BenchData { loaded, steps: vec![batch; a.warmup + a.steps], max_len: a.seq + 1 })
    }
}

impl BackendTask for BenchTask<'_> {
    type Output = Result<()>;
    fn run<B: AutodiffBackend>(self, device: B::Device, backend: &str, device_name: &str) -> Result<()> {
        let a = self.args;
        let BenchData { loaded, steps, max_len } = self.data()?;
        let c = loaded.config.clone();
        let bf16 = match a.precision.as_str() {
            "f32" => false,
            "bf16" if crate::train::backend::computes_bf16(backend) => true,
            "bf16" => return Err(anyhow!("backend {backend} has no bf16 arithmetic; use --backend cuda or tch")),
            other => return Err(anyhow!("unknown precision `{other}` (f32 or bf16)")),
        };
        let mut model: Llama<B> = Llama::from_loaded(&loaded, &device)?;
        drop(loaded);
        if bf16 {
            model = model.with_dtype(burn::tensor::FloatDType::BF16);
        }
        // Instantiate the scheme on this model's shapes (all seven targets, every layer).
        let mut inst = self.instance;
        let shapes_match = inst.targets.iter().all(|t| {
            let (i, o) = model.target_shape(t.target);
            t.sizes.get("in") == Some(&i) && t.sizes.get("out") == Some(&o) && t.layers.end <= c.num_layers
        });
        if !shapes_match {
            return Err(anyhow!("the spec's run was sized for another model; give a spec whose experiment uses this model"));
        }
        let program = from_lang::program(&inst)?;
        let sites = from_lang::sites(&inst);
        inst.targets.clear();
        let mut adapter = Adapter::<B>::build(&program, &sites, &|l, t| model.base_weight(l, t), 0, &device)?;
        let mut opt = Optimizer::<B::InnerBackend>::new(OptimizerConfig::pytorch(OptimizerKind::AdamW, 1e-4), adapter.params().len());
        let workers = crate::train::backend::training_workers(backend);

        // The micro-batch budget, as `peftc run` chooses it.
        let footprint = memory::TrainingFootprint {
            model: &c,
            workers,
            trainable: adapter.num_trainable(),
            longest: steps.iter().flatten().map(|x| x.tokens.len().min(max_len)).max().unwrap_or(max_len),
        };
        let batch = steps[0].len();
        let requested = a.micro_tokens.or(self.run.and_then(|(_, r)| r.train.micro_tokens));
        let available = memory::available_bytes(a.max_memory.map(memory::gib_to_bytes));
        let on_cpu = crate::train::backend::on_cpu(backend);
        let micro_tokens = footprint.choose(requested, on_cpu, batch, max_len, available)?;
        let plan = StepPlan { max_len, loss_on: LossOn::All, micro_tokens, workers, time_phases: false };

        let mut stats = BenchStats { workers: vec![0.0; workers], ..Default::default() };
        let mut step = |adapter: &mut Adapter<B>, exs: &[Example], stats: &mut BenchStats, time_phases: bool| -> Result<()> {
            let refs: Vec<&Example> = exs.iter().collect();
            let plan = StepPlan { time_phases, ..plan };
            let step =
                step_gradients(&model, &*adapter, &refs, plan, &device).ok_or_else(|| anyhow!("a batch has no tokens to predict"))?;
            stats.add(&step);
            stats.losses.push(step.nats / std::f64::consts::LN_2);
            let t = Instant::now();
            apply_gradients(adapter, &mut opt, step.grads, Some(1.0), 1e-4);
            if time_phases {
                host_reads::read_scalar(adapter.params()[0].clone().inner().sum());
                stats.optimizer += t.elapsed().as_secs_f64();
            }
            Ok(())
        };
        eprintln!(
            "bench: {} on {backend} ({device_name}), {}, {} trainable params, micro-batches of {micro_tokens} padded tokens on {workers} worker(s)",
            program.scheme,
            if a.data {
                format!("{} real batches of {batch} (max_len {max_len})", steps.len() - 1)
            } else {
                format!("batch {} × seq {}", a.batch, a.seq)
            },
            adapter.num_trainable()
        );
        let rss_before = memory::current_rss_bytes();
        memory::reset_peak_rss();
        let warmup = a.warmup.min(steps.len() - 1);
        for exs in &steps[..warmup] {
            let t = Instant::now();
            step(&mut adapter, exs, &mut BenchStats::default(), false)?;
            eprintln!("warm-up step: {:.2} s", t.elapsed().as_secs_f64());
        }
        let timed = &steps[warmup..];
        let reads_before = host_reads::count();
        let t = Instant::now();
        for exs in timed {
            step(&mut adapter, exs, &mut stats, false)?;
        }
        let reads = host_reads::count() - reads_before;
        // Make sure queued GPU work is done before stopping the clock.
        let _ = adapter.params()[0].clone().sum().into_scalar();
        let secs = t.elapsed().as_secs_f64();
        let n_steps = timed.len();
        let tps = stats.tokens as f64 / secs;
        // Mean row length of the timed steps, for attention's FLOPs.
        let seq = if a.data { stats.tokens as f64 / stats.rows.max(1) as f64 } else { a.seq as f64 };
        let p: f64 = CausalLm::num_params(&model) as f64 + if c.tie_word_embeddings { 0.0 } else { (c.vocab_size * c.hidden_size) as f64 };
        let p_matmul = p; // targets + output head (the embedding lookup is no matmul; its size stands for the head)
        let flops_per_token = 4.0 * p_matmul + 12.0 * c.num_layers as f64 * seq * c.hidden_size as f64;
        let (peak, peak_name) = match (a.peak_tflops, on_cpu, bf16) {
            (Some(p), ..) => (p, "given"),
            (None, true, _) => (cpu_peak_tflops(), "cores × clock × 32 f32 FLOP/cycle"),
            (None, false, false) => (494.7, "H100/H200 SXM dense TF32 tensor cores"),
            (None, false, true) => (989.4, "H100/H200 SXM dense bf16 tensor cores"),
        };
        let achieved = tps * flops_per_token / 1e12;
        let gib = memory::gib;
        println!("backend      {backend} ({device_name}), {}", if bf16 { "bf16 base, f32 adapters and loss" } else { "f32" });
        println!("scheme       {} ({} trainable parameters)", program.scheme, adapter.num_trainable());
        if a.data {
            println!(
                "batches      {n_steps} real batches of {batch}: {:.0} real tokens per step, mean row {seq:.0} tokens",
                stats.tokens as f64 / n_steps as f64
            );
            println!(
                "padding      {:.1} % of {:.0} padded tokens per step, {:.1} micro-batches per step",
                100.0 * (1.0 - stats.tokens as f64 / stats.padded.max(1) as f64),
                stats.padded as f64 / n_steps as f64,
                stats.micro_batches as f64 / n_steps as f64
            );
        } else {
            println!("batch        {} × {} = {} real tokens per step", a.batch, a.seq, a.batch * a.seq);
        }
        println!("micro-batch  {micro_tokens} padded tokens, {workers} worker(s)");
        println!("step time    {:.3} s (mean of {n_steps})", secs / n_steps as f64);
        println!("host reads   {:.1} per step (device → host syncs inside the training step)", reads as f64 / n_steps as f64);
        println!("throughput   {tps:.1} training tokens/s (real tokens)");
        let busy: Vec<String> = stats.workers.iter().map(|b| format!("{b:.1} s ({:.0} %)", 100.0 * b / secs)).collect();
        println!("workers      busy {} of {secs:.1} s", busy.join(", "));
        println!("FLOP/token   {:.3e} (4·P + 12·L·s·d, P = {:.1}M matmul weights)", flops_per_token, p_matmul / 1e6);
        println!("achieved     {achieved:.3} TFLOP/s");
        println!("MFU          {:.1} % of {peak:.3} TFLOP/s peak ({peak_name})", 100.0 * achieved / peak);
        if let (Some(peak), Some(before)) = (memory::peak_rss_bytes(), rss_before) {
            println!(
                "memory       peak RSS {:.2} GiB ({:.2} GiB over the loaded model; estimated {:.2} GiB)",
                gib(peak),
                gib(peak.saturating_sub(before)),
                gib(footprint.bytes(micro_tokens))
            );
        }
        if a.phases {
            let mut ph = BenchStats { workers: vec![0.0; workers], ..Default::default() };
            for exs in timed {
                step(&mut adapter, exs, &mut ph, true)?;
            }
            let n = n_steps as f64;
            println!(
                "phases       forward {:.3} s, backward {:.3} s, optimizer {:.3} s per step (synced at each boundary; summed over micro-batches)",
                ph.forward / n,
                ph.backward / n,
                ph.optimizer / n
            );
        }
        println!(
            "summary      backend={backend} precision={} batch={batch} seq={seq:.0} micro_tokens={micro_tokens} step_s={:.4} tokens_per_s={tps:.1} host_reads_per_step={:.1} mfu_pct={:.2}",
            if bf16 { "bf16" } else { "f32" },
            secs / n_steps as f64,
            reads as f64 / n_steps as f64,
            100.0 * achieved / peak
        );
        let losses: Vec<String> = stats.losses.iter().map(|l| format!("{l:.5}")).collect();
        println!("losses       {} (bits, per timed step)", losses.join(" "));
        if a.eval {
            let valid = adapter.valid();
            let eval_model = model.valid();
            let examples: Vec<Example> = timed.concat();
            let t = Instant::now();
            let report = evaluate(&eval_model, &valid, &examples, EvalPlan { micro_tokens, max_len, workers }, &device, |_, _| {});
            println!("eval         {:.1} tokens/s (forward only)", report.tokens_processed as f64 / t.elapsed().as_secs_f64());
        }
        Ok(())
    }
}

/// Sums over the timed steps.
#[derive(Default)]
struct BenchStats {
    tokens: u64,
    padded: u64,
    rows: u64,
    micro_batches: usize,
    /// Busy seconds per worker.
    workers: Vec<f64>,
    /// Seconds in forward, backward and optimizer phases (with `--phases`).
    forward: f64,
    backward: f64,
    optimizer: f64,
    /// Each step's training loss in bits.
    losses: Vec<f64>,
}

impl BenchStats {
    fn add<B: burn::prelude::Backend>(&mut self, s: &StepGradients<B>) {
        self.tokens += s.tokens;
        self.padded += s.padded_tokens;
        self.rows += s.rows;
        self.micro_batches += s.micro_batches;
        for (w, b) in self.workers.iter_mut().zip(&s.busy) {
            *w += b;
        }
        if let Some((f, b)) = s.phases {
            self.forward += f;
            self.backward += b;
        }
    }
}

/// A model file, or random weights with a preset's shapes (`random:<preset>`).
fn load_or_random(path: &std::path::Path) -> Result<crate::pretrained::weights::LoadedModel> {
    let s = path.to_string_lossy();
    let Some(name) = s.strip_prefix("random:") else {
        return crate::pretrained::source::load_model(path);
    };
    let p = crate::lang::preset::preset(name).ok_or_else(|| anyhow!("unknown preset `{name}`"))?;
    let c = crate::pretrained::weights::ModelConfig {
        architecture: "llama".into(),
        vocab_size: p.vocab_size,
        hidden_size: p.hidden_size,
        intermediate_size: p.intermediate_size,
        num_layers: p.num_layers,
        num_heads: p.num_heads,
        num_kv_heads: p.num_kv_heads,
        head_dim: p.head_dim,
        rope_theta: 10_000.0,
        rope_scaling: Default::default(),
        rms_norm_eps: 1e-5,
        max_position_embeddings: 8192,
        tie_word_embeddings: true,
        bos_token_id: None,
        eos_token_id: 0,
        arch: Default::default(),
        dtype: Default::default(),
    };
    Ok(crate::model::LlamaConfig::new(c).random_loaded())
}

pub fn cmd_bench(args: &BenchArgs) -> Result<()> {
    if args.scheme.is_empty() {
        return Err(anyhow!("--scheme <spec file> is required"));
    }
    let program = crate::lang::load(&args.scheme).map_err(|d| anyhow!("{}", d.render(false)))?;
    let (instance, run) = pick_instance(&program, args.run.as_deref()).context("choosing the run to bench")?;
    let kind: BackendKind = args.backend.parse()?;
    dispatch(kind, BenchTask { args, instance, run })?
}
