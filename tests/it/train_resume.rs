//! Training end to end on a tiny random model: the loss falls, results files
//! are written, and a run interrupted after an epoch resumes to the very same
//! final metrics and weights as an uninterrupted one.

use crate::support::lower as lower_common;

use burn::backend::{Autodiff, NdArray};
use lower_common::*;
use peftc::data::{Example, LossOn};
use peftc::runs::RunDir;
use peftc::runs::metrics::RunMetrics;
use peftc::runs::metrics::RunStatus;
use peftc::runs::step_log::read as read_steps;
use peftc::runs::tensor_file as st;
use peftc::train::{FitEnd, OptimizerConfig, OptimizerKind, Schedule, ScheduleKind, TrainConfig, TrainInputs, TrainOptions, fit};
use std::sync::atomic::AtomicBool;

type B = Autodiff<NdArray<f32>>;

fn examples(n: usize, seed: u64) -> Vec<Example> {
    // A learnable pattern: token i+1 follows token i (mod 23), random starts.
    let starts = peftc::lower::init::values(&peftc::lower::Init::Uniform { low: 0.0, high: 23.0 }, &[n], seed, "starts").unwrap();
    starts
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let len = 6 + i % 4;
            Example { tokens: (0..len).map(|k| ((*s as u32) + k as u32) % 23).collect(), prompt_len: 3 }
        })
        .collect()
}

fn config() -> TrainConfig {
    TrainConfig {
        optimizer: OptimizerConfig { weight_decay: 0.0, ..OptimizerConfig::pytorch(OptimizerKind::AdamW, 2e-2) },
        schedule: Schedule { kind: ScheduleKind::Cosine, warmup: 2 },
        grad_clip: Some(1.0),
        epochs: 3,
        batch: 4,
        max_len: 8,
        seed: 3,
        loss_on: LossOn::All,
    }
}

fn run(dir: &std::path::Path, stop_after: Option<usize>) -> peftc::runs::metrics::RunMetrics {
    run_with(dir, TrainOptions { stop_after_epochs: stop_after, ..Default::default() }).0
}

fn run_with(dir: &std::path::Path, opts: TrainOptions) -> (RunMetrics, FitEnd) {
    let dev = Default::default();
    let model = tiny::<B>(&dev);
    let eval_model = tiny::<NdArray<f32>>(&dev);
    let mut adapter = build(&lora_gamma(4, 3.0, 1.0), &model, 0, &dev);
    let mut m = RunMetrics::blank("tiny", "lora", "run-0001");
    let (train, test) = (examples(20, 1), examples(8, 2));
    let inputs = TrainInputs { model: &model, eval_model: &eval_model, train: &train, test: &test, device: &dev };
    let end = fit(&inputs, &mut adapter, &config(), &RunDir::at(dir), &mut m, &opts).unwrap();
    (m, end)
}

/// Asserts two runs' per-epoch metrics, step logs and adapters are equal.
fn assert_same_training(a_dir: &std::path::Path, a: &RunMetrics, b_dir: &std::path::Path, b: &RunMetrics) {
    assert_eq!(a.epochs.len(), b.epochs.len());
    for (x, y) in a.epochs.iter().zip(&b.epochs) {
        assert_eq!((x.epoch, x.train_tokens), (y.epoch, y.train_tokens));
        assert!((x.train_bits - y.train_bits).abs() < 1e-6, "{x:?} vs {y:?}");
        assert!((x.test_bits_all - y.test_bits_all).abs() < 1e-6, "{x:?} vs {y:?}");
    }
    let (sa, sb) = (read_steps(&a_dir.join("steps.jsonl")), read_steps(&b_dir.join("steps.jsonl")));
    assert_eq!(
        sa.iter().map(|r| (r.epoch, r.step, r.tokens)).collect::<Vec<_>>(),
        sb.iter().map(|r| (r.epoch, r.step, r.tokens)).collect::<Vec<_>>(),
        "every step once"
    );
    for (x, y) in sa.iter().zip(&sb) {
        assert!((x.loss_bits - y.loss_bits).abs() < 1e-6 && x.lr == y.lr, "{x:?} vs {y:?}");
    }
    let wa = st::load(&a_dir.join("adapter.safetensors")).unwrap();
    let wb = st::load(&b_dir.join("adapter.safetensors")).unwrap();
    for (k, t) in &wa {
        let d = t.data.iter().zip(&wb[k].data).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        assert!(d < 1e-6, "{k} differs by {d}");
    }
}

