//! `peftc bench`: training throughput of one scheme on one backend.
//!
//! Times full training steps (forward, backward, clipping, AdamW update) on
//! a batch of `batch × seq` real tokens (no padding) and reports tokens/s and
//! an MFU estimate.
//!
//! FLOP model (per trained token): `4·P + 12·L·s·d`, where `P` is the weights
//! of every matmul the token goes through (all target linears of every layer
//! plus the output head), `L` the layers, `s` the sequence length and `d` the
//! model width. `4·P` is the forward (2P) plus the backward to the
//! activations (2P); frozen weights need no weight gradient. Attention scores
//! and their use cost `4·s·d` per layer forward and twice that backward
//! (no causal halving). Adapter FLOPs are left out (< 1 % for LoRA r 8).
//! Peak: `--peak-tflops`, or for the CPU `cores × clock × 32` f32 FLOP/cycle
//! (two 8-wide FMA units, AVX2), for CUDA 67 TFLOP/s (H100 SXM f32) or, with
//! `--precision bf16`, 989 TFLOP/s (H100 SXM dense bf16).

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
use crate::train::fit::apply_gradients;
use crate::train::loss::step_gradients;
use crate::train::optim::{Optimizer, OptimizerConfig, OptimizerKind};

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// GGUF file or HF model directory, or `random:<preset>` (e.g.
    /// `random:smollm2-135m`) for random weights of a preset's shapes.
    #[arg(long)]
    pub model: PathBuf,
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
    /// Timed steps (after one warm-up step).
    #[arg(long, default_value_t = 3)]
    pub steps: usize,
    /// Peak throughput for MFU, TFLOP/s.
    #[arg(long)]
    pub peak_tflops: Option<f64>,
    /// Also time evaluation (forward only, no autodiff).
    #[arg(long)]
    pub eval: bool,
    /// `f32`, or `bf16`: a bf16 base model with f32 adapters and loss (GPU
    /// backends and tch; see `crate::model::precision`).
    #[arg(long, default_value = "f32")]
    pub precision: String,
}

fn pick_instance(program: &ir::Program, name: Option<&str>) -> Result<ir::SchemeInstance> {
    let runs = program.experiments.iter().flat_map(|e| e.runs.iter());
    if let Some(n) = name {
        if let Some(r) = program.experiments.iter().flat_map(|e| e.runs.iter()).find(|r| r.name == n) {
            return Ok(r.instance.clone());
        }
        return program.schemes.iter().find(|s| s.name == n).cloned().ok_or_else(|| anyhow!("no run or scheme named `{n}`"));
    }
    if let Some(r) = runs.into_iter().next() {
        return Ok(r.instance.clone());
    }
    program.schemes.first().cloned().ok_or_else(|| anyhow!("the spec has no scheme"))
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
}

impl BackendTask for BenchTask<'_> {
    type Output = Result<()>;
    fn run<B: AutodiffBackend>(self, device: B::Device, backend: &str, device_name: &str) -> Result<()> {
        let a = self.args;
        let loaded = load_or_random(&a.model)?;
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
        // Deterministic real tokens, no padding.
        let examples: Vec<Example> = (0..a.batch)
            .map(|b| Example { tokens: (0..a.seq + 1).map(|i| ((i * 7919 + b * 104729) % c.vocab_size) as u32).collect(), prompt_len: 1 })
            .collect();
        let refs: Vec<&Example> = examples.iter().collect();
        let workers = crate::train::backend::training_workers(backend);
        let tokens = (a.batch * a.seq) as f64;
        let mut step = |adapter: &mut Adapter<B>| {
            let step =
                step_gradients(&model, &*adapter, &refs, a.seq + 1, LossOn::All, workers, &device).expect("bench batches have targets");
            apply_gradients(adapter, &mut opt, step.grads, Some(1.0), 1e-4);
        };
        eprintln!(
            "bench: {} on {backend} ({device_name}), batch {} × seq {}, {} trainable params",
            program.scheme,
            a.batch,
            a.seq,
            adapter.num_trainable()
        );
        let t = Instant::now();
        step(&mut adapter);
        eprintln!("warm-up step: {:.2} s", t.elapsed().as_secs_f64());
        let t = Instant::now();
        for _ in 0..a.steps {
            step(&mut adapter);
        }
        // Make sure queued GPU work is done before stopping the clock.
        let _ = adapter.params()[0].clone().sum().into_scalar();
        let secs = t.elapsed().as_secs_f64();
        let tps = tokens * a.steps as f64 / secs;
        let p: f64 = CausalLm::num_params(&model) as f64 + if c.tie_word_embeddings { 0.0 } else { (c.vocab_size * c.hidden_size) as f64 };
        let p_matmul = p; // targets + output head (the embedding lookup is no matmul; its size stands for the head)
        let flops_per_token = 4.0 * p_matmul + 12.0 * (c.num_layers * a.seq * c.hidden_size) as f64;
        let on_cpu = backend == "ndarray" || device_name.to_lowercase().starts_with("cpu");
        let peak = a.peak_tflops.unwrap_or(match (on_cpu, bf16) {
            (true, _) => cpu_peak_tflops(),
            (false, false) => 67.0,
            (false, true) => 989.0,
        });
        let achieved = tps * flops_per_token / 1e12;
        println!("backend      {backend} ({device_name}), {}", if bf16 { "bf16 base, f32 adapters and loss" } else { "f32" });
        println!("scheme       {} ({} trainable parameters)", program.scheme, adapter.num_trainable());
        println!("batch        {} × {} = {} real tokens per step", a.batch, a.seq, a.batch * a.seq);
        println!("step time    {:.3} s (mean of {})", secs / a.steps as f64, a.steps);
        println!("throughput   {tps:.1} training tokens/s");
        println!("FLOP/token   {:.3e} (4·P + 12·L·s·d, P = {:.1}M matmul weights)", flops_per_token, p_matmul / 1e6);
        println!("achieved     {achieved:.3} TFLOP/s");
        println!("MFU          {:.1} % of {peak:.3} TFLOP/s peak", 100.0 * achieved / peak);
        if a.eval {
            let valid = adapter.valid();
            let eval_model = model.valid();
            let t = Instant::now();
            let plan = EvalPlan { batch: a.batch, max_len: a.seq + 1, workers };
            let _ = evaluate(&eval_model, &valid, &examples, plan, &device, |_, _| {});
            println!("eval         {:.1} tokens/s (forward only)", tokens / t.elapsed().as_secs_f64());
        }
        Ok(())
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
        rms_norm_eps: 1e-5,
        max_position_embeddings: 8192,
        tie_word_embeddings: true,
        bos_token_id: None,
        eos_token_id: 0,
    };
    Ok(crate::model::LlamaConfig::new(c).random_loaded())
}

pub fn cmd_bench(args: &BenchArgs) -> Result<()> {
    if args.scheme.is_empty() {
        return Err(anyhow!("--scheme <spec file> is required"));
    }
    let program = crate::lang::load(&args.scheme).map_err(|d| anyhow!("{}", d.render(false)))?;
    let instance = pick_instance(&program, args.run.as_deref()).context("choosing the run to bench")?;
    let kind: BackendKind = args.backend.parse()?;
    dispatch(kind, BenchTask { args, instance })?
}
