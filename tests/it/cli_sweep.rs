//! Sweeps through the CLI on a tiny model: two workers on one runs
//! directory train each run once; SIGTERM checkpoints and exits 75; a
//! worker killed with SIGKILL leaves a lease that goes stale and another
//! worker takes it over, resuming from the last step checkpoint to the
//! uninterrupted run's losses; shards, the frozen plan and `peftc status`.

use crate::support::sweep::*;

const LORA: &str = "peft_lora";

#[test]
fn two_workers_at_once_train_each_run_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    project(root, &["peft_lora { lr: [1e-2, 2e-2, 5e-3, 3e-2] }"]);
    let env = [("PEFTC_TEST_STEP_DELAY_MS", "30")];
    let a = spawn(&["run", "specs", "--quiet"], root, &env);
    let b = spawn(&["run", "specs", "--quiet"], root, &env);
    let ((ca, oa), (cb, ob)) = (output(a), output(b));
    assert_eq!((ca, cb), (0, 0), "{oa}\n---\n{ob}");
    // Each run's training starts with its micro-batch line: four in all.
    let trained = |o: &str| o.lines().filter(|l| l.contains("micro-batches of")).count();
    assert_eq!(trained(&oa) + trained(&ob), 4, "{oa}\n---\n{ob}");
    assert!(oa.contains("skipped") || ob.contains("skipped"), "the workers met on a run:\n{oa}\n---\n{ob}");
    let dirs: Vec<_> = std::fs::read_dir(root.join("runs/sweep")).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    assert_eq!(dirs.len(), 4);
    for d in &dirs {
        let s = steps(d);
        assert_eq!(s.len(), STEPS, "{}: every step once", d.display());
        assert!(!d.join(".lease").exists(), "lease released");
    }
    let (code, out) = peftc(&["status", "runs"], root, &[]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.matches("complete").count(), 5, "{out}");
}

#[test]
fn sigterm_and_sigkill_mid_epoch_resume_to_the_uninterrupted_losses() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    project(root, &[LORA]);
    let (code, out) = peftc(&["run", "specs", "--quiet", "--runs-dir", "reference"], root, &[]);
    assert_eq!(code, 0, "{out}");
    let reference = run_dir(root, "reference", LORA);
    let dir = run_dir(root, "runs", LORA);
    let slow = [("PEFTC_TEST_STEP_DELAY_MS", "300")];

    // SIGTERM after the first step: a checkpoint there, the lease released, exit 75.
    let child = spawn(&["run", "specs", "--quiet"], root, &slow);
    wait_for(120, "a first step", || !steps(&dir).is_empty());
    assert!(dir.join(".lease").exists());
    let (code, out) = peftc(&["status", "runs"], root, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("training   epoch 1 step"), "{out}");
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let (code, out) = output(child);
    assert_eq!(code, 75, "{out}");
    assert!(out.contains("stopped by a signal"), "{out}");
    assert!(!dir.join(".lease").exists(), "lease released");
    let done = steps(&dir).len();
    assert!(done < STEPS, "{done} steps");

    // SIGKILL mid-epoch, two steps further (a checkpoint every 2 steps).
    let child = spawn(&["run", "specs", "--quiet"], root, &slow);
    let mut child = child;
    wait_for(120, "two more steps", || steps(&dir).len() >= done + 3);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(dir.join(".lease").exists(), "a killed worker leaves its lease");
    // While its heartbeat is fresh, another worker leaves the run alone.
    let (code, out) = peftc(&["run", "specs", "--quiet", "--lease-timeout", "600"], root, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("skipped") && !out.contains("micro-batches of"), "{out}");
    let (code, out) = peftc(&["status", "runs", "--lease-timeout", "1"], root, &[]);
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let (code2, out2) = peftc(&["status", "runs", "--lease-timeout", "1"], root, &[]);
    assert_eq!(code2, 1, "{out} {code}");
    assert!(out2.contains("stale"), "{out2}");
    // Stale: taken over, resumed from the last step checkpoint, finished.
    let (code, out) = peftc(&["run", "specs", "--quiet"], root, &[("PEFTC_LEASE_TIMEOUT", "1")]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("took over the lease"), "{out}");
    assert!(out.contains("resuming from epoch 1 step") || out.contains("resuming from epoch 2 step"), "{out}");
    assert_same_losses(&reference, &dir);
    let (code, out) = peftc(&["status", "runs"], root, &[]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn shards_split_the_frozen_plan_and_an_edited_spec_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    project(root, &["peft_lora { lr: [1e-2, 2e-2, 5e-3] }"]);
    let (code, out) = peftc(&["run", "specs", "--quiet", "--shard", "1/2"], root, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("shard 1/2: 1 of the plan's 3 runs (sweep/peft_lora-lr=0.01)"), "{out}");
    let plan: peftc::runs::plan::Plan = serde_json::from_str(&std::fs::read_to_string(root.join("runs/plan.json")).unwrap()).unwrap();
    assert_eq!(plan.runs.len(), 3);
    let (code, out) = peftc(&["status", "runs"], root, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not started") && out.contains("1 complete, 2 unfinished"), "{out}");
    let (code, out) = peftc(&["report", "runs", "--plan", "runs/plan.json", "-o", "reports"], root, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("2 of 3 planned runs absent"), "{out}");
    // `/N` takes I from SLURM_ARRAY_TASK_ID.
    let (code, out) = peftc(&["run", "specs", "--quiet", "--shard", "/2"], root, &[("SLURM_ARRAY_TASK_ID", "0")]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("shard 0/2: 2 of the plan's 3 runs"), "{out}");
    let (code, out) = peftc(&["status", "runs"], root, &[]);
    assert_eq!(code, 0, "{out}");
    // An edited spec no longer matches the plan.
    let spec = root.join("specs/sweep.peft");
    std::fs::write(&spec, std::fs::read_to_string(&spec).unwrap().replace("5e-3", "6e-3")).unwrap();
    let (code, out) = peftc(&["run", "specs", "--quiet", "--shard", "0/2"], root, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("the specs changed since this sweep's plan") && out.contains("sweep.peft edited"), "{out}");
    for bad in ["2/2", "x", "1/0"] {
        let (code, out) = peftc(&["run", "specs", "--shard", bad], root, &[]);
        assert_eq!(code, 2, "{bad}: {out}");
        assert!(out.contains("--shard"), "{out}");
    }
    // `peftc slurm` writes the scripts without submitting.
    let (code, out) = peftc(&["slurm", "specs", "--max-parallel", "2", "--time", "0:10:00", "--runs-dir", "runs2"], root, &[]);
    assert_eq!(code, 0, "{out}");
    let array = std::fs::read_to_string(root.join("slurm/array.sbatch")).unwrap();
    for want in [
        "--array=0-2%2",
        "--requeue",
        "--open-mode=append",
        "--signal=B:USR1@300",
        "--time=0:10:00",
        "--shard \"${SLURM_ARRAY_TASK_ID}/3\"",
        "scontrol requeue \"${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}\"",
    ] {
        assert!(array.contains(want), "{want} missing:\n{array}");
    }
    assert!(!array.contains("--gres"), "no gres for the CPU backend:\n{array}");
    let report = std::fs::read_to_string(root.join("slurm/report.sbatch")).unwrap();
    assert!(report.contains("report") && report.contains("--plan"), "{report}");
}
