//! A training session: every run of every experiment of a checked program,
//! on one backend.
//!
//! Each run lives in a [`RunDir`] (`runs/<experiment>/<run>/`). Its id
//! ([`crate::train::run_id`]) hashes everything that affects the result, so a
//! complete run with the same id is skipped and an incomplete one resumes
//! from its last step checkpoint. Each run is trained under its lease
//! ([`crate::runs::lease`]), so workers sharing a runs directory never train
//! one run twice. A failed or diverged run does not stop the others; a
//! preemption signal stops the session after a checkpoint.

use std::cell::OnceCell;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, anyhow};
use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;

use super::evaluate::{EvalPlan, evaluate};
use super::fit::{FitEnd, TrainConfig, TrainInputs, TrainOptions, fit};
use super::memory;
use super::progress::ProgressMode;
use super::schedule::Schedule;
use crate::data::{Example, gsm8k};
use crate::lang::ir;
use crate::lower::{Adapter, from_lang};
use crate::model::Llama;
use crate::model::hook::NoAdapter;
use crate::pretrained::tokenizer::Tokenizer;
use crate::pretrained::weights::CheckpointDtype;
use crate::pretrained::weights::LoadedModel;
use crate::runs::RunDir;
use crate::runs::lease::{Acquired, Lease, LeaseTimes};
use crate::runs::metrics::{BaseLoss, RunMetrics, RunStatus};
use crate::runs::study::{PlannedRun, Study};
use crate::train::run_id::{self, RunIdentity};

/// The backend a session computes on, as [`super::backend::dispatch`] hands it over.
pub struct Compute<B: AutodiffBackend> {
    pub device: B::Device,
    /// `ndarray`, `cuda` or `tch`.
    pub backend: String,
    /// The device in words (recorded in `metrics.json`).
    pub device_name: String,
    /// Data-parallel micro-batches per step ([`super::backend::training_workers`]).
    pub workers: usize,
}

impl<B: AutodiffBackend> Compute<B> {
    pub fn new(device: B::Device, backend: &str, device_name: &str) -> Self {
        Compute {
            device,
            backend: backend.to_string(),
            device_name: device_name.to_string(),
            workers: super::backend::training_workers(backend),
        }
    }
}

/// What the caller of a session chooses (none of it changes results).
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// The results root (`runs/`).
    pub runs_dir: PathBuf,
    /// Only runs whose name contains this.
    pub only: Option<String>,
    /// No progress bars: plain progress lines instead.
    pub quiet: bool,
    /// Memory the session may use in all, in bytes (default: what the
    /// machine or cgroup has available when a run starts).
    pub max_memory: Option<u64>,
    /// Only these (experiment, run) pairs: a shard of a sweep's plan.
    pub select: Option<BTreeSet<(String, String)>>,
    /// How long another worker's lease stays fresh.
    pub lease: LeaseTimes,
    /// The preemption flag ([`super::preempt::install`]).
    pub stop: Option<&'static AtomicBool>,
    /// Sleep after every step, in ms (`PEFTC_TEST_STEP_DELAY_MS`: tests slow
    /// a run down to interrupt it).
    pub step_delay_ms: Option<u64>,
}

impl SessionOptions {
    /// Defaults for `runs_dir`: every run, progress bars, no memory cap,
    /// the default lease timeout, no stop flag.
    pub fn new(runs_dir: PathBuf) -> Self {
        SessionOptions {
            runs_dir,
            only: None,
            quiet: false,
            max_memory: None,
            select: None,
            lease: LeaseTimes::default(),
            stop: None,
            step_delay_ms: None,
        }
    }

    fn selects(&self, experiment: &str, run: &str) -> bool {
        self.only.as_ref().is_none_or(|o| run.contains(o.as_str()))
            && self.select.as_ref().is_none_or(|s| s.contains(&(experiment.to_string(), run.to_string())))
    }
}

