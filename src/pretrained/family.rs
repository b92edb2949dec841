//! The model families peftc computes and what each changes in the Llama
//! decoder, resolved once from `config.json` or GGUF metadata into
//! [`Arch`] (the model reads flags and numbers, never family names).
//!
//! | family | differs from Llama by |
//! |---|---|
//! | `llama` | — (Llama 3's RoPE scaling lives in [`crate::pretrained::rope_scaling`]) |
//! | `mistral` | sliding-window attention on every layer |
//! | `qwen2` | q/k/v biases |
//! | `gemma` | embeddings × √hidden, RMSNorm × (1 + w) in f32, GeGLU (tanh GELU), BOS |
//! | `gemma2` | gemma + post-attention and pre/post-MLP norms, `query_pre_attn_scalar`, soft-capped scores and logits, sliding windows on alternate layers |
//! | `gemma3` | gemma2 without soft-caps, + q/k RMSNorm and a separate RoPE base on sliding layers |
//! | `phi3` | fused `qkv_proj` / `gate_up_proj`, split at load; sliding windows on every layer |

use serde::{Deserialize, Serialize};

use std::borrow::Cow;

use crate::pretrained::weights::{ModelConfig, TensorData, TensorStore};

/// A model family: which checkpoint layout and forward peftc reproduces.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    #[default]
    Llama,
    Mistral,
    Qwen2,
    Gemma,
    Gemma2,
    Gemma3,
    Phi3,
}

impl Family {
    pub const ALL: [Family; 7] =
        [Family::Llama, Family::Mistral, Family::Qwen2, Family::Gemma, Family::Gemma2, Family::Gemma3, Family::Phi3];

    /// The family's name (HF `model_type`, except Gemma 3's text model,
    /// whose `model_type` is `gemma3_text`).
    pub fn name(self) -> &'static str {
        match self {
            Family::Llama => "llama",
            Family::Mistral => "mistral",
            Family::Qwen2 => "qwen2",
            Family::Gemma => "gemma",
            Family::Gemma2 => "gemma2",
            Family::Gemma3 => "gemma3",
            Family::Phi3 => "phi3",
        }
    }

    /// HF `model_type` values of the family's causal LMs.
    pub fn model_types(self) -> &'static [&'static str] {
        match self {
            Family::Llama => &["llama"],
            Family::Mistral => &["mistral"],
            Family::Qwen2 => &["qwen2"],
            Family::Gemma => &["gemma"],
            Family::Gemma2 => &["gemma2"],
            Family::Gemma3 => &["gemma3_text"],
            Family::Phi3 => &["phi3"],
        }
    }

    /// The HF class `architectures` names.
    pub fn hf_class(self) -> &'static str {
        match self {
            Family::Llama => "LlamaForCausalLM",
            Family::Mistral => "MistralForCausalLM",
            Family::Qwen2 => "Qwen2ForCausalLM",
            Family::Gemma => "GemmaForCausalLM",
            Family::Gemma2 => "Gemma2ForCausalLM",
            Family::Gemma3 => "Gemma3ForCausalLM",
            Family::Phi3 => "Phi3ForCausalLM",
        }
    }

    /// The family whose HF `model_type` is `model_type`.
    pub fn from_model_type(model_type: &str) -> Option<Family> {
        Family::ALL.into_iter().find(|f| f.model_types().contains(&model_type))
    }

    /// The family of a GGUF `general.architecture` (Mistral converts to `llama`).
    pub fn from_gguf_arch(arch: &str) -> Option<Family> {
        match arch {
            "llama" => Some(Family::Llama),
            "qwen2" => Some(Family::Qwen2),
            "gemma" => Some(Family::Gemma),
            "gemma2" => Some(Family::Gemma2),
            "gemma3" => Some(Family::Gemma3),
            "phi3" => Some(Family::Phi3),
            _ => None,
        }
    }

    /// The GGUF architecture llama.cpp's converter writes for this family.
    pub fn gguf_arch(self) -> &'static str {
        match self {
            Family::Llama | Family::Mistral => "llama",
            other => other.name(),
        }
    }

    /// Whether the family uses Gemma's conventions: scaled embeddings,
    /// `(1 + w)` norms, GeGLU, BOS.
    pub fn is_gemma(self) -> bool {
        matches!(self, Family::Gemma | Family::Gemma2 | Family::Gemma3)
    }

    /// The arithmetic this family fixes regardless of the config; the
    /// config-dependent parts (windows, caps, scalars) are filled in by the
    /// loaders.
    pub fn base_arch(self) -> Arch {
        let gemma = self.is_gemma();
        Arch {
            family: self,
            activation: if gemma { Activation::GeluTanh } else { Activation::Silu },
            gemma_norm: gemma,
            embed_scale: gemma,
            qkv_bias: self == Family::Qwen2,
            sandwich_norm: matches!(self, Family::Gemma2 | Family::Gemma3),
            qk_norm: self == Family::Gemma3,
            add_bos: gemma,
            ..Arch::default()
        }
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The MLP's gate activation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// SwiGLU: `silu(gate) * up`.
    #[default]
    Silu,
    /// GeGLU with the tanh approximation of GELU (`gelu_pytorch_tanh`).
    GeluTanh,
}

