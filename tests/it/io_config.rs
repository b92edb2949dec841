//! Model configurations read without silent fallbacks: transformers 5's
//! `rope_parameters` and 4.x's `rope_theta` + `rope_scaling` give the same
//! model; Llama 3's RoPE scaling from config.json and from a GGUF's
//! `rope_freqs` tensor gives the inverse frequencies of HF's formula; every
//! setting peftc does not implement is refused by name.

use crate::support::io as io_support;

use burn::backend::NdArray;
use burn::prelude::*;
use io_support::{tiny_config, tiny_model};
use peftc::model::Llama;
use peftc::model::hook::NoAdapter;
use peftc::pretrained::gguf::GgmlType;
use peftc::pretrained::gguf::llama::{ROPE_FREQS, gguf_writer_for};
use peftc::pretrained::hf_dir::{LLAMA_DEFAULT_ROPE_THETA, config_from_json, config_to_json, save_hf_dir};
use peftc::pretrained::rope_scaling::RopeScaling;
use peftc::pretrained::source::{load_config, load_model};
use peftc::pretrained::weights::{CheckpointDtype, LoadedModel, ModelConfig};
use serde_json::{Value, json};

type B = NdArray<f32>;

/// meta-llama/Llama-3.1-8B's config.json as on the hub (transformers 4.x form).
fn llama31_8b_v4() -> Value {
    json!({
        "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
        "bos_token_id": 128000, "eos_token_id": 128001, "hidden_act": "silu", "hidden_size": 4096,
        "initializer_range": 0.02, "intermediate_size": 14336, "max_position_embeddings": 131072,
        "mlp_bias": false, "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 32,
        "num_key_value_heads": 8, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
        "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 8192, "rope_type": "llama3"},
        "rope_theta": 500000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
        "transformers_version": "4.43.0.dev0", "use_cache": true, "vocab_size": 128256
    })
}

