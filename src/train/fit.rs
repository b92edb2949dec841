//! The epoch loop: training steps on the autodiff backend, evaluation on the
//! inner backend, end-of-epoch checkpoints and resumption.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use super::data::{Example, LossOn, make_batch, shuffled};
use super::loss::{nll_sums, step_gradients};
use crate::model::causal_lm::CausalLm;
use super::optim::{Optimizer, OptimizerConfig, clip_global_norm};
use super::schedule::Schedule;
use crate::runs::tensor_file::{self as st, F32Tensor};
use crate::runs::atomic::write_atomic;
use crate::model::hook::LinearHook;
use crate::lower::Adapter;
use crate::runs::metrics::{EpochMetrics, RunMetrics, RunStatus};

/// Everything about training that affects the result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub optimizer: OptimizerConfig,
    pub schedule: Schedule,
    /// Global-norm gradient clipping threshold.
    pub grad_clip: Option<f64>,
    pub epochs: usize,
    pub batch: usize,
    pub max_len: usize,
    pub seed: u64,
    pub loss_on: LossOn,
}

/// How a training session behaves (does not affect results, but for the
/// float summation order that `workers` sets).
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Show an indicatif progress bar.
    pub progress: bool,
    /// Stop (leaving the run resumable) after this many epochs in this
    /// session, as an interruption would.
    pub stop_after_epochs: Option<usize>,
    /// Label shown on the progress bar.
    pub label: String,
    /// Batch size for evaluation (defaults to the training batch).
    pub eval_batch: Option<usize>,
    /// Micro-batches per step computed on parallel threads (0 or 1: one);
    /// see [`crate::train::backend::training_workers`].
    pub workers: usize,
}

pub const LN2: f64 = std::f64::consts::LN_2;

/// Test losses in bits per token over all predicted tokens and over the
/// completion tokens, on any backend (use the inner one: no autodiff).
pub fn evaluate<B: Backend, M: CausalLm<B> + Sync, H: LinearHook<B> + Sync>(
    model: &M,
    hook: &H,
    examples: &[Example],
    batch: usize,
    max_len: usize,
    workers: usize,
    device: &B::Device,
) -> (f64, f64) {
    // Sorted by length, in micro-batches of a batch / workers: per-token
    // losses do not depend on how right-padded sequences are grouped, and
    // similar lengths waste little on padding.
    let mut refs: Vec<&Example> = examples.iter().collect();
    refs.sort_by_key(|e| e.tokens.len());
    let micro = batch.max(1).div_ceil(workers.max(1));
    let chunks: Vec<&[&Example]> = refs.chunks(micro).collect();
    let sums = crate::train::parallel::par_map(&chunks, workers, |chunk| {
        let b = make_batch::<B>(chunk, max_len, device);
        let s = nll_sums(model, b.inputs.clone(), hook, b.targets, &[&b.mask_all, &b.mask_completion]);
        (s[0], s[1], b.n_all, b.n_completion)
    });
    let (mut sa, mut sc, mut na, mut nc) = (0f64, 0f64, 0u64, 0u64);
    for (a, c, n_a, n_c) in sums {
        sa += a;
        sc += c;
        na += n_a;
        nc += n_c;
    }
    (sa / na.max(1) as f64 / LN2, sc / nc.max(1) as f64 / LN2)
}