/// What a session did, beyond the runs' own records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionOutcome {
    /// Runs that failed or diverged.
    pub failures: usize,
    /// Runs skipped because another worker holds their lease.
    pub busy: usize,
    /// A preemption signal stopped the session (the run it was training is checkpointed).
    pub stopped: bool,
}

/// Everything the runs of one experiment share: the base model (for
/// training and, on the inner backend, for evaluation), the tokenized data,
/// the hashes that enter every run id, and the base model's test loss
/// (computed once, when a run first needs it).
pub struct ExperimentContext<'a, B: AutodiffBackend> {
    pub experiment: &'a ir::Experiment,
    pub compute: &'a Compute<B>,
    pub model_path: PathBuf,
    pub model: Llama<B>,
    pub eval_model: Llama<B::InnerBackend>,
    pub train: Vec<Example>,
    pub test: Vec<Example>,
    pub hashes: ExperimentHashes,
    base: OnceCell<BaseLoss>,
}

impl<'a, B: AutodiffBackend> ExperimentContext<'a, B> {
    /// Load the experiment's model, tokenizer and data.
    pub fn load(e: &'a ir::Experiment, compute: &'a Compute<B>) -> Result<Self> {
        let ExperimentData { model_path, loaded, train, test, hashes } = ExperimentData::load(e)?;
        let model: Llama<B> = Llama::from_loaded(&loaded, &compute.device)?;
        drop(loaded);
        let eval_model = model.valid();
        Ok(ExperimentContext { experiment: e, compute, model_path, model, eval_model, train, test, hashes, base: OnceCell::new() })
    }

    /// The base model's test loss (all tokens, completion), computed once
    /// per session, in forward passes of `micro_tokens` padded tokens — or
    /// read from the cache under `runs_dir` ([`base_loss_cache`]), which
    /// every worker of a sweep shares.
    pub fn base_loss(&self, micro_tokens: usize, runs_dir: &Path) -> &BaseLoss {
        self.base.get_or_init(|| {
            let cache = base_loss_cache(runs_dir, &self.hashes, self.experiment.data.max_len, &self.compute.backend);
            if let Some(b) = std::fs::read_to_string(&cache).ok().and_then(|t| serde_json::from_str::<BaseLoss>(&t).ok()) {
                eprintln!(
                    "experiment {}: base model test loss {:.4} bits (completion {:.4}), cached in {}",
                    self.experiment.name,
                    b.test_bits_all,
                    b.test_bits_completion,
                    cache.display()
                );
                return b;
            }
            let t0 = std::time::Instant::now();
            let plan = EvalPlan { micro_tokens, max_len: self.experiment.data.max_len, workers: self.compute.workers };
            let r = evaluate(&self.eval_model, &NoAdapter, &self.test, plan, &self.compute.device, |_, _| {});
            let (all, completion) = (r.bits_all(), r.bits_completion());
            eprintln!(
                "experiment {}: base model test loss {all:.4} bits (completion {completion:.4}) in {:.1}s",
                self.experiment.name,
                t0.elapsed().as_secs_f64()
            );
            let b = BaseLoss { test_bits_all: all, test_bits_completion: completion };
            // The cache only saves time: failing to write it is a warning.
            let written =
                serde_json::to_vec_pretty(&b).map_err(anyhow::Error::from).and_then(|j| crate::runs::atomic::write_atomic(&cache, &j));
            if let Err(err) = written {
                eprintln!("warning: could not cache the base loss in {}: {err:#}", cache.display());
            }
            b
        })
    }
}

/// Where the base model's test loss is cached: `runs_dir/.base-loss/<key>.json`,
/// the key a hash of what the loss depends on (the model file, the tokenized
/// data, `max_len` and the backend; f32), so experiments and sweep workers
/// that share them share one computation. Hidden, so reports skip it.
pub fn base_loss_cache(runs_dir: &Path, hashes: &ExperimentHashes, max_len: usize, backend: &str) -> PathBuf {
    let key =
        format!("base-loss v1\nmodel {}\ndata {}\nmax_len {max_len}\nbackend {backend}\nprecision f32\n", hashes.model, hashes.dataset);
    runs_dir.join(".base-loss").join(format!("{}.json", &run_id::sha256_hex(key.as_bytes())[..16]))
}

