//! The adapter hook: how an adapter scheme plugs into the base model.
//!
//! The Llama model calls the hook for every target linear of every layer. The
//! hook receives the layer index, the target, the input activations and the
//! frozen base weight, and returns the layer's output. Tied tensors live once
//! inside the hook's implementation and are passed into each layer's
//! computation from there, never cloned as parameters.

use burn::prelude::*;

use crate::lang::target::Target;

pub trait LinearHook<B: Backend> {
    /// Output of `target` in decoder layer `layer`.
    ///
    /// # Shapes
    /// - `x`: `[batch, seq, in]`
    /// - `w`: `[in, out]` (frozen base weight, `x ↦ x W` convention)
    /// - returns `[batch, seq, out]`
    fn linear(&self, layer: usize, target: Target, x: Tensor<B, 3>, w: &Tensor<B, 2>) -> Tensor<B, 3>;
}

/// The identity hook: the base model unchanged, `x W`.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoAdapter;

impl<B: Backend> LinearHook<B> for NoAdapter {
    fn linear(&self, _layer: usize, _target: Target, x: Tensor<B, 3>, w: &Tensor<B, 2>) -> Tensor<B, 3> {
        x.matmul(w.clone().unsqueeze::<3>())
    }
}