#[test]
fn stopped_after_every_single_step_and_resumed_it_trains_as_an_uninterrupted_run() {
    static STOP: AtomicBool = AtomicBool::new(true);
    let full_dir = tempfile::tempdir().unwrap();
    let (full, _) = run_with(full_dir.path(), TrainOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let mut stops = 0;
    let last = loop {
        let (m, end) = run_with(dir.path(), TrainOptions { stop: Some(&STOP), ..Default::default() });
        if end == FitEnd::Done {
            break m;
        }
        stops += 1;
        assert_eq!(m.status, RunStatus::Incomplete);
        // One checkpoint directory at a time, none partial.
        let cks: Vec<_> = std::fs::read_dir(dir.path().join("checkpoints")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(cks.len(), 1, "{cks:?}");
        assert!(stops < 40, "no progress");
    };
    // 15 steps, each stopped after (the last epoch's last step's stop lands at its end).
    assert!(stops >= 15, "{stops} stops");
    assert_eq!(last.status, RunStatus::Complete);
    assert_same_training(full_dir.path(), &full, dir.path(), &last);
}

#[test]
fn a_kill_at_any_point_of_a_checkpoint_write_leaves_the_old_or_the_new_checkpoint() {
    use peftc::train::checkpoint;
    use peftc::train::optim::Optimizer;
    static STOP: AtomicBool = AtomicBool::new(true);
    let base = tempfile::tempdir().unwrap();
    // A checkpoint after step 1 (A).
    let (m, end) = run_with(base.path(), TrainOptions { stop: Some(&STOP), ..Default::default() });
    assert_eq!(end, FitEnd::Stopped);
    let dev = Default::default();
    let model = tiny::<B>(&dev);
    let mut adapter = build(&lora_gamma(4, 3.0, 1.0), &model, 0, &dev);
    let mut opt = Optimizer::<NdArray<f32>>::new(config().optimizer, adapter.params().len());
    let state_a = checkpoint::resume(&RunDir::at(base.path()), &m.run_id, &mut adapter, &mut opt, &dev).unwrap().unwrap();
    let params = |a: &peftc::lower::Adapter<B>| -> Vec<Vec<f32>> { a.params().iter().map(|p| p.to_data().to_vec().unwrap()).collect() };
    let params_a = params(&adapter);
    // B: moved on by a step, with other weights.
    let mut state_b = state_a.clone();
    state_b.position.step += 1;
    state_b.optimizer_step += 1;
    opt.step += 1;
    let valid_b = {
        let mut v = adapter.valid();
        v.set_params(v.params().iter().map(|p| p.clone().add_scalar(0.5)).collect());
        v
    };
    let params_b: Vec<Vec<f32>> = valid_b.params().iter().map(|p| p.to_data().to_vec().unwrap()).collect();
    let mut killed_at = 0;
    for k in 0.. {
        let dir = tempfile::tempdir().unwrap();
        let copy = |from: &std::path::Path, to: &std::path::Path| {
            for e in walk(from) {
                let rel = e.strip_prefix(from).unwrap();
                std::fs::create_dir_all(to.join(rel).parent().unwrap()).unwrap();
                std::fs::copy(&e, to.join(rel)).unwrap();
            }
        };
        copy(base.path(), dir.path());
        let run = RunDir::at(dir.path());
        let r = checkpoint::save_with_kill(&run, state_b.clone(), &valid_b, &opt, Some(k));
        let mut got = build(&lora_gamma(4, 3.0, 1.0), &model, 0, &dev);
        let mut o = Optimizer::<NdArray<f32>>::new(config().optimizer, got.params().len());
        let state = checkpoint::resume(&run, &m.run_id, &mut got, &mut o, &dev).unwrap().expect("a checkpoint survives");
        if state.position == state_a.position {
            assert_eq!((params(&got), o.step), (params_a.clone(), state_a.optimizer_step), "kill after {k} ops");
        } else {
            assert_eq!(state.position, state_b.position, "kill after {k} ops");
            assert_eq!((params(&got), o.step), (params_b.clone(), state_b.optimizer_step), "kill after {k} ops");
        }
        match r {
            Err(checkpoint::CheckpointError::InjectedKill { .. }) => killed_at += 1,
            Err(e) => panic!("{e}"),
            Ok(()) => {
                assert_eq!(state.position, state_b.position);
                break;
            }
        }
    }
    // Directory, three files in two halves each, the rename, the old one's removal.
    assert!(killed_at >= 9, "{killed_at} kill points");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}

#[test]
fn resume_after_interruption_matches_uninterrupted_run() {
    let full_dir = tempfile::tempdir().unwrap();
    let full = run(full_dir.path(), None);
    assert_eq!(full.status, RunStatus::Complete);
    assert_eq!(full.epochs.len(), 3);
    // The adapter learns: test loss after training is below the first epoch's train loss.
    assert!(full.epochs[2].test_bits_all < full.epochs[0].train_bits, "{:?}", full.epochs);
    assert!(full.best.is_some());

    let dir = tempfile::tempdir().unwrap();
    let part = run(dir.path(), Some(1));
    assert_eq!(part.status, RunStatus::Incomplete);
    assert_eq!(part.epochs.len(), 1);
    let on_disk: peftc::runs::metrics::RunMetrics =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("metrics.json")).unwrap()).unwrap();
    assert_eq!(on_disk.status, RunStatus::Incomplete);
    let resumed = run(dir.path(), None);
    assert_eq!(resumed.status, RunStatus::Complete);
    assert_eq!(resumed.epochs.len(), 3);
    for (a, b) in full.epochs.iter().zip(&resumed.epochs) {
        assert_eq!((a.epoch, a.train_tokens), (b.epoch, b.train_tokens));
        assert!((a.train_bits - b.train_bits).abs() < 1e-6, "{a:?} vs {b:?}");
        assert!((a.test_bits_all - b.test_bits_all).abs() < 1e-6, "{a:?} vs {b:?}");
        assert!((a.test_bits_completion - b.test_bits_completion).abs() < 1e-6, "{a:?} vs {b:?}");
    }
    // The per-step curve: every step once, even across the interruption, and
    // each epoch's mean is its recorded train loss.
    let (sa, sb) = (read_steps(&full_dir.path().join("steps.jsonl")), read_steps(&dir.path().join("steps.jsonl")));
    assert_eq!(sa.len(), 3 * 5, "20 examples in batches of 4, 3 epochs");
    assert_eq!(sa.len(), sb.len());
    for (a, b) in sa.iter().zip(&sb) {
        assert_eq!((a.epoch, a.step, a.tokens), (b.epoch, b.step, b.tokens));
        assert!((a.loss_bits - b.loss_bits).abs() < 1e-6 && a.lr == b.lr, "{a:?} vs {b:?}");
    }
    assert!(sa.windows(2).all(|w| w[1].tokens > w[0].tokens));
    assert_eq!(sa.last().unwrap().tokens, full.epochs.iter().map(|e| e.train_tokens).sum::<u64>());
    for e in &full.epochs {
        let losses: Vec<f64> = sa.iter().filter(|r| r.epoch == e.epoch).map(|r| r.loss_bits).collect();
        let mean = losses.iter().sum::<f64>() / losses.len() as f64;
        assert!((mean - e.train_bits).abs() < 1e-12, "epoch {}: {mean} vs {}", e.epoch, e.train_bits);
    }
    let wa = st::load(&full_dir.path().join("adapter.safetensors")).unwrap();
    let wb = st::load(&dir.path().join("adapter.safetensors")).unwrap();
    assert_eq!(wa.keys().collect::<Vec<_>>(), wb.keys().collect::<Vec<_>>());
    for (k, t) in &wa {
        let d = t.data.iter().zip(&wb[k].data).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        assert!(d < 1e-6, "{k} differs by {d}");
    }
}

#[test]
fn divergence_stops_the_run_with_a_message() {
    let dev = Default::default();
    let model = tiny::<B>(&dev);
    let eval_model = tiny::<NdArray<f32>>(&dev);
    let mut adapter = build(&lora_gamma(4, 3.0, 1.0), &model, 0, &dev);
    let mut cfg = config();
    cfg.optimizer = OptimizerConfig::pytorch(OptimizerKind::Sgd, 1e30);
    cfg.grad_clip = None;
    cfg.schedule = Schedule::default();
    let dir = tempfile::tempdir().unwrap();
    let mut m = RunMetrics::blank("tiny", "lora", "run-div");
    let (train, test) = (examples(20, 1), examples(8, 2));
    let inputs = TrainInputs { model: &model, eval_model: &eval_model, train: &train, test: &test, device: &dev };
    fit(&inputs, &mut adapter, &cfg, &RunDir::at(dir.path()), &mut m, &TrainOptions::default()).unwrap();
    match &m.status {
        RunStatus::Diverged { message, .. } => assert!(message.contains("loss became"), "{message}"),
        s => panic!("expected divergence, got {s:?}"),
    }
}
