//! HF-style model directories: `config.json` + `model.safetensors` (or a
//! sharded `model.safetensors.index.json`), tensors in f32/f16/bf16, and an
//! optional `tokenizer.json`. The writer saves a [`LoadedModel`] in the same
//! form (f32), which reloads bit-identically.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail, ensure};
use half::{bf16, f16};
use safetensors::{Dtype, SafeTensors};
use serde_json::{Value, json};

use crate::pretrained::family::{Activation, Arch, Family, LayerKind, expected_shapes, to_checkpoint_layout, to_model_layout};
use crate::pretrained::gguf::llama::{MAX_LAYERS, check_config_bounds};
use crate::pretrained::rope_scaling::RopeScaling;
use crate::pretrained::tokenizer::Tokenizer;
use crate::pretrained::weights::{CheckpointDtype, LoadedModel, ModelConfig, TensorData, TensorStore, TokenizerSource};
use crate::runs::atomic::write_atomic;

pub const CONFIG_FILE: &str = "config.json";
pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const INDEX_FILE: &str = "model.safetensors.index.json";
pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// `rope_theta` when a config names none anywhere: transformers'
/// `LlamaConfig` default (`rope_theta=10000.0`), which is what transformers
/// itself runs such a config with.
pub const LLAMA_DEFAULT_ROPE_THETA: f64 = 10_000.0;

/// The `dtype` / `torch_dtype` values of checkpoints peftc reads.
const DTYPES: &[&str] = &["float32", "float16", "bfloat16"];

/// Why a `partial_rotary_factor` other than 1 is refused.
const ROTATE_ALL: &str = "peftc rotates every dimension of a head";

/// `rope_type`s peftc implements.
const ROPE_TYPES: &[&str] = &["default", "llama3"];

/// A JSON object's non-null value by key.
fn field<'a>(obj: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

fn number(v: &Value, key: &str) -> Result<f64> {
    v.as_f64().ok_or_else(|| anyhow!("config.json: `{key}` must be a number, found {v}"))
}

/// Refuse `key`'s value when present and other than `neutral` (the one
/// value under which peftc's arithmetic is what the checkpoint means).
fn refuse_unless(value: Option<&Value>, key: &str, neutral: &Value, why: &str) -> Result<()> {
    match value {
        Some(v) if !(v == neutral || matches!((v.as_f64(), neutral.as_f64()), (Some(a), Some(b)) if a == b)) => {
            bail!("config.json: `{key}: {v}` is not supported ({why})")
        }
        _ => Ok(()),
    }
}

/// The family a config names, checked against its `architectures`.
fn family_of(obj: &serde_json::Map<String, Value>) -> Result<Family> {
    let known = || Family::ALL.iter().flat_map(|f| f.model_types()).copied().collect::<Vec<_>>().join(", ");
    let model_type = match field(obj, "model_type") {
        None => bail!("config.json: missing `model_type` (peftc implements: {})", known()),
        Some(v) => v.as_str().ok_or_else(|| anyhow!("config.json: `model_type` must be a string, found {v}"))?,
    };
    let hint = match model_type {
        "gemma3" => " (a multimodal Gemma 3; peftc trains the text model, `gemma3_text`)",
        _ => "",
    };
    let family = Family::from_model_type(model_type)
        .ok_or_else(|| anyhow!("config.json: `model_type: \"{model_type}\"` is not supported{hint} (peftc implements: {})", known()))?;
    if let Some(archs) = field(obj, "architectures") {
        let ok = archs.as_array().is_some_and(|a| a.iter().all(|x| x.as_str() == Some(family.hf_class())));
        ensure!(ok, "config.json: `architectures: {archs}` is not supported (peftc implements {} for `{model_type}`)", family.hf_class());
    }
    Ok(family)
}

