//! GGUF files of the families in [`crate::pretrained::family`] ↔
//! [`LoadedModel`]: configuration from `{arch}.*` metadata, tensor names
//! GGUF → HF per architecture, and llama.cpp's converter's changes undone:
//! the q/k row permutation of the `llama` architecture (so q/k are in HF's
//! rotate-half order; the others are NEOX-rotated and not permuted), Gemma's
//! norms stored as `w + 1`, and Phi-3's fused projections (split).

use std::path::Path;

use crate::pretrained::family::{self, Arch, Family, LayerKind};
use crate::pretrained::rope_scaling::RopeScaling;
use crate::pretrained::tokenizer::SUPPORTED_GGUF_MODELS;
use crate::pretrained::weights::{LoadedModel, ModelConfig, TensorStore, TokenizerSource};

use super::error::{GgufError, Result};
use super::ggml_type::GgmlType;
use super::gguf_file::GgufFile;
use super::meta_value::MetaValue;
use super::writer::GgufWriter;

/// Architectures whose GGUF layout this loader understands.
pub const SUPPORTED_ARCHS: &[&str] = &["llama", "qwen2", "gemma", "gemma2", "gemma3", "phi3"];

/// llama.cpp's tensor of per-pair RoPE frequency divisors (Llama 3's
/// `llama3` scaling): read into [`ModelConfig::rope_scaling`], not a weight.
pub const ROPE_FREQS: &str = "rope_freqs.weight";

/// llama.cpp's default RoPE base for the `llama` architecture when a file
/// has no `llama.rope.freq_base` (`rope_freq_base_train = 10000.0f`).
pub const LLAMA_DEFAULT_FREQ_BASE: f64 = 10_000.0;

