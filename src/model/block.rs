//! One pre-norm decoder layer: `x + attn(norm(x))`, then `x + mlp(norm(x))`.

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
    pub post_attn_norm: RmsNorm<B>,
    pub mlp: Mlp<B>,
}

impl<B: Backend> Block<B> {
    /// The same layer with its weights stored in `dtype`.
    pub fn with_dtype(self, dtype: burn::tensor::FloatDType) -> Self {
        Self {
            input_norm: self.input_norm.with_dtype(dtype),
            attn: self.attn.with_dtype(dtype),
            post_attn_norm: self.post_attn_norm.with_dtype(dtype),
            mlp: self.mlp.with_dtype(dtype),
        }
    }

    /// # Shapes
    /// - `x`: `[batch, seq, d]`
    /// - `bias`: `[batch, 1, groups * seq, seq]`
    /// - returns `[batch, seq, d]`
    pub fn forward<H: LinearHook<B>>(&self, layer: usize, x: Tensor<B, 3>, rope: &Rope<B>, bias: &Tensor<B, 4>, hook: &H) -> Tensor<B, 3> {
        let h = x.clone().add(self.attn.forward(layer, self.input_norm.forward(x), rope, bias, hook));
        h.clone().add(self.mlp.forward(layer, self.post_attn_norm.forward(h), hook))
    }
}
