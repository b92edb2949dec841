//! Every model family against transformers: tiny random-weight checkpoints
//! of Llama, Llama 3 (RoPE scaling), Gemma, Gemma 2, Gemma 3, Qwen2,
//! Mistral and Phi-3, as HF directories and as GGUF files written by
//! llama.cpp's rules (`scripts/make-tiny-models.py`,
//! `tests/fixtures/models/README.md`), with transformers' logits for a fixed
//! 40-token sequence. peftc's logits match within 1e-4 from both forms.

use std::path::{Path, PathBuf};

use burn::backend::NdArray;
use burn::prelude::*;
use burn::tensor::TensorData as BurnData;
use peftc::model::Llama;
use peftc::model::hook::NoAdapter;
use peftc::pretrained::family::{Family, LayerKind};
use peftc::pretrained::source::load_model;
use peftc::pretrained::weights::LoadedModel;
use safetensors::SafeTensors;

type B = NdArray<f32>;

/// Largest |peftc − transformers| accepted for any logit.
const TOLERANCE: f32 = 1e-4;

pub const FAMILIES: [&str; 8] = ["llama", "llama3", "gemma", "gemma2", "gemma3", "qwen2", "mistral", "phi3"];

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models")
}

/// `(ids, logits [seq, vocab])` of a reference file.
pub fn reference(file: &Path) -> (Vec<i64>, Vec<f32>, [usize; 2]) {
    let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let ids = st.tensor("ids").unwrap();
    let ids: Vec<i64> = ids.data().chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect();
    let logits = st.tensor("logits").unwrap();
    let shape = [logits.shape()[0], logits.shape()[1]];
    let logits: Vec<f32> = logits.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    (ids, logits, shape)
}

/// The GGUF's reference logits: its own file when the GGUF model differs
/// from the HF one (what GGUF metadata cannot express), else the HF logits.
fn gguf_reference(name: &str) -> PathBuf {
    let own = fixtures().join(format!("tiny-{name}.gguf.logits.safetensors"));
    if own.is_file() { own } else { fixtures().join(format!("tiny-{name}.logits.safetensors")) }
}

pub fn peftc_logits(model: &LoadedModel, ids: &[i64]) -> Vec<f32> {
    let device = Default::default();
    let llama = Llama::<B>::from_loaded(model, &device).unwrap();
    let tokens = Tensor::<B, 2, Int>::from_data(BurnData::new(ids.to_vec(), [1, ids.len()]), &device);
    let real = Tensor::<B, 2, Bool>::from_data(BurnData::new(vec![true; ids.len()], [1, ids.len()]), &device);
    llama.forward(tokens, real, &NoAdapter).into_data().into_vec::<f32>().unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn check(model_path: &Path, reference_file: &Path) -> f32 {
    let model = load_model(model_path).unwrap_or_else(|e| panic!("{}: {e:#}", model_path.display()));
    let (ids, want, shape) = reference(reference_file);
    assert_eq!(shape, [ids.len(), model.config.vocab_size]);
    let got = peftc_logits(&model, &ids);
    let diff = max_abs_diff(&got, &want);
    assert!(diff < TOLERANCE, "{}: max |Δlogit| = {diff:e} against {}", model_path.display(), reference_file.display());
    diff
}

#[test]
fn every_family_matches_transformers_from_hf_and_gguf() {
    let mut table = Vec::new();
    for name in FAMILIES {
        let hf = check(&fixtures().join(format!("tiny-{name}")), &fixtures().join(format!("tiny-{name}.logits.safetensors")));
        let gguf = check(&fixtures().join(format!("tiny-{name}.gguf")), &gguf_reference(name));
        table.push(format!("{name:8} hf {hf:.1e}  gguf {gguf:.1e}"));
    }
    println!("{}", table.join("\n"));
}

#[test]
fn families_resolve_their_features_from_the_config() {
    let config = |name: &str| load_model(&fixtures().join(format!("tiny-{name}"))).unwrap().config;
    let llama = config("llama");
    assert_eq!(llama.arch.family, Family::Llama);
    assert!(llama.arch.layer_types.is_empty() && !llama.arch.add_bos);
    let gemma = config("gemma");
    assert!(gemma.arch.gemma_norm && gemma.arch.embed_scale && gemma.arch.add_bos && gemma.head_dim * gemma.num_heads != gemma.hidden_size);
    let gemma2 = config("gemma2");
    assert_eq!(gemma2.arch.layer_types, vec![LayerKind::Sliding, LayerKind::Full]);
    assert_eq!(
        (gemma2.arch.attn_softcap, gemma2.arch.final_softcap, gemma2.arch.query_pre_attn_scalar),
        (Some(2.0), Some(1.5), Some(24.0))
    );
    let gemma3 = config("gemma3");
    assert!(gemma3.arch.qk_norm && gemma3.arch.final_softcap.is_none());
    assert_eq!((gemma3.rope_theta, gemma3.arch.rope_local_theta), (1e6, Some(1e4)));
    assert!(config("qwen2").arch.qkv_bias);
    let mistral = config("mistral");
    assert_eq!((mistral.arch.sliding_window, mistral.arch.layer_types), (Some(8), vec![LayerKind::Sliding; 2]));
    assert_eq!(config("phi3").arch.family, Family::Phi3);
}

/// peftc's writers keep every family: an HF directory saved from the GGUF
/// (`to-hf`) and a GGUF written from the HF directory load back to the same
/// configuration and logits.
#[test]
fn every_family_round_trips_through_peftcs_writers() {
    use peftc::pretrained::gguf::GgmlType;
    use peftc::pretrained::gguf::llama::gguf_writer_for;
    for name in FAMILIES {
        let tmp = tempfile::tempdir().unwrap();
        let (ids, _, _) = reference(&fixtures().join(format!("tiny-{name}.logits.safetensors")));
        for source in [fixtures().join(format!("tiny-{name}")), fixtures().join(format!("tiny-{name}.gguf"))] {
            let model = load_model(&source).unwrap();
            let want = peftc_logits(&model, &ids);
            // llama3's GGUF stores raw RoPE divisors, which config.json cannot name.
            if !(name == "llama3" && source.extension().is_some_and(|e| e == "gguf")) {
                let hf = tmp.path().join("hf");
                peftc::pretrained::hf_dir::save_hf_dir(&model, &hf).unwrap();
                let back = load_model(&hf).unwrap();
                assert_eq!(back.config.arch, model.config.arch, "{name} via HF from {}", source.display());
                assert!(max_abs_diff(&peftc_logits(&back, &ids), &want) == 0.0, "{name} via HF from {}", source.display());
            }
            let gguf = tmp.path().join("m.gguf");
            gguf_writer_for(&model, GgmlType::F32).write(&gguf).unwrap();
            let back = load_model(&gguf).unwrap();
            // What GGUF metadata cannot carry (see the fixtures' README) is
            // what llama.cpp assumes; everything else comes back.
            if name != "gemma2" && name != "gemma3" && name != "mistral" {
                assert_eq!(back.config.arch, model.config.arch, "{name} via GGUF from {}", source.display());
                assert!(max_abs_diff(&peftc_logits(&back, &ids), &want) < 1e-5, "{name} via GGUF from {}", source.display());
            }
        }
    }
}
