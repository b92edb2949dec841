//! Every tiny family (`tests/fixtures/models`, see `model_families`) trains
//! through `peftc run` with HF PEFT's LoRA and lowers its loss; `merge` and
//! `export-peft` round-trip on a fused family (Phi-3: the merged directory
//! holds `qkv_proj` / `gate_up_proj` again, and the exported adapter is one
//! rank-n·r adapter per fused module) and a biased one (Qwen2: the frozen
//! q/k/v biases survive the merge unchanged).

use std::collections::BTreeMap;
use std::path::Path;

use peftc::pretrained::family::to_checkpoint_layout;
use peftc::pretrained::source::load_model;
use peftc::pretrained::weights::TensorStore;
use peftc::runs::metrics::{RunMetrics, RunStatus};
use peftc::runs::tensor_file::{self as st, F32Tensor};

use crate::model_families::{FAMILIES, fixtures, peftc_logits, reference};
use crate::support::io::{gsm8k_dir, manifest_dir};
use crate::support::sweep::peftc;

fn metrics(dir: &Path) -> RunMetrics {
    serde_json::from_str(&std::fs::read_to_string(dir.join("metrics.json")).unwrap()).unwrap()
}

/// One experiment per family, each training `peft_lora` on all seven
/// targets for two epochs of the same 8 examples.
fn spec() -> String {
    let mut s = format!("import \"{}\"\n", manifest_dir().join("specs/schemes.peft").display());
    for name in FAMILIES {
        s += &format!(
            r#"
experiment fam_{name} {{
  model   = hf("{model}")
  data    = gsm8k("{data}", train: 8, test: 4, max_len: 48, loss: all)
  targets = [q, k, v, o, gate, up, down]
  train {{
    optimizer: adamw(lr: 1e-2, weight_decay: 0),
    schedule: constant,
    epochs: 2,
    batch: 4,
    seed: 0,
  }}
  run peft_lora
}}
"#,
            model = fixtures().join(format!("tiny-{name}")).display(),
            data = gsm8k_dir().display(),
        );
    }
    s
}

/// `[out, in]` weights of `name` in a store, as f64.
fn w(store: &TensorStore, name: &str) -> Vec<f64> {
    store.get(name).unwrap_or_else(|| panic!("missing {name}")).data.iter().map(|&x| x as f64).collect()
}

