//! `peftc slurm SPECS`: fan a sweep out over a Slurm array job.
//!
//! Writes the frozen plan (`<runs-dir>/plan.json`), `array.sbatch` (one
//! array task per planned run, `%K` throttling, `--requeue
//! --open-mode=append --signal=B:USR1@300`; the script forwards USR1/TERM to
//! peftc and, when peftc exits 75 after checkpointing, requeues exactly its
//! own array task) and `report.sbatch` (renders the reports and the status
//! once the array is over: `--dependency=afterany:<array job>`). With
//! `--submit`, submits both with `sbatch --parsable`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::runs::atomic::write_atomic;
use crate::train::preempt::EXIT_PREEMPTED;

#[derive(Debug, Clone, Args)]
pub struct SlurmArgs {
    /// Spec files or directories.
    #[arg(required = true)]
    pub specs: Vec<PathBuf>,
    /// ndarray (CPU), cuda or tch.
    #[arg(long, default_value = "ndarray")]
    pub backend: String,
    /// Slurm partition.
    #[arg(long)]
    pub partition: Option<String>,
    /// Generic resources per task, e.g. gpu:1 (default: gpu:1 for cuda and tch, none for ndarray).
    #[arg(long)]
    pub gres: Option<String>,
    /// Time limit per task (Slurm's format, e.g. 4:00:00).
    #[arg(long)]
    pub time: Option<String>,
    /// At most this many tasks at once (the array's %K).
    #[arg(long, value_name = "K")]
    pub max_parallel: Option<usize>,
    /// Slurm account.
    #[arg(long)]
    pub account: Option<String>,
    /// CPUs per task.
    #[arg(long)]
    pub cpus_per_task: Option<usize>,
    /// Memory per task (Slurm's format, e.g. 16G).
    #[arg(long)]
    pub mem: Option<String>,
    /// Results root.
    #[arg(long, default_value = "runs")]
    pub runs_dir: PathBuf,
    /// Where the reports are rendered.
    #[arg(long, default_value = "reports")]
    pub reports_dir: PathBuf,
    /// Where the scripts and the job logs go.
    #[arg(long, default_value = "slurm")]
    pub out: PathBuf,
    /// Seconds before the time limit at which Slurm warns the task (USR1) to checkpoint.
    #[arg(long, default_value_t = 300)]
    pub signal_before: u32,
    /// Submit the array and the report job (sbatch).
    #[arg(long)]
    pub submit: bool,
}

/// Absolute, without requiring existence.
fn absolute(p: &Path) -> Result<PathBuf> {
    Ok(if p.is_absolute() { p.to_path_buf() } else { std::env::current_dir()?.join(p) })
}