/// Whether a layer attends to the whole prefix or to a sliding window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerKind {
    Full,
    Sliding,
}

/// What a family changes in the decoder's arithmetic, resolved from the
/// checkpoint. The default is plain Llama.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Arch {
    pub family: Family,
    pub activation: Activation,
    /// Norm gains are `(1 + w)` (HF stores `w`, initialised at 0) and the
    /// product is taken in full precision before the cast (Gemma).
    pub gemma_norm: bool,
    /// Token embeddings are multiplied by `√hidden`, rounded to the
    /// weights' dtype first (Gemma).
    pub embed_scale: bool,
    /// q, k and v projections carry a frozen bias (Qwen2).
    pub qkv_bias: bool,
    /// Norms after attention and around the MLP as well as before
    /// attention (Gemma 2 and 3).
    pub sandwich_norm: bool,
    /// RMSNorm over each head's q and k before RoPE (Gemma 3).
    pub qk_norm: bool,
    /// Attention scores are scaled by `query_pre_attn_scalar^-½` instead of
    /// `head_dim^-½`.
    pub query_pre_attn_scalar: Option<f64>,
    /// Attention scores pass through `cap · tanh(s / cap)` before the mask.
    pub attn_softcap: Option<f64>,
    /// Output logits pass through `cap · tanh(z / cap)`.
    pub final_softcap: Option<f64>,
    /// The window of sliding layers: query `i` sees keys `j` with
    /// `i - window < j ≤ i` (transformers' `sliding_window_overlay`).
    pub sliding_window: Option<usize>,
    /// Per layer, when any layer slides (empty: every layer is full).
    pub layer_types: Vec<LayerKind>,
    /// RoPE base of sliding layers, when it differs from `rope_theta`
    /// (Gemma 3's `rope_local_base_freq`).
    pub rope_local_theta: Option<f64>,
    /// A BOS token starts every sequence.
    pub add_bos: bool,
}

impl Arch {
    /// The attention kind of layer `l`.
    pub fn layer_kind(&self, l: usize) -> LayerKind {
        self.layer_types.get(l).copied().unwrap_or(LayerKind::Full)
    }

    /// The multiplier of `q·k`.
    pub fn attention_scale(&self, head_dim: usize) -> f64 {
        self.query_pre_attn_scalar.unwrap_or(head_dim as f64).powf(-0.5)
    }

    /// Whether a norm gain is stored as `w` with the model using `1 + w`.
    pub fn norm_offset(&self) -> f32 {
        if self.gemma_norm { 1.0 } else { 0.0 }
    }

    /// Consistency of the resolved settings with `num_layers`.
    pub fn check(&self, num_layers: usize) -> Result<(), String> {
        let sliding = self.layer_types.contains(&LayerKind::Sliding);
        if !self.layer_types.is_empty() && self.layer_types.len() != num_layers {
            return Err(format!("{} layer types for {num_layers} layers", self.layer_types.len()));
        }
        match self.sliding_window {
            Some(0) => return Err("sliding_window must be positive".into()),
            None if sliding => return Err("sliding layers need a `sliding_window`".into()),
            _ => {}
        }
        for (what, v) in [
            ("query_pre_attn_scalar", self.query_pre_attn_scalar),
            ("attn_logit_softcapping", self.attn_softcap),
            ("final_logit_softcapping", self.final_softcap),
            ("rope_local_base_freq", self.rope_local_theta),
        ] {
            if let Some(v) = v.filter(|v| !(v.is_finite() && *v > 0.0)) {
                return Err(format!("{what} = {v} must be a positive number"));
            }
        }
        Ok(())
    }
}