/// An experiment's inputs before any Burn model exists: the loaded model
/// file, the tokenized train and test examples, and the hashes every run id
/// of the experiment holds.
pub struct ExperimentData {
    pub model_path: PathBuf,
    pub loaded: LoadedModel,
    pub train: Vec<Example>,
    pub test: Vec<Example>,
    pub hashes: ExperimentHashes,
}

impl ExperimentData {
    pub fn load(e: &ir::Experiment) -> Result<Self> {
        let model_path = model_path(e)?;
        eprintln!("experiment {}: loading {}", e.name, model_path.display());
        let loaded = crate::pretrained::source::load_model(&model_path)?;
        let tok = Tokenizer::for_model(&loaded)?;
        let framing = gsm8k::Framing::for_model(&loaded.config);
        let split = |name: &str, subset| {
            gsm8k::load_split(&e.data.dir, name, subset, tok.inner(), framing, e.data.max_len)
                .with_context(|| format!("loading the {name} split"))
        };
        let (train, test) = (split("train", e.data.train)?, split("test", e.data.test)?);
        let hashes = ExperimentHashes { model: run_id::file_hash(&model_path)?, dataset: run_id::dataset_hash(train.iter().chain(&test)) };
        Ok(ExperimentData { model_path, loaded, train, test, hashes })
    }
}

/// The trainer's settings of a checked run on `train_examples` examples.
pub fn train_config(run: &ir::Run, data: &ir::DataSpec, train_examples: usize) -> TrainConfig {
    let steps_per_epoch = train_examples.div_ceil(run.train.batch.max(1));
    let total = (steps_per_epoch * run.train.epochs) as f64;
    let warmup = match run.train.schedule.warmup {
        ir::Warmup::None => 0,
        ir::Warmup::Steps(n) => n as u64,
        ir::Warmup::Ratio(r) => (r * total).round() as u64,
    };
    TrainConfig {
        optimizer: run.train.optimizer.clone(),
        schedule: Schedule { kind: run.train.schedule.kind, warmup },
        grad_clip: run.train.grad_clip,
        epochs: run.train.epochs,
        batch: run.train.batch,
        max_len: data.max_len,
        seed: run.train.seed,
        loss_on: data.loss,
    }
}

/// What every run id of an experiment shares: the hashes of its model file
/// and of its tokenized data ([`run_id::dataset_hash`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExperimentHashes {
    pub model: String,
    pub dataset: String,
}

/// A run's id (16 hex digits) and its full hash (recorded as `spec_hash`):
/// the [`RunIdentity`] of the run's scheme instance, its trainer settings
/// `cfg` ([`train_config`]), the experiment's data settings and hashes, the
/// backend and the precision it computes in.
pub fn run_id_of(
    run: &ir::Run,
    e: &ir::Experiment,
    cfg: &TrainConfig,
    hashes: &ExperimentHashes,
    backend: &str,
    precision: &str,
) -> Result<(String, String)> {
    let inst = &run.instance;
    let identity = RunIdentity {
        peftc_major_minor: run_id::peftc_major_minor(),
        scheme_source: &inst.source,
        args: &inst.params,
        tensors: &inst.tensors,
        lets: &inst.lets,
        output: &inst.output,
        targets: &inst.targets,
        train: cfg,
        data: &e.data,
        model_hash: &hashes.model,
        dataset_hash: &hashes.dataset,
        backend,
        precision,
    };
    let hash = identity.hash()?;
    Ok((hash[..16].to_string(), hash))
}

