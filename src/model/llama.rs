//! The decoder: token embedding (scaled for Gemma), `num_layers` pre-norm
//! blocks (sandwich-normed for Gemma 2/3; full or sliding-window attention
//! per layer, each with its RoPE tables), final RMSNorm, output head (tied to
//! the embedding or separate, soft-capped for Gemma 2). Named after the
//! architecture the other families vary; what varies is read from the
//! config's [`crate::pretrained::family::Arch`].
//!
//! All base weights are frozen constants (plain tensors inside the module:
//! no gradient, invisible to optimizers); adapters plug in through the
//! [`LinearHook`] every target linear calls.

use burn::prelude::*;
use burn::tensor::TensorData as BurnData;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr_free::normal;

use super::attention::{Attention, attention_bias};
use super::block::Block;
use super::error::ModelError;
use super::mlp::Mlp;
use super::rms_norm::RmsNorm;
use super::rope::Rope;
use crate::lang::target::Target;
use crate::model::hook::LinearHook;
use crate::model::precision;
use crate::pretrained::family::{self, LayerKind};
use crate::pretrained::weights::{LoadedModel, ModelConfig, TensorData, TensorStore};

/// Longest rotary table built up front; longer contexts are refused.
pub const MAX_ROPE_POSITIONS: usize = 32_768;

/// Configuration of a Llama model built from random weights (for tests and
/// benchmarks); a pretrained one comes from [`Llama::from_loaded`].
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    pub model: ModelConfig,
    /// Seed of the random weights.
    pub seed: u64,
    /// Standard deviation of the random linear / embedding weights.
    pub init_std: f32,
}

impl LlamaConfig {
    pub fn new(model: ModelConfig) -> Self {
        Self { model, seed: 0, init_std: 0.2 }
    }

    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Random weights in HF layout (`[out, in]` linears), deterministic by seed;
    /// norm gains are drawn around 1 (Gemma's `w` around 0, so that `1 + w`
    /// is) so that they matter in tests, and biases around 0.
    pub fn random_store(&self) -> TensorStore {
        let c = &self.model;
        let (std, d) = (self.init_std, c.hidden_size);
        let gain = 1.0 - c.arch.norm_offset();
        // (name, shape, mean, std): Llama's tensors first, in a fixed order
        // (so that a seed keeps its weights), then what the family adds.
        let mut plan: Vec<(String, Vec<usize>, f32, f32)> = vec![("model.embed_tokens.weight".into(), vec![c.vocab_size, d], 0.0, 1.0)];
        for l in 0..c.num_layers {
            for t in Target::ALL {
                let (i, o) = t.shape(d, c.intermediate_size, c.num_heads, c.num_kv_heads, c.head_dim);
                plan.push((format!("model.layers.{l}.{}.weight", t.hf_module()), vec![o, i], 0.0, std));
            }
            let norms = family::layer_norms(&c.arch, l);
            plan.push((norms.input, vec![d], gain, 0.1));
            plan.push((norms.pre_mlp, vec![d], gain, 0.1));
        }
        plan.push(("model.norm.weight".into(), vec![d], gain, 0.1));
        if !c.tie_word_embeddings {
            plan.push(("lm_head.weight".into(), vec![c.vocab_size, d], 0.0, std));
        }
        let planned: std::collections::HashSet<String> = plan.iter().map(|p| p.0.clone()).collect();
        for (name, shape) in family::expected_shapes(c) {
            if !planned.contains(&name) {
                let mean = if name.ends_with(".bias") { 0.0 } else { gain };
                plan.push((name, shape, mean, 0.1));
            }
        }
        let mut rng = StdRng::seed_from_u64(self.seed);
        let mut store = TensorStore::new();
        for (name, shape, mean, std) in plan {
            let n = shape.iter().product();
            let data = (0..n).map(|_| mean + std * normal(&mut rng)).collect();
            store.insert(name, TensorData { shape, data });
        }
        store
    }

    /// The random model as a [`LoadedModel`] (no tokenizer).
    pub fn random_loaded(&self) -> LoadedModel {
        LoadedModel { config: self.model.clone(), tensors: self.random_store(), tokenizer: None }
    }

    /// A model with random weights.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Llama<B> {
        Llama::from_store(&self.model, &self.random_store(), device).expect("random store matches its own config")
    }
}

