//! SwiGLU feed-forward: `down(silu(gate(x)) * up(x))`.

use burn::prelude::*;
use burn::tensor::activation::silu;

use crate::hook::LinearHook;
use crate::target::Target;

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
    /// # Shapes
    /// - `x`: `[batch, seq, d]`
    /// - returns `[batch, seq, d]`
    pub fn forward<H: LinearHook<B>>(&self, layer: usize, x: Tensor<B, 3>, hook: &H) -> Tensor<B, 3> {
        let gate = hook.linear(layer, Target::Gate, x.clone(), &self.w_gate);
        let up = hook.linear(layer, Target::Up, x, &self.w_up);
        hook.linear(layer, Target::Down, silu(gate).mul(up), &self.w_down)
    }
}