/// The HF module names of a layer's seven linears, and their `[out, in]`
/// shapes in a config.
pub fn linear_shapes(c: &ModelConfig) -> [(&'static str, [usize; 2]); 7] {
    let (d, f) = (c.hidden_size, c.intermediate_size);
    let (q, kv) = (c.num_heads * c.head_dim, c.num_kv_heads * c.head_dim);
    [
        ("self_attn.q_proj", [q, d]),
        ("self_attn.k_proj", [kv, d]),
        ("self_attn.v_proj", [kv, d]),
        ("self_attn.o_proj", [d, q]),
        ("mlp.gate_proj", [f, d]),
        ("mlp.up_proj", [f, d]),
        ("mlp.down_proj", [d, f]),
    ]
}

/// Whether the family gives the linear `module` (an HF module name such as
/// `self_attn.q_proj`) a bias.
pub fn has_bias(arch: &Arch, module: &str) -> bool {
    arch.qkv_bias && matches!(module, "self_attn.q_proj" | "self_attn.k_proj" | "self_attn.v_proj")
}

/// Names of layer `l`'s norms, in HF's names: before attention, after
/// attention (sandwich only), before the MLP, after the MLP (sandwich only).
pub struct LayerNorms {
    pub input: String,
    pub post_attention: Option<String>,
    pub pre_mlp: String,
    pub post_mlp: Option<String>,
}

pub fn layer_norms(arch: &Arch, l: usize) -> LayerNorms {
    let p = format!("model.layers.{l}");
    if arch.sandwich_norm {
        LayerNorms {
            input: format!("{p}.input_layernorm.weight"),
            post_attention: Some(format!("{p}.post_attention_layernorm.weight")),
            pre_mlp: format!("{p}.pre_feedforward_layernorm.weight"),
            post_mlp: Some(format!("{p}.post_feedforward_layernorm.weight")),
        }
    } else {
        LayerNorms {
            input: format!("{p}.input_layernorm.weight"),
            post_attention: None,
            pre_mlp: format!("{p}.post_attention_layernorm.weight"),
            post_mlp: None,
        }
    }
}

/// HF names of layer `l`'s q and k norms (Gemma 3).
pub fn qk_norm_names(l: usize) -> [String; 2] {
    [format!("model.layers.{l}.self_attn.q_norm.weight"), format!("model.layers.{l}.self_attn.k_norm.weight")]
}

/// Expected HF shape of every tensor of a model with this config, in the
/// unfused layout (Phi-3's fused projections are split by the loaders).
pub fn expected_shapes(c: &ModelConfig) -> Vec<(String, Vec<usize>)> {
    let d = c.hidden_size;
    let mut out = vec![("model.embed_tokens.weight".to_string(), vec![c.vocab_size, d]), ("model.norm.weight".to_string(), vec![d])];
    if !c.tie_word_embeddings {
        out.push(("lm_head.weight".into(), vec![c.vocab_size, d]));
    }
    for l in 0..c.num_layers {
        let norms = layer_norms(&c.arch, l);
        for n in [Some(norms.input), norms.post_attention, Some(norms.pre_mlp), norms.post_mlp].into_iter().flatten() {
            out.push((n, vec![d]));
        }
        if c.arch.qk_norm {
            for n in qk_norm_names(l) {
                out.push((n, vec![c.head_dim]));
            }
        }
        for (module, [o, i]) in linear_shapes(c) {
            out.push((format!("model.layers.{l}.{module}.weight"), vec![o, i]));
            if has_bias(&c.arch, module) {
                out.push((format!("model.layers.{l}.{module}.bias"), vec![o]));
            }
        }
    }
    out
}

/// Phi-3's fused projections: `(fused module, [(part module, rows)])`, the
/// parts' rows stacked in order (q‖k‖v, gate‖up).
pub fn phi3_fused(c: &ModelConfig) -> [(&'static str, Vec<(&'static str, usize)>); 2] {
    let (q, kv, f) = (c.num_heads * c.head_dim, c.num_kv_heads * c.head_dim, c.intermediate_size);
    [
        ("self_attn.qkv_proj", vec![("self_attn.q_proj", q), ("self_attn.k_proj", kv), ("self_attn.v_proj", kv)]),
        ("mlp.gate_up_proj", vec![("mlp.gate_proj", f), ("mlp.up_proj", f)]),
    ]
}

