//! The epoch loop: training steps on the autodiff backend, evaluation on the
//! inner backend, end-of-epoch checkpoints and resumption.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::Result;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

use super::checkpoint;
use super::evaluate::{EvalPlan, evaluate};
use super::loss::{StepPlan, step_gradients};
use super::memory;
use super::optim::{Optimizer, OptimizerConfig};
use super::progress::{EpochProgress, ProgressMode};
use super::schedule::Schedule;
use crate::data::{Example, LossOn};
use crate::lower::Adapter;
use crate::lower::adapter_file::save_adapter;
use crate::model::causal_lm::CausalLm;
use crate::runs::RunDir;
use crate::runs::metrics::{EpochMetrics, RunMetrics, RunStatus};
use crate::runs::step_log::{StepLog, StepRecord};

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

/// Train `adapter` for the remaining epochs of `cfg`, resuming from the
/// run's checkpoint when it holds this run's last end-of-epoch state.
/// Appends every step to `steps.jsonl` ([`crate::runs::step_log`]) and
/// updates and writes `metrics.json` after every epoch; on completion
/// writes the trained adapter. A NaN/Inf loss ends the run with status
/// `Diverged` (returned as `Ok`); I/O problems are errors.
pub fn fit<B, M, E>(
    inputs: &TrainInputs<B, M, E>,
    adapter: &mut Adapter<B>,
    cfg: &TrainConfig,
    run: &RunDir,
    metrics: &mut RunMetrics,
    opts: &TrainOptions,
) -> Result<()>
where
    B: AutodiffBackend,
    M: CausalLm<B> + Sync,
    E: CausalLm<B::InnerBackend> + Sync,
{
    let TrainInputs { model, eval_model, train, test, device } = *inputs;
    let session = Instant::now();
    let mut wall_before = metrics.wall_seconds;
    let mut opt = Optimizer::<B::InnerBackend>::new(cfg.optimizer.clone(), adapter.params().len());
    let micro_tokens = opts.micro_tokens.unwrap_or(cfg.batch.max(1) * cfg.max_len);
    let mut start_epoch = 1;
    if let Some(prev) = checkpoint::resume(run, &metrics.run_id, adapter, &mut opt, device)? {
        start_epoch = prev.epochs.len() + 1;
        metrics.epochs = prev.epochs;
        metrics.wall_seconds = prev.wall_seconds;
        wall_before = metrics.wall_seconds;
    }
    let (mut step_log, mut run_tokens) = StepLog::open(&run.steps(), start_epoch)?;
    metrics.status = RunStatus::Incomplete;
    metrics.trainable_params = adapter.num_trainable();
    metrics.micro_tokens = Some(micro_tokens);
    run.write_metrics(metrics)?;

    let steps_per_epoch = train.len().div_ceil(cfg.batch.max(1)) as u64;
    let total_steps = steps_per_epoch * cfg.epochs as u64;
    let step_plan = StepPlan { max_len: cfg.max_len, loss_on: cfg.loss_on, micro_tokens, workers: opts.workers, time_phases: false };
    let plan = EvalPlan { micro_tokens, max_len: cfg.max_len, workers: opts.workers };
    let mut done_this_session = 0;
    for epoch in start_epoch..=cfg.epochs {
        if opts.stop_after_epochs.is_some_and(|n| done_this_session >= n) {
            metrics.wall_seconds = wall_before + session.elapsed().as_secs_f64();
            run.write_metrics(metrics)?;
            return Ok(());
        }
        let order = shuffled(train.len(), cfg.seed, epoch);
        let mut progress = EpochProgress::new(opts.progress, &opts.label, epoch, cfg.epochs, steps_per_epoch);
        let t0 = Instant::now();
        let (mut loss_sum, mut steps, mut tokens) = (0f64, 0u64, 0u64);
        for (si, chunk) in order.chunks(cfg.batch.max(1)).enumerate() {
            let exs: Vec<&Example> = chunk.iter().map(|&i| &train[i]).collect();
            let Some(step) = step_gradients(model, adapter, &exs, step_plan, device) else {
                continue;
            };
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
                return Ok(());
            }
            let lr = cfg.optimizer.lr * cfg.schedule.factor(opt.step, total_steps);
            apply_gradients(adapter, &mut opt, step.grads, cfg.grad_clip, lr);
            loss_sum += nats / LN2;
            steps += 1;
            tokens += step.tokens;
            run_tokens += step.tokens;
            step_log.append(&StepRecord { epoch, step: si + 1, tokens: run_tokens, loss_bits: nats / LN2, lr })?;
            progress.step(si as u64 + 1, nats / LN2, step.tokens, lr);
        }
        let train_seconds = t0.elapsed().as_secs_f64();
        progress.finish();
        let valid = adapter.valid();
        let report = evaluate(eval_model, &valid, test, plan, device, |_, _| {});
        let (test_all, test_completion) = (report.bits_all(), report.bits_completion());
        metrics.epochs.push(EpochMetrics {
            epoch,
            train_bits: loss_sum / steps.max(1) as f64,
            test_bits_all: test_all,
            test_bits_completion: test_completion,
            train_seconds,
            train_tokens: tokens,
        });
        if EpochProgress::shown(opts.progress) {
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
        checkpoint::save(run, &metrics.run_id, epoch, &valid, &opt)?;
        metrics.best = metrics.compute_best();
        metrics.wall_seconds = wall_before + session.elapsed().as_secs_f64();
        let (tt, ts) = metrics.epochs.iter().fold((0u64, 0f64), |(a, b), e| (a + e.train_tokens, b + e.train_seconds));
        metrics.train_tokens_per_s = tt as f64 / ts.max(1e-9);
        metrics.peak_rss_bytes = metrics.peak_rss_bytes.max(memory::peak_rss_bytes());
        run.write_metrics(metrics)?;
        done_this_session += 1;
    }
    let meta = HashMap::from([("run_id".to_string(), metrics.run_id.clone()), ("scheme".to_string(), metrics.scheme.clone())]);
    save_adapter(&adapter.valid(), &run.adapter(), meta)?;
    metrics.status = RunStatus::Complete;
    metrics.best = metrics.compute_best();
    metrics.wall_seconds = wall_before + session.elapsed().as_secs_f64();
    run.write_metrics(metrics)?;
    Ok(())
}