/// The settings in a config that change the arithmetic and that peftc does
/// not implement: each is refused by name, never ignored.
fn refuse_unimplemented(obj: &serde_json::Map<String, Value>, family: Family) -> Result<()> {
    let refuse = |key: &str, neutral: Value, why: &str| refuse_unless(field(obj, key), key, &neutral, why);
    if family.is_gemma() {
        // Gemma's MLP is GeGLU with tanh GELU; `hidden_activation` wins over
        // the legacy `hidden_act`, whose "gelu" transformers rewrites to it.
        let tanh = json!("gelu_pytorch_tanh");
        match field(obj, "hidden_activation") {
            Some(_) => refuse("hidden_activation", tanh, "Gemma's MLP uses gelu_pytorch_tanh")?,
            None if field(obj, "hidden_act") == Some(&json!("gelu")) => {}
            None => refuse("hidden_act", tanh, "Gemma's MLP uses gelu_pytorch_tanh")?,
        }
    } else {
        refuse("hidden_act", json!("silu"), "this family's MLP uses silu")?;
        refuse("hidden_activation", json!("silu"), "this family's MLP uses silu")?;
    }
    refuse("attention_bias", json!(false), "only Qwen2's q/k/v biases are implemented")?;
    refuse("mlp_bias", json!(false), "MLP biases are not implemented")?;
    refuse("attention_dropout", json!(0.0), "peftc trains without attention dropout")?;
    refuse("resid_pdrop", json!(0.0), "peftc trains without dropout")?;
    refuse("embd_pdrop", json!(0.0), "peftc trains without dropout")?;
    refuse("partial_rotary_factor", json!(1.0), ROTATE_ALL)?;
    if family != Family::Qwen2 {
        refuse("use_sliding_window", json!(false), "only Qwen2 has this switch")?;
    }
    if !matches!(family, Family::Gemma2 | Family::Gemma3) {
        for key in ["attn_logit_softcapping", "final_logit_softcapping", "query_pre_attn_scalar"] {
            if let Some(v) = field(obj, key) {
                bail!("config.json: `{key}: {v}` is not supported for `{family}` (only Gemma 2 and 3 use it)");
            }
        }
    }
    if let Some(q) = field(obj, "quantization_config") {
        bail!("config.json: `quantization_config: {q}` is not supported (peftc reads f32, f16 and bf16 weights)");
    }
    // transformers 5 writes `dtype`, 4.x `torch_dtype`.
    for key in ["dtype", "torch_dtype"] {
        if let Some(v) = field(obj, key) {
            ensure!(
                v.as_str().is_some_and(|d| DTYPES.contains(&d)),
                "config.json: `{key}: {v}` is not supported (peftc reads {} checkpoints)",
                DTYPES.join(", ")
            );
        }
    }
    Ok(())
}

/// Which layers slide and over how many keys: `layer_types` when the config
/// has them (transformers 5 writes them), else the family's rule —
/// Gemma 2 alternates (layer 0 slides), Gemma 3 slides except every
/// `sliding_window_pattern`-th layer, Mistral and Phi-3 slide everywhere a
/// window is set, Qwen2 from `max_window_layers` on when `use_sliding_window`.
fn layers_from_json(obj: &serde_json::Map<String, Value>, family: Family, num_layers: usize) -> Result<(Option<usize>, Vec<LayerKind>)> {
    // A missing key takes transformers' default (Mistral, Gemma 2/3: 4096);
    // an explicit null means no window.
    let window = match obj.get("sliding_window") {
        None if matches!(family, Family::Mistral | Family::Gemma2 | Family::Gemma3 | Family::Qwen2) => Some(4096),
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64().filter(|&w| w > 0).ok_or_else(|| anyhow!("config.json: `sliding_window` must be a positive integer, found {v}"))?
                as usize,
        ),
    };
    let qwen_sliding = field(obj, "use_sliding_window").and_then(Value::as_bool).unwrap_or(false);
    // Qwen2 keeps a `sliding_window` number that is inert unless switched on.
    let window = if family == Family::Qwen2 && !qwen_sliding { None } else { window };
    // transformers reads `layer_types` for Gemma 2/3 and Qwen2 only.
    let honored = matches!(family, Family::Gemma2 | Family::Gemma3 | Family::Qwen2);
    let kinds: Vec<LayerKind> = match field(obj, "layer_types").filter(|_| honored) {
        Some(types) => {
            let list = types.as_array().ok_or_else(|| anyhow!("config.json: `layer_types` must be a list, found {types}"))?;
            ensure!(list.len() == num_layers, "config.json: `layer_types` has {} entries for {num_layers} layers", list.len());
            list.iter()
                .map(|t| match t.as_str() {
                    Some("full_attention") => Ok(LayerKind::Full),
                    Some("sliding_attention") => Ok(LayerKind::Sliding),
                    _ => bail!(
                        "config.json: layer type {t} in `layer_types` is not supported (peftc implements full_attention, sliding_attention)"
                    ),
                })
                .collect::<Result<_>>()?
        }
        None => (0..num_layers)
            .map(|i| {
                let sliding = match family {
                    Family::Gemma2 => (i + 1) % 2 != 0,
                    Family::Gemma3 => {
                        let pattern = field(obj, "sliding_window_pattern").and_then(Value::as_u64).unwrap_or(6) as usize;
                        (i + 1) % pattern.max(1) != 0
                    }
                    Family::Mistral | Family::Phi3 => window.is_some(),
                    Family::Qwen2 => {
                        let from = field(obj, "max_window_layers").and_then(Value::as_u64).unwrap_or(0) as usize;
                        qwen_sliding && i >= from
                    }
                    Family::Llama | Family::Gemma => false,
                };
                if sliding { LayerKind::Sliding } else { LayerKind::Full }
            })
            .collect(),
    };
    if let Some(types) = field(obj, "layer_types").filter(|_| !honored) {
        let wanted = if kinds.contains(&LayerKind::Sliding) { "sliding_attention" } else { "full_attention" };
        let same = types.as_array().is_some_and(|a| a.len() == num_layers && a.iter().all(|t| t.as_str() == Some(wanted)));
        ensure!(
            same,
            "config.json: `layer_types: {types}` is not supported for `{family}` (transformers ignores it and gives every layer {wanted})"
        );
    }
    if !kinds.contains(&LayerKind::Sliding) {
        if let (Some(w), Family::Llama | Family::Gemma) = (window, family) {
            bail!("config.json: `sliding_window: {w}` is not supported for `{family}` (its layers attend to the whole prefix)");
        }
        return Ok((None, Vec::new()));
    }
    let window = window.ok_or_else(|| anyhow!("config.json: sliding layers in `layer_types` need a `sliding_window`"))?;
    Ok((Some(window), kinds))
}

