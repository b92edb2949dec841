//! A tiny sweep for the worker, preemption and Slurm tests: a random-weight
//! Llama of width 32 with SmolLM2's real tokenizer (an HF directory, so
//! `peftc run` trains it in well under a second per run), a few GSM8K
//! examples, and `peftc` as a child process.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use peftc::runs::metrics::RunMetrics;
use peftc::runs::step_log::{StepRecord, read};

use super::io::{gsm8k_dir, manifest_dir, smollm2_path, tiny_config, tiny_model};

/// Steps per run: 24 examples in batches of 4, 2 epochs.
pub const STEPS: usize = 12;

/// Write the tiny model to `dir` (an HF directory with SmolLM2's tokenizer).
pub fn tiny_model_dir(dir: &Path) {
    let real = peftc::pretrained::source::load_model(&smollm2_path()).unwrap();
    let mut config = tiny_config(true);
    config.vocab_size = real.config.vocab_size;
    config.bos_token_id = real.config.bos_token_id;
    config.eos_token_id = real.config.eos_token_id;
    let mut m = tiny_model(config, 7);
    m.tokenizer = real.tokenizer;
    peftc::pretrained::hf_dir::save_hf_dir(&m, dir).unwrap();
}

/// A project in `root`: `model/`, and `specs/sweep.peft` with experiment
/// `sweep` of the given `run` lines.
pub fn project(root: &Path, runs: &[&str]) {
    tiny_model_dir(&root.join("model"));
    let spec = format!(
        r#"import "{schemes}"

experiment sweep {{
  model   = hf("{model}")
  data    = gsm8k("{data}", train: 24, test: 4, max_len: 48, loss: all)
  targets = [q, v]
  train {{
    optimizer: adamw(lr: 1e-2, weight_decay: 0),
    schedule: cosine(warmup: 2),
    epochs: 2,
    batch: 4,
    seed: 1,
    checkpoint: every(steps: 2),
  }}
{runs}
}}
"#,
        schemes = manifest_dir().join("specs/schemes.peft").display(),
        model = root.join("model").display(),
        data = gsm8k_dir().display(),
        runs = runs.iter().map(|r| format!("  run {r}\n")).collect::<String>(),
    );
    std::fs::create_dir_all(root.join("specs")).unwrap();
    std::fs::write(root.join("specs/sweep.peft"), spec).unwrap();
}

/// `peftc ARGS` in `cwd`, with extra environment.
pub fn peftc_cmd(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_peftc"));
    c.args(args).current_dir(cwd).env_remove("SLURM_ARRAY_TASK_ID");
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

/// Run to the end: (exit code, stdout + stderr).
pub fn peftc(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> (i32, String) {
    let out = peftc_cmd(args, cwd, env).output().expect("run peftc");
    (out.status.code().unwrap_or(-1), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// Started in the background, output captured.
pub fn spawn(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Child {
    peftc_cmd(args, cwd, env).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start peftc")
}

pub fn output(child: Child) -> (i32, String) {
    let out = child.wait_with_output().unwrap();
    (out.status.code().unwrap_or(-1), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// Wait until `f` holds (polling), or panic with `what` after `secs`.
pub fn wait_for(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < Duration::from_secs(secs), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn run_dir(root: &Path, runs: &str, run: &str) -> PathBuf {
    root.join(runs).join("sweep").join(run)
}

pub fn steps(dir: &Path) -> Vec<StepRecord> {
    read(&dir.join("steps.jsonl"))
}

pub fn metrics(dir: &Path) -> RunMetrics {
    serde_json::from_str(&std::fs::read_to_string(dir.join("metrics.json")).unwrap()).unwrap()
}

/// Two runs trained the same: every step once, the same losses, the same
/// epoch metrics.
pub fn assert_same_losses(a: &Path, b: &Path) {
    let (sa, sb) = (steps(a), steps(b));
    assert_eq!(sa.len(), STEPS, "{}", a.display());
    assert_eq!(
        sa.iter().map(|r| (r.epoch, r.step, r.tokens)).collect::<Vec<_>>(),
        sb.iter().map(|r| (r.epoch, r.step, r.tokens)).collect::<Vec<_>>(),
        "{} vs {}",
        a.display(),
        b.display()
    );
    for (x, y) in sa.iter().zip(&sb) {
        assert!((x.loss_bits - y.loss_bits).abs() < 1e-5, "{x:?} vs {y:?}");
    }
    let (ma, mb) = (metrics(a), metrics(b));
    assert_eq!(ma.status, peftc::runs::metrics::RunStatus::Complete);
    assert_eq!(mb.status, peftc::runs::metrics::RunStatus::Complete);
    assert_eq!(ma.epochs.len(), mb.epochs.len());
    for (x, y) in ma.epochs.iter().zip(&mb.epochs) {
        assert!((x.train_bits - y.train_bits).abs() < 1e-5 && (x.test_bits_all - y.test_bits_all).abs() < 1e-5, "{x:?} vs {y:?}");
    }
}
