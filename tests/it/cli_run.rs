//! `peftc run` end to end through the CLI on the real SmolLM2 GGUF with a
//! few GSM8K examples: results files and report, skipping a complete run,
//! then `peftc merge` and `peftc export-peft` (LoRA and DoRA) checked
//! against the math of HF PEFT's layers.

use std::path::{Path, PathBuf};
use std::process::Command;

use burn::backend::NdArray;
use burn::prelude::*;
use peftc::lang::target::Target;
use peftc::runs::metrics::{RunMetrics, RunStatus};
use peftc::runs::tensor_file as st;

type B = NdArray<f32>;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn model_path() -> PathBuf {
    let p = root().join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(p.exists(), "model {} not found: run scripts/setup.sh", p.display());
    p
}

fn peftc(args: &[&str], cwd: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_peftc")).args(args).current_dir(cwd).output().expect("run peftc");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn metrics(dir: &Path) -> RunMetrics {
    serde_json::from_str(&std::fs::read_to_string(dir.join("metrics.json")).unwrap()).unwrap()
}

/// `[rows, cols]` row-major tensor from a safetensors map.
fn mat(map: &std::collections::BTreeMap<String, st::F32Tensor>, key: &str) -> Tensor<B, 2> {
    let t = map.get(key).unwrap_or_else(|| panic!("missing {key}"));
    Tensor::from_data(TensorData::new(t.data.clone(), [t.shape[0], t.shape[1]]), &Default::default())
}

fn vec1(map: &std::collections::BTreeMap<String, st::F32Tensor>, key: &str) -> Tensor<B, 1> {
    let t = map.get(key).unwrap_or_else(|| panic!("missing {key}"));
    Tensor::from_data(TensorData::new(t.data.clone(), [t.data.len()]), &Default::default())
}

fn rel_diff(a: Tensor<B, 2>, b: Tensor<B, 2>) -> f32 {
    let scale: f32 = b.clone().abs().max().into_scalar();
    let d: f32 = (a - b).abs().max().into_scalar();
    d / scale
}

