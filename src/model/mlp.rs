//! Gated feed-forward: `down(act(gate(x)) * up(x))`, with `act` silu
//! (SwiGLU, Llama) or tanh-approximated GELU (GeGLU, Gemma).

use burn::prelude::*;
use burn::tensor::activation::{silu, tanh};

use crate::lang::target::Target;
use crate::model::hook::LinearHook;
use crate::model::precision;
use crate::pretrained::family::Activation;

/// The frozen MLP projections of one layer, stored `[in, out]`.
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    /// `[d, intermediate]`
    pub w_gate: Tensor<B, 2>,
    /// `[d, intermediate]`
    pub w_up: Tensor<B, 2>,
    /// `[intermediate, d]`
    pub w_down: Tensor<B, 2>,
    #[module(skip)]
    pub activation: Activation,
}

/// `0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))`, PyTorch's
/// `gelu(approximate="tanh")`.
pub fn gelu_tanh<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let k = (2.0 / std::f64::consts::PI).sqrt();
    let inner = x.clone().add(x.clone().powi_scalar(3).mul_scalar(0.044715)).mul_scalar(k);
    x.mul(tanh(inner).add_scalar(1.0)).mul_scalar(0.5)
}

impl<B: Backend> Mlp<B> {
    /// The same projections stored in `dtype`.
    pub fn with_dtype(self, dtype: burn::tensor::FloatDType) -> Self {
        let c = |t| precision::cast(t, dtype);
        Self { w_gate: c(self.w_gate), w_up: c(self.w_up), w_down: c(self.w_down), activation: self.activation }
    }

    /// # Shapes
    /// - `x`: `[batch, seq, d]`
    /// - returns `[batch, seq, d]`
    pub fn forward<H: LinearHook<B>>(&self, layer: usize, x: Tensor<B, 3>, hook: &H) -> Tensor<B, 3> {
        let gate = hook.linear(layer, Target::Gate, x.clone(), &self.w_gate);
        let up = hook.linear(layer, Target::Up, x, &self.w_up);
        let gate = match self.activation {
            Activation::Silu => silu(gate),
            Activation::GeluTanh => gelu_tanh(gate),
        };
        hook.linear(layer, Target::Down, gate.mul(up), &self.w_down)
    }
}