/// What the family changes, resolved from the config.
fn arch_from_json(obj: &serde_json::Map<String, Value>, family: Family, num_layers: usize, rope_local_theta: Option<f64>) -> Result<Arch> {
    let positive = |key: &str| -> Result<Option<f64>> {
        field(obj, key)
            .map(|v| {
                let x = number(v, key)?;
                ensure!(x.is_finite() && x > 0.0, "config.json: `{key}` must be a positive number, found {v}");
                Ok(x)
            })
            .transpose()
    };
    let (sliding_window, layer_types) = layers_from_json(obj, family, num_layers)?;
    // transformers' defaults where the key is missing (an explicit null
    // means "none"): Gemma 2 caps scores at 50 and logits at 30, and Gemma
    // 2 and 3 scale by 256^-½.
    let with_default = |key: &str, default: Option<f64>| -> Result<Option<f64>> {
        match obj.get(key) {
            None => Ok(default),
            Some(_) => positive(key),
        }
    };
    let sandwich = matches!(family, Family::Gemma2 | Family::Gemma3);
    let gemma2 = family == Family::Gemma2;
    if let Some(v) = field(obj, "use_bidirectional_attention").filter(|v| v.as_bool() != Some(false)) {
        bail!("config.json: `use_bidirectional_attention: {v}` is not supported (peftc trains causal language models)");
    }
    Ok(Arch {
        query_pre_attn_scalar: if sandwich { with_default("query_pre_attn_scalar", Some(256.0))? } else { None },
        attn_softcap: with_default("attn_logit_softcapping", gemma2.then_some(50.0))?,
        final_softcap: with_default("final_logit_softcapping", gemma2.then_some(30.0))?,
        sliding_window,
        rope_local_theta: if layer_types.contains(&LayerKind::Sliding) { rope_local_theta } else { None },
        layer_types,
        ..family.base_arch()
    })
}

/// One RoPE settings object: transformers 5's `rope_parameters` or 4.x's
/// `rope_scaling` (`type` is an alias of `rope_type`). Returns its
/// `rope_theta` (5.x keeps θ inside) and the scaling.
fn rope_section(section: &str, v: &Value) -> Result<(Option<f64>, RopeScaling)> {
    let obj = v.as_object().ok_or_else(|| anyhow!("config.json: `{section}` must be an object, found {v}"))?;
    let key = |k: &str| format!("{section}.{k}");
    let (type_key, rope_type) = match (field(obj, "rope_type"), field(obj, "type")) {
        (Some(a), Some(b)) if a != b => bail!("config.json: `{}: {a}` and `{}: {b}` disagree", key("rope_type"), key("type")),
        (Some(t), _) => (key("rope_type"), t),
        (None, Some(t)) => (key("type"), t),
        (None, None) => bail!("config.json: `{section}` has no `rope_type`"),
    };
    let rope_type = rope_type.as_str().ok_or_else(|| anyhow!("config.json: `{type_key}` must be a string, found {rope_type}"))?;
    let theta = field(obj, "rope_theta").map(|t| number(t, &key("rope_theta"))).transpose()?;
    refuse_unless(field(obj, "partial_rotary_factor"), &key("partial_rotary_factor"), &json!(1.0), ROTATE_ALL)?;
    let scaling = match rope_type {
        "default" => RopeScaling::Default,
        "llama3" => {
            let required = |k: &str| field(obj, k).ok_or_else(|| anyhow!("config.json: llama3 RoPE needs `{}`", key(k)));
            let original = required("original_max_position_embeddings")?;
            RopeScaling::Llama3 {
                factor: number(required("factor")?, &key("factor"))?,
                low_freq_factor: number(required("low_freq_factor")?, &key("low_freq_factor"))?,
                high_freq_factor: number(required("high_freq_factor")?, &key("high_freq_factor"))?,
                original_max_position_embeddings: original.as_u64().ok_or_else(|| {
                    anyhow!("config.json: `{}` must be a positive integer, found {original}", key("original_max_position_embeddings"))
                })? as usize,
            }
        }
        other => {
            bail!("config.json: `{type_key}: \"{other}\"` is not supported (peftc implements RoPE types: {})", ROPE_TYPES.join(", "))
        }
    };
    Ok((theta, scaling))
}