/// Model file of an experiment.
pub fn model_path(e: &ir::Experiment) -> Result<PathBuf> {
    match &e.model {
        ir::ModelSource::Gguf(p) | ir::ModelSource::Hf(p) => {
            if !p.exists() {
                return Err(anyhow!("model {} not found; run scripts/setup.sh to fetch it", p.display()));
            }
            Ok(p.clone())
        }
        ir::ModelSource::Preset(name) => {
            Err(anyhow!("experiment `{}` names only model shapes (preset `{name}`), no weights to train", e.name))
        }
    }
}

/// Does this run compute in bf16? Only where the backend does (see
/// [`crate::model::precision`]); elsewhere a bf16 spec warns and runs f32.
/// `precision: checkpoint` (the default) keeps a bf16 checkpoint's base
/// in bf16 where the backend computes it, and is f32 otherwise.
fn computes_bf16(run: &ir::Run, backend: &str, checkpoint: CheckpointDtype) -> bool {
    let bf16 = super::backend::bf16_for(run.train.precision, backend, checkpoint);
    if run.train.precision == ir::Precision::Bf16 && !bf16 {
        eprintln!("warning: run {}: precision bf16 needs a GPU backend (cuda or tch); computing in f32 (recorded as f32)", run.name);
    }
    bf16
}

/// What the report needs of the experiment beside its runs' metrics.
pub fn study_of(e: &ir::Experiment) -> Study {
    Study {
        select: e.select,
        reference: e.reference.clone(),
        runs: e.runs.iter().map(|r| PlannedRun { name: r.name.clone(), group: r.group.clone(), config: r.config.clone() }).collect(),
    }
}

/// Train every run of every experiment of `program` (each under its
/// lease, skipping runs another worker holds), until done or stopped.
pub fn train_program<B: AutodiffBackend>(program: &ir::Program, opts: &SessionOptions, compute: &Compute<B>) -> Result<SessionOutcome> {
    let mut out = SessionOutcome::default();
    for e in &program.experiments {
        train_experiment(e, opts, compute, &mut out)?;
        if out.stopped {
            break;
        }
    }
    Ok(out)
}

fn train_experiment<B: AutodiffBackend>(
    e: &ir::Experiment,
    opts: &SessionOptions,
    compute: &Compute<B>,
    out: &mut SessionOutcome,
) -> Result<()> {
    let runs: Vec<&ir::Run> = e.runs.iter().filter(|r| opts.selects(&e.name, &r.name)).collect();
    if runs.is_empty() {
        return Ok(());
    }
    study_of(e).write(&opts.runs_dir.join(&e.name))?;
    memory::check_model_fits(&e.shapes, &e.shapes.name, super::backend::on_cpu(&compute.backend), memory::available_bytes(opts.max_memory))
        .with_context(|| format!("experiment {}", e.name))?;
    let ctx = ExperimentContext::load(e, compute)?;
    let stop_requested = || opts.stop.is_some_and(|s| s.load(Ordering::SeqCst));
    for run in runs {
        if stop_requested() {
            out.stopped = true;
            return Ok(());
        }
        let dir = RunDir::new(&opts.runs_dir, &e.name, &run.name);
        let Some(lease) = take_lease(&dir, opts, out)? else { continue };
        match train_one(&ctx, run, &dir, opts, &lease) {
            Ok((_, FitEnd::Stopped)) => {
                out.stopped = true;
                return Ok(());
            }
            Ok((m, FitEnd::Done)) => match &m.status {
                RunStatus::Complete => {
                    let b = m.best.as_ref();
                    eprintln!(
                        "run {}: complete, best test {:.4} bits (epoch {}), base {:.4}, {:.0} s",
                        run.name,
                        b.map(|b| b.bits).unwrap_or(f64::NAN),
                        b.map(|b| b.epoch).unwrap_or(0),
                        m.base.as_ref().map(|b| b.test_bits_all).unwrap_or(f64::NAN),
                        m.wall_seconds
                    );
                }
                RunStatus::Diverged { message, .. } => {
                    eprintln!("run {}: diverged: {message}", run.name);
                    out.failures += 1;
                }
                s => {
                    eprintln!("run {}: {s:?}", run.name);
                }
            },
            Err(err) => {
                eprintln!("run {}: failed: {err:#}", run.name);
                let mut m = dir.read_metrics().unwrap_or_else(|| RunMetrics::blank(&e.name, &run.name, ""));
                m.status = RunStatus::Failed { message: format!("{err:#}") };
                if lease.lost_flag().load(Ordering::SeqCst) {
                    eprintln!("run {}: not recording the failure: another worker holds the run now", run.name);
                } else if let Err(w) = dir.write_metrics(&m) {
                    eprintln!("run {}: could not record the failure: {w:#}", run.name);
                }
                out.failures += 1;
            }
        }
    }
    Ok(())
}