/// Clips the adapter's gradients to global norm `clip` and takes one
/// optimizer step with learning rate `lr`.
pub fn apply_gradients<B: AutodiffBackend>(
    adapter: &mut Adapter<B>,
    opt: &mut Optimizer<B::InnerBackend>,
    grads: Vec<Tensor<B::InnerBackend, 1>>,
    clip: Option<f64>,
    lr: f64,
) {
    let (g, _norm) = clip_global_norm(grads, clip);
    let inner: Vec<_> = adapter.params().iter().map(|p| p.clone().inner()).collect();
    let new = opt.update(inner, g, lr);
    adapter.set_params(new.into_iter().map(Tensor::from_inner).collect());
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CheckpointState {
    run_id: String,
    epoch: usize,
    step: u64,
}

fn params_map<B: Backend>(adapter: &Adapter<B>) -> BTreeMap<String, F32Tensor> {
    adapter
        .params()
        .iter()
        .zip(adapter.param_infos())
        .map(|(p, i)| {
            let data = p.to_data().convert::<f32>().to_vec::<f32>().unwrap_or_default();
            (i.name.clone(), F32Tensor { shape: i.shape.clone(), data })
        })
        .collect()
}

/// Save the adapter's trainable tensors (named as [`crate::lower::ParamInfo`]).
pub fn save_adapter<B: Backend>(adapter: &Adapter<B>, path: &Path, metadata: HashMap<String, String>) -> Result<()> {
    st::save(path, &params_map(adapter), Some(metadata))
}

/// Load trainable tensors saved by [`save_adapter`] into `adapter`.
pub fn load_adapter<B: Backend>(adapter: &mut Adapter<B>, path: &Path, device: &B::Device) -> Result<()> {
    let map = st::load(path)?;
    let mut params = Vec::new();
    for info in adapter.param_infos() {
        let t = map.get(&info.name).with_context(|| format!("{}: missing tensor `{}`", path.display(), info.name))?;
        if t.data.len() != info.numel() {
            bail!("{}: tensor `{}` has {} values, expected {}", path.display(), info.name, t.data.len(), info.numel());
        }
        params.push(Tensor::<B, 1>::from_data(TensorData::new(t.data.clone(), [t.data.len()]).convert::<B::FloatElem>(), device));
    }
    adapter.set_params(params);
    Ok(())
}

fn write_metrics(dir: &Path, m: &RunMetrics) -> Result<()> {
    write_atomic(&dir.join("metrics.json"), serde_json::to_string_pretty(m)?.as_bytes())
}

/// Train `adapter` for the remaining epochs of `cfg`, resuming from
/// `dir/checkpoint` when it holds this run's last end-of-epoch state.
/// Updates and writes `dir/metrics.json` after every epoch; on completion
/// writes `dir/adapter.safetensors`. A NaN/Inf loss ends the run with status
/// `Diverged` (returned as `Ok`); I/O problems are errors.
#[allow(clippy::too_many_arguments)]
pub fn fit<B: AutodiffBackend, M: CausalLm<B> + Sync, E: CausalLm<B::InnerBackend> + Sync>(
    model: &M,
    eval_model: &E,
    adapter: &mut Adapter<B>,
    train: &[Example],
    test: &[Example],
    cfg: &TrainConfig,
    dir: &Path,
    metrics: &mut RunMetrics,
    opts: &TrainOptions,
    device: &B::Device,
) -> Result<()> {
    let session = Instant::now();
    let wall_before = metrics.wall_seconds;
    let ckpt = dir.join("checkpoint");
    let mut opt = Optimizer::<B::InnerBackend>::new(cfg.optimizer.clone(), adapter.params().len());
    let mut start_epoch = 1;
    // Resume from the last end-of-epoch checkpoint of this very run.
    if let Ok(text) = std::fs::read_to_string(ckpt.join("state.json")) {
        let state: CheckpointState = serde_json::from_str(&text).context("reading checkpoint/state.json")?;
        let prev: Option<RunMetrics> =
            std::fs::read_to_string(dir.join("metrics.json")).ok().and_then(|t| serde_json::from_str(&t).ok());
        if let Some(prev) = prev.filter(|p| p.run_id == metrics.run_id && state.run_id == metrics.run_id && p.epochs.len() == state.epoch) {
            let mut inner = adapter.valid();
            load_adapter(&mut inner, &ckpt.join("adapter.safetensors"), device)?;
            *adapter = Adapter::from_inner(&inner);
            opt.load_state(state.step, &st::load(&ckpt.join("optimizer.safetensors"))?, device)?;
            metrics.epochs = prev.epochs;
            metrics.wall_seconds = prev.wall_seconds;
            start_epoch = state.epoch + 1;
        }
    }
    let wall_before = if start_epoch > 1 { metrics.wall_seconds } else { wall_before };
    metrics.status = RunStatus::Incomplete;
    metrics.trainable_params = adapter.num_trainable();
    write_metrics(dir, metrics)?;

    let steps_per_epoch = train.len().div_ceil(cfg.batch.max(1)) as u64;
    let total_steps = steps_per_epoch * cfg.epochs as u64;
    let eval_batch = opts.eval_batch.unwrap_or(cfg.batch);
    let mut done_this_session = 0;
    for epoch in start_epoch..=cfg.epochs {
        if opts.stop_after_epochs.is_some_and(|n| done_this_session >= n) {
            metrics.wall_seconds = wall_before + session.elapsed().as_secs_f64();
            write_metrics(dir, metrics)?;
            return Ok(());
        }
        let order = shuffled(train.len(), cfg.seed, epoch);
        let bar = if opts.progress { ProgressBar::new(steps_per_epoch) } else { ProgressBar::hidden() };
        bar.set_style(
            ProgressStyle::with_template("{prefix} epoch {msg} [{bar:24}] step {pos}/{len} ETA {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_prefix(opts.label.clone());
        let t0 = Instant::now();
        let (mut loss_sum, mut steps, mut tokens) = (0f64, 0u64, 0u64);
        for (si, chunk) in order.chunks(cfg.batch.max(1)).enumerate() {
            let exs: Vec<&Example> = chunk.iter().map(|&i| &train[i]).collect();
            let Some(step) = step_gradients(model, adapter, &exs, cfg.max_len, cfg.loss_on, opts.workers, device) else {
                continue;
            };
            let nats = step.nats;
            if !nats.is_finite() {
                bar.abandon();
                let message = format!("loss became {nats} at epoch {epoch}, step {}; the run stopped (lower the learning rate or clip gradients)", si + 1);
                metrics.status = RunStatus::Diverged { epoch, step: si + 1, message };
                metrics.wall_seconds = wall_before + session.elapsed().as_secs_f64();
                write_metrics(dir, metrics)?;
                return Ok(());
            }
            let lr = cfg.optimizer.lr * cfg.schedule.factor(opt.step, total_steps);
            apply_gradients(adapter, &mut opt, step.grads, cfg.grad_clip, lr);
            loss_sum += nats / LN2;
            steps += 1;
            tokens += step.tokens;
            let el = t0.elapsed().as_secs_f64().max(1e-9);
            bar.set_message(format!("{epoch}/{} loss {:.4} bits, {:.0} tok/s", cfg.epochs, nats / LN2, tokens as f64 / el));
            bar.inc(1);
        }
        let train_seconds = t0.elapsed().as_secs_f64();
        bar.finish_and_clear();
        let valid = adapter.valid();
        let (test_all, test_completion) = evaluate(eval_model, &valid, test, eval_batch, cfg.max_len, opts.workers, device);
        metrics.epochs.push(EpochMetrics {
            epoch,
            train_bits: loss_sum / steps.max(1) as f64,
            test_bits_all: test_all,
            test_bits_completion: test_completion,
            train_seconds,
            train_tokens: tokens,
        });
        if opts.progress {
            eprintln!(
                "{} epoch {epoch}/{}: train {:.4} bits, test {:.4} bits (completion {:.4}), {:.0} tok/s",
                opts.label,
                cfg.epochs,
                loss_sum / steps.max(1) as f64,
                test_all,
                test_completion,
                tokens as f64 / train_seconds.max(1e-9)
            );
        }
        // End-of-epoch checkpoint: adapter, optimizer state, position.
        let meta = HashMap::from([("run_id".to_string(), metrics.run_id.clone())]);
        save_adapter(&valid, &ckpt.join("adapter.safetensors"), meta)?;
        st::save(&ckpt.join("optimizer.safetensors"), &opt.state(), None)?;
        let state = CheckpointState { run_id: metrics.run_id.clone(), epoch, step: opt.step };
        write_atomic(&ckpt.join("state.json"), serde_json::to_string(&state)?.as_bytes())?;
        metrics.best = metrics.compute_best();
        metrics.wall_seconds = wall_before + session.elapsed().as_secs_f64();
        let (tt, ts) = metrics.epochs.iter().fold((0u64, 0f64), |(a, b), e| (a + e.train_tokens, b + e.train_seconds));
        metrics.train_tokens_per_s = tt as f64 / ts.max(1e-9);
        write_metrics(dir, metrics)?;
        done_this_session += 1;
    }
    let meta = HashMap::from([("run_id".to_string(), metrics.run_id.clone()), ("scheme".to_string(), metrics.scheme.clone())]);
    save_adapter(&adapter.valid(), &dir.join("adapter.safetensors"), meta)?;
    metrics.status = RunStatus::Complete;
    metrics.best = metrics.compute_best();
    metrics.wall_seconds = wall_before + session.elapsed().as_secs_f64();
    write_metrics(dir, metrics)?;
    Ok(())
}

/// A `RunMetrics` with every field empty or zero, for callers to fill.
pub fn blank_metrics(experiment: &str, run_name: &str, run_id: &str) -> RunMetrics {
    RunMetrics {
        peftc_version: env!("CARGO_PKG_VERSION").to_string(),
        experiment: experiment.to_string(),
        run_name: run_name.to_string(),
        run_id: run_id.to_string(),
        scheme: String::new(),
        args: Default::default(),
        swept: vec![],
        formula: String::new(),
        status: RunStatus::Incomplete,
        trainable_params: 0,
        loss_on: "all".to_string(),
        epochs_planned: 0,
        epochs: vec![],
        best: None,
        base: None,
        wall_seconds: 0.0,
        train_tokens_per_s: 0.0,
        backend: String::new(),
        device: String::new(),
        precision: "f32".to_string(),
        seed: 0,
        spec_hash: String::new(),
        dataset_hash: String::new(),
        model: String::new(),
        git_commit: None,
    }
}