/// θ and the scaling: `rope_parameters` (transformers 5) first, else 4.x's
/// top-level `rope_theta` and `rope_scaling`. Where both forms are present
/// they must agree. No θ anywhere means [`LLAMA_DEFAULT_ROPE_THETA`].
///
/// Models with a second RoPE for sliding layers (Gemma 3) keep one section
/// per layer type in `rope_parameters` (`full_attention`,
/// `sliding_attention`), or the 4.x `rope_local_base_freq`; the third value
/// is that local θ (Gemma 3's default 10000 when the config names none).
fn rope_from_json(obj: &serde_json::Map<String, Value>, family: Family, head_dim: usize) -> Result<(f64, RopeScaling, Option<f64>)> {
    let top_theta = field(obj, "rope_theta").map(|t| number(t, "rope_theta")).transpose()?;
    let legacy = field(obj, "rope_scaling").map(|v| rope_section("rope_scaling", v)).transpose()?;
    let mut local = field(obj, "rope_local_base_freq").map(|t| number(t, "rope_local_base_freq")).transpose()?;
    let params = field(obj, "rope_parameters");
    let per_type = params.and_then(Value::as_object).filter(|o| o.contains_key("full_attention") || o.contains_key("sliding_attention"));
    let (theta, scaling) = match (params, per_type) {
        (_, Some(types)) => {
            let full =
                field(types, "full_attention").ok_or_else(|| anyhow!("config.json: `rope_parameters` has no `full_attention` section"))?;
            let (theta, scaling) = rope_section("rope_parameters.full_attention", full)?;
            if let Some(sliding) = field(types, "sliding_attention") {
                let (t, s) = rope_section("rope_parameters.sliding_attention", sliding)?;
                ensure!(
                    s == RopeScaling::Default,
                    "config.json: a scaled RoPE on sliding layers (`rope_parameters.sliding_attention`) is not supported"
                );
                local = t.or(local);
            }
            (theta.or(top_theta), scaling)
        }
        (Some(v), None) => {
            let (theta, scaling) = rope_section("rope_parameters", v)?;
            if let Some((_, old)) = &legacy {
                ensure!(old == &scaling, "config.json: `rope_parameters` and `rope_scaling` describe different RoPE scalings");
            }
            if let (Some(a), Some(b)) = (theta, top_theta) {
                ensure!(a == b, "config.json: `rope_parameters.rope_theta` {a} and `rope_theta` {b} disagree");
            }
            (theta.or(top_theta), scaling)
        }
        (None, _) => (legacy.as_ref().and_then(|(t, _)| *t).or(top_theta), legacy.map(|(_, s)| s).unwrap_or_default()),
    };
    // transformers' `default_theta`: Gemma 3's global base is 1e6.
    let theta = theta.unwrap_or(if family == Family::Gemma3 { 1_000_000.0 } else { LLAMA_DEFAULT_ROPE_THETA });
    ensure!(theta.is_finite() && theta > 1.0, "config.json: rope_theta {theta} must be a number above 1");
    scaling.check(head_dim).map_err(|e| anyhow!("config.json: {e}"))?;
    let local = match family {
        Family::Gemma3 => Some(local.unwrap_or(GEMMA3_DEFAULT_LOCAL_THETA)),
        _ => {
            if let Some(t) = local {
                bail!("config.json: a separate RoPE base for sliding layers ({t}) is not supported for `{family}`");
            }
            None
        }
    };
    if let Some(t) = local {
        ensure!(t.is_finite() && t > 1.0, "config.json: the sliding layers' rope_theta {t} must be a number above 1");
    }
    Ok((theta, scaling, local))
}