/// The run's lease, or `None` (counted as busy) when another worker holds it.
fn take_lease(dir: &RunDir, opts: &SessionOptions, out: &mut SessionOutcome) -> Result<Option<Lease>> {
    match Lease::acquire(&dir.lease(), opts.lease)? {
        Acquired::Held { lease, took_over } => {
            if let Some(dead) = took_over {
                eprintln!("run {}: took over the lease of {dead}, silent for {:.0} s", dir.path().display(), dead.age());
            }
            Ok(Some(lease))
        }
        Acquired::Busy(owner) => {
            let who = owner.map(|o| format!("{o}, heartbeat {:.0} s ago", o.age())).unwrap_or_else(|| "another worker".into());
            eprintln!("run {}: trained by {who}; skipped", dir.path().display());
            out.busy += 1;
            Ok(None)
        }
    }
}

/// Train one run into `dir` under `lease`, or skip it when it is already complete.
pub fn train_one<B: AutodiffBackend>(
    ctx: &ExperimentContext<B>,
    run: &ir::Run,
    dir: &RunDir,
    opts: &SessionOptions,
    lease: &Lease,
) -> Result<(RunMetrics, FitEnd)> {
    let e = ctx.experiment;
    let inst = &run.instance;
    let bf16 = computes_bf16(run, &ctx.compute.backend, ctx.model.config().dtype);
    let precision = if bf16 { "bf16" } else { "f32" };
    let cfg = train_config(run, &e.data, ctx.train.len());
    let (run_id, spec_hash) = run_id_of(run, e, &cfg, &ctx.hashes, &ctx.compute.backend, precision)?;
    // Skip a complete run with this id; start over when the id changed.
    if let Some(prev) = dir.read_metrics() {
        if prev.run_id == run_id && prev.status == RunStatus::Complete && dir.adapter().exists() {
            eprintln!("run {}: already complete ({run_id}), skipped", run.name);
            return Ok((prev, FitEnd::Done));
        }
        if prev.run_id != run_id {
            let _ = std::fs::remove_dir_all(dir.checkpoints_dir());
        }
    }
    let micro_tokens = micro_tokens(ctx, run, &cfg, opts.max_memory)?;
    let base = ctx.base_loss(micro_tokens, &opts.runs_dir).clone();
    // A bf16 run trains and evaluates a bf16 copy of the base model (the
    // base loss above stays the f32 model's).
    let low: Option<(Llama<B>, Llama<B::InnerBackend>)> = bf16.then(|| {
        let m = ctx.model.clone().with_dtype(burn::tensor::FloatDType::BF16);
        let v = m.valid();
        (m, v)
    });
    let (model, eval_model) = match &low {
        Some((m, v)) => (m, v),
        None => (&ctx.model, &ctx.eval_model),
    };
    std::fs::create_dir_all(dir.path()).with_context(|| format!("creating {}", dir.path().display()))?;
    crate::runs::atomic::write_atomic(&dir.scheme(), inst.source.as_bytes())?;
    crate::runs::atomic::write_atomic(&dir.run_json(), serde_json::to_string_pretty(run)?.as_bytes())?;

    let program = from_lang::program(inst)?;
    let sites = from_lang::sites(inst);
    let device = &ctx.compute.device;
    let mut adapter = Adapter::<B>::build(&program, &sites, &|l, t| model.base_weight(l, t), cfg.seed, device)?;

    let mut m = RunMetrics::blank(&e.name, &run.name, &run_id);
    m.scheme = inst.name.clone();
    m.args = inst.params.iter().map(|a| (a.name.clone(), serde_json::json!(a.value))).collect();
    m.swept = run.swept.clone();
    m.group = Some(run.group.clone());
    m.config = Some(run.config.clone());
    m.formula = scheme_formula(&inst.source);
    m.loss_on = cfg.loss_on.name().to_string();
    m.epochs_planned = cfg.epochs;
    m.base = Some(base);
    m.backend = ctx.compute.backend.clone();
    m.device = ctx.compute.device_name.clone();
    m.precision = precision.to_string();
    m.seed = cfg.seed;
    m.spec_hash = spec_hash;
    m.dataset_hash = ctx.hashes.dataset.clone();
    m.model = ctx.model_path.display().to_string();
    m.git_commit = git_commit();
    m.trainable_params = adapter.num_trainable();
    if m.trainable_params != inst.trainable_params {
        return Err(anyhow!("lowered {} trainable parameters but the checker counted {}", m.trainable_params, inst.trainable_params));
    }
    let train_opts = TrainOptions {
        progress: ProgressMode::for_stderr(opts.quiet),
        label: format!("{}/{}", e.name, run.name),
        workers: ctx.compute.workers,
        micro_tokens: Some(micro_tokens),
        checkpoint: run.train.checkpoint,
        stop: opts.stop,
        abandon: Some(lease.lost_flag()),
        step_delay_ms: opts.step_delay_ms,
        ..Default::default()
    };
    memory::reset_peak_rss();
    let inputs = TrainInputs { model, eval_model, train: &ctx.train, test: &ctx.test, device };
    let end = fit(&inputs, &mut adapter, &cfg, dir, &mut m, &train_opts)?;
    Ok((m, end))
}