/// A Llama-family decoder with frozen weights.
#[derive(Module, Debug)]
pub struct Llama<B: Backend> {
    /// `[vocab, d]`
    embed: Tensor<B, 2>,
    /// `[d, vocab]` (a transposed copy of `embed` when embeddings are tied).
    lm_head: Tensor<B, 2>,
    /// `[vocab, d]`: the head's weights in their HF layout, contiguous (the
    /// same tensor as `embed` when embeddings are tied), for the head's
    /// backward product.
    lm_head_t: Tensor<B, 2>,
    layers: Vec<Block<B>>,
    norm: RmsNorm<B>,
    rope: Rope<B>,
    /// The rotary tables of sliding layers, when their base differs (Gemma 3).
    rope_local: Option<Rope<B>>,
    /// Token embeddings are multiplied by this (Gemma's `√hidden`, rounded
    /// to the weights' dtype).
    #[module(skip)]
    embed_scale: Option<f32>,
    #[module(skip)]
    config: ModelConfig,
}

fn get<'a>(store: &'a TensorStore, name: &str, shape: &[usize]) -> Result<&'a TensorData, ModelError> {
    let t = store.get(name).ok_or_else(|| ModelError::MissingTensor { name: name.to_string() })?;
    if t.shape != shape || t.data.len() != t.numel() {
        return Err(ModelError::ShapeMismatch { name: name.to_string(), expected: shape.to_vec(), found: t.shape.clone() });
    }
    Ok(t)
}

/// `[rows, cols]` row-major → `[cols, rows]` row-major.
fn transpose(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; data.len()];
    const BLOCK: usize = 32;
    for r0 in (0..rows).step_by(BLOCK) {
        for c0 in (0..cols).step_by(BLOCK) {
            for r in r0..(r0 + BLOCK).min(rows) {
                for c in c0..(c0 + BLOCK).min(cols) {
                    out[c * rows + r] = data[r * cols + c];
                }
            }
        }
    }
    out
}

impl<B: Backend> Llama<B> {
    /// Builds the model from a loaded checkpoint (HF names, f32).
    pub fn from_loaded(loaded: &LoadedModel, device: &B::Device) -> Result<Self, ModelError> {
        Self::from_store(&loaded.config, &loaded.tensors, device)
    }