/// The same config as transformers 5's `save_pretrained` writes it: one
/// `rope_parameters` dict (θ inside, no top-level `rope_theta`) and `dtype`.
fn llama31_8b_v5() -> Value {
    let mut v = llama31_8b_v4();
    let o = v.as_object_mut().unwrap();
    o.remove("rope_scaling");
    o.remove("rope_theta");
    o.remove("torch_dtype");
    o.insert("dtype".into(), json!("bfloat16"));
    o.insert(
        "rope_parameters".into(),
        json!({"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
               "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}),
    );
    v
}

const LLAMA31_SCALING: RopeScaling =
    RopeScaling::Llama3 { factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 8192 };

/// HF `_compute_llama3_parameters` for Llama-3.1-8B (head_dim 128, θ 500000,
/// factor 8, low 1, high 4, original 8192), computed independently of peftc
/// in plain Python (f64 `math`), printed with `{:.9e}`:
/// ```text
/// import math
/// d, base, factor, low, high, old = 128, 500000.0, 8.0, 1.0, 4.0, 8192
/// for i in range(d // 2):
///     inv = 1.0 / base ** (2 * i / d); wl = 2 * math.pi / inv
///     if wl < old / high: out = inv
///     elif wl > old / low: out = inv / factor
///     else: s = (old / wl - low) / (high - low); out = (1 - s) * inv / factor + s * inv
/// ```
/// Pairs 0–28 are kept, 29–34 smoothed, 35–63 divided by 8.
const LLAMA31_INV_FREQ: [f64; 64] = [
    1.000000000e+00,
    8.146172339e-01,
    6.636012377e-01,
    5.405810046e-01,
    4.403666027e-01,
    3.587302238e-01,
    2.922278226e-01,
    2.380538205e-01,
    1.939227447e-01,
    1.579728099e-01,
    1.286873734e-01,
    1.048309522e-01,
    8.539710029e-02,
    6.956594961e-02,
    5.666962145e-02,
    4.616405027e-02,
    3.760603093e-02,
    3.063452089e-02,
    2.495540867e-02,
    2.032910598e-02,
    1.656044008e-02,
    1.349041989e-02,
    1.098952853e-02,
    8.952259336e-03,
    7.292664737e-03,
    5.940730376e-03,
    4.839421346e-03,
    3.942276030e-03,
    3.211445995e-03,
    2.166570764e-03,
    1.371893568e-03,
    8.567514129e-04,
    5.248461610e-04,
    3.126937504e-04,
    1.785078128e-04,
    9.556212354e-05,
    7.784655274e-05,
    6.341514346e-05,
    5.165906875e-05,
    4.208236769e-05,
    3.428102196e-05,
    2.792591128e-05,
    2.274892860e-05,
    1.853166929e-05,
    1.509621718e-05,
    1.229763868e-05,
    1.001786840e-05,
    8.160728247e-06,
    6.647869871e-06,
    5.415469365e-06,
    4.411534675e-06,
    3.593712174e-06,
    2.927499870e-06,
    2.384791846e-06,
    1.942692537e-06,
    1.582550821e-06,
    1.289173172e-06,
    1.050182683e-06,
    8.554969126e-07,
    6.969025286e-07,
    5.677088101e-07,
    4.624653805e-07,
    3.767322690e-07,
    3.068925989e-07,
];

/// Largest relative difference between f32 frequencies and f64 references.
fn max_rel_diff(got: &[f32], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    got.iter().zip(want).map(|(g, w)| ((*g as f64 - w) / w).abs()).fold(0.0, f64::max)
}

#[test]
fn transformers_5_and_4_configs_of_llama_3_1_load_identically() {
    let v4 = config_from_json(&llama31_8b_v4()).unwrap();
    let v5 = config_from_json(&llama31_8b_v5()).unwrap();
    assert_eq!(v4, v5);
    assert_eq!(v5.rope_theta, 500_000.0);
    assert_eq!(v5.rope_scaling, LLAMA31_SCALING);
    assert_eq!((v5.head_dim, v5.num_kv_heads, v5.max_position_embeddings), (128, 8, 131_072));
    // 4.x's `type` is an alias of `rope_type`.
    let mut alias = llama31_8b_v4();
    let scaling = alias["rope_scaling"].as_object_mut().unwrap();
    scaling.remove("rope_type");
    scaling.insert("type".into(), json!("llama3"));
    assert_eq!(config_from_json(&alias).unwrap(), v4);
    // Both forms at once (a 4.x config re-saved by hand) are fine when they agree.
    let mut both = llama31_8b_v5();
    both["rope_theta"] = json!(500000.0);
    both["rope_scaling"] = llama31_8b_v4()["rope_scaling"].clone();
    assert_eq!(config_from_json(&both).unwrap(), v4);
}

#[test]
fn transformers_5_config_without_scaling_keeps_its_theta() {
    // The bug this guards: a 5.x config has no top-level `rope_theta`, and
    // peftc used to fall back to 10000 for it.
    let mut v4 = config_to_json(&tiny_config(true)).unwrap();
    v4["rope_theta"] = json!(100000.0);
    let mut v5 = v4.clone();
    v5.as_object_mut().unwrap().remove("rope_theta");
    v5["rope_parameters"] = json!({"rope_type": "default", "rope_theta": 100000.0});
    let (a, b) = (config_from_json(&v4).unwrap(), config_from_json(&v5).unwrap());
    assert_eq!(a, b);
    assert_eq!((b.rope_theta, &b.rope_scaling), (100_000.0, &RopeScaling::Default));
    // θ at the top level beside a `rope_parameters` without one is used.
    v5["rope_parameters"] = json!({"rope_type": "default"});
    v5["rope_theta"] = json!(100000.0);
    assert_eq!(config_from_json(&v5).unwrap(), a);
    // No θ anywhere: LlamaConfig's documented default, 10000.
    let mut none = v4.clone();
    none.as_object_mut().unwrap().remove("rope_theta");
    assert_eq!(config_from_json(&none).unwrap().rope_theta, LLAMA_DEFAULT_ROPE_THETA);
    assert_eq!(LLAMA_DEFAULT_ROPE_THETA, 10_000.0);
}

#[test]
fn llama3_inverse_frequencies_match_the_hf_formula() {
    let c = config_from_json(&llama31_8b_v5()).unwrap();
    let inv = c.rope_inv_freq();
    let err = max_rel_diff(&inv, &LLAMA31_INV_FREQ);
    assert!(err < 1e-6, "max relative difference {err}");
    // Not the unscaled frequencies: the low ones are divided by 8.
    let plain = RopeScaling::Default.inv_freq(500_000.0, 128);
    assert!((plain[63] / inv[63] - 8.0).abs() < 1e-4 && plain[0] == inv[0]);
}

/// A one-layer model shaped like Llama-3.1-8B's heads (head_dim 128).
fn llama3_shaped(scaling: RopeScaling, theta: f64) -> LoadedModel {
    let config = ModelConfig {
        hidden_size: 128,
        num_heads: 1,
        num_kv_heads: 1,
        head_dim: 128,
        num_layers: 1,
        rope_theta: theta,
        rope_scaling: scaling,
        ..tiny_config(false)
    };
    tiny_model(config, 3)
}

#[test]
fn gguf_rope_freqs_give_the_frequencies_of_the_equivalent_config() {
    let dir = tempfile::tempdir().unwrap();
    let gguf = dir.path().join("llama3.gguf");
    // llama.cpp's converter writes `rope_freqs.weight`, no scaling metadata.
    gguf_writer_for(&llama3_shaped(LLAMA31_SCALING, 500_000.0), GgmlType::F32).write(&gguf).unwrap();
    let from_gguf = load_config(&gguf).unwrap();
    let RopeScaling::FreqFactors { factors } = &from_gguf.rope_scaling else { panic!("{:?}", from_gguf.rope_scaling) };
    assert_eq!(factors.len(), 64);
    assert_eq!((factors[0], factors[63]), (1.0, 8.0));
    let err = max_rel_diff(&from_gguf.rope_inv_freq(), &LLAMA31_INV_FREQ);
    assert!(err < 1e-6, "GGUF frequencies: max relative difference {err}");
    // ... and the full loader keeps them out of the weights.
    let loaded = load_model(&gguf).unwrap();
    assert_eq!(loaded.config, from_gguf);
    assert!(!loaded.tensors.contains_key(ROPE_FREQS) && !loaded.tensors.keys().any(|k| k.contains("rope")));
}

/// Logits of `m` on a 48-token sequence.
fn logits(m: &LoadedModel) -> Vec<f32> {
    let dev = Default::default();
    let model: Llama<B> = Llama::from_loaded(m, &dev).unwrap();
    let ids: Vec<i64> = (0..48).map(|i| (i * 7 % 44) as i64).collect();
    let tokens = Tensor::<B, 2, Int>::from_data(burn::tensor::TensorData::new(ids, [1, 48]), &dev);
    let pad = Tensor::<B, 2, Bool>::from_data(burn::tensor::TensorData::new(vec![true; 48], [1, 48]), &dev);
    model.forward(tokens, pad, &NoAdapter).into_data().into_vec::<f32>().unwrap()
}

#[test]
fn llama3_model_runs_the_same_from_config_json_and_gguf() {
    // head_dim 8 at θ 10000 (wavelengths 6.3, 63, 628, 6283) with original
    // 1024, low 1, high 4: two pairs kept, one smoothed, one divided.
    let scaling = RopeScaling::Llama3 { factor: 4.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 1024 };
    let model = tiny_model(ModelConfig { rope_scaling: scaling.clone(), ..tiny_config(false) }, 9);
    let dir = tempfile::tempdir().unwrap();
    let hf = dir.path().join("hf");
    save_hf_dir(&model, &hf).unwrap();
    let config: Value = serde_json::from_str(&std::fs::read_to_string(hf.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["rope_scaling"]["rope_type"], "llama3");
    let from_hf = load_model(&hf).unwrap();
    assert_eq!(from_hf.config, model.config);
    let gguf = dir.path().join("tiny.gguf");
    gguf_writer_for(&model, GgmlType::F32).write(&gguf).unwrap();
    let from_gguf = load_model(&gguf).unwrap();
    assert!(matches!(from_gguf.config.rope_scaling, RopeScaling::FreqFactors { .. }));

    let (a, b) = (logits(&from_hf), logits(&from_gguf));
    let diff = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
    assert!(diff < 1e-5, "HF dir vs GGUF logits differ by {diff}");
    // The scaling reaches the forward: unscaled RoPE gives other logits.
    let plain = logits(&LoadedModel { config: tiny_config(false), ..model.clone() });
    let moved = a.iter().zip(&plain).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
    assert!(moved > 1e-3, "llama3 scaling changed the logits by only {moved}");

    // GGUF divisors have no config.json form: saving refuses, and says why.
    let err = format!("{:#}", save_hf_dir(&from_gguf, &dir.path().join("back")).unwrap_err());
    assert!(err.contains("rope_freqs"), "{err}");
    assert!(!dir.path().join("back").exists());
}

#[test]
fn unimplemented_settings_are_refused_by_name() {
    let base = || config_to_json(&tiny_config(true)).unwrap();
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "model_type",
            json!("falcon"),
            "`model_type: \"falcon\"` is not supported (peftc implements: llama, mistral, qwen2, gemma, gemma2, gemma3_text, phi3)",
        ),
        ("model_type", json!("gemma3"), "(a multimodal Gemma 3; peftc trains the text model, `gemma3_text`)"),
        (
            "model_type",
            json!("mistral"),
            "`architectures: [\"LlamaForCausalLM\"]` is not supported (peftc implements MistralForCausalLM for `mistral`)",
        ),
        (
            "architectures",
            json!(["LlamaForSequenceClassification"]),
            "`architectures: [\"LlamaForSequenceClassification\"]` is not supported",
        ),
        ("hidden_act", json!("gelu"), "`hidden_act: \"gelu\"` is not supported (this family's MLP uses silu)"),
        ("hidden_activation", json!("gelu_pytorch_tanh"), "`hidden_activation: \"gelu_pytorch_tanh\"` is not supported"),
        ("attention_bias", json!(true), "`attention_bias: true` is not supported (only Qwen2's q/k/v biases are implemented)"),
        ("mlp_bias", json!(true), "`mlp_bias: true` is not supported"),
        ("attention_dropout", json!(0.1), "`attention_dropout: 0.1` is not supported"),
        ("partial_rotary_factor", json!(0.75), "`partial_rotary_factor: 0.75` is not supported (peftc rotates every dimension of a head)"),
        ("sliding_window", json!(4096), "`sliding_window: 4096` is not supported for `llama` (its layers attend to the whole prefix)"),
        ("use_sliding_window", json!(true), "`use_sliding_window: true` is not supported"),
        (
            "layer_types",
            json!(["sliding_attention", "full_attention"]),
            "`layer_types: [\"sliding_attention\",\"full_attention\"]` is not supported",
        ),
        ("quantization_config", json!({"quant_method": "gptq"}), "`quantization_config: {\"quant_method\":\"gptq\"}` is not supported"),
        (
            "torch_dtype",
            json!("float8_e4m3fn"),
            "`torch_dtype: \"float8_e4m3fn\"` is not supported (peftc reads float32, float16, bfloat16 checkpoints)",
        ),
        ("dtype", json!("int8"), "`dtype: \"int8\"` is not supported"),
        ("query_pre_attn_scalar", json!(256), "`query_pre_attn_scalar: 256` is not supported for `llama` (only Gemma 2 and 3 use it)"),
        ("final_logit_softcapping", json!(30.0), "`final_logit_softcapping: 30.0` is not supported for `llama`"),
        ("rope_local_base_freq", json!(10000.0), "a separate RoPE base for sliding layers (10000) is not supported for `llama`"),
        (
            "use_bidirectional_attention",
            json!(true),
            "`use_bidirectional_attention: true` is not supported (peftc trains causal language models)",
        ),
        ("resid_pdrop", json!(0.1), "`resid_pdrop: 0.1` is not supported (peftc trains without dropout)"),
        (
            "rope_scaling",
            json!({"type": "linear", "factor": 2.0}),
            "`rope_scaling.type: \"linear\"` is not supported (peftc implements RoPE types: default, llama3)",
        ),
        ("rope_scaling", json!({"rope_type": "yarn", "factor": 4.0}), "`rope_scaling.rope_type: \"yarn\"` is not supported"),
        (
            "rope_parameters",
            json!({"rope_type": "dynamic", "rope_theta": 10000.0}),
            "`rope_parameters.rope_type: \"dynamic\"` is not supported",
        ),
        (
            "rope_parameters",
            json!({"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5}),
            "`rope_parameters.partial_rotary_factor: 0.5` is not supported",
        ),
        ("rope_parameters", json!({"rope_theta": 10000.0}), "`rope_parameters` has no `rope_type`"),
        (
            "rope_parameters",
            json!({"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0}),
            "llama3 RoPE needs `rope_parameters.original_max_position_embeddings`",
        ),
        (
            "rope_scaling",
            json!({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 4.0, "high_freq_factor": 1.0, "original_max_position_embeddings": 8192}),
            "llama3 RoPE needs low_freq_factor < high_freq_factor, found 4 and 1",
        ),
        (
            "rope_scaling",
            json!({"rope_type": "llama3", "type": "linear"}),
            "`rope_scaling.rope_type: \"llama3\"` and `rope_scaling.type: \"linear\"` disagree",
        ),
        (
            "rope_parameters",
            json!({"rope_type": "default", "rope_theta": 500000.0}),
            "`rope_parameters.rope_theta` 500000 and `rope_theta` 10000 disagree",
        ),
    ];
    for (key, value, want) in cases {
        let mut v = base();
        v[key] = value.clone();
        let err = format!("{:#}", config_from_json(&v).unwrap_err());
        assert!(err.contains(want), "{key} = {value}: {err}");
    }
    // The neutral values of the same keys load.
    let mut ok = base();
    for (key, value) in [
        ("attention_bias", json!(false)),
        ("attention_dropout", json!(0)),
        ("partial_rotary_factor", json!(1)),
        ("sliding_window", Value::Null),
        ("use_sliding_window", json!(false)),
        ("layer_types", json!(["full_attention", "full_attention"])),
        ("dtype", json!("bfloat16")),
        ("rope_scaling", Value::Null),
    ] {
        ok[key] = value;
    }
    // `dtype` names the checkpoint's weights (kept for `precision: checkpoint`).
    assert_eq!(config_from_json(&ok).unwrap(), ModelConfig { dtype: CheckpointDtype::Bf16, ..tiny_config(true) });
    ok["dtype"] = Value::Null;
    ok["torch_dtype"] = json!("float16");
    assert_eq!(config_from_json(&ok).unwrap().dtype, CheckpointDtype::F16);
    ok["torch_dtype"] = json!("float32");
    assert_eq!(config_from_json(&ok).unwrap(), tiny_config(true));
    // No `model_type` is not silently taken for a Llama.
    let mut missing = base();
    missing.as_object_mut().unwrap().remove("model_type");
    let err = format!("{:#}", config_from_json(&missing).unwrap_err());
    assert!(err.contains("missing `model_type`"), "{err}");
}

#[test]
fn unimplemented_gguf_settings_are_refused_by_name() {
    let model = tiny_model(tiny_config(true), 4);
    let refused = |edit: &dyn Fn(&mut peftc::pretrained::gguf::GgufWriter)| {
        let mut w = gguf_writer_for(&model, GgmlType::F32);
        edit(&mut w);
        let g = peftc::pretrained::gguf::GgufFile::from_bytes(w.to_bytes()).unwrap();
        peftc::pretrained::gguf::llama::config_from_gguf(&g).unwrap_err().to_string()
    };
    let err = refused(&|w| {
        w.meta_str("llama.rope.scaling.type", "linear");
    });
    assert!(err.contains("`llama.rope.scaling.type` = `linear` is not supported"), "{err}");
    let err = refused(&|w| {
        w.meta_u32("llama.attention.sliding_window", 4096);
    });
    assert!(err.contains("`llama.attention.sliding_window` = 4096 is not supported"), "{err}");
    let err = refused(&|w| {
        w.tensor(ROPE_FREQS, &[3], GgmlType::F32, &[1.0, 1.0, 2.0]);
    });
    assert!(err.contains("rope_freqs.weight") && err.contains("3 RoPE frequency factors for head_dim 8 (expected 4)"), "{err}");
    let err = refused(&|w| {
        w.tensor(ROPE_FREQS, &[4], GgmlType::F32, &[1.0, 0.0, 2.0, 2.0]);
    });
    assert!(err.contains("RoPE frequency factor 0 is not a positive number"), "{err}");
}

/// The families' own settings peftc does not implement are refused by name
/// too, starting from the tiny fixtures' transformers-5 configs.
#[test]
fn family_settings_peftc_does_not_implement_are_refused_by_name() {
    let fixture = |name: &str| -> Value {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/models/tiny-{name}/config.json"));
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    };
    let cases: Vec<(&str, &str, Value, &str)> = vec![
        (
            "gemma3",
            "hidden_activation",
            json!("silu"),
            "`hidden_activation: \"silu\"` is not supported (Gemma's MLP uses gelu_pytorch_tanh)",
        ),
        ("gemma", "hidden_act", json!("relu"), "`hidden_act: \"relu\"` is not supported (Gemma's MLP uses gelu_pytorch_tanh)"),
        ("qwen2", "hidden_act", json!("gelu"), "`hidden_act: \"gelu\"` is not supported (this family's MLP uses silu)"),
        (
            "mistral",
            "layer_types",
            json!(["sliding_attention", "full_attention"]),
            "is not supported for `mistral` (transformers ignores it and gives every layer sliding_attention)",
        ),
        ("gemma2", "sliding_window", Value::Null, "sliding layers in `layer_types` need a `sliding_window`"),
        ("gemma2", "layer_types", json!(["sliding_attention"]), "`layer_types` has 1 entries for 2 layers"),
        (
            "gemma2",
            "layer_types",
            json!(["chunked_attention", "full_attention"]),
            "layer type \"chunked_attention\" in `layer_types` is not supported",
        ),
        ("gemma2", "attn_logit_softcapping", json!(-1.0), "`attn_logit_softcapping` must be a positive number"),
        ("gemma3", "use_bidirectional_attention", json!(true), "`use_bidirectional_attention: true` is not supported"),
        (
            "gemma3",
            "rope_parameters",
            json!({"full_attention": {"rope_type": "default", "rope_theta": 1e6}, "sliding_attention": {"rope_type": "linear", "factor": 8.0}}),
            "`rope_parameters.sliding_attention.rope_type: \"linear\"` is not supported",
        ),
        (
            "gemma3",
            "rope_parameters",
            json!({"sliding_attention": {"rope_type": "default"}}),
            "`rope_parameters` has no `full_attention` section",
        ),
        ("gemma3", "bos_token_id", Value::Null, "`gemma3` starts every sequence with BOS, but `bos_token_id` is missing"),
        (
            "phi3",
            "rope_parameters",
            json!({"rope_type": "longrope", "rope_theta": 10000.0}),
            "`rope_parameters.rope_type: \"longrope\"` is not supported",
        ),
        ("phi3", "resid_pdrop", json!(0.1), "`resid_pdrop: 0.1` is not supported (peftc trains without dropout)"),
        ("qwen2", "architectures", json!(["LlamaForCausalLM"]), "(peftc implements Qwen2ForCausalLM for `qwen2`)"),
    ];
    for (family, key, value, want) in cases {
        let mut v = fixture(family);
        v[key] = value.clone();
        let err = format!("{:#}", config_from_json(&v).unwrap_err());
        assert!(err.contains(want), "{family}: {key} = {value}: {err}");
    }
    // Every fixture config itself loads, and a 4.x-style Gemma 3 config
    // (`rope_theta` + `rope_local_base_freq`) equals its 5.x form.
    for family in ["llama", "llama3", "gemma", "gemma2", "gemma3", "qwen2", "mistral", "phi3"] {
        config_from_json(&fixture(family)).unwrap();
    }
    let v5 = fixture("gemma3");
    let mut v4 = v5.clone();
    let o = v4.as_object_mut().unwrap();
    o.remove("rope_parameters");
    o.insert("rope_theta".into(), json!(1e6));
    o.insert("rope_local_base_freq".into(), json!(10000.0));
    assert_eq!(config_from_json(&v4).unwrap(), config_from_json(&v5).unwrap());
    // Missing keys take transformers' per-family defaults: Gemma 2's caps
    // 50 / 30 and scalar 256; Mistral's window 4096 on every layer.
    let mut g2 = fixture("gemma2");
    for key in ["attn_logit_softcapping", "final_logit_softcapping", "query_pre_attn_scalar"] {
        g2.as_object_mut().unwrap().remove(key);
    }
    let a = config_from_json(&g2).unwrap().arch;
    assert_eq!((a.attn_softcap, a.final_softcap, a.query_pre_attn_scalar), (Some(50.0), Some(30.0), Some(256.0)));
    let mut m = fixture("mistral");
    m.as_object_mut().unwrap().remove("sliding_window");
    assert_eq!(config_from_json(&m).unwrap().arch.sliding_window, Some(4096));
}

#[test]
fn phi3_longrope_factors_in_a_gguf_are_refused_by_name() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models/tiny-phi3.gguf");
    let phi3 = load_model(&path).unwrap();
    let mut w = gguf_writer_for(&phi3, GgmlType::F32);
    w.tensor("rope_factors_long.weight", &[8], GgmlType::F32, &[1.0; 8]);
    let g = peftc::pretrained::gguf::GgufFile::from_bytes(w.to_bytes()).unwrap();
    let err = peftc::pretrained::gguf::llama::loaded_from_gguf(&g, 1).unwrap_err().to_string();
    assert!(
        err.contains("unexpected tensor `rope_factors_long.weight` for a phi3 model (peftc's phi3 model has no such parameter)"),
        "{err}"
    );
}