/// The run's micro-batch budget ([`memory::choose_micro_tokens`]): the
/// spec's `micro_tokens`, or `auto` — the backend's preferred budget, made
/// smaller until the estimated training memory fits in what is available —
/// or an error saying why it cannot fit.
fn micro_tokens<B: AutodiffBackend>(
    ctx: &ExperimentContext<B>,
    run: &ir::Run,
    cfg: &TrainConfig,
    max_memory: Option<u64>,
) -> Result<usize> {
    let footprint = memory::TrainingFootprint {
        model: ctx.model.config(),
        workers: ctx.compute.workers.max(1),
        trainable: run.instance.trainable_params,
        longest: ctx.train.iter().map(|x| x.tokens.len().min(cfg.max_len)).max().unwrap_or(cfg.max_len),
    };
    let available = memory::available_bytes(max_memory);
    let on_cpu = super::backend::on_cpu(&ctx.compute.backend);
    let chosen =
        footprint.choose(run.train.micro_tokens, on_cpu, cfg.batch, cfg.max_len, available).with_context(|| format!("run {}", run.name))?;
    eprintln!(
        "run {}: micro-batches of {chosen} padded tokens on {} worker(s), about {:.1} GiB for training{}",
        run.name,
        footprint.workers,
        memory::gib(footprint.bytes(chosen)),
        available.map(|a| format!(" ({:.1} GiB available)", memory::gib(a))).unwrap_or_default()
    );
    Ok(chosen)
}

/// The scheme's declarations and output, one line each (comments dropped).
pub fn scheme_formula(source: &str) -> String {
    source
        .lines()
        .map(|l| l.split("//").next().unwrap_or("").trim())
        .filter(|l| !l.is_empty() && !l.starts_with("scheme") && *l != "}")
        .collect::<Vec<_>>()
        .join("\n")
}

fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git").args(["rev-parse", "--short", "HEAD"]).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}
