//! The epoch loop: training steps on the autodiff backend, evaluation on the
//! inner backend, step checkpoints, resumption and stopping on a signal.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Result, bail};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

use super::checkpoint::{self, CheckpointState, EpochSums};
use super::evaluate::{EvalPlan, evaluate};
use super::loss::{StepPlan, step_gradients};
use super::memory;
use super::optim::{Optimizer, OptimizerConfig};
use super::progress::{EpochProgress, ProgressMode};
use super::schedule::Schedule;
use crate::data::{Example, LossOn};
use crate::lang::ir::CheckpointEvery;
use crate::lower::Adapter;
use crate::lower::adapter_file::save_adapter;
use crate::model::causal_lm::CausalLm;
use crate::runs::RunDir;
use crate::runs::metrics::{EpochMetrics, RunMetrics, RunStatus};
use crate::runs::step_log::{Position, StepLog, StepRecord};

/// Everything about training that affects the result (hashed into the run
/// id: see [`super::run_id`]).
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
    /// Named in lowercase here (`"all"`), as run ids always hashed it.
    #[serde(with = "loss_on_lowercase")]
    pub loss_on: LossOn,
}

/// [`LossOn`] by its lowercase name ([`LossOn::name`]).
mod loss_on_lowercase {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::data::LossOn;

    pub fn serialize<S: Serializer>(v: &LossOn, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<LossOn, D::Error> {
        let name = String::deserialize(d)?;
        LossOn::from_name(&name).ok_or_else(|| serde::de::Error::custom(format!("unknown loss `{name}` (all or completion)")))
    }
}

/// How a training session behaves (does not affect results, but for the
/// float summation order that `micro_tokens` sets).
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// A bar, log lines or nothing ([`ProgressMode`]).
    pub progress: ProgressMode,
    /// Stop (leaving the run resumable) after this many epochs in this
    /// session, as an interruption would.
    pub stop_after_epochs: Option<usize>,
    /// Label shown on the progress bar.
    pub label: String,
    /// Micro-batches per step computed on parallel threads (0 or 1: one);
    /// see [`super::backend::training_workers`].
    pub workers: usize,
    /// Padded tokens per micro-batch, for training and evaluation
    /// ([`super::memory::choose_micro_tokens`]); `None`: a whole batch
    /// (`batch × max_len`) at once.
    pub micro_tokens: Option<usize>,
    /// When to write step checkpoints (besides every epoch's end).
    pub checkpoint: CheckpointEvery,
    /// Set (by a SIGTERM/SIGUSR1 handler) to stop after the current step
    /// with a checkpoint: [`FitEnd::Stopped`].
    pub stop: Option<&'static AtomicBool>,
    /// Set when the run's lease was taken over: stop at once, writing nothing.
    pub abandon: Option<Arc<AtomicBool>>,
    /// Sleep this long after every step (tests slow a run down to interrupt it).
    pub step_delay_ms: Option<u64>,
}

/// What a run trains and evaluates: the model as the autodiff backend sees
/// it (training) and as its inner backend sees it (evaluation), the data,
/// and the device.
pub struct TrainInputs<'a, B: AutodiffBackend, M, E> {
    pub model: &'a M,
    pub eval_model: &'a E,
    pub train: &'a [Example],
    pub test: &'a [Example],
    pub device: &'a B::Device,
}

pub const LN2: f64 = std::f64::consts::LN_2;

/// Deterministic permutation of `0..n` for `(seed, epoch)` (Fisher–Yates).
pub fn shuffled(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    use rand::Rng;
    let mut rng = crate::lower::init::stream(seed, &format!("shuffle-{epoch}"));
    let mut idx: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng.random_range(0..=i);
        idx.swap(i, j);
    }
    idx
}

/// Clips the adapter's gradients to global norm `clip` and takes one
/// optimizer step with learning rate `lr`, on the device: a handful of
/// kernels for all the adapter's tensors, no host read.
pub fn apply_gradients<B: AutodiffBackend>(
    adapter: &mut Adapter<B>,
    opt: &mut Optimizer<B::InnerBackend>,
    grads: Vec<Tensor<B::InnerBackend, 1>>,
    clip: Option<f64>,
    lr: f64,
) {
    let inner: Vec<_> = adapter.params().iter().map(|p| p.clone().inner()).collect();
    let new = opt.update(inner, grads, lr, clip);
    adapter.set_params(new.into_iter().map(Tensor::from_inner).collect());
}

/// How a call of [`fit`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FitEnd {
    /// Trained to the end, diverged, or stopped after
    /// [`TrainOptions::stop_after_epochs`] (see the metrics' status).
    Done,
    /// Stopped by [`TrainOptions::stop`] (a preemption signal) after a
    /// step, with a checkpoint there: resumable.
    Stopped,
}