/// A shell word, single-quoted.
fn sh(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn shp(p: &Path) -> String {
    sh(&p.display().to_string())
}

pub fn cmd_slurm(args: &SlurmArgs) -> Result<()> {
    let program = crate::lang::load(&args.specs).map_err(|d| anyhow::anyhow!("{}", d.render(false)))?;
    args.backend.parse::<crate::train::backend::BackendKind>().map_err(|e| anyhow::anyhow!("{e}"))?;
    if args.max_parallel == Some(0) {
        bail!("--max-parallel must be at least 1");
    }
    let specs: Vec<PathBuf> = args.specs.iter().map(|p| absolute(p)).collect::<Result<_>>()?;
    let (runs_dir, reports_dir, out) = (absolute(&args.runs_dir)?, absolute(&args.reports_dir)?, absolute(&args.out)?);
    let plan_path = runs_dir.join("plan.json");
    let plan = super::run::plan_of(&program, &specs)?.freeze(&plan_path)?;
    let n = plan.runs.len();
    if n == 0 {
        bail!("the specs plan no runs");
    }
    let exe = std::env::current_exe().context("locating the peftc executable")?;
    let cwd = std::env::current_dir()?;
    let gres = args.gres.clone().or_else(|| (args.backend != "ndarray").then(|| "gpu:1".to_string()));
    let logs = out.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let name = program.experiments.iter().map(|e| e.name.as_str()).collect::<Vec<_>>().join("+");

    let mut common = String::new();
    for (k, v) in [
        ("partition", args.partition.clone()),
        ("account", args.account.clone()),
        ("time", args.time.clone()),
        ("cpus-per-task", args.cpus_per_task.map(|c| c.to_string())),
        ("mem", args.mem.clone()),
    ] {
        if let Some(v) = v {
            writeln!(common, "#SBATCH --{k}={v}")?;
        }
    }
    writeln!(common, "#SBATCH --chdir={}", cwd.display())?;

    let throttle = args.max_parallel.map(|k| format!("%{k}")).unwrap_or_default();
    let spec_words = specs.iter().map(|p| shp(p)).collect::<Vec<_>>().join(" ");
    let mut array = String::new();
    writeln!(array, "#!/bin/bash")?;
    writeln!(array, "# Written by `peftc slurm`: one array task per planned run of {} (plan {}).", name, plan_path.display())?;
    writeln!(array, "#SBATCH --job-name=peftc-{name}")?;
    writeln!(array, "#SBATCH --array=0-{}{throttle}", n - 1)?;
    writeln!(array, "#SBATCH --requeue")?;
    writeln!(array, "#SBATCH --open-mode=append")?;
    writeln!(array, "#SBATCH --signal=B:USR1@{}", args.signal_before)?;
    writeln!(array, "#SBATCH --output={}/%A_%a.out", logs.display())?;
    if let Some(g) = &gres {
        writeln!(array, "#SBATCH --gres={g}")?;
    }
    array.push_str(&common);
    write!(
        array,
        r#"
echo "peftc: task ${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}} on $(hostname) (restart ${{SLURM_RESTART_COUNT:-0}}) at $(date -Is)"
{exe} run {spec_words} --backend {backend} --runs-dir {runs} --plan {plan} --shard "${{SLURM_ARRAY_TASK_ID}}/{n}" --quiet &
pid=$!
# Slurm signals this script (B:): forward to peftc, which checkpoints after
# its current step and exits {pre}.
trap 'kill -USR1 "$pid" 2>/dev/null' USR1
trap 'kill -TERM "$pid" 2>/dev/null' TERM
while :; do
  wait "$pid"; rc=$?
  # A trapped signal interrupts `wait` (rc > 128) while peftc still runs.
  if [ "$rc" -gt 128 ] && kill -0 "$pid" 2>/dev/null; then continue; fi
  break
done
echo "peftc: exit $rc at $(date -Is)"
if [ "$rc" -eq {pre} ]; then
  # Requeue exactly this array task (SLURM_JOB_ID would requeue the whole array).
  scontrol requeue "${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}}"
fi
exit "$rc"
"#,
        exe = shp(&exe),
        backend = sh(&args.backend),
        runs = shp(&runs_dir),
        plan = shp(&plan_path),
        pre = EXIT_PREEMPTED,
    )?;

    let mut report = String::new();
    writeln!(report, "#!/bin/bash")?;
    writeln!(
        report,
        "# Written by `peftc slurm`: the reports of {name}, once the array job is over (submit with --dependency=afterany:<array job id>)."
    )?;
    writeln!(report, "#SBATCH --job-name=peftc-{name}-report")?;
    writeln!(report, "#SBATCH --output={}/report_%j.out", logs.display())?;
    report.push_str(&common);
    write!(
        report,
        r#"
# A requeued array task satisfies `afterany` while it waits to run again:
# render only once no task of the array is left in the queue.
if [ -n "${{PEFTC_ARRAY_JOB:-}}" ]; then
  while [ -n "$(squeue -h -j "$PEFTC_ARRAY_JOB" 2>/dev/null)" ]; do sleep 5; done
fi
{exe} report {runs} -o {reports} --plan {plan}
rc=$?
{exe} status {runs} --plan {plan}
exit "$rc"
"#,
        exe = shp(&exe),
        runs = shp(&runs_dir),
        reports = shp(&reports_dir),
        plan = shp(&plan_path),
    )?;
    let (array_path, report_path) = (out.join("array.sbatch"), out.join("report.sbatch"));
    write_atomic(&array_path, array.as_bytes())?;
    write_atomic(&report_path, report.as_bytes())?;
    println!("plan:   {} ({n} runs)", plan_path.display());
    println!("array:  {}", array_path.display());
    println!("report: {}", report_path.display());
    if !args.submit {
        println!(
            "submit: jobid=$(sbatch --parsable {}) && sbatch --dependency=afterany:$jobid --export=ALL,PEFTC_ARRAY_JOB=$jobid {}",
            array_path.display(),
            report_path.display()
        );
        return Ok(());
    }
    let job = sbatch(&[array_path.as_os_str().to_string_lossy().as_ref()])?;
    println!("submitted array job {job} ({n} tasks)");
    let dep = format!("--dependency=afterany:{job}");
    let export = format!("--export=ALL,PEFTC_ARRAY_JOB={job}");
    let rjob = sbatch(&[dep.as_str(), export.as_str(), report_path.as_os_str().to_string_lossy().as_ref()])?;
    println!("submitted report job {rjob} (after {job})");
    println!("follow with: peftc status {}", runs_dir.display());
    Ok(())
}

/// `sbatch --parsable ARGS`: the job id (`123` or `123;cluster`).
fn sbatch(args: &[&str]) -> Result<String> {
    let out = Command::new("sbatch").arg("--parsable").args(args).output().context("running sbatch (is Slurm installed?)")?;
    if !out.status.success() {
        bail!("sbatch {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    parse_job_id(&String::from_utf8_lossy(&out.stdout)).with_context(|| format!("sbatch {} printed no job id", args.join(" ")))
}

/// The job id of `sbatch --parsable` output.
pub fn parse_job_id(text: &str) -> Option<String> {
    let id = text.trim().lines().last()?.split(';').next()?.trim();
    (!id.is_empty() && id.chars().all(|c| c.is_ascii_digit())).then(|| id.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn parsable_job_ids() {
        assert_eq!(super::parse_job_id("1234\n").as_deref(), Some("1234"));
        assert_eq!(super::parse_job_id("77;cluster\n").as_deref(), Some("77"));
        assert_eq!(super::parse_job_id("Submitted batch job 5"), None);
        assert_eq!(super::parse_job_id(""), None);
    }
}
