//! `peftc run <specs...>`: train every run of every experiment into
//! `runs/<experiment>/<run>/` (skipping complete runs, resuming interrupted
//! ones, leaving runs another worker holds), then render each experiment's
//! report. With `--shard I/N`, only the shard's runs of the sweep's frozen
//! plan ([`crate::runs::plan`]), and no report (the sweep renders it once).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use burn::tensor::backend::AutodiffBackend;
use clap::Args;

use crate::lang::ir;
use crate::runs::lease::LeaseTimes;
use crate::runs::plan::{Plan, PlanError, PlannedRun, Shard};
use crate::train::backend::{BackendKind, BackendTask, dispatch};
use crate::train::preempt::{self, EXIT_PREEMPTED};
use crate::train::session::{Compute, SessionOptions, SessionOutcome, train_program};

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
    /// No progress bars: a plain progress line every tenth of an epoch or
    /// minute instead (also what a non-terminal stderr gets).
    #[arg(long)]
    pub quiet: bool,
    /// Memory peftc may use, in GiB (default: what the machine or its
    /// cgroup has available); a run that would need more is refused.
    #[arg(long, value_name = "GIB")]
    pub max_memory: Option<f64>,
    /// Train shard I of N of the sweep (run k of the plan, sorted by
    /// experiment and run name, goes to shard k mod N); `/N` takes I from
    /// SLURM_ARRAY_TASK_ID. Freezes the plan on first use.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// The sweep's plan file (default: <runs-dir>/plan.json).
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// Seconds after which another worker's silent lease is taken over
    /// (default 300, or PEFTC_LEASE_TIMEOUT).
    #[arg(long, value_name = "SECS")]
    pub lease_timeout: Option<f64>,
}

impl RunArgs {
    fn plan_path(&self) -> PathBuf {
        self.plan.clone().unwrap_or_else(|| self.runs_dir.join("plan.json"))
    }
}

struct RunTask<'a> {
    program: &'a ir::Program,
    opts: SessionOptions,
}

impl BackendTask for RunTask<'_> {
    type Output = anyhow::Result<SessionOutcome>;
    fn run<B: AutodiffBackend>(self, device: B::Device, backend: &str, device_name: &str) -> anyhow::Result<SessionOutcome> {
        train_program(self.program, &self.opts, &Compute::<B>::new(device, backend, device_name))
    }
}

/// The plan of `program` read from `specs`.
pub fn plan_of(program: &ir::Program, specs: &[PathBuf]) -> Result<Plan, PlanError> {
    let runs = program
        .experiments
        .iter()
        .flat_map(|e| e.runs.iter().map(|r| PlannedRun { experiment: e.name.clone(), run: r.name.clone() }))
        .collect();
    Plan::new(&crate::lang::spec_files(specs), runs)
}

/// `peftc run`: returns the process exit code (75 when a signal stopped it).
pub fn cmd_run(args: &RunArgs) -> u8 {
    let stop = preempt::install();
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
    let lease = match LeaseTimes::from_flag_or_env(args.lease_timeout) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let select = match args.shard {
        None => None,
        Some(shard) => match shard_runs(&program, args, shard) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("error: {e}");
                return 1;
            }
        },
    };
    let opts = SessionOptions {
        only: args.only.clone(),
        quiet: args.quiet,
        max_memory: args.max_memory.map(crate::train::memory::gib_to_bytes),
        select,
        lease,
        stop: Some(stop),
        step_delay_ms: std::env::var("PEFTC_TEST_STEP_DELAY_MS").ok().and_then(|v| v.parse().ok()),
        ..SessionOptions::new(args.runs_dir.clone())
    };
    let outcome = match dispatch(kind, RunTask { program: &program, opts }) {
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
        Ok(Err(e)) => {
            eprintln!("error: {e:#}");
            return if preempt::requested() { EXIT_PREEMPTED } else { 1 };
        }
        Ok(Ok(o)) => o,
    };
    if outcome.stopped {
        eprintln!(
            "stopped by a signal: the run in progress is checkpointed and its lease released; exit {EXIT_PREEMPTED} (run again to resume)"
        );
        return EXIT_PREEMPTED;
    }
    if outcome.busy > 0 {
        eprintln!("{} run(s) left to the workers training them", outcome.busy);
    }
    if args.shard.is_none() {
        render_reports(&program, &args.runs_dir, &args.reports_dir);
    }
    if outcome.failures > 0 {
        eprintln!("error: {} run(s) failed or diverged", outcome.failures);
        return 1;
    }
    0
}

/// The runs of `shard` of the sweep's plan, freezing the plan on first use.
fn shard_runs(program: &ir::Program, args: &RunArgs, shard: Shard) -> Result<BTreeSet<(String, String)>, PlanError> {
    let plan = plan_of(program, &args.specs)?.freeze(&args.plan_path())?;
    let mine = plan.shard(shard);
    eprintln!(
        "shard {}/{}: {} of the plan's {} runs ({})",
        shard.index,
        shard.count,
        mine.len(),
        plan.runs.len(),
        mine.iter().map(|r| r.to_string()).collect::<Vec<_>>().join(", ")
    );
    Ok(mine.into_iter().map(|r| (r.experiment.clone(), r.run.clone())).collect())
}

/// Render each experiment's report into `reports/` (problems are reported,
/// never fatal: the runs are already saved).
pub fn render_reports(program: &ir::Program, runs_dir: &Path, reports_dir: &Path) {
    for e in &program.experiments {
        let planned: Vec<String> = e.runs.iter().map(|r| r.name.clone()).collect();
        match crate::report::render_experiment_with_plan(runs_dir, &e.name, &planned, reports_dir) {
            Ok(files) => files.iter().for_each(|f| eprintln!("report: {}", f.display())),
            Err(err) => eprintln!("warning: report for {} not rendered: {err:#}", e.name),
        }
    }
}