    /// Builds the model from a configuration and HF-named tensors.
    pub fn from_store(c: &ModelConfig, store: &TensorStore, device: &B::Device) -> Result<Self, ModelError> {
        check_config(c)?;
        let (d, v) = (c.hidden_size, c.vocab_size);
        let mat_t = |name: &str, out: usize, inp: usize| -> Result<Tensor<B, 2>, ModelError> {
            let t = get(store, name, &[out, inp])?;
            Ok(Tensor::from_data(BurnData::new(transpose(&t.data, out, inp), [inp, out]).convert::<B::FloatElem>(), device))
        };
        let vec_n = |name: &str, n: usize| -> Result<Tensor<B, 1>, ModelError> {
            let t = get(store, name, &[n])?;
            Ok(Tensor::from_data(BurnData::new(t.data.clone(), [n]).convert::<B::FloatElem>(), device))
        };
        let a = &c.arch;
        let norm = |name: &str, n: usize| -> Result<RmsNorm<B>, ModelError> {
            let w = vec_n(name, n)?;
            Ok(if a.gemma_norm { RmsNorm::gemma(w, c.rms_norm_eps) } else { RmsNorm::new(w, c.rms_norm_eps) })
        };
        let lin = |l: usize, t: Target| {
            let (i, o) = t.shape(d, c.intermediate_size, c.num_heads, c.num_kv_heads, c.head_dim);
            mat_t(&format!("model.layers.{l}.{}.weight", t.hf_module()), o, i)
        };
        let bias = |l: usize, t: Target| {
            let (_, o) = t.shape(d, c.intermediate_size, c.num_heads, c.num_kv_heads, c.head_dim);
            vec_n(&format!("model.layers.{l}.{}.bias", t.hf_module()), o)
        };

        let embed_data = get(store, "model.embed_tokens.weight", &[v, d])?;
        let embed = Tensor::from_data(BurnData::new(embed_data.data.clone(), [v, d]).convert::<B::FloatElem>(), device);
        let (lm_head, lm_head_t) = if c.tie_word_embeddings {
            let t = Tensor::from_data(BurnData::new(transpose(&embed_data.data, v, d), [d, v]).convert::<B::FloatElem>(), device);
            (t, embed.clone())
        } else {
            let hf = get(store, "lm_head.weight", &[v, d])?;
            (mat_t("lm_head.weight", v, d)?, Tensor::from_data(BurnData::new(hf.data.clone(), [v, d]).convert::<B::FloatElem>(), device))
        };
        let mut layers = Vec::with_capacity(c.num_layers);
        for l in 0..c.num_layers {
            let names = family::layer_norms(a, l);
            let biases = if a.qkv_bias { Some([bias(l, Target::Q)?, bias(l, Target::K)?, bias(l, Target::V)?]) } else { None };
            let qk_norm = if a.qk_norm {
                let [qn, kn] = family::qk_norm_names(l);
                Some([norm(&qn, c.head_dim)?, norm(&kn, c.head_dim)?])
            } else {
                None
            };
            layers.push(Block {
                input_norm: norm(&names.input, d)?,
                attn: Attention {
                    wq: lin(l, Target::Q)?,
                    wk: lin(l, Target::K)?,
                    wv: lin(l, Target::V)?,
                    wo: lin(l, Target::O)?,
                    biases,
                    qk_norm,
                    num_heads: c.num_heads,
                    num_kv_heads: c.num_kv_heads,
                    head_dim: c.head_dim,
                    scale: a.attention_scale(c.head_dim),
                    softcap: a.attn_softcap,
                },
                post_attn_norm: names.post_attention.map(|n| norm(&n, d)).transpose()?,
                mlp_norm: norm(&names.pre_mlp, d)?,
                mlp: Mlp {
                    w_gate: lin(l, Target::Gate)?,
                    w_up: lin(l, Target::Up)?,
                    w_down: lin(l, Target::Down)?,
                    activation: a.activation,
                },
                post_mlp_norm: names.post_mlp.map(|n| norm(&n, d)).transpose()?,
                sliding: a.layer_kind(l) == LayerKind::Sliding,
            });
        }
        let norm = norm("model.norm.weight", d)?;
        let max_len = c.max_position_embeddings.min(MAX_ROPE_POSITIONS);
        let rope = Rope::new(&c.rope_inv_freq(), max_len, device);
        let rope_local = c.rope_local_inv_freq().map(|f| Rope::new(&f, max_len, device));
        let embed_scale = a.embed_scale.then(|| (d as f32).sqrt());
        Ok(Self { embed, lm_head, lm_head_t, layers, norm, rope, rope_local, embed_scale, config: c.clone() })
    }

    /// The same model with every frozen weight (and the rotary tables) stored
    /// in `dtype`, so that its activations and base matmuls run in it; see
    /// [`crate::model::precision`] for what stays in full precision.
    pub fn with_dtype(self, dtype: burn::tensor::FloatDType) -> Self {
        let c = |t| precision::cast(t, dtype);
        let embed = c(self.embed);
        // Tied: the head's `[vocab, d]` layout is the embedding itself.
        let lm_head_t = if self.config.tie_word_embeddings { embed.clone() } else { c(self.lm_head_t) };
        Self {
            embed,
            lm_head: c(self.lm_head),
            lm_head_t,
            layers: self.layers.into_iter().map(|b| b.with_dtype(dtype)).collect(),
            norm: self.norm.with_dtype(dtype),
            rope: self.rope.with_dtype(dtype),
            rope_local: self.rope_local.map(|r| r.with_dtype(dtype)),
            // HF casts `√hidden` to the weights' dtype before multiplying.
            embed_scale: self.embed_scale.map(|s| precision::round_to(s, dtype)),
            config: self.config,
        }
    }

    /// The dtype the model's weights and activations are stored in.
    pub fn dtype(&self) -> burn::tensor::FloatDType {
        precision::dtype_of(&self.embed)
    }

