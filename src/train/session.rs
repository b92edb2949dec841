//! `peftc run <specs...>`: train every run of every experiment.
//!
//! Each run lives in `runs/<experiment>/<run>/` with `metrics.json`,
//! `adapter.safetensors`, `scheme.peft` (the scheme's source) and `run.json`
//! (the resolved run: scheme instance, train and data settings). The run id
//! hashes everything that affects the result, so a complete run with the same
//! id is skipped and an incomplete one resumes from its last end-of-epoch
//! checkpoint. A failed or diverged run does not stop the others; the exit
//! code is non-zero if any did.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::runs::atomic::write_atomic;
use crate::train::backend::{BackendKind, BackendTask, dispatch};
use crate::model::hook::NoAdapter;
use crate::lang::ir;
use crate::lower::{Adapter, from_lang};
use crate::runs::metrics::{BaseLoss, RunMetrics, RunStatus};
use crate::model::Llama;
use crate::train::{
    Example, LossOn, Schedule, ScheduleKind, TrainConfig, TrainOptions, blank_metrics, evaluate,
    fit,
};
use crate::pretrained::weights::LoadedModel;

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Spec files or directories.
    #[arg(required = true)]
    pub specs: Vec<PathBuf>,
    /// ndarray (CPU), cuda or tch.
    #[arg(long, default_value = "ndarray")]
    pub backend: String,
    /// Results root.
    #[arg(long, default_value = "runs")]
    pub runs_dir: PathBuf,
    /// Where the experiment reports are rendered.
    #[arg(long, default_value = "reports")]
    pub reports_dir: PathBuf,
    /// Only runs whose name contains this.
    #[arg(long)]
    pub only: Option<String>,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
}

/// The lowering's training settings from a checked run.
pub fn train_config(run: &ir::Run, data: &ir::DataSpec, steps_per_epoch: usize) -> TrainConfig {
    let o = &run.train.optimizer;
    let total = (steps_per_epoch * run.train.epochs) as f64;
    let warmup = match run.train.schedule.warmup {
        ir::Warmup::None => 0,
        ir::Warmup::Steps(n) => n as u64,
        ir::Warmup::Ratio(r) => (r * total).round() as u64,
    };
    TrainConfig {
        optimizer: o.clone(),
        schedule: Schedule {
            kind: match run.train.schedule.kind {
                ir::ScheduleKind::Constant => ScheduleKind::Constant,
                ir::ScheduleKind::Cosine => ScheduleKind::Cosine,
                ir::ScheduleKind::Linear => ScheduleKind::Linear,
            },
            warmup,
        },
        grad_clip: run.train.grad_clip,
        epochs: run.train.epochs,
        batch: run.train.batch,
        max_len: data.max_len,
        seed: run.train.seed,
        loss_on: match data.loss {
            ir::LossOn::All => LossOn::All,
            ir::LossOn::Completion => LossOn::Completion,
        },
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hash of a file's bytes (models, data).
pub fn file_hash(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(sha256_hex(&bytes))
}

#[derive(Serialize)]
struct RunIdentity<'a> {
    peftc_major_minor: &'a str,
    scheme_source: &'a str,
    args: &'a [ir::Arg],
    tensors: &'a [ir::TensorDecl],
    lets: &'a [ir::LetBinding],
    output: &'a ir::Output,
    targets: &'a [ir::TargetInstance],
    train: &'a TrainConfig,
    data: &'a ir::DataSpec,
    model_hash: &'a str,
    dataset_hash: &'a str,
    backend: &'a str,
    /// Only a bf16 run names its precision, so f32 runs keep the ids they
    /// had before mixed precision existed.
    #[serde(skip_serializing_if = "is_f32")]
    precision: &'a str,
}

fn is_f32(p: &&str) -> bool {
    *p == "f32"
}

/// GSM8K split as examples, tokenized like the reference (prompt then
/// answer, then eos), cut to `max_len`.
pub fn load_split(dir: &Path, split: &str, subset: ir::Subset, tok: &crate::pretrained::tokenizer::Tokenizer, eos: u32, max_len: usize) -> Result<Vec<Example>> {
    let path = crate::data::gsm8k::resolve_split(&dir.to_string_lossy(), split)?;
    let mut all = crate::data::gsm8k::read_jsonl(&path)?;
    if let ir::Subset::First(n) = subset {
        all.truncate(n);
    }
    all.iter()
        .map(|ex| {
            let mut ids = tok.encode(&ex.full_text())?;
            ids.push(eos);
            let prompt = tok.encode(&ex.prompt_text())?;
            let prompt_len = prompt.iter().zip(&ids).take_while(|(a, b)| a == b).count();
            ids.truncate(max_len);
            Ok(Example { prompt_len: prompt_len.min(ids.len()), tokens: ids })
        })
        .collect()
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
        ir::ModelSource::Preset(name) => Err(anyhow!("experiment `{}` names only model shapes (preset `{name}`), no weights to train", e.name)),
    }
}

