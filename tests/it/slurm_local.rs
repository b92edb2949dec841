//! Against a real one-node Slurm (`scripts/slurm-local.sh`, Debian's
//! slurm-wlm and munge, no systemd): a sweep of tiny runs through `peftc
//! slurm --submit` to completion with its report rendered, and a run
//! requeued mid-epoch (`scontrol requeue`) that resumes from its step
//! checkpoint to the uninterrupted losses. Without Slurm the test skips
//! loudly, except in CI (`CI` set), where it fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::support::io::manifest_dir;
use crate::support::sweep::*;

struct LocalSlurm {
    dir: tempfile::TempDir,
}

impl LocalSlurm {
    fn conf(&self) -> PathBuf {
        self.dir.path().join("slurm.conf")
    }
}

impl Drop for LocalSlurm {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(manifest_dir().join("scripts/slurm-local.sh")).arg("stop").arg(self.dir.path()).status();
    }
}

fn start_slurm() -> Option<LocalSlurm> {
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    let have =
        ["slurmctld", "slurmd", "munged", "sbatch"].iter().all(|b| Command::new("which").arg(b).output().is_ok_and(|o| o.status.success()));
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !have || !root {
        let why = if have { "not root" } else { "slurm-wlm/munge not installed" };
        assert!(!ci, "CI: the Slurm test needs root and slurm-wlm + munge ({why}); scripts/test.sh installs them");
        eprintln!("\n*** SKIPPED: the real-Slurm test ({why}); run scripts/test.sh as root, or apt-get install slurm-wlm munge ***\n");
        return None;
    }
    let dir = tempfile::Builder::new().prefix("peftc-slurm").tempdir().unwrap();
    let t0 = Instant::now();
    let out = Command::new("bash").arg(manifest_dir().join("scripts/slurm-local.sh")).arg("start").arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "starting Slurm: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("local Slurm up in {:.1} s", t0.elapsed().as_secs_f64());
    Some(LocalSlurm { dir })
}

fn slurm_cmd(conf: &Path, args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).env("SLURM_CONF", conf).output().unwrap();
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The array job id `peftc slurm --submit` printed.
fn array_job(out: &str) -> String {
    out.lines().find_map(|l| l.strip_prefix("submitted array job ")).and_then(|r| r.split_whitespace().next()).expect(out).to_string()
}

/// Wait until no job of this cluster is left.
fn wait_queue_empty(conf: &Path, secs: u64, mut each: impl FnMut()) {
    wait_for(secs, "the Slurm queue to empty", || {
        each();
        slurm_cmd(conf, &["squeue", "-h"]).trim().is_empty()
    });
}

#[test]
fn a_sweep_and_a_requeued_run_on_a_real_local_slurm() {
    let Some(slurm) = start_slurm() else { return };
    let conf = slurm.conf();
    let conf_s = conf.to_string_lossy().into_owned();
    let env = [("SLURM_CONF", conf_s.as_str())];

    // A sweep of three tiny runs, two at a time.
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    project(root, &["peft_lora { lr: [1e-2, 2e-2, 5e-3] }"]);
    let t0 = Instant::now();
    let (code, out) = peftc(&["slurm", "specs", "--submit", "--max-parallel", "2", "--time", "0:20:00"], root, &env);
    assert_eq!(code, 0, "{out}");
    let job = array_job(&out);
    wait_queue_empty(&conf, 600, || {});
    eprintln!("local Slurm sweep of 3 runs (array job {job}) done, report rendered, in {:.1} s", t0.elapsed().as_secs_f64());
    let (code, status) = peftc(&["status", "runs"], root, &[]);
    eprintln!("{status}");
    assert_eq!(code, 0, "{status}\n{}", logs(root));
    for d in std::fs::read_dir(root.join("runs/sweep")).unwrap().map(|d| d.unwrap().path()).filter(|p| p.is_dir()) {
        assert_eq!(steps(&d).len(), STEPS);
    }
    let report = std::fs::read_to_string(root.join("reports/sweep.md")).unwrap_or_else(|_| panic!("no report\n{}", logs(root)));
    assert!(report.contains("peft_lora-lr="), "{report}");

    // A run requeued mid-epoch resumes from its step checkpoint.
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    project(root, &["peft_lora"]);
    let (code, out) = peftc(&["run", "specs", "--quiet", "--runs-dir", "reference"], root, &[]);
    assert_eq!(code, 0, "{out}");
    let dir = run_dir(root, "runs", "peft_lora");
    let slow = [("SLURM_CONF", conf_s.as_str()), ("PEFTC_TEST_STEP_DELAY_MS", "400")];
    let (code, out) = peftc(&["slurm", "specs", "--submit"], root, &slow);
    assert_eq!(code, 0, "{out}");
    let task = format!("{}_0", array_job(&out));
    wait_for(300, "three steps under Slurm", || steps(&dir).len() >= 3);
    let out = slurm_cmd(&conf, &["scontrol", "requeue", &task]);
    assert!(!out.contains("error"), "{out}");
    // Until the requeued task has run again to completion and the report
    // job (which waits for the array to leave the queue) is done.
    let mut last_update: Option<Instant> = None;
    wait_for(600, "the requeued run to complete and the queue to empty", || {
        // Skip the requeue's begin-time delay, once every 2 s while the task
        // is pending (updating a job keeps resetting its eligibility).
        let pending = slurm_cmd(&conf, &["squeue", "-h", "-t", "PD", "-j", &task]).contains(" PD ");
        if pending && last_update.is_none_or(|t| t.elapsed().as_secs() >= 2) {
            let _ = slurm_cmd(&conf, &["scontrol", "update", &format!("JobId={task}"), "StartTime=now"]);
            last_update = Some(Instant::now());
        }
        let complete = dir.join("metrics.json").exists() && metrics(&dir).status == peftc::runs::metrics::RunStatus::Complete;
        complete && slurm_cmd(&conf, &["squeue", "-h"]).trim().is_empty()
    });
    let report = std::fs::read_to_string(root.join("reports/sweep.md")).unwrap_or_else(|_| panic!("no report\n{}", logs(root)));
    assert!(report.contains("1 complete"), "the report is rendered after the requeued run: {report}");
    let log = logs(root);
    assert!(log.contains("exit 75"), "{log}");
    assert!(log.contains("resuming from epoch"), "{log}");
    assert_same_losses(&run_dir(root, "reference", "peft_lora"), &dir);
    let (code, status) = peftc(&["status", "runs"], root, &[]);
    assert_eq!(code, 0, "{status}");
}

/// Every job log of a project, for failure messages.
fn logs(root: &Path) -> String {
    let mut s = String::new();
    if let Ok(rd) = std::fs::read_dir(root.join("slurm/logs")) {
        for e in rd.flatten() {
            s.push_str(&format!("== {}\n{}\n", e.path().display(), std::fs::read_to_string(e.path()).unwrap_or_default()));
        }
    }
    s
}