    /// The output head as `([d, vocab], [vocab, d])`, both contiguous.
    pub fn head(&self) -> (Tensor<B, 2>, Tensor<B, 2>) {
        (self.lm_head.clone(), self.lm_head_t.clone())
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// Longest sequence the model accepts.
    pub fn max_seq_len(&self) -> usize {
        self.rope.max_len
    }

    /// The frozen base weight of `target` in decoder layer `layer`, `[in, out]`
    /// (`x ↦ x W`), e.g. for adapter inits computed from `W`.
    pub fn base_weight(&self, layer: usize, target: Target) -> Tensor<B, 2> {
        let block = &self.layers[layer];
        match target {
            Target::Q => block.attn.wq.clone(),
            Target::K => block.attn.wk.clone(),
            Target::V => block.attn.wv.clone(),
            Target::O => block.attn.wo.clone(),
            Target::Gate => block.mlp.w_gate.clone(),
            Target::Up => block.mlp.w_up.clone(),
            Target::Down => block.mlp.w_down.clone(),
        }
    }

    /// Final hidden states (after the last RMSNorm).
    ///
    /// # Shapes
    /// - `tokens`: `[batch, seq]` token ids
    /// - `padding`: `[batch, seq]`, true for real tokens (padding on the right)
    /// - returns `[batch, seq, d]`
    pub fn forward_hidden<H: LinearHook<B>>(&self, tokens: Tensor<B, 2, Int>, padding: Tensor<B, 2, Bool>, hook: &H) -> Tensor<B, 3> {
        let [batch, seq] = tokens.dims();
        let d = self.config.hidden_size;
        let mut x = self.embed.clone().select(0, tokens.reshape([batch * seq])).reshape([batch, seq, d]);
        if let Some(s) = self.embed_scale {
            x = x.mul_scalar(s);
        }
        let (heads, kv_heads) = (self.config.num_heads, self.config.num_kv_heads);
        let full = attention_bias(padding.clone(), heads, kv_heads, None);
        let sliding =
            self.layers.iter().any(|b| b.sliding).then(|| attention_bias(padding, heads, kv_heads, self.config.arch.sliding_window));
        for (l, block) in self.layers.iter().enumerate() {
            let (bias, rope) = match (&sliding, block.sliding) {
                (Some(s), true) => (s, self.rope_local.as_ref().unwrap_or(&self.rope)),
                _ => (&full, &self.rope),
            };
            x = block.forward(l, x, rope, bias, hook);
        }
        self.norm.forward(x)
    }

    /// Output-head projection of hidden states.
    ///
    /// # Shapes
    /// - `hidden`: `[batch, seq, d]`
    /// - returns `[batch, seq, vocab]`
    pub fn logits(&self, hidden: Tensor<B, 3>) -> Tensor<B, 3> {
        let [batch, seq, d] = hidden.dims();
        let z = hidden.reshape([batch * seq, d]).matmul(self.lm_head.clone()).reshape([batch, seq, self.config.vocab_size]);
        super::softcap::softcap(z, self.config.arch.final_softcap)
    }

    /// The output logits' soft-cap `cap · tanh(z / cap)`, if any (Gemma 2).
    pub fn final_softcap(&self) -> Option<f64> {
        self.config.arch.final_softcap
    }

    /// Next-token logits.
    ///
    /// # Shapes
    /// - `tokens`: `[batch, seq]` token ids
    /// - `padding`: `[batch, seq]`, true for real tokens (padding on the right)
    /// - returns `[batch, seq, vocab]`
    pub fn forward<H: LinearHook<B>>(&self, tokens: Tensor<B, 2, Int>, padding: Tensor<B, 2, Bool>, hook: &H) -> Tensor<B, 3> {
        self.logits(self.forward_hidden(tokens, padding, hook))
    }
}

fn check_config(c: &ModelConfig) -> Result<(), ModelError> {
    let bad = |reason: String| Err(ModelError::BadConfig { reason });
    if c.num_heads == 0 || c.num_kv_heads == 0 || !c.num_heads.is_multiple_of(c.num_kv_heads) {
        return bad(format!("{} attention heads cannot be grouped over {} key/value heads", c.num_heads, c.num_kv_heads));
    }
    if c.head_dim == 0 || !c.head_dim.is_multiple_of(2) {
        return bad(format!("head_dim {} must be even and positive for rotary embeddings", c.head_dim));
    }
    if c.hidden_size == 0 || c.vocab_size == 0 || c.intermediate_size == 0 {
        return bad("hidden, vocabulary and intermediate sizes must be positive".into());
    }
    if c.max_position_embeddings == 0 {
        return bad("max_position_embeddings must be positive".into());
    }
    c.rope_scaling.check(c.head_dim).map_err(|reason| ModelError::BadConfig { reason })?;
    c.arch.check(c.num_layers).map_err(|reason| ModelError::BadConfig { reason })
}

/// A standard normal sample via Box–Muller (rand 0.9 has no `Normal` without `rand_distr`).
mod rand_distr_free {
    use rand::Rng;
    pub fn normal<R: Rng>(rng: &mut R) -> f32 {
        let u1: f64 = rng.random::<f64>().max(1e-300);
        let u2: f64 = rng.random::<f64>();
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    }
}