struct RunTask<'a> {
    program: &'a ir::Program,
    args: &'a RunArgs,
}

impl BackendTask for RunTask<'_> {
    type Output = Result<usize>;
    fn run<B: AutodiffBackend>(self, device: B::Device, backend: &str, device_name: &str) -> Result<usize> {
        let mut failures = 0;
        for e in &self.program.experiments {
            failures += run_experiment::<B>(e, self.args, &device, backend, device_name)?;
        }
        Ok(failures)
    }
}

fn run_experiment<B: AutodiffBackend>(e: &ir::Experiment, args: &RunArgs, device: &B::Device, backend: &str, device_name: &str) -> Result<usize> {
    let runs: Vec<&ir::Run> = e.runs.iter().filter(|r| args.only.as_ref().is_none_or(|o| r.name.contains(o.as_str()))).collect();
    if runs.is_empty() {
        return Ok(0);
    }
    let mpath = model_path(e)?;
    eprintln!("experiment {}: loading {}", e.name, mpath.display());
    let loaded: LoadedModel = crate::pretrained::source::load_model(&mpath)?;
    let model_hash = file_hash(&mpath)?;
    let tok = crate::pretrained::tokenizer::Tokenizer::for_model(&loaded)?;
    let eos = loaded.config.eos_token_id;
    let train = load_split(&e.data.dir, "train", e.data.train, &tok, eos, e.data.max_len)?;
    let test = load_split(&e.data.dir, "test", e.data.test, &tok, eos, e.data.max_len)?;
    let dataset_hash = {
        let mut h = Sha256::new();
        for ex in train.iter().chain(&test) {
            for t in &ex.tokens {
                h.update(t.to_le_bytes());
            }
            h.update((ex.prompt_len as u64).to_le_bytes());
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    let model: Llama<B> = Llama::from_loaded(&loaded, device)?;
    drop(loaded);
    let eval_model = model.valid();
    let exp_dir = args.runs_dir.join(&e.name);
    // The base model's test loss, computed once, when a run first needs it.
    let mut base: Option<(f64, f64)> = None;
    let mut failures = 0;
    for run in runs {
        let dir = exp_dir.join(&run.name);
        match train_one::<B>(e, run, &model, &eval_model, &train, &test, &dir, &model_hash, &dataset_hash, &mut base, args, device, backend, device_name) {
            Ok(m) => match &m.status {
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
                    failures += 1;
                }
                s => {
                    eprintln!("run {}: {s:?}", run.name);
                }
            },
            Err(err) => {
                eprintln!("run {}: failed: {err:#}", run.name);
                let mut m = blank_metrics(&e.name, &run.name, "");
                if let Ok(t) = std::fs::read_to_string(dir.join("metrics.json")) {
                    if let Ok(prev) = serde_json::from_str::<RunMetrics>(&t) {
                        m = prev;
                    }
                }
                m.status = RunStatus::Failed { message: format!("{err:#}") };
                let _ = write_atomic(&dir.join("metrics.json"), serde_json::to_string_pretty(&m).unwrap_or_default().as_bytes());
                failures += 1;
            }
        }
    }
    Ok(failures)
}

#[allow(clippy::too_many_arguments)]
fn train_one<B: AutodiffBackend>(
    e: &ir::Experiment,
    run: &ir::Run,
    model: &Llama<B>,
    eval_model: &Llama<B::InnerBackend>,
    train: &[Example],
    test: &[Example],
    dir: &Path,
    model_hash: &str,
    dataset_hash: &str,
    base: &mut Option<(f64, f64)>,
    args: &RunArgs,
    device: &B::Device,
    backend: &str,
    device_name: &str,
) -> Result<RunMetrics> {
    let inst = &run.instance;
    // bf16 where the backend computes it (see `crate::model::precision`), else f32.
    let wants_bf16 = run.train.precision == ir::Precision::Bf16;
    let bf16 = wants_bf16 && crate::train::backend::computes_bf16(backend);
    if wants_bf16 && !bf16 {
        eprintln!("warning: run {}: precision bf16 needs a GPU backend (cuda or tch); computing in f32 (recorded as f32)", run.name);
    }
    let precision = if bf16 { "bf16" } else { "f32" };
    let steps_per_epoch = train.len().div_ceil(run.train.batch.max(1));
    let cfg = train_config(run, &e.data, steps_per_epoch);
    let version = env!("CARGO_PKG_VERSION");
    let major_minor = version.rsplit_once('.').map(|v| v.0).unwrap_or(version);
    let identity = RunIdentity {
        peftc_major_minor: major_minor,
        scheme_source: &inst.source,
        args: &inst.params,
        tensors: &inst.tensors,
        lets: &inst.lets,
        output: &inst.output,
        targets: &inst.targets,
        train: &cfg,
        data: &e.data,
        model_hash,
        dataset_hash,
        backend,
        precision,
    };
    let identity_json = serde_json::to_string(&identity)?;
    let run_id = sha256_hex(identity_json.as_bytes())[..16].to_string();
    // Skip a complete run with this id; start over when the id changed.
    if let Ok(t) = std::fs::read_to_string(dir.join("metrics.json")) {
        if let Ok(prev) = serde_json::from_str::<RunMetrics>(&t) {
            if prev.run_id == run_id && prev.status == RunStatus::Complete && dir.join("adapter.safetensors").exists() {
                eprintln!("run {}: already complete ({run_id}), skipped", run.name);
                return Ok(prev);
            }
            if prev.run_id != run_id {
                let _ = std::fs::remove_dir_all(dir.join("checkpoint"));
            }
        }
    }
    let workers = crate::train::backend::training_workers(backend);
    let base = *base.get_or_insert_with(|| {
        let t0 = std::time::Instant::now();
        let (all, completion) = evaluate(eval_model, &NoAdapter, test, cfg.batch.max(1), e.data.max_len, workers, device);
        eprintln!("experiment {}: base model test loss {all:.4} bits (completion {completion:.4}) in {:.1}s", e.name, t0.elapsed().as_secs_f64());
        (all, completion)
    });
    // A bf16 run trains and evaluates a bf16 copy of the base model (the
    // base loss above stays the f32 model's).
    let low: Option<(Llama<B>, Llama<B::InnerBackend>)> = bf16.then(|| {
        let m = model.clone().with_dtype(burn::tensor::FloatDType::BF16);
        let v = m.valid();
        (m, v)
    });
    let (model, eval_model) = match &low {
        Some((m, v)) => (m, v),
        None => (model, eval_model),
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    write_atomic(&dir.join("scheme.peft"), inst.source.as_bytes())?;
    write_atomic(&dir.join("run.json"), serde_json::to_string_pretty(run)?.as_bytes())?;

    let program = from_lang::program(inst)?;
    let sites = from_lang::sites(inst);
    let mut adapter = Adapter::<B>::build(&program, &sites, &|l, t| model.base_weight(l, t), cfg.seed, device)?;

    let mut m = blank_metrics(&e.name, &run.name, &run_id);
    m.scheme = inst.name.clone();
    m.args = inst.params.iter().map(|a| (a.name.clone(), serde_json::json!(a.value))).collect();
    m.swept = run.swept.clone();
    m.formula = scheme_formula(&inst.source);
    m.loss_on = cfg.loss_on.name().to_string();
    m.epochs_planned = cfg.epochs;
    m.base = Some(BaseLoss { test_bits_all: base.0, test_bits_completion: base.1 });
    m.backend = backend.to_string();
    m.device = device_name.to_string();
    m.precision = precision.to_string();
    m.seed = cfg.seed;
    m.spec_hash = sha256_hex(identity_json.as_bytes());
    m.dataset_hash = dataset_hash.to_string();
    m.model = model_path(e)?.display().to_string();
    m.git_commit = git_commit();
    m.trainable_params = adapter.num_trainable();
    if m.trainable_params != inst.trainable_params {
        return Err(anyhow!(
            "lowered {} trainable parameters but the checker counted {}",
            m.trainable_params,
            inst.trainable_params
        ));
    }
    let opts = TrainOptions {
        progress: !args.quiet,
        label: format!("{}/{}", e.name, run.name),
        eval_batch: Some(cfg.batch),
        workers,
        ..Default::default()
    };
    fit(model, eval_model, &mut adapter, train, test, &cfg, dir, &mut m, &opts, device)?;
    Ok(m)
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

/// `peftc run`: returns the process exit code.
pub fn cmd_run(args: &RunArgs) -> i32 {
    let program = match crate::lang::load(&args.specs) {
        Ok(p) => p,
        Err(d) => {
            eprint!("{}", d.render(false));
            return 1;
        }
    };
    let kind: BackendKind = match args.backend.parse() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    match dispatch(kind, RunTask { program: &program, args }) {
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
        Ok(Err(e)) => {
            eprintln!("error: {e:#}");
            1
        }
        Ok(Ok(0)) => {
            render_reports(&program, args);
            0
        }
        Ok(Ok(n)) => {
            render_reports(&program, args);
            eprintln!("error: {n} run(s) failed or diverged");
            1
        }
    }
}

/// Render each experiment's report into `reports/` (problems are reported,
/// never fatal: the runs are already saved).
fn render_reports(program: &ir::Program, args: &RunArgs) {
    for e in &program.experiments {
        let planned: Vec<String> = e.runs.iter().map(|r| r.name.clone()).collect();
        match crate::report::render_experiment_with_plan(&args.runs_dir, &e.name, &planned, &args.reports_dir) {
            Ok(files) => files.iter().for_each(|f| eprintln!("report: {}", f.display())),
            Err(err) => eprintln!("warning: report for {} not rendered: {err:#}", e.name),
        }
    }
}
