//! One pre-norm decoder layer: `x + attn(norm(x))`, then `x + mlp(norm(x))`;
//! with sandwich norms (Gemma 2/3) each sub-layer's output is normed too:
//! `x + norm(attn(norm(x)))`, then `h + norm(mlp(norm(h)))`.

use burn::prelude::*;

use super::attention::Attention;
use super::mlp::Mlp;
use super::rms_norm::RmsNorm;
use super::rope::Rope;
use crate::model::hook::LinearHook;

#[derive(Module, Debug)]
pub struct Block<B: Backend> {
    pub input_norm: RmsNorm<B>,
    pub attn: Attention<B>,
    /// After attention, before the residual add (sandwich only).
    pub post_attn_norm: Option<RmsNorm<B>>,
    /// Before the MLP (HF Llama's `post_attention_layernorm`, Gemma 2's
    /// `pre_feedforward_layernorm`).
    pub mlp_norm: RmsNorm<B>,
    pub mlp: Mlp<B>,
    /// After the MLP, before the residual add (sandwich only).
    pub post_mlp_norm: Option<RmsNorm<B>>,
    /// Whether this layer attends through a sliding window.
    pub sliding: bool,
}

impl<B: Backend> Block<B> {
    /// The same layer with its weights stored in `dtype`.
    pub fn with_dtype(self, dtype: burn::tensor::FloatDType) -> Self {
        Self {
            input_norm: self.input_norm.with_dtype(dtype),
            attn: self.attn.with_dtype(dtype),
            post_attn_norm: self.post_attn_norm.map(|n| n.with_dtype(dtype)),
            mlp_norm: self.mlp_norm.with_dtype(dtype),
            mlp: self.mlp.with_dtype(dtype),
            post_mlp_norm: self.post_mlp_norm.map(|n| n.with_dtype(dtype)),
            sliding: self.sliding,
        }
    }

    /// # Shapes
    /// - `x`: `[batch, seq, d]`
    /// - `bias`: `[batch, 1, groups * seq, seq]` (this layer's mask)
    /// - returns `[batch, seq, d]`
    pub fn forward<H: LinearHook<B>>(&self, layer: usize, x: Tensor<B, 3>, rope: &Rope<B>, bias: &Tensor<B, 4>, hook: &H) -> Tensor<B, 3> {
        let mut a = self.attn.forward(layer, self.input_norm.forward(x.clone()), rope, bias, hook);
        if let Some(n) = &self.post_attn_norm {
            a = n.forward(a);
        }
        let h = x.add(a);
        let mut m = self.mlp.forward(layer, self.mlp_norm.forward(h.clone()), hook);
        if let Some(n) = &self.post_mlp_norm {
            m = n.forward(m);
        }
        h.add(m)
    }
}
