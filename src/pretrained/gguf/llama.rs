//! Llama-family GGUF files ↔ [`LoadedModel`]: configuration from `llama.*`
//! metadata, tensor names GGUF → HF, the q/k row permutation that
//! llama.cpp's converter applies for interleaved RoPE undone (so q/k are in
//! HF's rotate-half order), and the tokenizer material.

use std::path::Path;

use crate::pretrained::rope_scaling::RopeScaling;
use crate::pretrained::tokenizer::SUPPORTED_GGUF_MODELS;
use crate::pretrained::weights::{LoadedModel, ModelConfig, TensorStore, TokenizerSource};

use super::error::{GgufError, Result};
use super::ggml_type::GgmlType;
use super::gguf_file::GgufFile;
use super::meta_value::MetaValue;
use super::writer::GgufWriter;

/// Architectures whose GGUF layout this loader understands.
pub const SUPPORTED_ARCHS: &[&str] = &["llama"];

/// llama.cpp's tensor of per-pair RoPE frequency divisors (Llama 3's
/// `llama3` scaling): read into [`ModelConfig::rope_scaling`], not a weight.
pub const ROPE_FREQS: &str = "rope_freqs.weight";

/// llama.cpp's default RoPE base for the `llama` architecture when a file
/// has no `llama.rope.freq_base` (`rope_freq_base_train = 10000.0f`).
pub const LLAMA_DEFAULT_FREQ_BASE: f64 = 10_000.0;