fn max_abs(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

/// `scale · B A` of a PEFT module (`B [out, r]`, `A [r, in]`).
fn peft_delta(t: &BTreeMap<String, F32Tensor>, module: &str, scale: f64) -> Vec<f64> {
    let a = &t[&format!("base_model.model.{module}.lora_A.weight")];
    let b = &t[&format!("base_model.model.{module}.lora_B.weight")];
    let (r, inp, out) = (a.shape[0], a.shape[1], b.shape[0]);
    assert_eq!(b.shape[1], r, "{module}");
    let mut d = vec![0f64; out * inp];
    for o in 0..out {
        for k in 0..r {
            let bk = b.data[o * r + k] as f64;
            for i in 0..inp {
                d[o * inp + i] += scale * bk * a.data[k * inp + i] as f64;
            }
        }
    }
    d
}

#[test]
fn every_family_trains_and_the_fused_and_biased_ones_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("specs")).unwrap();
    std::fs::write(tmp.path().join("specs/families.peft"), spec()).unwrap();
    let (code, out) = peftc(&["run", "specs", "--quiet"], tmp.path(), &[]);
    assert_eq!(code, 0, "{out}");
    for name in FAMILIES {
        let m = metrics(&tmp.path().join(format!("runs/fam_{name}/peft_lora")));
        assert_eq!(m.status, RunStatus::Complete, "{name}");
        let [e1, e2] = [&m.epochs[0], &m.epochs[1]];
        assert!(e1.train_bits.is_finite() && e2.train_bits < e1.train_bits, "{name}: {:?}", m.epochs);
        println!("{name:8} train {:.3} → {:.3} bits", e1.train_bits, e2.train_bits);
    }

    for name in ["phi3", "qwen2"] {
        let run = tmp.path().join(format!("runs/fam_{name}/peft_lora"));
        let merged_dir = tmp.path().join(format!("merged-{name}"));
        let (code, out) = peftc(&["merge", &run.to_string_lossy(), "--out", &merged_dir.to_string_lossy()], tmp.path(), &[]);
        assert_eq!(code, 0, "{out}");
        let export_dir = tmp.path().join(format!("peft-{name}"));
        let (code, out) = peftc(&["export-peft", &run.to_string_lossy(), "--out", &export_dir.to_string_lossy()], tmp.path(), &[]);
        assert_eq!(code, 0, "{out}");

        let base = load_model(&fixtures().join(format!("tiny-{name}"))).unwrap();
        let merged = load_model(&merged_dir).unwrap();
        assert_eq!(merged.config.arch, base.config.arch, "{name}: the merged config keeps the family");
        // The merged checkpoint is stored in the family's own layout.
        let header = std::fs::read(merged_dir.join("model.safetensors")).unwrap();
        let names = safetensors::SafeTensors::deserialize(&header).unwrap().names().into_iter().map(String::from).collect::<Vec<_>>();
        let fused = names.iter().any(|n| n.ends_with("qkv_proj.weight")) && names.iter().any(|n| n.ends_with("gate_up_proj.weight"));
        assert_eq!(fused, name == "phi3", "{name}: {names:?}");
        // Qwen2's frozen biases come through the merge unchanged.
        for (key, t) in &base.tensors {
            if key.ends_with(".bias") {
                assert_eq!(merged.tensors[key].data, t.data, "{key}");
            }
        }
        // The merged model differs from the base (the adapter was trained).
        let (ids, _, _) = reference(&fixtures().join(format!("tiny-{name}.logits.safetensors")));
        let moved = peftc_logits(&base, &ids).iter().zip(peftc_logits(&merged, &ids)).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(moved > 1e-3, "{name}: merged logits moved by {moved}");

        // The PEFT adapter, applied to the checkpoint's own layout, gives the merged weights.
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(export_dir.join("adapter_config.json")).unwrap()).unwrap();
        let t = st::load(&export_dir.join("adapter_model.safetensors")).unwrap();
        let base_store = to_checkpoint_layout(&base.config, &base.tensors).unwrap();
        let merged_store = to_checkpoint_layout(&merged.config, &merged.tensors).unwrap();
        let modules: Vec<String> = config["target_modules"].as_array().unwrap().iter().map(|m| m.as_str().unwrap().to_string()).collect();
        let want: Vec<&str> = if name == "phi3" {
            vec!["down_proj", "gate_up_proj", "o_proj", "qkv_proj"]
        } else {
            vec!["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]
        };
        assert_eq!(modules, want, "{name}");
        let r = config["r"].as_u64().unwrap() as f64;
        let pattern = |field: &str, module: &str| {
            config[field].as_object().unwrap().get(&format!("^{}$", module.replace('.', "\\."))).and_then(|v| v.as_f64())
        };
        for l in 0..base.config.num_layers {
            for m in &modules {
                let part = if ["q_proj", "k_proj", "v_proj", "qkv_proj", "o_proj"].contains(&m.as_str()) { "self_attn" } else { "mlp" };
                let module = format!("model.layers.{l}.{part}.{m}");
                let rank = pattern("rank_pattern", &module).unwrap_or(r);
                let alpha = pattern("alpha_pattern", &module).unwrap_or(config["lora_alpha"].as_f64().unwrap());
                if name == "phi3" && m.ends_with("qkv_proj") {
                    assert_eq!(rank, 3.0 * r, "{module}: q, k and v adapters of rank r become one of rank 3r");
                }
                let weight = format!("{module}.weight");
                let delta: Vec<f64> = w(&merged_store, &weight).iter().zip(w(&base_store, &weight)).map(|(a, b)| a - b).collect();
                let err = max_abs(&peft_delta(&t, &module, alpha / rank), &delta);
                let size = delta.iter().fold(0.0f64, |m, x| m.max(x.abs()));
                assert!(size > 1e-4 && err < 1e-5, "{name} {module}: |ΔW| {size:e}, |ΔW − scale·BA| {err:e}");
            }
        }
    }
}