/// Train `adapter` for the rest of `cfg`, resuming from the run's newest
/// step checkpoint ([`checkpoint`]) when there is one for this run id.
/// Appends every step to `steps.jsonl` ([`crate::runs::step_log`]),
/// checkpoints as [`TrainOptions::checkpoint`] says and at each epoch's
/// end, and writes `metrics.json` after every epoch; on completion writes
/// the trained adapter. A NaN/Inf loss ends the run with status `Diverged`
/// (returned as `Ok`); I/O problems are errors.
pub fn fit<B, M, E>(
    inputs: &TrainInputs<B, M, E>,
    adapter: &mut Adapter<B>,
    cfg: &TrainConfig,
    run: &RunDir,
    metrics: &mut RunMetrics,
    opts: &TrainOptions,
) -> Result<FitEnd>
where
    B: AutodiffBackend,
    M: CausalLm<B> + Sync,
    E: CausalLm<B::InnerBackend> + Sync,
{
    let TrainInputs { model, eval_model, train, test, device } = *inputs;
    let session = Instant::now();
    let mut opt = Optimizer::<B::InnerBackend>::new(cfg.optimizer.clone(), adapter.params().len());
    let micro_tokens = opts.micro_tokens.unwrap_or(cfg.batch.max(1) * cfg.max_len);
    let (mut at, mut sums, mut run_tokens) = (Position::START, EpochSums::default(), 0);
    metrics.epochs.clear();
    metrics.wall_seconds = 0.0;
    if let Some(state) = checkpoint::resume(run, &metrics.run_id, adapter, &mut opt, device)? {
        eprintln!("{}: resuming from epoch {} step {}", opts.label, state.position.epoch, state.position.step);
        (at, sums, run_tokens) = (state.position, state.sums, state.run_tokens);
        metrics.epochs = state.epochs;
        metrics.wall_seconds = state.wall_seconds;
    }
    let wall_before = metrics.wall_seconds;
    let (mut step_log, _) = StepLog::open(&run.steps(), at)?;
    metrics.status = RunStatus::Incomplete;
    metrics.best = metrics.compute_best();
    metrics.trainable_params = adapter.num_trainable();
    metrics.micro_tokens = Some(micro_tokens);
    run.write_metrics(metrics)?;

    let steps_per_epoch = train.len().div_ceil(cfg.batch.max(1)) as u64;
    let total_steps = steps_per_epoch * cfg.epochs as u64;
    let step_plan = StepPlan { max_len: cfg.max_len, loss_on: cfg.loss_on, micro_tokens, workers: opts.workers, time_phases: false };
    let plan = EvalPlan { micro_tokens, max_len: cfg.max_len, workers: opts.workers };
    let stop_requested = || opts.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst));
    let (mut last_checkpoint, mut last_checkpoint_step) = (Instant::now(), opt.step);
    for (done_this_session, epoch) in (at.epoch..=cfg.epochs).enumerate() {
        if opts.stop_after_epochs.is_some_and(|n| done_this_session >= n) {
            metrics.wall_seconds = wall_before + session.elapsed().as_secs_f64();
            run.write_metrics(metrics)?;
            return Ok(FitEnd::Done);
        }
        let order = shuffled(train.len(), cfg.seed, epoch);
        let (skip, mut acc) = if epoch == at.epoch { (at.step, sums) } else { (0, EpochSums::default()) };
        let mut progress = EpochProgress::new(opts.progress, &opts.label, epoch, cfg.epochs, steps_per_epoch);
        let t0 = Instant::now();
        let seconds_before = acc.train_seconds;
        for (si, chunk) in order.chunks(cfg.batch.max(1)).enumerate().skip(skip) {
            if opts.abandon.as_ref().is_some_and(|a| a.load(Ordering::SeqCst)) {
                bail!("another worker took this run over (its lease went stale); stopped without writing");
            }
            let exs: Vec<&Example> = chunk.iter().map(|&i| &train[i]).collect();
            if let Some(step) = step_gradients(model, adapter, &exs, step_plan, device) {
                let nats = step.nats;
                if !nats.is_finite() {
                    progress.finish();
                    let message = format!(
                        "loss became {nats} at epoch {epoch}, step {}; the run stopped (lower the learning rate or clip gradients)",
                        si + 1
                    );
                    metrics.status = RunStatus::Diverged { epoch, step: si + 1, message };
                    metrics.wall_seconds = wall_before + session.elapsed().as_secs_f64();
                    run.write_metrics(metrics)?;
                    return Ok(FitEnd::Done);
                }
                let lr = cfg.optimizer.lr * cfg.schedule.factor(opt.step, total_steps);
                apply_gradients(adapter, &mut opt, step.grads, cfg.grad_clip, lr);
                acc.loss_bits += nats / LN2;
                acc.steps += 1;
                acc.tokens += step.tokens;
                run_tokens += step.tokens;
                step_log.append(&StepRecord { epoch, step: si + 1, tokens: run_tokens, loss_bits: nats / LN2, lr })?;
                progress.step(si as u64 + 1, nats / LN2, step.tokens, lr);
            }
            if let Some(ms) = opts.step_delay_ms {
                std::thread::sleep(std::time::Duration::from_millis(ms));
            }
            let stop = stop_requested();
            if stop || opts.checkpoint.due(opt.step - last_checkpoint_step, last_checkpoint.elapsed()) {
                acc.train_seconds = seconds_before + t0.elapsed().as_secs_f64();
                metrics.wall_seconds = wall_before + session.elapsed().as_secs_f64();
                let state = checkpoint_state(metrics, cfg, Position { epoch, step: si + 1 }, &opt, run_tokens, acc);
                checkpoint::save(run, state, &adapter.valid(), &opt)?;
                (last_checkpoint, last_checkpoint_step) = (Instant::now(), opt.step);
                if stop {
                    progress.finish();
                    eprintln!("{}: stopped by a signal at epoch {epoch} step {}, checkpointed", opts.label, si + 1);
                    run.write_metrics(metrics)?;
                    return Ok(FitEnd::Stopped);
                }
            }
        }
        let train_seconds = seconds_before + t0.elapsed().as_secs_f64();
        progress.finish();
        let valid = adapter.valid();
        let report = evaluate(eval_model, &valid, test, plan, device, |_, _| {});
        let (test_all, test_completion) = (report.bits_all(), report.bits_completion());
        let train_bits = acc.loss_bits / acc.steps.max(1) as f64;
        metrics.epochs.push(EpochMetrics {
            epoch,
            train_bits,
            test_bits_all: test_all,
            test_bits_completion: test_completion,
            train_seconds,
            train_tokens: acc.tokens,
        });
        if EpochProgress::shown(opts.progress) {
            eprintln!(
                "{} epoch {epoch}/{}: train {train_bits:.4} bits, test {test_all:.4} bits (completion {test_completion:.4}), {:.0} tok/s",
                opts.label,
                cfg.epochs,
                acc.tokens as f64 / train_seconds.max(1e-9)
            );
        }
        metrics.best = metrics.compute_best();
        metrics.wall_seconds = wall_before + session.elapsed().as_secs_f64();
        let state = checkpoint_state(metrics, cfg, Position { epoch: epoch + 1, step: 0 }, &opt, run_tokens, EpochSums::default());
        checkpoint::save(run, state, &valid, &opt)?;
        (last_checkpoint, last_checkpoint_step) = (Instant::now(), opt.step);
        let (tt, ts) = metrics.epochs.iter().fold((0u64, 0f64), |(a, b), e| (a + e.train_tokens, b + e.train_seconds));
        metrics.train_tokens_per_s = tt as f64 / ts.max(1e-9);
        metrics.peak_rss_bytes = metrics.peak_rss_bytes.max(memory::peak_rss_bytes());
        run.write_metrics(metrics)?;
        if epoch < cfg.epochs && stop_requested() {
            eprintln!("{}: stopped by a signal after epoch {epoch}, checkpointed", opts.label);
            return Ok(FitEnd::Stopped);
        }
    }
    let meta = HashMap::from([("run_id".to_string(), metrics.run_id.clone()), ("scheme".to_string(), metrics.scheme.clone())]);
    save_adapter(&adapter.valid(), &run.adapter(), meta)?;
    metrics.status = RunStatus::Complete;
    metrics.best = metrics.compute_best();
    metrics.wall_seconds = wall_before + session.elapsed().as_secs_f64();
    run.write_metrics(metrics)?;
    Ok(FitEnd::Done)
}

/// The checkpoint of `metrics`' run at `at`.
fn checkpoint_state<B: Backend>(
    metrics: &RunMetrics,
    cfg: &TrainConfig,
    at: Position,
    opt: &Optimizer<B>,
    run_tokens: u64,
    sums: EpochSums,
) -> CheckpointState {
    CheckpointState {
        version: 1,
        run_id: metrics.run_id.clone(),
        position: at,
        optimizer_step: opt.step,
        seed: cfg.seed,
        run_tokens,
        sums,
        epochs: metrics.epochs.clone(),
        wall_seconds: metrics.wall_seconds,
        files: Default::default(),
    }
}