/// Gemma 3's RoPE base on sliding layers when a config names none
/// (`Gemma3TextConfig.rope_local_base_freq`).
pub const GEMMA3_DEFAULT_LOCAL_THETA: f64 = 10_000.0;

/// Resolve a [`ModelConfig`] from a parsed HF `config.json` (transformers 4.x
/// or 5). Every setting that changes the arithmetic is either implemented or
/// refused by name; defaults apply only where `LlamaConfig` documents one.
pub fn config_from_json(v: &Value) -> Result<ModelConfig> {
    let obj = v.as_object().ok_or_else(|| anyhow!("config.json is not a JSON object"))?;
    let get = |k: &str| field(obj, k);
    let usize_of = |k: &str| -> Result<Option<usize>> {
        match get(k) {
            None => Ok(None),
            Some(v) => {
                v.as_u64().map(|n| Some(n as usize)).ok_or_else(|| anyhow!("config.json: `{k}` must be a non-negative integer, found {v}"))
            }
        }
    };
    let required = |k: &str| -> Result<usize> { usize_of(k)?.ok_or_else(|| anyhow!("config.json: missing `{k}`")) };
    let family = family_of(obj)?;
    refuse_unimplemented(obj, family)?;
    let hidden_size = required("hidden_size")?;
    let num_heads = required("num_attention_heads")?;
    let num_kv_heads = usize_of("num_key_value_heads")?.unwrap_or(num_heads);
    ensure!(
        num_heads > 0 && num_kv_heads > 0 && num_heads % num_kv_heads == 0,
        "config.json: {num_heads} heads cannot be grouped over {num_kv_heads} KV heads"
    );
    let head_dim = match usize_of("head_dim")? {
        Some(h) => h,
        None => {
            ensure!(hidden_size % num_heads == 0, "config.json: hidden_size {hidden_size} is not divisible by {num_heads} heads");
            hidden_size / num_heads
        }
    };
    ensure!(head_dim > 0 && head_dim % 2 == 0, "config.json: head dimension {head_dim} must be even and positive for RoPE");
    let (rope_theta, rope_scaling, rope_local_theta) = rope_from_json(obj, family, head_dim)?;
    let num_layers = required("num_hidden_layers")?;
    ensure!((1..=MAX_LAYERS).contains(&num_layers), "config.json: num_layers = {num_layers} is outside 1..={MAX_LAYERS}");
    let arch = arch_from_json(obj, family, num_layers, rope_local_theta)?;
    let token_id = |k: &str| -> Result<Option<u32>> {
        match get(k) {
            None => Ok(None),
            Some(Value::Array(ids)) => match ids.first() {
                None => Ok(None),
                Some(id) => id.as_u64().map(|i| Some(i as u32)).ok_or_else(|| anyhow!("config.json: `{k}` must hold token ids")),
            },
            Some(v) => v.as_u64().map(|i| Some(i as u32)).ok_or_else(|| anyhow!("config.json: `{k}` must be a token id, found {v}")),
        }
    };
    let vocab_size = required("vocab_size")?;
    let eos_token_id = token_id("eos_token_id")?.ok_or_else(|| anyhow!("config.json: missing `eos_token_id`"))?;
    ensure!((eos_token_id as usize) < vocab_size, "config.json: eos_token_id {eos_token_id} is outside the vocabulary of {vocab_size}");
    let rms_norm_eps = match get("rms_norm_eps") {
        // transformers' defaults.
        None if family == Family::Phi3 => 1e-5,
        None => 1e-6,
        Some(v) => number(v, "rms_norm_eps")?,
    };
    let config = ModelConfig {
        architecture: family.name().into(),
        vocab_size,
        hidden_size,
        intermediate_size: required("intermediate_size")?,
        num_layers,
        num_heads,
        num_kv_heads,
        head_dim,
        rope_theta,
        rope_scaling,
        rms_norm_eps,
        // LlamaConfig's default.
        max_position_embeddings: usize_of("max_position_embeddings")?.unwrap_or(match family {
            Family::Llama => 2048,
            Family::Mistral => 131_072,
            Family::Qwen2 => 32_768,
            Family::Phi3 => 4096,
            Family::Gemma | Family::Gemma2 => 8192,
            Family::Gemma3 => 131_072,
        }),
        // transformers' defaults: Gemma ties, the others do not.
        tie_word_embeddings: get("tie_word_embeddings").and_then(Value::as_bool).unwrap_or(family.is_gemma()),
        bos_token_id: token_id("bos_token_id")?,
        eos_token_id,
        arch,
        dtype: match field(obj, "dtype").or_else(|| field(obj, "torch_dtype")).and_then(Value::as_str) {
            Some("bfloat16") => CheckpointDtype::Bf16,
            Some("float16") => CheckpointDtype::F16,
            _ => CheckpointDtype::F32,
        },
    };
    if config.arch.add_bos {
        ensure!(config.bos_token_id.is_some(), "config.json: `{family}` starts every sequence with BOS, but `bos_token_id` is missing");
    }
    check_config_bounds(&config).map_err(|e| anyhow!("config.json: {e}"))?;
    Ok(config)
}

