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

use crate::pretrained::gguf::llama::{check_config_bounds, expected_shapes};
use crate::pretrained::rope_scaling::RopeScaling;
use crate::pretrained::tokenizer::Tokenizer;
use crate::pretrained::weights::{LoadedModel, ModelConfig, TensorData, TensorStore, TokenizerSource};
use crate::runs::atomic::write_atomic;

pub const CONFIG_FILE: &str = "config.json";
pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const INDEX_FILE: &str = "model.safetensors.index.json";
pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// `model_type`s whose checkpoints peftc's decoder computes exactly.
const LLAMA_MODEL_TYPES: &[&str] = &["llama"];

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

/// The settings in a config that change the arithmetic and that peftc does
/// not implement: each is refused by name, never ignored.
fn refuse_unimplemented(obj: &serde_json::Map<String, Value>) -> Result<()> {
    let model_type = match field(obj, "model_type") {
        None => bail!("config.json: missing `model_type` (peftc implements: {})", LLAMA_MODEL_TYPES.join(", ")),
        Some(v) => v.as_str().ok_or_else(|| anyhow!("config.json: `model_type` must be a string, found {v}"))?,
    };
    if !LLAMA_MODEL_TYPES.contains(&model_type) {
        bail!("config.json: `model_type: \"{model_type}\"` is not supported (peftc implements: {})", LLAMA_MODEL_TYPES.join(", "));
    }
    if let Some(archs) = field(obj, "architectures") {
        let ok = archs.as_array().is_some_and(|a| a.iter().all(|x| x.as_str() == Some("LlamaForCausalLM")));
        ensure!(ok, "config.json: `architectures: {archs}` is not supported (peftc implements LlamaForCausalLM)");
    }
    let refuse = |key: &str, neutral: Value, why: &str| refuse_unless(field(obj, key), key, &neutral, why);
    refuse("hidden_act", json!("silu"), "Llama's MLP uses silu")?;
    refuse("hidden_activation", json!("silu"), "Llama's MLP uses silu")?;
    refuse("attention_bias", json!(false), "peftc's Llama has no biases")?;
    refuse("mlp_bias", json!(false), "peftc's Llama has no biases")?;
    refuse("attention_dropout", json!(0.0), "peftc trains without attention dropout")?;
    refuse("partial_rotary_factor", json!(1.0), ROTATE_ALL)?;
    refuse("use_sliding_window", json!(false), "sliding-window attention is not implemented")?;
    if let Some(w) = field(obj, "sliding_window") {
        bail!("config.json: `sliding_window: {w}` is not supported (sliding-window attention is not implemented)");
    }
    if let Some(types) = field(obj, "layer_types") {
        let full = types.as_array().is_some_and(|a| a.iter().all(|t| t.as_str() == Some("full_attention")));
        ensure!(full, "config.json: `layer_types: {types}` is not supported (only full_attention layers are implemented)");
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
fn rope_from_json(obj: &serde_json::Map<String, Value>, head_dim: usize) -> Result<(f64, RopeScaling)> {
    let top_theta = field(obj, "rope_theta").map(|t| number(t, "rope_theta")).transpose()?;
    let legacy = field(obj, "rope_scaling").map(|v| rope_section("rope_scaling", v)).transpose()?;
    let (theta, scaling) = match field(obj, "rope_parameters") {
        Some(v) => {
            let (theta, scaling) = rope_section("rope_parameters", v)?;
            if let Some((_, old)) = &legacy {
                ensure!(old == &scaling, "config.json: `rope_parameters` and `rope_scaling` describe different RoPE scalings");
            }
            if let (Some(a), Some(b)) = (theta, top_theta) {
                ensure!(a == b, "config.json: `rope_parameters.rope_theta` {a} and `rope_theta` {b} disagree");
            }
            (theta.or(top_theta), scaling)
        }
        None => (legacy.as_ref().and_then(|(t, _)| *t).or(top_theta), legacy.map(|(_, s)| s).unwrap_or_default()),
    };
    let theta = theta.unwrap_or(LLAMA_DEFAULT_ROPE_THETA);
    ensure!(theta.is_finite() && theta > 1.0, "config.json: rope_theta {theta} must be a number above 1");
    scaling.check(head_dim).map_err(|e| anyhow!("config.json: {e}"))?;
    Ok((theta, scaling))
}

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
    refuse_unimplemented(obj)?;
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
    let (rope_theta, rope_scaling) = rope_from_json(obj, head_dim)?;
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
        None => 1e-6, // LlamaConfig's default
        Some(v) => number(v, "rms_norm_eps")?,
    };
    let config = ModelConfig {
        architecture: "llama".into(),
        vocab_size,
        hidden_size,
        intermediate_size: required("intermediate_size")?,
        num_layers: required("num_hidden_layers")?,
        num_heads,
        num_kv_heads,
        head_dim,
        rope_theta,
        rope_scaling,
        rms_norm_eps,
        // LlamaConfig's default.
        max_position_embeddings: usize_of("max_position_embeddings")?.unwrap_or(2048),
        tie_word_embeddings: get("tie_word_embeddings").and_then(Value::as_bool).unwrap_or(false),
        bos_token_id: token_id("bos_token_id")?,
        eos_token_id,
    };
    check_config_bounds(&config).map_err(|e| anyhow!("config.json: {e}"))?;
    Ok(config)
}

/// The HF `config.json` for a config, in the 4.x form (`rope_theta`,
/// `rope_scaling`, `torch_dtype`) that transformers 4 and 5 both read.
/// A GGUF's raw `rope_freqs` divisors have no config.json form: refused.
pub fn config_to_json(c: &ModelConfig) -> Result<Value> {
    let mut v = json!({
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_act": "silu",
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
        "attention_bias": false,
        "mlp_bias": false,
    });
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
        bail!("unexpected tensors for a {}-layer Llama: {}", config.num_layers, extra.join(", "));
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
    write_atomic(&dir.join(WEIGHTS_FILE), &safetensors_bytes(&model.tensors)?)?;
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
