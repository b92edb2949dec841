//! `peftc run <specs...>`: train every run of every experiment into
//! `runs/<experiment>/<run>/` (skipping complete runs, resuming interrupted
//! ones), then render each experiment's report.

use std::path::PathBuf;

use burn::tensor::backend::AutodiffBackend;
use clap::Args;

use crate::lang::ir;
use crate::train::backend::{BackendKind, BackendTask, dispatch};
use crate::train::session::{Compute, SessionOptions, train_program};

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
}

struct RunTask<'a> {
    program: &'a ir::Program,
    opts: SessionOptions,
}

impl BackendTask for RunTask<'_> {
    type Output = anyhow::Result<usize>;
    fn run<B: AutodiffBackend>(self, device: B::Device, backend: &str, device_name: &str) -> anyhow::Result<usize> {
        train_program(self.program, &self.opts, &Compute::<B>::new(device, backend, device_name))
    }
}

/// `peftc run`: returns the process exit code.
pub fn cmd_run(args: &RunArgs) -> u8 {
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
    let opts = SessionOptions {
        runs_dir: args.runs_dir.clone(),
        only: args.only.clone(),
        quiet: args.quiet,
        max_memory: args.max_memory.map(crate::train::memory::gib_to_bytes),
    };
    match dispatch(kind, RunTask { program: &program, opts }) {
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