/// The HF `config.json` for a config, in the 4.x form (`rope_theta`,
/// `rope_scaling`, `torch_dtype`) that transformers 4 and 5 both read.
/// A GGUF's raw `rope_freqs` divisors have no config.json form: refused.
pub fn config_to_json(c: &ModelConfig) -> Result<Value> {
    let a = &c.arch;
    let family = a.family;
    let act = match a.activation {
        Activation::Silu => "silu",
        Activation::GeluTanh => "gelu_pytorch_tanh",
    };
    let mut v = json!({
        "architectures": [family.hf_class()],
        "model_type": family.model_types()[0],
        "hidden_act": act,
        "torch_dtype": "float32",
        "vocab_size": c.vocab_size,
        "hidden_size": c.hidden_size,
        "intermediate_size": c.intermediate_size,
        "num_hidden_layers": c.num_layers,
        "num_attention_heads": c.num_heads,
        "num_key_value_heads": c.num_kv_heads,
        "head_dim": c.head_dim,
        "rope_theta": c.rope_theta,
        "rms_norm_eps": c.rms_norm_eps,
        "max_position_embeddings": c.max_position_embeddings,
        "tie_word_embeddings": c.tie_word_embeddings,
        "bos_token_id": c.bos_token_id,
        "eos_token_id": c.eos_token_id,
        // The forward never reads it; transformers' defaults (Phi-3: 32000)
        // can lie outside a small vocabulary, which its embedding refuses.
        "pad_token_id": null,
    });
    if family != Family::Qwen2 {
        v["attention_bias"] = json!(false);
    }
    if family == Family::Llama {
        v["mlp_bias"] = json!(false);
    }
    if family.is_gemma() {
        v["hidden_activation"] = json!(act);
    }
    if matches!(family, Family::Gemma2 | Family::Gemma3) {
        // Written even when absent: transformers' defaults (caps 50/30 for
        // Gemma 2, scalar 256) are not "none".
        v["query_pre_attn_scalar"] = json!(a.query_pre_attn_scalar.unwrap_or(c.head_dim as f64));
        v["attn_logit_softcapping"] = json!(a.attn_softcap);
        v["final_logit_softcapping"] = json!(a.final_softcap);
    }
    if let Some(t) = a.rope_local_theta {
        v["rope_local_base_freq"] = json!(t);
    }
    v["sliding_window"] = json!(a.sliding_window);
    if !a.layer_types.is_empty() {
        let names: Vec<&str> = a
            .layer_types
            .iter()
            .map(|k| match k {
                LayerKind::Full => "full_attention",
                LayerKind::Sliding => "sliding_attention",
            })
            .collect();
        v["layer_types"] = json!(names);
        if family == Family::Qwen2 {
            v["use_sliding_window"] = json!(true);
            v["max_window_layers"] = json!(a.layer_types.iter().position(|k| *k == LayerKind::Sliding).unwrap_or(0));
        }
    }
    match &c.rope_scaling {
        RopeScaling::Default => {}
        RopeScaling::Llama3 { factor, low_freq_factor, high_freq_factor, original_max_position_embeddings } => {
            v["rope_scaling"] = json!({
                "rope_type": "llama3",
                "factor": factor,
                "low_freq_factor": low_freq_factor,
                "high_freq_factor": high_freq_factor,
                "original_max_position_embeddings": original_max_position_embeddings,
            });
        }
        RopeScaling::FreqFactors { .. } => bail!(
            "this model's RoPE frequencies come from a GGUF `rope_freqs` tensor, which config.json cannot express (it names llama3's parameters instead)"
        ),
    }
    Ok(v)
}

/// Read only the configuration of an HF directory.
pub fn load_hf_config(dir: &Path) -> Result<ModelConfig> {
    let path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let v: Value = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    config_from_json(&v).with_context(|| format!("in {}", path.display()))
}

fn to_f32(name: &str, dtype: Dtype, bytes: &[u8]) -> Result<Vec<f32>> {
    Ok(match dtype {
        Dtype::F32 => bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        Dtype::F16 => bytes.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        Dtype::BF16 => bytes.chunks_exact(2).map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        other => bail!("tensor `{name}` has dtype {other:?} (supported: F32, F16, BF16)"),
    })
}