/// HF name of a GGUF llama tensor, or `None` for a name peftc does not know.
pub fn gguf_to_hf_name(name: &str) -> Option<String> {
    match name {
        "token_embd.weight" => return Some("model.embed_tokens.weight".into()),
        "output_norm.weight" => return Some("model.norm.weight".into()),
        "output.weight" => return Some("lm_head.weight".into()),
        _ => {}
    }
    let rest = name.strip_prefix("blk.")?;
    let (layer, rest) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (module, kind) = rest.rsplit_once('.')?;
    if kind != "weight" {
        return None;
    }
    let hf = match module {
        "attn_norm" => "input_layernorm",
        "ffn_norm" => "post_attention_layernorm",
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{hf}.weight"))
}

/// GGUF name of an HF llama tensor (inverse of [`gguf_to_hf_name`]).
pub fn hf_to_gguf_name(name: &str) -> Option<String> {
    match name {
        "model.embed_tokens.weight" => return Some("token_embd.weight".into()),
        "model.norm.weight" => return Some("output_norm.weight".into()),
        "lm_head.weight" => return Some("output.weight".into()),
        _ => {}
    }
    let rest = name.strip_prefix("model.layers.")?;
    let (layer, rest) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let module = rest.strip_suffix(".weight")?;
    let g = match module {
        "input_layernorm" => "attn_norm",
        "post_attention_layernorm" => "ffn_norm",
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        _ => return None,
    };
    Some(format!("blk.{layer}.{g}.weight"))
}

/// Undo llama.cpp's `LlamaModel.permute` on a `[n_head * head_dim, cols]`
/// row-major matrix: GGUF row `h*hd + 2*i + j` goes back to HF row
/// `h*hd + j*hd/2 + i` (HF→GGUF was
/// `w.reshape(n_head, 2, hd/2, cols).swapaxes(1, 2).reshape(w.shape)`).
pub fn unpermute_rows(data: &[f32], n_head: usize, cols: usize) -> Vec<f32> {
    permute_impl(data, n_head, cols, false)
}

/// llama.cpp's `LlamaModel.permute` (HF → GGUF order), the inverse of
/// [`unpermute_rows`].
pub fn permute_rows(data: &[f32], n_head: usize, cols: usize) -> Vec<f32> {
    permute_impl(data, n_head, cols, true)
}

fn permute_impl(data: &[f32], n_head: usize, cols: usize, to_gguf: bool) -> Vec<f32> {
    let rows = data.len() / cols;
    let hd = rows / n_head;
    let half = hd / 2;
    let mut out = vec![0.0f32; data.len()];
    for h in 0..n_head {
        for i in 0..half {
            for j in 0..2 {
                let gguf_row = h * hd + 2 * i + j;
                let hf_row = h * hd + j * half + i;
                let (src, dst) = if to_gguf { (hf_row, gguf_row) } else { (gguf_row, hf_row) };
                out[dst * cols..(dst + 1) * cols].copy_from_slice(&data[src * cols..(src + 1) * cols]);
            }
        }
    }
    out
}

fn bad_config(message: String) -> GgufError {
    GgufError::BadConfig { message }
}

/// Resolve the model configuration from GGUF metadata (and, for the
/// vocabulary size and embedding tying, the tensor table).
pub fn config_from_gguf(g: &GgufFile) -> Result<ModelConfig> {
    let arch = g.get_str("general.architecture")?.to_string();
    if !SUPPORTED_ARCHS.contains(&arch.as_str()) {
        return Err(GgufError::UnsupportedArchitecture { arch });
    }
    let key = |k: &str| format!("{arch}.{k}");
    let usize_key = |k: &str| -> Result<usize> { Ok(g.get_u64(&key(k))? as usize) };
    let num_layers = usize_key("block_count")?;
    let hidden_size = usize_key("embedding_length")?;
    let intermediate_size = usize_key("feed_forward_length")?;
    let num_heads = usize_key("attention.head_count")?;
    let num_kv_heads = if g.get(&key("attention.head_count_kv")).is_some() { usize_key("attention.head_count_kv")? } else { num_heads };
    if num_heads == 0 || num_kv_heads == 0 || num_heads % num_kv_heads != 0 {
        return Err(bad_config(format!("{num_heads} attention heads cannot be grouped over {num_kv_heads} KV heads")));
    }
    let head_dim = if g.get(&key("attention.key_length")).is_some() {
        usize_key("attention.key_length")?
    } else {
        if hidden_size % num_heads != 0 {
            return Err(bad_config(format!("embedding_length {hidden_size} is not divisible by {num_heads} heads")));
        }
        hidden_size / num_heads
    };
    if head_dim == 0 || head_dim % 2 != 0 {
        return Err(bad_config(format!("head dimension {head_dim} must be even and positive for RoPE")));
    }
    if let Some(rot) = g.get(&key("rope.dimension_count")).and_then(MetaValue::as_u64)
        && rot as usize != head_dim
    {
        return Err(bad_config(format!("partial rotary embeddings (rope.dimension_count {rot}, head_dim {head_dim}) are not supported")));
    }
    if let Some(scaling) = g.get(&key("rope.scaling.type")).and_then(MetaValue::as_str)
        && scaling != "none"
    {
        return Err(bad_config(format!(
            "`{}` = `{scaling}` is not supported (peftc implements Llama 3's RoPE scaling, which GGUF stores as `{ROPE_FREQS}`)",
            key("rope.scaling.type")
        )));
    }
    if let Some(window) = g.get(&key("attention.sliding_window")).and_then(MetaValue::as_u64)
        && window > 0
    {
        return Err(bad_config(format!(
            "`{}` = {window} is not supported (sliding-window attention is not implemented)",
            key("attention.sliding_window")
        )));
    }
    let rope_theta = if g.get(&key("rope.freq_base")).is_some() { g.get_f64(&key("rope.freq_base"))? } else { LLAMA_DEFAULT_FREQ_BASE };
    let rope_scaling = match g.tensor_info(ROPE_FREQS) {
        None => RopeScaling::Default,
        Some(_) => {
            let factors = g.dequantize(ROPE_FREQS)?;
            if factors.shape.len() != 1 {
                return Err(GgufError::BadTensor {
                    tensor: ROPE_FREQS.into(),
                    message: format!("shape {:?}, expected [{}] (one divisor per RoPE pair)", factors.shape, head_dim / 2),
                });
            }
            RopeScaling::FreqFactors { factors: factors.data }
        }
    };
    rope_scaling.check(head_dim).map_err(|message| GgufError::BadTensor { tensor: ROPE_FREQS.into(), message })?;
    let rms_norm_eps =
        if g.get(&key("attention.layer_norm_rms_epsilon")).is_some() { g.get_f64(&key("attention.layer_norm_rms_epsilon"))? } else { 1e-5 };
    let max_position_embeddings = usize_key("context_length")?;
    let embd = g.tensor_info("token_embd.weight").ok_or_else(|| GgufError::MissingTensor { name: "token_embd.weight".into() })?;
    let embd_shape = embd.shape();
    // The vocabulary is the embedding's row count (models may pad it past
    // the tokenizer's token list, never the other way round).
    if embd_shape.len() != 2 || embd_shape[1] != hidden_size {
        return Err(bad_config(format!("token_embd.weight has shape {embd_shape:?}, expected [vocab, hidden {hidden_size}]")));
    }
    let vocab_size = embd_shape[0];
    if let Some(n_tokens) = g.get("tokenizer.ggml.tokens").and_then(MetaValue::as_array).map(<[_]>::len)
        && n_tokens > vocab_size
    {
        return Err(bad_config(format!("the tokenizer has {n_tokens} tokens but token_embd.weight only {vocab_size} rows")));
    }
    let token_id = |k: &str| -> Result<Option<u32>> {
        match g.get(k) {
            None => Ok(None),
            Some(v) => v.as_u64().and_then(|id| u32::try_from(id).ok()).map(Some).ok_or_else(|| GgufError::WrongKeyType {
                key: k.into(),
                expected: "token id",
                found: v.type_name(),
            }),
        }
    };
    let bos_token_id = token_id("tokenizer.ggml.bos_token_id")?;
    let eos_token_id =
        token_id("tokenizer.ggml.eos_token_id")?.ok_or_else(|| GgufError::MissingKey { key: "tokenizer.ggml.eos_token_id".into() })?;
    for (what, id) in [("bos", bos_token_id), ("eos", Some(eos_token_id))] {
        if let Some(id) = id.filter(|&id| id as usize >= vocab_size) {
            return Err(bad_config(format!("{what} token id {id} is outside the vocabulary of {vocab_size}")));
        }
    }
    let config = ModelConfig {
        architecture: arch,
        vocab_size,
        hidden_size,
        intermediate_size,
        num_layers,
        num_heads,
        num_kv_heads,
        head_dim,
        rope_theta,
        rope_scaling,
        rms_norm_eps,
        max_position_embeddings,
        tie_word_embeddings: g.tensor_info("output.weight").is_none(),
        bos_token_id,
        eos_token_id,
    };
    check_config_bounds(&config).map_err(bad_config)?;
    Ok(config)
}

/// The tokenizer material embedded in the GGUF (`tokenizer.ggml.*`), if any:
/// [`TokenizerSource::GgufBpe`] for `tokenizer.ggml.model = "gpt2"`,
/// [`TokenizerSource::GgufSentencePiece`] for `"llama"`; any other model is
/// an error naming the supported ones.
pub fn tokenizer_from_gguf(g: &GgufFile) -> Result<Option<TokenizerSource>> {
    let Some(model) = g.get("tokenizer.ggml.model") else {
        return Ok(None);
    };
    let model = model
        .as_str()
        .ok_or_else(|| GgufError::WrongKeyType { key: "tokenizer.ggml.model".into(), expected: "string", found: model.type_name() })?
        .to_string();
    if !SUPPORTED_GGUF_MODELS.contains(&model.as_str()) {
        return Err(GgufError::UnsupportedTokenizer { model, supported: SUPPORTED_GGUF_MODELS });
    }
    let pre = match g.get("tokenizer.ggml.pre") {
        None => None,
        Some(_) => Some(g.get_str("tokenizer.ggml.pre")?.to_string()),
    };
    let tokens = g.get_str_array("tokenizer.ggml.tokens")?;
    let token_types = match g.get("tokenizer.ggml.token_type") {
        None => vec![1; tokens.len()],
        Some(v) => {
            let wrong =
                || GgufError::WrongKeyType { key: "tokenizer.ggml.token_type".into(), expected: "array of integers", found: v.type_name() };
            let items = v.as_array().ok_or_else(wrong)?;
            let types = items.iter().map(|e| e.as_i64().map(|t| t as i32).ok_or_else(wrong)).collect::<Result<Vec<_>>>()?;
            if types.len() != tokens.len() {
                return Err(bad_config(format!("{} token types for {} tokens", types.len(), tokens.len())));
            }
            types
        }
    };
    let id = |k: &str| g.get(k).and_then(MetaValue::as_u64).and_then(|v| u32::try_from(v).ok());
    if model == "llama" {
        let add_space_prefix = match g.get("tokenizer.ggml.add_space_prefix") {
            None => false,
            Some(v) => v.as_bool().ok_or_else(|| GgufError::WrongKeyType {
                key: "tokenizer.ggml.add_space_prefix".into(),
                expected: "bool",
                found: v.type_name(),
            })?,
        };
        return Ok(Some(TokenizerSource::GgufSentencePiece {
            architecture: g.get_str("general.architecture")?.to_string(),
            tokens,
            token_types,
            bos_id: id("tokenizer.ggml.bos_token_id"),
            eos_id: id("tokenizer.ggml.eos_token_id"),
            unk_id: id("tokenizer.ggml.unknown_token_id"),
            pad_id: id("tokenizer.ggml.padding_token_id"),
            add_space_prefix,
        }));
    }
    let merges = if g.get("tokenizer.ggml.merges").is_some() { g.get_str_array("tokenizer.ggml.merges")? } else { Vec::new() };
    Ok(Some(TokenizerSource::GgufBpe {
        model,
        pre,
        tokens,
        merges,
        token_types,
        bos_id: id("tokenizer.ggml.bos_token_id"),
        eos_id: id("tokenizer.ggml.eos_token_id"),
    }))
}

/// Largest width and layer count peftc accepts from a model file: far above
/// any real Llama, low enough that shape products cannot overflow and a
/// corrupt header cannot make peftc enumerate billions of tensors.
pub const MAX_DIM: usize = 1 << 24;
pub const MAX_LAYERS: usize = 4096;

/// Reject configurations whose sizes no real model has (corrupt or hostile
/// files), before any shape arithmetic is done with them.
pub fn check_config_bounds(c: &ModelConfig) -> std::result::Result<(), String> {
    let dims = [
        ("vocab_size", c.vocab_size),
        ("hidden_size", c.hidden_size),
        ("intermediate_size", c.intermediate_size),
        ("num_heads", c.num_heads),
        ("num_kv_heads", c.num_kv_heads),
        ("head_dim", c.head_dim),
    ];
    for (name, v) in dims {
        if v == 0 || v > MAX_DIM {
            return Err(format!("{name} = {v} is outside 1..={MAX_DIM}"));
        }
    }
    if c.num_layers == 0 || c.num_layers > MAX_LAYERS {
        return Err(format!("num_layers = {} is outside 1..={MAX_LAYERS}", c.num_layers));
    }
    Ok(())
}

/// Expected HF shape of every tensor of a Llama model with this config.
pub fn expected_shapes(c: &ModelConfig) -> Vec<(String, Vec<usize>)> {
    let (d, f) = (c.hidden_size, c.intermediate_size);
    let (q, kv) = (c.num_heads * c.head_dim, c.num_kv_heads * c.head_dim);
    let mut out = vec![("model.embed_tokens.weight".to_string(), vec![c.vocab_size, d]), ("model.norm.weight".to_string(), vec![d])];
    if !c.tie_word_embeddings {
        out.push(("lm_head.weight".into(), vec![c.vocab_size, d]));
    }
    for l in 0..c.num_layers {
        let p = format!("model.layers.{l}");
        out.push((format!("{p}.input_layernorm.weight"), vec![d]));
        out.push((format!("{p}.post_attention_layernorm.weight"), vec![d]));
        out.push((format!("{p}.self_attn.q_proj.weight"), vec![q, d]));
        out.push((format!("{p}.self_attn.k_proj.weight"), vec![kv, d]));
        out.push((format!("{p}.self_attn.v_proj.weight"), vec![kv, d]));
        out.push((format!("{p}.self_attn.o_proj.weight"), vec![d, q]));
        out.push((format!("{p}.mlp.gate_proj.weight"), vec![f, d]));
        out.push((format!("{p}.mlp.up_proj.weight"), vec![f, d]));
        out.push((format!("{p}.mlp.down_proj.weight"), vec![d, f]));
    }
    out
}

/// Load a Llama GGUF: config, every tensor dequantized to f32 under its HF
/// name (q/k un-permuted), and the tokenizer material.
pub fn load_gguf(path: &Path) -> Result<LoadedModel> {
    let g = GgufFile::open(path)?;
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    loaded_from_gguf(&g, threads)
}

/// [`load_gguf`] for an already-parsed file, dequantizing on `threads` threads.
pub fn loaded_from_gguf(g: &GgufFile, threads: usize) -> Result<LoadedModel> {
    let config = config_from_gguf(g)?;
    let arch = config.architecture.clone();
    // Map names first: an unknown tensor is reported before any work.
    let weights = || g.tensors().iter().filter(|t| t.name != ROPE_FREQS);
    for t in weights() {
        if gguf_to_hf_name(&t.name).is_none() {
            return Err(GgufError::UnexpectedTensor {
                name: t.name.clone(),
                arch: arch.clone(),
                why: "peftc's Llama has no such parameter".into(),
            });
        }
    }
    // Check the tensor table against the config before dequantizing anything.
    let expected = expected_shapes(&config);
    for (name, shape) in &expected {
        let gguf_name = hf_to_gguf_name(name).expect("expected_shapes yields llama names");
        let info = g.tensor_info(&gguf_name).ok_or_else(|| GgufError::MissingTensor { name: gguf_name.clone() })?;
        if &info.shape() != shape {
            return Err(GgufError::BadTensor {
                tensor: gguf_name,
                message: format!("shape {:?} (HF order), expected {shape:?} for this config", info.shape()),
            });
        }
    }
    if weights().count() != expected.len() {
        let known: std::collections::HashSet<String> = expected.iter().filter_map(|(n, _)| hf_to_gguf_name(n)).collect();
        let extra = weights().find(|t| !known.contains(&t.name)).map(|t| t.name.clone()).unwrap_or_default();
        return Err(GgufError::UnexpectedTensor { name: extra, arch, why: format!("the config has {} layers", config.num_layers) });
    }
    let mut tensors = TensorStore::new();
    for (name, data) in g.dequantize_all(threads)? {
        if name == ROPE_FREQS {
            continue; // already in the config
        }
        let hf = gguf_to_hf_name(&name).expect("checked above");
        tensors.insert(hf, data);
    }
    for l in 0..config.num_layers {
        for (proj, heads) in [("q_proj", config.num_heads), ("k_proj", config.num_kv_heads)] {
            let name = format!("model.layers.{l}.self_attn.{proj}.weight");
            let t = tensors.get_mut(&name).expect("shape-checked above");
            t.data = unpermute_rows(&t.data, heads, config.hidden_size);
        }
    }
    let tokenizer = tokenizer_from_gguf(g)?;
    Ok(LoadedModel { config, tensors, tokenizer })
}

/// A GGUF image of `model` in llama.cpp's layout (q/k permuted, ggml dims),
/// with every tensor stored as `ty` (1-D norm weights always F32, as
/// llama.cpp does) — for fixtures and round-trip tests.
pub fn gguf_writer_for(model: &LoadedModel, ty: GgmlType) -> GgufWriter {
    let c = &model.config;
    let mut w = GgufWriter::new();
    let a = c.architecture.as_str();
    w.meta_str("general.architecture", a)
        .meta_str("general.name", "peftc fixture")
        .meta_u32(&format!("{a}.block_count"), c.num_layers as u32)
        .meta_u32(&format!("{a}.context_length"), c.max_position_embeddings as u32)
        .meta_u32(&format!("{a}.embedding_length"), c.hidden_size as u32)
        .meta_u32(&format!("{a}.feed_forward_length"), c.intermediate_size as u32)
        .meta_u32(&format!("{a}.attention.head_count"), c.num_heads as u32)
        .meta_u32(&format!("{a}.attention.head_count_kv"), c.num_kv_heads as u32)
        .meta_f32(&format!("{a}.rope.freq_base"), c.rope_theta as f32)
        .meta_f32(&format!("{a}.attention.layer_norm_rms_epsilon"), c.rms_norm_eps as f32)
        .meta_u32(&format!("{a}.vocab_size"), c.vocab_size as u32)
        .meta_u32(&format!("{a}.rope.dimension_count"), c.head_dim as u32);
    if c.head_dim * c.num_heads != c.hidden_size {
        w.meta_u32(&format!("{a}.attention.key_length"), c.head_dim as u32);
        w.meta_u32(&format!("{a}.attention.value_length"), c.head_dim as u32);
    }
    match &model.tokenizer {
        Some(TokenizerSource::GgufBpe { model: m, pre, tokens, merges, token_types, .. }) => {
            w.meta_str("tokenizer.ggml.model", m);
            if let Some(pre) = pre {
                w.meta_str("tokenizer.ggml.pre", pre);
            }
            w.meta_str_array("tokenizer.ggml.tokens", tokens);
            w.meta("tokenizer.ggml.token_type", MetaValue::Array(5, token_types.iter().map(|&t| MetaValue::I32(t)).collect()));
            w.meta_str_array("tokenizer.ggml.merges", merges);
        }
        Some(TokenizerSource::GgufSentencePiece { tokens, token_types, unk_id, pad_id, add_space_prefix, .. }) => {
            // The architecture is the config's (`general.architecture`
            // above). Scores as llama.cpp's converter requires them; peftc
            // and transformers rank Gemma's merges by token order, so -id.
            w.meta_str("tokenizer.ggml.model", "llama");
            w.meta_str("tokenizer.ggml.pre", "default");
            w.meta_str_array("tokenizer.ggml.tokens", tokens);
            w.meta("tokenizer.ggml.scores", MetaValue::Array(6, (0..tokens.len()).map(|id| MetaValue::F32(-(id as f32))).collect()));
            w.meta("tokenizer.ggml.token_type", MetaValue::Array(5, token_types.iter().map(|&t| MetaValue::I32(t)).collect()));
            for (key, id) in [("tokenizer.ggml.unknown_token_id", unk_id), ("tokenizer.ggml.padding_token_id", pad_id)] {
                if let Some(id) = id {
                    w.meta_u32(key, *id);
                }
            }
            w.meta("tokenizer.ggml.add_space_prefix", MetaValue::Bool(*add_space_prefix));
        }
        Some(TokenizerSource::Json(_)) | None => {}
    }
    if let Some(bos) = c.bos_token_id {
        w.meta_u32("tokenizer.ggml.bos_token_id", bos);
    }
    w.meta_u32("tokenizer.ggml.eos_token_id", c.eos_token_id);
    if let Some(factors) = c.rope_scaling.freq_factors(c.rope_theta, c.head_dim) {
        w.tensor(ROPE_FREQS, &[factors.len()], GgmlType::F32, &factors);
    }
    for (name, t) in &model.tensors {
        let Some(gname) = hf_to_gguf_name(name) else { continue };
        let data = if name.ends_with("q_proj.weight") {
            permute_rows(&t.data, c.num_heads, c.hidden_size)
        } else if name.ends_with("k_proj.weight") {
            permute_rows(&t.data, c.num_kv_heads, c.hidden_size)
        } else {
            t.data.clone()
        };
        let ty = if t.shape.len() == 1 { GgmlType::F32 } else { ty };
        w.tensor(&gname, &t.shape, ty, &data);
    }
    w
}