/// GGUF name of an HF tensor in the checkpoint layout of `arch`'s family
/// (Phi-3's fused `qkv_proj` / `gate_up_proj`, see [`family::checkpoint_shapes`]),
/// or `None` for a name the family has no GGUF tensor for.
pub fn hf_to_gguf_name(arch: &Arch, name: &str) -> Option<String> {
    match name {
        "model.embed_tokens.weight" => return Some("token_embd.weight".into()),
        "model.norm.weight" => return Some("output_norm.weight".into()),
        "lm_head.weight" => return Some("output.weight".into()),
        _ => {}
    }
    let rest = name.strip_prefix("model.layers.")?;
    let (layer, rest) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (module, kind) = rest.rsplit_once('.')?;
    let g = match (module, arch.sandwich_norm) {
        ("input_layernorm", _) => "attn_norm",
        ("post_attention_layernorm", false) => "ffn_norm",
        ("post_attention_layernorm", true) => "post_attention_norm",
        ("pre_feedforward_layernorm", true) => "ffn_norm",
        ("post_feedforward_layernorm", true) => "post_ffw_norm",
        ("self_attn.q_norm", _) if arch.qk_norm => "attn_q_norm",
        ("self_attn.k_norm", _) if arch.qk_norm => "attn_k_norm",
        ("self_attn.q_proj", _) => "attn_q",
        ("self_attn.k_proj", _) => "attn_k",
        ("self_attn.v_proj", _) => "attn_v",
        ("self_attn.qkv_proj", _) => "attn_qkv",
        ("self_attn.o_proj", _) => "attn_output",
        ("mlp.gate_proj", _) => "ffn_gate",
        ("mlp.up_proj", _) | ("mlp.gate_up_proj", _) => "ffn_up",
        ("mlp.down_proj", _) => "ffn_down",
        _ => return None,
    };
    match kind {
        "weight" => {}
        "bias" if arch.qkv_bias => {}
        _ => return None,
    }
    Some(format!("blk.{layer}.{g}.{kind}"))
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
    let Some(family) = Family::from_gguf_arch(&arch) else {
        return Err(GgufError::UnsupportedArchitecture { arch });
    };
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
    let window = g.get(&key("attention.sliding_window")).and_then(MetaValue::as_u64).filter(|&w| w > 0).map(|w| w as usize);
    // Which layers slide, as llama.cpp runs each architecture: Gemma 2 on
    // even layers (swa pattern 2), Gemma 3 on all but every sixth (or the
    // file's pattern), Phi-3 on every layer; Gemma 2's window defaults to
    // 4096 (llama.cpp's `n_swa`).
    let (sliding_window, layer_types) = match family {
        Family::Gemma2 => (Some(window.unwrap_or(4096)), (0..num_layers).map(|i| i % 2 == 0).collect()),
        Family::Gemma3 => {
            let pattern = g.get(&key("attention.sliding_window_pattern")).and_then(MetaValue::as_u64).unwrap_or(6).max(1) as usize;
            (window, (0..num_layers).map(|i| (i + 1) % pattern != 0).collect())
        }
        Family::Phi3 => (window, vec![window.is_some(); num_layers]),
        _ => {
            if let Some(window) = window {
                return Err(bad_config(format!(
                    "`{}` = {window} is not supported for the `{arch}` architecture (its layers attend to the whole prefix)",
                    key("attention.sliding_window")
                )));
            }
            (None, Vec::new())
        }
    };
    let layer_types: Vec<LayerKind> = if layer_types.contains(&true) {
        layer_types.into_iter().map(|s| if s { LayerKind::Sliding } else { LayerKind::Full }).collect()
    } else {
        Vec::new()
    };
    if !layer_types.is_empty() && sliding_window.is_none() {
        return Err(bad_config(format!("sliding layers need `{}`", key("attention.sliding_window"))));
    }
    let opt_f64 = |k: &str| -> Result<Option<f64>> { if g.get(&key(k)).is_some() { g.get_f64(&key(k)).map(Some) } else { Ok(None) } };
    let (attn_softcap, final_softcap) = match family {
        // llama.cpp's defaults when a Gemma 2 file has none.
        Family::Gemma2 => {
            (Some(opt_f64("attn_logit_softcapping")?.unwrap_or(50.0)), Some(opt_f64("final_logit_softcapping")?.unwrap_or(30.0)))
        }
        Family::Gemma3 => (opt_f64("attn_logit_softcapping")?, opt_f64("final_logit_softcapping")?),
        _ => (None, None),
    };
    // GGUF stores no `query_pre_attn_scalar`: llama.cpp scales by
    // head_dim^-½, except the 27B models (46 layers for Gemma 2, 62 for
    // Gemma 3), which use (hidden / heads)^-½.
    let query_pre_attn_scalar = match (family, num_layers) {
        (Family::Gemma2, 46) | (Family::Gemma3, 62) => Some((hidden_size / num_heads) as f64),
        (Family::Gemma2 | Family::Gemma3, _) => Some(head_dim as f64),
        _ => None,
    };
    let has_sliding = !layer_types.is_empty();
    let arch_features = Arch {
        query_pre_attn_scalar,
        attn_softcap,
        final_softcap,
        sliding_window: if has_sliding { sliding_window } else { None },
        layer_types,
        // llama.cpp's base on Gemma 3's sliding layers (`rope_freq_base_train_swa`).
        rope_local_theta: if family == Family::Gemma3 && has_sliding {
            Some(opt_f64("rope.freq_base_swa")?.unwrap_or(10_000.0))
        } else {
            None
        },
        ..family.base_arch()
    };
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
        arch: arch_features,
        dtype: Default::default(),
    };
    if config.arch.add_bos && bos_token_id.is_none() {
        return Err(GgufError::MissingKey { key: "tokenizer.ggml.bos_token_id".into() });
    }
    config.arch.check(num_layers).map_err(bad_config)?;
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

/// Load a GGUF: config, every tensor dequantized to f32 under its HF name
/// (llama q/k un-permuted, Gemma norms back to `w`, Phi-3 split), and the
/// tokenizer material.
pub fn load_gguf(path: &Path) -> Result<LoadedModel> {
    let g = GgufFile::open(path)?;
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    loaded_from_gguf(&g, threads)
}