fn read_safetensors(path: &Path, wanted: Option<&[String]>, out: &mut TensorStore) -> Result<()> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    // SAFETY: read-only map of a file peftc does not modify while reading.
    let map = unsafe { memmap2::Mmap::map(&file) }.with_context(|| format!("mapping {}", path.display()))?;
    let st = SafeTensors::deserialize(&map).map_err(|e| anyhow!("{}: invalid safetensors file: {e}", path.display()))?;
    let names: Vec<String> = match wanted {
        Some(w) => w.to_vec(),
        None => st.names().into_iter().map(str::to_string).collect(),
    };
    for name in names {
        // Non-persistent buffers some exporters include.
        if name.ends_with("rotary_emb.inv_freq") {
            continue;
        }
        let view = st.tensor(&name).map_err(|e| anyhow!("{}: tensor `{name}`: {e}", path.display()))?;
        let data = to_f32(&name, view.dtype(), view.data()).with_context(|| format!("in {}", path.display()))?;
        if out.insert(name.clone(), TensorData { shape: view.shape().to_vec(), data }).is_some() {
            bail!("tensor `{name}` appears twice ({})", path.display());
        }
    }
    Ok(())
}

/// Load an HF directory: `config.json`, the safetensors weights (single or
/// sharded), and `tokenizer.json` when present.
pub fn load_hf_dir(dir: &Path) -> Result<LoadedModel> {
    let mut config = load_hf_config(dir)?;
    let mut tensors = TensorStore::new();
    let single = dir.join(WEIGHTS_FILE);
    let index = dir.join(INDEX_FILE);
    if single.is_file() {
        read_safetensors(&single, None, &mut tensors)?;
    } else if index.is_file() {
        let text = std::fs::read_to_string(&index).with_context(|| format!("reading {}", index.display()))?;
        let v: Value = serde_json::from_str(&text).with_context(|| format!("parsing {}", index.display()))?;
        let map = v.get("weight_map").and_then(Value::as_object).ok_or_else(|| anyhow!("{}: no `weight_map` object", index.display()))?;
        let mut by_file: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, file) in map {
            let file = file.as_str().ok_or_else(|| anyhow!("{}: weight_map[{name}] is not a file name", index.display()))?;
            ensure!(
                !file.contains('/') && !file.contains('\\') && file != ".." && !file.is_empty(),
                "{}: shard name `{file}` must be a plain file name",
                index.display()
            );
            by_file.entry(file.to_string()).or_default().push(name.clone());
        }
        for (file, names) in &by_file {
            read_safetensors(&dir.join(file), Some(names), &mut tensors)?;
        }
    } else {
        bail!("{}: neither {WEIGHTS_FILE} nor {INDEX_FILE} found", dir.display());
    }
    to_model_layout(&config, &mut tensors).map_err(|e| anyhow!("in {}: {e}", dir.display()))?;
    if !tensors.contains_key("lm_head.weight") {
        config.tie_word_embeddings = true;
    } else if config.tie_word_embeddings {
        // Tied checkpoints sometimes also store the (identical) head.
        tensors.remove("lm_head.weight");
    }
    check_tensors(&config, &tensors).with_context(|| format!("in {}", dir.display()))?;
    let tok_path = dir.join(TOKENIZER_FILE);
    let tokenizer = if tok_path.is_file() {
        Some(TokenizerSource::Json(std::fs::read_to_string(&tok_path).with_context(|| format!("reading {}", tok_path.display()))?))
    } else {
        None
    };
    Ok(LoadedModel { config, tensors, tokenizer })
}

/// Every tensor a Llama of this config needs is present with the right
/// shape and data length, and there is nothing else.
pub fn check_tensors(config: &ModelConfig, tensors: &TensorStore) -> Result<()> {
    check_config_bounds(config).map_err(|e| anyhow!("invalid model configuration: {e}"))?;
    let expected = expected_shapes(config);
    for (name, shape) in &expected {
        let t = tensors.get(name).ok_or_else(|| anyhow!("missing tensor `{name}`"))?;
        ensure!(&t.shape == shape, "tensor `{name}` has shape {:?}, expected {shape:?}", t.shape);
        ensure!(t.data.len() == t.numel(), "tensor `{name}` holds {} values for shape {:?}", t.data.len(), t.shape);
    }
    if tensors.len() != expected.len() {
        let known: std::collections::HashSet<&str> = expected.iter().map(|(n, _)| n.as_str()).collect();
        let extra: Vec<&str> = tensors.keys().map(String::as_str).filter(|k| !known.contains(k)).take(5).collect();
        bail!("unexpected tensors for a {}-layer {} model: {}", config.num_layers, config.arch.family, extra.join(", "));
    }
    Ok(())
}

