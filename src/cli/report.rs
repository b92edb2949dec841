//! `peftc report <runs|experiment> -o <dir>`: render Markdown + self-contained
//! HTML comparison reports from recorded runs.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// A runs directory (one report per experiment in it) or one experiment's directory.
    pub path: PathBuf,
    /// Output folder for `<experiment>.md`, `<experiment>.html` and `<experiment>/*.svg`.
    #[arg(short, long, default_value = "reports")]
    pub out: PathBuf,
    /// A sweep's plan (`runs/plan.json`): report every planned experiment,
    /// listing the planned runs that are absent (`path` is the runs directory).
    #[arg(long)]
    pub plan: Option<PathBuf>,
}

pub fn cmd_report(args: &ReportArgs) -> Result<()> {
    let Some(plan) = &args.plan else {
        for p in crate::report::render_path(&args.path, &args.out)? {
            println!("{}", p.display());
        }
        return Ok(());
    };
    let plan = crate::runs::plan::Plan::load(plan)?;
    let mut experiments: Vec<&str> = plan.runs.iter().map(|r| r.experiment.as_str()).collect();
    experiments.dedup();
    let mut absent = Vec::new();
    for e in experiments {
        let planned: Vec<String> = plan.runs.iter().filter(|r| r.experiment == e).map(|r| r.run.clone()).collect();
        for r in &planned {
            if !crate::runs::RunDir::new(&args.path, e, r).has_metrics() {
                absent.push(format!("{e}/{r}"));
            }
        }
        for p in crate::report::render_experiment_with_plan(&args.path, e, &planned, &args.out)? {
            println!("{}", p.display());
        }
    }
    if absent.is_empty() {
        eprintln!("every planned run ({}) has results", plan.runs.len());
    } else {
        eprintln!("{} of {} planned runs absent: {}", absent.len(), plan.runs.len(), absent.join(", "));
    }
    Ok(())
}