/// [`load_gguf`] for an already-parsed file, dequantizing on `threads` threads.
pub fn loaded_from_gguf(g: &GgufFile, threads: usize) -> Result<LoadedModel> {
    let config = config_from_gguf(g)?;
    let arch = config.architecture.clone();
    // GGUF name → (HF name, HF shape) of every tensor this config needs.
    let expected: std::collections::BTreeMap<String, (String, Vec<usize>)> = family::checkpoint_shapes(&config)
        .into_iter()
        .map(|(hf, shape)| (hf_to_gguf_name(&config.arch, &hf).expect("every checkpoint tensor has a GGUF name"), (hf, shape)))
        .collect();
    // Check the tensor table against the config before dequantizing anything:
    // an unknown tensor is reported before any work.
    let weights = || g.tensors().iter().filter(|t| t.name != ROPE_FREQS);
    for t in weights() {
        if !expected.contains_key(&t.name) {
            let layer = t.name.strip_prefix("blk.").and_then(|r| r.split_once('.')).and_then(|(l, _)| l.parse::<usize>().ok());
            let why = match layer {
                Some(l) if l >= config.num_layers => format!("the config has {} layers", config.num_layers),
                _ => format!("peftc's {} model has no such parameter", config.arch.family),
            };
            return Err(GgufError::UnexpectedTensor { name: t.name.clone(), arch, why });
        }
    }
    for (gguf_name, (_, shape)) in &expected {
        let info = g.tensor_info(gguf_name).ok_or_else(|| GgufError::MissingTensor { name: gguf_name.clone() })?;
        if &info.shape() != shape {
            return Err(GgufError::BadTensor {
                tensor: gguf_name.clone(),
                message: format!("shape {:?} (HF order), expected {shape:?} for this config", info.shape()),
            });
        }
    }
    let mut tensors = TensorStore::new();
    let offset = config.arch.norm_offset();
    for (name, mut data) in g.dequantize_all(threads)? {
        if name == ROPE_FREQS {
            continue; // already in the config
        }
        let (hf, _) = expected[&name].clone();
        // llama.cpp stores Gemma's norm gains as `w + 1`; HF's `w` is kept.
        if family::is_norm(&hf) {
            data.data.iter_mut().for_each(|x| *x -= offset);
        }
        tensors.insert(hf, data);
    }
    family::to_model_layout(&config, &mut tensors).map_err(bad_config)?;
    if config.architecture == "llama" {
        for l in 0..config.num_layers {
            for (proj, heads) in [("q_proj", config.num_heads), ("k_proj", config.num_kv_heads)] {
                let name = format!("model.layers.{l}.self_attn.{proj}.weight");
                let t = tensors.get_mut(&name).expect("shape-checked above");
                t.data = unpermute_rows(&t.data, heads, config.hidden_size);
            }
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
    let a = c.arch.family.gguf_arch();
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
    // As llama.cpp's converter: the `llama` architecture (Mistral) has no window key.
    if let Some(w_len) = c.arch.sliding_window.filter(|_| a != "llama") {
        w.meta_u32(&format!("{a}.attention.sliding_window"), w_len as u32);
    }
    if let Some(cap) = c.arch.attn_softcap {
        w.meta_f32(&format!("{a}.attn_logit_softcapping"), cap as f32);
    }
    if let Some(cap) = c.arch.final_softcap {
        w.meta_f32(&format!("{a}.final_logit_softcapping"), cap as f32);
    }
    if let Some(factors) = c.rope_scaling.freq_factors(c.rope_theta, c.head_dim) {
        w.tensor(ROPE_FREQS, &[factors.len()], GgmlType::F32, &factors);
    }
    let tensors = family::to_checkpoint_layout(c, &model.tensors).expect("a model has every projection of its config");
    let permute = a == "llama";
    let offset = c.arch.norm_offset();
    for (name, t) in tensors.iter() {
        let Some(gname) = hf_to_gguf_name(&c.arch, name) else { continue };
        let data = if permute && name.ends_with("q_proj.weight") {
            permute_rows(&t.data, c.num_heads, c.hidden_size)
        } else if permute && name.ends_with("k_proj.weight") {
            permute_rows(&t.data, c.num_kv_heads, c.hidden_size)
        } else if family::is_norm(name) {
            t.data.iter().map(|x| x + offset).collect()
        } else {
            t.data.clone()
        };
        let ty = if t.shape.len() == 1 { GgmlType::F32 } else { ty };
        w.tensor(&gname, &t.shape, ty, &data);
    }
    w
}