/// Save `model` as an HF directory: `config.json`, `model.safetensors`
/// (f32) and, when the model has a tokenizer, `tokenizer.json`. Each file is
/// written atomically.
pub fn save_hf_dir(model: &LoadedModel, dir: &Path) -> Result<()> {
    check_tensors(&model.config, &model.tensors).context("refusing to save an inconsistent model")?;
    let config = serde_json::to_string_pretty(&config_to_json(&model.config)?)?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // Phi-3 checkpoints hold fused projections: write them as HF does.
    let tensors = to_checkpoint_layout(&model.config, &model.tensors).map_err(|e| anyhow!(e))?;
    write_atomic(&dir.join(WEIGHTS_FILE), &safetensors_bytes(&tensors)?)?;
    if let Some(source) = &model.tokenizer {
        let json = match source {
            TokenizerSource::Json(j) => j.clone(),
            other => Tokenizer::from_source(other)?.to_json()?,
        };
        write_atomic(&dir.join(TOKENIZER_FILE), json.as_bytes())?;
    }
    write_atomic(&dir.join(CONFIG_FILE), config.as_bytes())?;
    Ok(())
}

/// A safetensors image of f32 tensors (sorted by name, 8-byte aligned header).
pub fn safetensors_bytes(tensors: &TensorStore) -> Result<Vec<u8>> {
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for (name, t) in tensors {
        ensure!(t.data.len() == t.numel(), "tensor `{name}` holds {} values for shape {:?}", t.data.len(), t.shape);
        let end = offset + 4 * t.data.len();
        header.insert(name.clone(), json!({"dtype": "F32", "shape": t.shape, "data_offsets": [offset, end]}));
        offset = end;
    }
    header.insert("__metadata__".into(), json!({"format": "pt"}));
    let mut header = serde_json::to_vec(&Value::Object(header))?;
    while header.len() % 8 != 0 {
        header.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + header.len() + offset);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    for t in tensors.values() {
        for v in &t.data {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    Ok(out)
}

/// Save f32 weights as a sharded checkpoint (for tests and tools): writes `model-0000i-of-0000n.safetensors` files and the index.
pub fn save_sharded_weights(tensors: &TensorStore, dir: &Path, shards: usize) -> Result<()> {
    ensure!(shards >= 1, "need at least one shard");
    let names: Vec<&String> = tensors.keys().collect();
    let per = names.len().div_ceil(shards).max(1);
    let mut weight_map = serde_json::Map::new();
    let mut total = 0usize;
    for (i, chunk) in names.chunks(per).enumerate() {
        let file = format!("model-{:05}-of-{:05}.safetensors", i + 1, shards);
        let part: TensorStore = chunk.iter().map(|n| ((*n).clone(), tensors[*n].clone())).collect();
        total += part.values().map(|t| 4 * t.data.len()).sum::<usize>();
        write_atomic(&dir.join(&file), &safetensors_bytes(&part)?)?;
        for n in chunk {
            weight_map.insert((*n).clone(), json!(file));
        }
    }
    let index = json!({"metadata": {"total_size": total}, "weight_map": weight_map});
    write_atomic(&dir.join(INDEX_FILE), serde_json::to_string_pretty(&index)?.as_bytes())
}

/// Whether an HF directory's weights include an `lm_head.weight` (reads
/// only the safetensors header or the shard index).
pub fn has_lm_head(dir: &Path) -> Result<bool> {
    let single = dir.join(WEIGHTS_FILE);
    if single.is_file() {
        let file = File::open(&single).with_context(|| format!("opening {}", single.display()))?;
        // SAFETY: read-only map of a file peftc does not modify while reading.
        let map = unsafe { memmap2::Mmap::map(&file) }.with_context(|| format!("mapping {}", single.display()))?;
        let (_, meta) = SafeTensors::read_metadata(&map).map_err(|e| anyhow!("{}: invalid safetensors file: {e}", single.display()))?;
        return Ok(meta.tensors().contains_key("lm_head.weight"));
    }
    let index = dir.join(INDEX_FILE);
    let text =
        std::fs::read_to_string(&index).with_context(|| format!("{}: neither {WEIGHTS_FILE} nor {INDEX_FILE} readable", dir.display()))?;
    let v: Value = serde_json::from_str(&text).with_context(|| format!("parsing {}", index.display()))?;
    Ok(v.get("weight_map").and_then(|m| m.get("lm_head.weight")).is_some())
}
