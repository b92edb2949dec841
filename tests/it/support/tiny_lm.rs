//! Tiny models for fast tests: [`tiny_llama`], a grouped-query config of the
//! real Burn Llama, and [`TinyLm`], a Llama-like decoder with random weights
//! (single-head attention, RMS norms without weights, SwiGLU MLP, tied
//! output head) that implements [`CausalLm`] as the Burn Llama does, so the
//! trainer, the lowering and the fused head can be tested in milliseconds.
#![allow(dead_code)]

use burn::prelude::*;
use burn::tensor::activation::{silu, softmax};
use peftc::lang::target::Target;
use peftc::model::LlamaConfig;
use peftc::model::causal_lm::CausalLm;
use peftc::model::hook::LinearHook;

/// A tiny Llama-like decoder with random weights (single-head attention,
/// RMS norms without weights, SwiGLU MLP, tied output head), for tests.
#[derive(Debug, Clone)]
pub struct TinyLm<B: Backend> {
    pub vocab: usize,
    pub hidden: usize,
    pub inter: usize,
    pub layers: usize,
    embed: Tensor<B, 2>,
    /// `[hidden, vocab]`, a contiguous transposed copy of `embed` (tied head).
    head: Tensor<B, 2>,
    /// `weights[layer][target]`, `[in, out]`.
    weights: Vec<Vec<Tensor<B, 2>>>,
}

fn rms_norm<B: Backend>(x: Tensor<B, 3>) -> Tensor<B, 3> {
    let ms = x.clone().square().mean_dim(2).add_scalar(1e-6).sqrt();
    x / ms
}

impl<B: Backend> TinyLm<B> {
    /// Random weights, deterministic in `seed`.
    pub fn new(vocab: usize, hidden: usize, inter: usize, layers: usize, seed: u64, device: &B::Device) -> Self {
        use peftc::lower::init::stream;
        use rand::Rng;
        let mut rng = stream(seed, "tiny-lm");
        let mut mat = |r: usize, c: usize, scale: f64| {
            let v: Vec<f32> = (0..r * c).map(|_| ((rng.random::<f64>() * 2.0 - 1.0) * scale) as f32).collect();
            Tensor::<B, 2>::from_data(TensorData::new(v, [r, c]).convert::<B::FloatElem>(), device)
        };
        let embed = mat(vocab, hidden, 1.0);
        let weights = (0..layers)
            .map(|_| {
                Target::ALL
                    .iter()
                    .map(|t| {
                        let (i, o) = t.shape(hidden, inter, 1, 1, hidden);
                        mat(i, o, (3.0 / i as f64).sqrt())
                    })
                    .collect()
            })
            .collect();
        // A contiguous copy of the transpose, as `Llama` keeps for its head
        // (see `peftc::model::head_loss::head_loss`).
        let head: Tensor<B, 2> = Tensor::from_data(embed.clone().transpose().to_data(), device);
        TinyLm { vocab, hidden, inter, layers, embed, head, weights }
    }

    fn w(&self, layer: usize, t: Target) -> &Tensor<B, 2> {
        &self.weights[layer][Target::ALL.iter().position(|x| *x == t).unwrap_or(0)]
    }

    /// The same model with `f` applied to every target weight (e.g. merged weights).
    pub fn with_weights(&self, f: impl Fn(usize, Target, &Tensor<B, 2>) -> Tensor<B, 2>) -> Self {
        let mut m = self.clone();
        for l in 0..self.layers {
            for (ti, t) in Target::ALL.iter().enumerate() {
                m.weights[l][ti] = f(l, *t, &self.weights[l][ti]);
            }
        }
        m
    }
}

impl<B: Backend> CausalLm<B> for TinyLm<B> {
    fn hidden<H: LinearHook<B>>(&self, tokens: Tensor<B, 2, Int>, hook: &H) -> Tensor<B, 3> {
        let [batch, seq] = tokens.dims();
        let d = self.hidden;
        let dev = tokens.device();
        let mut h: Tensor<B, 3> = self.embed.clone().select(0, tokens.reshape([batch * seq])).reshape([batch, seq, d]);
        // true = masked: key j > query i (burn's `tril_mask` is true outside the lower triangle).
        let causal = Tensor::<B, 2, Bool>::tril_mask([seq, seq], 0, &dev).unsqueeze::<3>().expand([batch, seq, seq]);
        for l in 0..self.layers {
            let a = rms_norm(h.clone());
            let q = hook.linear(l, Target::Q, a.clone(), self.w(l, Target::Q));
            let k = hook.linear(l, Target::K, a.clone(), self.w(l, Target::K));
            let v = hook.linear(l, Target::V, a, self.w(l, Target::V));
            let scores = q.matmul(k.swap_dims(1, 2)).div_scalar((d as f64).sqrt()).mask_fill(causal.clone(), -1e9);
            let att = softmax(scores, 2).matmul(v);
            h = h + hook.linear(l, Target::O, att, self.w(l, Target::O));
            let m = rms_norm(h.clone());
            let g = silu(hook.linear(l, Target::Gate, m.clone(), self.w(l, Target::Gate)));
            let u = hook.linear(l, Target::Up, m, self.w(l, Target::Up));
            h = h + hook.linear(l, Target::Down, g * u, self.w(l, Target::Down));
        }
        rms_norm(h)
    }

    fn head(&self) -> (Tensor<B, 2>, Tensor<B, 2>) {
        (self.head.clone(), self.embed.clone())
    }

    fn base_weight(&self, layer: usize, target: Target) -> Tensor<B, 2> {
        self.w(layer, target).clone()
    }
    fn num_layers(&self) -> usize {
        self.layers
    }
    fn target_shape(&self, target: Target) -> (usize, usize) {
        target.shape(self.hidden, self.inter, 1, 1, self.hidden)
    }
}

/// A tiny grouped-query Llama: vocab 64, width 32, 2 layers, 4 heads over 2 KV heads.
pub fn tiny_llama() -> LlamaConfig {
    LlamaConfig::new(peftc::pretrained::weights::ModelConfig {
        architecture: "llama".into(),
        vocab_size: 64,
        hidden_size: 32,
        intermediate_size: 48,
        num_layers: 2,
        num_heads: 4,
        num_kv_heads: 2,
        head_dim: 8,
        rope_theta: 10_000.0,
        rope_scaling: Default::default(),
        rms_norm_eps: 1e-5,
        max_position_embeddings: 128,
        tie_word_embeddings: true,
        bos_token_id: Some(1),
        eos_token_id: 2,
        arch: Default::default(),
        dtype: Default::default(),
    })
}