/// The HF tensors of a checkpoint of this config as stored, with their
/// shapes: [`expected_shapes`], except that Phi-3 keeps q‖k‖v and gate‖up
/// fused (each fused tensor in the place of its first part).
pub fn checkpoint_shapes(c: &ModelConfig) -> Vec<(String, Vec<usize>)> {
    let shapes = expected_shapes(c);
    if c.arch.family != Family::Phi3 {
        return shapes;
    }
    // Part weight name → (fused weight name, whether it is the first part, fused rows).
    let mut parts = std::collections::HashMap::new();
    for l in 0..c.num_layers {
        for (fused, ps) in phi3_fused(c) {
            let rows: usize = ps.iter().map(|p| p.1).sum();
            for (i, (part, _)) in ps.iter().enumerate() {
                parts.insert(format!("model.layers.{l}.{part}.weight"), (format!("model.layers.{l}.{fused}.weight"), i == 0, rows));
            }
        }
    }
    shapes
        .into_iter()
        .filter_map(|(name, shape)| match parts.remove(&name) {
            None => Some((name, shape)),
            Some((fused, true, rows)) => Some((fused, vec![rows, c.hidden_size])),
            Some((_, false, _)) => None,
        })
        .collect()
}

/// A checkpoint's tensors in the layout peftc computes with: Phi-3's fused
/// `qkv_proj` and `gate_up_proj` weights split into the separate
/// projections (exact row slices), so that every target means the same on
/// every family; other families' tensors are already in it.
pub fn to_model_layout(c: &ModelConfig, tensors: &mut TensorStore) -> Result<(), String> {
    if c.arch.family != Family::Phi3 {
        return Ok(());
    }
    let d = c.hidden_size;
    for l in 0..c.num_layers {
        for (fused, parts) in phi3_fused(c) {
            let name = format!("model.layers.{l}.{fused}.weight");
            let t = tensors.remove(&name).ok_or_else(|| format!("missing tensor `{name}`"))?;
            let rows: usize = parts.iter().map(|p| p.1).sum();
            if t.shape != [rows, d] || t.data.len() != rows * d {
                return Err(format!("tensor `{name}` has shape {:?}, expected [{rows}, {d}]", t.shape));
            }
            let mut start = 0;
            for (part, n) in parts {
                let data = t.data[start * d..(start + n) * d].to_vec();
                tensors.insert(format!("model.layers.{l}.{part}.weight"), TensorData { shape: vec![n, d], data });
                start += n;
            }
        }
    }
    Ok(())
}

/// The inverse of [`to_model_layout`]: the tensors as the family's
/// checkpoints store them (Phi-3's q/k/v and gate/up stacked into its fused
/// weights; the others borrowed as they are).
pub fn to_checkpoint_layout<'a>(c: &ModelConfig, tensors: &'a TensorStore) -> Result<Cow<'a, TensorStore>, String> {
    if c.arch.family != Family::Phi3 {
        return Ok(Cow::Borrowed(tensors));
    }
    let mut out = tensors.clone();
    let d = c.hidden_size;
    for l in 0..c.num_layers {
        for (fused, parts) in phi3_fused(c) {
            let mut data = Vec::new();
            for (part, n) in parts {
                let name = format!("model.layers.{l}.{part}.weight");
                let t = out.remove(&name).ok_or_else(|| format!("missing tensor `{name}`"))?;
                if t.shape != [n, d] {
                    return Err(format!("tensor `{name}` has shape {:?}, expected [{n}, {d}]", t.shape));
                }
                data.extend_from_slice(&t.data);
            }
            let rows = data.len() / d;
            out.insert(format!("model.layers.{l}.{fused}.weight"), TensorData { shape: vec![rows, d], data });
        }
    }
    Ok(Cow::Owned(out))
}

/// Whether an HF tensor is a norm's gain (Gemma's are `w`, applied as
/// `1 + w`, and stored as `w + 1` in GGUF).
pub fn is_norm(name: &str) -> bool {
    name.ends_with("norm.weight")
}
