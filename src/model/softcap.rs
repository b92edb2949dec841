//! Soft-capping (Gemma 2): `cap · tanh(x / cap)`, which bounds attention
//! scores and output logits to `(-cap, cap)` and is the identity near 0.

use burn::prelude::*;
use burn::tensor::activation::tanh;

/// `cap · tanh(x / cap)`, or `x` itself without a cap.
pub fn softcap<B: Backend, const D: usize>(x: Tensor<B, D>, cap: Option<f64>) -> Tensor<B, D> {
    match cap {
        Some(cap) => tanh(x.div_scalar(cap)).mul_scalar(cap),
        None => x,
    }
}
