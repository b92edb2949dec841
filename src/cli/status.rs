//! `peftc status [runs/]`: where each planned run of a sweep stands —
//! complete, training (owner, heartbeat age, epoch and step), stale (its
//! worker went silent), interrupted (checkpointed, no worker), diverged,
//! failed or not started. Exit 0 when every run is complete, 1 while any is
//! unfinished, 3 when all finished but some failed or diverged.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;

use crate::runs::RunDir;
use crate::runs::lease::{self, LeaseTimes};
use crate::runs::listing::{Entries, visible};
use crate::runs::metrics::RunStatus;
use crate::runs::plan::{Plan, PlannedRun};
use crate::runs::step_log;

#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// The runs directory.
    #[arg(default_value = "runs")]
    pub runs_dir: PathBuf,
    /// The sweep's plan (default: <runs-dir>/plan.json; without one, every run found).
    #[arg(long)]
    pub plan: Option<PathBuf>,
    /// Seconds after which a silent lease counts as stale (default 300, or PEFTC_LEASE_TIMEOUT).
    #[arg(long, value_name = "SECS")]
    pub lease_timeout: Option<f64>,
}

/// Where one run stands.
#[derive(Debug, Clone, PartialEq)]
pub enum RunState {
    Complete,
    Training { owner: String, heartbeat_age: f64, epoch: usize, step: usize },
    Stale { owner: String, heartbeat_age: f64 },
    Interrupted { epoch: usize, step: usize },
    Diverged(String),
    Failed(String),
    NotStarted,
}

impl RunState {
    pub fn of(dir: &RunDir, times: &LeaseTimes) -> RunState {
        let metrics = dir.read_metrics();
        match metrics.as_ref().map(|m| &m.status) {
            Some(RunStatus::Complete) => return RunState::Complete,
            Some(RunStatus::Diverged { message, .. }) => return RunState::Diverged(message.clone()),
            Some(RunStatus::Failed { message }) => return RunState::Failed(message.clone()),
            _ => {}
        }
        let last = last_step(&dir.steps());
        if let Some(l) = lease::read(&dir.lease()) {
            let (owner, heartbeat_age) = (l.to_string(), l.age());
            if l.is_stale(times) {
                return RunState::Stale { owner, heartbeat_age };
            }
            let (epoch, step) = last.unwrap_or((1, 0));
            return RunState::Training { owner, heartbeat_age, epoch, step };
        }
        match (metrics, last) {
            (None, None) => RunState::NotStarted,
            (_, l) => {
                let (epoch, step) = l.unwrap_or((1, 0));
                RunState::Interrupted { epoch, step }
            }
        }
    }

    fn finished(&self) -> bool {
        matches!(self, RunState::Complete | RunState::Diverged(_) | RunState::Failed(_))
    }

    fn words(&self) -> String {
        match self {
            RunState::Complete => "complete".into(),
            RunState::Training { owner, heartbeat_age, epoch, step } => {
                format!("training   epoch {epoch} step {step}, {owner}, heartbeat {heartbeat_age:.0} s ago")
            }
            RunState::Stale { owner, heartbeat_age } => {
                format!("stale      {owner} silent for {heartbeat_age:.0} s; the next worker takes it over")
            }
            RunState::Interrupted { epoch, step } => format!("interrupted at epoch {epoch} step {step}; resumes from its checkpoint"),
            RunState::Diverged(m) => format!("diverged   {m}"),
            RunState::Failed(m) => format!("failed     {}", m.lines().next().unwrap_or("")),
            RunState::NotStarted => "not started".into(),
        }
    }
}

/// The (epoch, step) of a step log's last record, reading only its tail.
fn last_step(path: &Path) -> Option<(usize, usize)> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(4096))).ok()?;
    let mut tail = String::new();
    f.read_to_string(&mut tail).ok()?;
    tail.lines().rev().find_map(|l| serde_json::from_str::<step_log::StepRecord>(l).ok()).map(|r| (r.epoch, r.step))
}

/// The planned runs, or every run directory found when there is no plan.
fn runs_of(runs_dir: &Path, plan: &Path) -> Result<Vec<PlannedRun>> {
    if plan.exists() {
        return Ok(Plan::load(plan)?.runs);
    }
    let mut out = Vec::new();
    let dirs = |p: &Path| -> Vec<PathBuf> { visible(p, Entries::Dirs).unwrap_or_default() };
    if !runs_dir.is_dir() {
        anyhow::bail!("{} is not a directory, and there is no plan {}", runs_dir.display(), plan.display());
    }
    for e in dirs(runs_dir) {
        for r in dirs(&e) {
            let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            out.push(PlannedRun { experiment: name(&e), run: name(&r) });
        }
    }
    Ok(out)
}

/// `peftc status`: prints one line per run and a summary; returns the exit code.
pub fn cmd_status(args: &StatusArgs) -> u8 {
    let times = match LeaseTimes::from_flag_or_env(args.lease_timeout) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let plan = args.plan.clone().unwrap_or_else(|| args.runs_dir.join("plan.json"));
    let runs = match runs_of(&args.runs_dir, &plan) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e:#}");
            return 1;
        }
    };
    let width = runs.iter().map(|r| r.to_string().len()).max().unwrap_or(0);
    let (mut complete, mut unfinished, mut bad) = (0, 0, 0);
    for r in &runs {
        let state = RunState::of(&RunDir::new(&args.runs_dir, &r.experiment, &r.run), &times);
        println!("{:<width$}  {}", r.to_string(), state.words());
        match state {
            RunState::Complete => complete += 1,
            s if s.finished() => bad += 1,
            _ => unfinished += 1,
        }
    }
    println!("{} runs: {complete} complete, {unfinished} unfinished, {bad} failed or diverged", runs.len());
    if unfinished > 0 {
        1
    } else if bad > 0 {
        3
    } else {
        0
    }
}