#[test]
fn run_skip_merge_and_export_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = format!(
        r#"import "{schemes}"

experiment cli {{
  model   = gguf("{model}", shapes: "smollm2-135m")
  data    = gsm8k("{data}", train: 8, test: 4, max_len: 64, loss: all)
  targets = [q, v] in layers 0..30
  train {{
    optimizer: adamw(lr: 1e-3, weight_decay: 0),
    schedule: constant,
    grad_clip: 1.0,
    epochs: 2,
    batch: 4,
    seed: 0,
    precision: f32,
  }}

  run peft_lora
  run dora(alpha: 16, gamma: 1)
}}
"#,
        schemes = root().join("specs/schemes.peft").display(),
        model = model_path().display(),
        data = root().join("data/gsm8k").display(),
    );
    std::fs::create_dir_all(tmp.path().join("specs")).unwrap();
    std::fs::write(tmp.path().join("specs/cli.peft"), spec).unwrap();

    let (ok, out) = peftc(&["run", "specs", "--quiet"], tmp.path());
    assert!(ok, "peftc run failed:\n{out}");
    // --quiet (and a stderr that is no terminal) still shows progress, as lines.
    assert!(out.contains("cli/peft_lora epoch 2/2 step 2/2: loss"), "{out}");
    let lora_dir = tmp.path().join("runs/cli/peft_lora");
    let dora_dir = tmp.path().join("runs/cli/dora-alpha=16-gamma=1");
    for dir in [&lora_dir, &dora_dir] {
        let m = metrics(dir);
        assert_eq!(m.status, RunStatus::Complete, "{}", dir.display());
        assert_eq!(m.epochs.len(), 2);
        assert_eq!(m.backend, "ndarray");
        let base = m.base.as_ref().expect("base loss").test_bits_all;
        assert!(base > 1.0 && base < 6.0, "base loss {base} bits");
        for e in &m.epochs {
            assert!(e.train_bits.is_finite() && e.test_bits_all.is_finite() && e.test_bits_completion.is_finite(), "{e:?}");
            assert!(e.train_tokens > 0);
        }
        // The same 8 examples seen twice: the second epoch's train loss is lower.
        assert!(m.epochs[1].train_bits < m.epochs[0].train_bits, "{:?}", m.epochs);
        assert!(dir.join("adapter.safetensors").exists() && dir.join("run.json").exists());
        // 8 examples in batches of 4, 2 epochs: 4 steps on the curve.
        let steps = peftc::runs::step_log::read(&dir.join("steps.jsonl"));
        assert_eq!(steps.iter().map(|r| (r.epoch, r.step)).collect::<Vec<_>>(), vec![(1, 1), (1, 2), (2, 1), (2, 2)]);
        // `micro_tokens: auto` on the CPU: 512 padded tokens (the memory is there).
        assert_eq!(m.micro_tokens, Some(512));
        let rss = m.peak_rss_bytes.expect("peak RSS recorded");
        assert!(rss > 500 << 20 && rss < 16 << 30, "peak RSS {rss} bytes");
    }
    // The base loss was computed once and cached beside the runs; a run in a
    // fresh runs/ subfolder of the same experiment would read it from there.
    let caches: Vec<_> = std::fs::read_dir(tmp.path().join("runs/.base-loss")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(caches.len(), 1, "{caches:?}");
    let cached: peftc::runs::metrics::BaseLoss = serde_json::from_str(&std::fs::read_to_string(&caches[0]).unwrap()).unwrap();
    assert_eq!(Some(&cached), metrics(&lora_dir).base.as_ref());
    assert_eq!(out.matches("base model test loss").count(), 1, "{out}");
    // q and v of 30 layers, r 8: 30 · 8 · ((576 + 576) + (576 + 192)).
    assert_eq!(metrics(&lora_dir).trainable_params, 30 * 8 * (576 + 576 + 576 + 192));
    let report = std::fs::read_to_string(tmp.path().join("reports/cli.md")).expect("markdown report");
    assert!(report.contains("peft_lora") && report.contains("dora"), "{report}");
    assert!(tmp.path().join("reports/cli.html").exists());

    // A second run skips both complete runs and changes nothing.
    let before = std::fs::read_to_string(lora_dir.join("metrics.json")).unwrap();
    let (ok, out) = peftc(&["run", "specs", "--quiet"], tmp.path());
    assert!(ok, "{out}");
    assert_eq!(out.matches("already complete").count(), 2, "{out}");
    assert_eq!(before, std::fs::read_to_string(lora_dir.join("metrics.json")).unwrap());

    // A run trained again (its directory lost) reads the cached base loss.
    let dora_before = metrics(&dora_dir);
    std::fs::remove_dir_all(&dora_dir).unwrap();
    let (ok, out) = peftc(&["run", "specs", "--quiet", "--only", "dora"], tmp.path());
    assert!(ok, "{out}");
    // "…(completion X) in Ys" is the computed line; the cached one ends "cached in <file>".
    assert!(out.contains("cached in") && !out.contains(") in ") && out.matches("base model test loss").count() == 1, "{out}");
    let dora_again = metrics(&dora_dir);
    assert_eq!(dora_again.base, dora_before.base);
    assert_eq!(dora_again.epochs.len(), 2);

    // Memory, before loading: 0.25 GiB cannot hold two f32 copies of
    // SmolLM2's 134.5 M weights (1.0 GiB), so nothing is loaded or trained.
    let (ok, out) = peftc(&["run", "specs", "--quiet", "--runs-dir", "runs-tiny", "--max-memory", "0.25"], tmp.path());
    assert!(!ok, "{out}");
    assert!(out.contains("has at least 0.13 billion weights: loading it needs about 1.0 GiB of host memory"), "{out}");
    assert!(!out.contains("experiment cli: loading"), "refused before loading: {out}");

    // Memory, per run: with room for little beyond the loaded model, a budget
    // the spec sets is refused (naming the setting to lower), and `auto`
    // cannot go below one example; each run fails with the reason, before
    // training.
    let spec_path = tmp.path().join("specs/cli.peft");
    let f32_spec = std::fs::read_to_string(&spec_path).unwrap();
    for (setting, expect) in
        [("micro_tokens: 4096,", "lower `micro_tokens` in the spec"), ("micro_tokens: auto,", "even one row of max_len tokens")]
    {
        std::fs::write(&spec_path, f32_spec.replace("precision: f32,", &format!("precision: f32, {setting}"))).unwrap();
        let (ok, out) = peftc(&["run", "specs", "--quiet", "--runs-dir", "runs-small", "--max-memory", "1.5"], tmp.path());
        assert!(!ok, "{out}");
        assert_eq!(out.matches(expect).count(), 2, "{out}");
        match metrics(&tmp.path().join("runs-small/cli/peft_lora")).status {
            RunStatus::Failed { message } => assert!(message.contains("training would need about"), "{message}"),
            s => panic!("{s:?}"),
        }
    }
    std::fs::write(&spec_path, &f32_spec).unwrap();

    // `precision: bf16` on the CPU backend: computed (so identified) as f32,
    // with a warning; the f32 results already there are that computation.
    std::fs::write(&spec_path, f32_spec.replace("precision: f32", "precision: bf16")).unwrap();
    let (ok, out) = peftc(&["run", "specs", "--quiet"], tmp.path());
    assert!(ok, "{out}");
    assert_eq!(out.matches("precision bf16 needs a GPU backend (cuda or tch); computing in f32").count(), 2, "{out}");
    assert_eq!(out.matches("already complete").count(), 2, "{out}");
    assert_eq!(metrics(&lora_dir).precision, "f32");
    std::fs::write(&spec_path, f32_spec).unwrap();

    // Merge, and export both adapters in HF PEFT's layout.
    let (ok, out) = peftc(&["merge", "runs/cli/peft_lora", "-o", "merged"], tmp.path());
    assert!(ok, "{out}");
    let (ok, out) = peftc(&["export-peft", "runs/cli/peft_lora"], tmp.path());
    assert!(ok, "{out}");
    let (ok, out) = peftc(&["export-peft", "runs/cli/dora-alpha=16-gamma=1"], tmp.path());
    assert!(ok, "{out}");

    let base = peftc::pretrained::source::load_model(&model_path()).unwrap();
    let w_base = |l: usize, t: Target| -> Tensor<B, 2> {
        // HF layout [out, in].
        let name = format!("model.layers.{l}.{}.weight", t.hf_module());
        let t = &base.tensors[&name];
        Tensor::from_data(TensorData::new(t.data.clone(), [t.shape[0], t.shape[1]]), &Default::default())
    };
    let merged = peftc::pretrained::source::load_model(&tmp.path().join("merged")).unwrap();
    let w_merged = |l: usize, t: Target| -> Tensor<B, 2> {
        let name = format!("model.layers.{l}.{}.weight", t.hf_module());
        let t = &merged.tensors[&name];
        Tensor::from_data(TensorData::new(t.data.clone(), [t.shape[0], t.shape[1]]), &Default::default())
    };
    let config = |dir: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join("peft/adapter_config.json")).unwrap()).unwrap()
    };

    // LoRA: PEFT's W + (α/r)·B·A is the merged weight.
    let c = config(&lora_dir);
    assert_eq!(c["use_dora"], false);
    assert_eq!(c["r"], 8);
    assert!((c["lora_alpha"].as_f64().unwrap() - 16.0).abs() < 1e-3, "{c}");
    assert_eq!(c["target_modules"], serde_json::json!(["q_proj", "v_proj"]));
    let t = st::load(&lora_dir.join("peft/adapter_model.safetensors")).unwrap();
    assert_eq!(t.len(), 2 * 2 * 30);
    for (l, target) in [(0, Target::Q), (17, Target::V), (29, Target::Q)] {
        let key = |k: &str| format!("base_model.model.model.layers.{l}.{}.{k}", target.hf_module());
        let (a, b) = (mat(&t, &key("lora_A.weight")), mat(&t, &key("lora_B.weight")));
        assert_eq!(a.dims()[0], 8);
        let peft = w_base(l, target) + b.matmul(a).mul_scalar(16.0 / 8.0);
        let d = rel_diff(peft, w_merged(l, target));
        assert!(d < 1e-4, "LoRA layer {l} {target}: PEFT's weight differs from the merged one by {d} (relative)");
    }

    // DoRA: PEFT's m ⊙ (W + s·B·A) / ‖W + s·B·A‖ (row norms of [out, in]).
    let c = config(&dora_dir);
    assert_eq!(c["use_dora"], true);
    let t = st::load(&dora_dir.join("peft/adapter_model.safetensors")).unwrap();
    assert_eq!(t.len(), 3 * 2 * 30);
    let s = c["lora_alpha"].as_f64().unwrap() / 8.0;
    let dora_merged = |l: usize, target: Target| -> Tensor<B, 2> {
        // The run's own merged weight, through the library (W' = f(I)).
        let r = peftc::lower::merge::TrainedRun::<B>::load(&peftc::runs::RunDir::at(&dora_dir), &Default::default()).unwrap();
        r.adapter.merged_weight(l, target, &r.model.base_weight(l, target)).unwrap().transpose()
    };
    for (l, target) in [(3, Target::V), (28, Target::Q)] {
        let key = |k: &str| format!("base_model.model.model.layers.{l}.{}.{k}", target.hf_module());
        let (a, b) = (mat(&t, &key("lora_A.weight")), mat(&t, &key("lora_B.weight")));
        let m = vec1(&t, &key("lora_magnitude_vector"));
        let v = w_base(l, target) + b.matmul(a).mul_scalar(s);
        let norm = v.clone().square().sum_dim(1).sqrt();
        let out = m.dims()[0];
        let peft = v.div(norm).mul(m.reshape([out, 1]));
        let d = rel_diff(peft, dora_merged(l, target));
        assert!(d < 1e-4, "DoRA layer {l} {target}: PEFT's weight differs from the merged one by {d} (relative)");
    }
}
