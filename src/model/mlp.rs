//! SwiGLU feed-forward: `down(silu(gate(x)) * up(x))`.

use burn::prelude::*;
use burn::tensor::activation::silu;

use crate::lang::target::Target;
use crate::model::hook::LinearHook;
use crate::model::precision;

/// The frozen MLP projections of one layer, stored `[in, out]`.
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    /// `[d, intermediate]`
    pub w_gate: Tensor<B, 2>,
    /// `[d, intermediate]`
    pub w_up: Tensor<B, 2>,
    /// `[intermediate, d]`
    pub w_down: Tensor<B, 2>,
}

impl<B: Backend> Mlp<B> {
    /// The same projections stored in `dtype`.
    pub fn with_dtype(self, dtype: burn::tensor::FloatDType) -> Self {
        let c = |t| precision::cast(t, dtype);
        Self { w_gate: c(self.w_gate), w_up: c(self.w_up), w_down: c(self.w_down) }
    }

    /// # Shapes
    /// - `x`: `[batch, seq, d]`
    /// - returns `[batch, seq, d]`
    pub fn forward<H: LinearHook<B>>(&self, layer: usize, x: Tensor<B, 3>, hook: &H) -> Tensor<B, 3> {
        let gate = hook.linear(layer, Target::Gate, x.clone(), &self.w_gate);
        let up = hook.linear(layer, Target::Up, x, &self.w_up);
        hook.linear(layer, Target::Down, silu(gate).mul(up), &self.w_down)
    }
}
