//! The loader-independent form of a pretrained model: its resolved
//! configuration and its tensors as f32, under HF (transformers) names.
//!
//! Every loader (GGUF, HF safetensors directory) produces a [`LoadedModel`];
//! the Burn model is built from one. Tensor layout follows HF/PyTorch:
//! a linear's `weight` is `[out, in]` (the Burn model transposes to `[in, out]`).
//! Q and K projection weights are in HF's rotate-half order (GGUF's llama
//! permutation is undone by the GGUF loader).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::pretrained::family::Arch;
use crate::pretrained::rope_scaling::RopeScaling;

/// Decoder configuration (Llama and the families of [`Arch`]), resolved once from GGUF metadata or
/// an HF `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Architecture name as the source states it (e.g. "llama").
    pub architecture: String,
    pub vocab_size: usize,
    /// Model width `d`.
    pub hidden_size: usize,
    /// MLP inner width.
    pub intermediate_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    /// Per-head width (usually hidden_size / num_heads).
    pub head_dim: usize,
    pub rope_theta: f64,
    /// How the rotary frequencies derive from `rope_theta` (absent in
    /// configs recorded before it existed: those models had no scaling).
    #[serde(default)]
    pub rope_scaling: RopeScaling,
    pub rms_norm_eps: f64,
    pub max_position_embeddings: usize,
    /// Output head shares the token embedding.
    pub tie_word_embeddings: bool,
    pub bos_token_id: Option<u32>,
    pub eos_token_id: u32,
    /// What the model's family changes in the arithmetic (absent in
    /// configs recorded before families existed: those were Llama).
    #[serde(default)]
    pub arch: Arch,
    /// The dtype the checkpoint stores its weights in (a GGUF's dequantized
    /// weights count as f32, the dtype llama.cpp computes them in).
    #[serde(default)]
    pub dtype: CheckpointDtype,
}

/// A checkpoint's weight dtype, as its config names it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckpointDtype {
    #[default]
    F32,
    F16,
    Bf16,
}

impl ModelConfig {
    /// The rotary inverse frequencies, one per pair of a head's dimensions.
    pub fn rope_inv_freq(&self) -> Vec<f32> {
        self.rope_scaling.inv_freq(self.rope_theta, self.head_dim)
    }

    /// The inverse frequencies of sliding-window layers, when their RoPE
    /// base differs (Gemma 3's local base; unscaled, as HF computes it).
    pub fn rope_local_inv_freq(&self) -> Option<Vec<f32>> {
        self.arch.rope_local_theta.map(|theta| crate::pretrained::rope_scaling::default_inv_freq(theta, self.head_dim))
    }
}

/// One dense tensor in f32, row-major, with its shape (outermost first).
#[derive(Debug, Clone, PartialEq)]
pub struct TensorData {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl TensorData {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Tensors by HF name, e.g. `model.embed_tokens.weight`,
/// `model.layers.{i}.self_attn.{q,k,v,o}_proj.weight`,
/// `model.layers.{i}.mlp.{gate,up,down}_proj.weight`,
/// `model.layers.{i}.input_layernorm.weight`,
/// `model.layers.{i}.post_attention_layernorm.weight`, `model.norm.weight`,
/// and `lm_head.weight` when embeddings are untied.
pub type TensorStore = BTreeMap<String, TensorData>;

/// Tokenizer material carried by a model file, enough to build an HF
/// `tokenizers::Tokenizer` (byte-level BPE for the GGUF `gpt2` model,
/// SentencePiece BPE for the GGUF `llama` model of Gemma files).
#[derive(Debug, Clone, PartialEq)]
pub enum TokenizerSource {
    /// A serialized HF `tokenizer.json`.
    Json(String),
    /// The byte-level BPE vocabulary and merges embedded in a GGUF file
    /// (`tokenizer.ggml.model = "gpt2"`).
    GgufBpe {
        model: String,
        pre: Option<String>,
        tokens: Vec<String>,
        merges: Vec<String>,
        token_types: Vec<i32>,
        bos_id: Option<u32>,
        eos_id: Option<u32>,
    },
    /// The SentencePiece vocabulary embedded in a GGUF file
    /// (`tokenizer.ggml.model = "llama"`), as Gemma files carry it: no
    /// merges (they are implied by the token order) and no scores (which
    /// transformers does not use for Gemma).
    GgufSentencePiece {
        /// The file's `general.architecture`: transformers builds a
        /// SentencePiece vocabulary per architecture, and peftc only the
        /// Gemma one (see `tokenizer::SENTENCEPIECE_ARCHS`).
        architecture: String,
        tokens: Vec<String>,
        token_types: Vec<i32>,
        bos_id: Option<u32>,
        eos_id: Option<u32>,
        /// `tokenizer.ggml.unknown_token_id`.
        unk_id: Option<u32>,
        /// `tokenizer.ggml.padding_token_id`.
        pad_id: Option<u32>,
        /// `tokenizer.ggml.add_space_prefix` (false when absent).
        add_space_prefix: bool,
    },
}

/// A pretrained model, loaded and dequantized.
#[derive(Debug, Clone)]
pub struct LoadedModel {
    pub config: ModelConfig,
    pub tensors: TensorStore,
    pub tokenizer: Option<TokenizerSource>,
}
