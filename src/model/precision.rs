//! Mixed precision: a bf16 base model with full-precision adapters and loss.
//!
//! With `precision: bf16` on a GPU backend the frozen base weights, the
//! activations between layers and the base matmuls are bf16; the adapters'
//! tensors, their arithmetic, their gradients and the optimizer stay in the
//! backend's float type (f32), and so do the numerically delicate
//! reductions: RMSNorm's mean square, attention's softmax (with its mask),
//! and the output head's softmax + cross entropy, whose logits come out of a
//! bf16 matmul and are cast up before the loss (HF transformers' and PEFT's
//! recipe). Every place the two meet casts explicitly: burn's GPU kernels
//! read both operands of a binary op as the left one's dtype.
//!
//! With the f32 default every cast below is skipped (no op, no autodiff node).

use burn::prelude::*;
use burn::tensor::{DType, Element, FloatDType};

/// The backend's own float type: adapters, gradients and losses use it.
pub fn full<B: Backend>() -> FloatDType {
    <B::FloatElem as Element>::dtype().into()
}

/// `t` in `dtype`, and `t` itself (no op recorded) when it already is.
pub fn cast<B: Backend, const D: usize>(t: Tensor<B, D>, dtype: FloatDType) -> Tensor<B, D> {
    if t.dtype() == DType::from(dtype) { t } else { t.cast(dtype) }
}

/// `t` in the backend's own float type.
pub fn to_full<B: Backend, const D: usize>(t: Tensor<B, D>) -> Tensor<B, D> {
    cast(t, full::<B>())
}

/// The float dtype of `t`.
pub fn dtype_of<B: Backend, const D: usize>(t: &Tensor<B, D>) -> FloatDType {
    t.dtype().into()
}

/// `x` rounded to `dtype` and back (a scalar HF casts to the weights' dtype).
pub fn round_to(x: f32, dtype: FloatDType) -> f32 {
    match dtype {
        FloatDType::BF16 => half::bf16::from_f32(x).to_f32(),
        FloatDType::F16 => half::f16::from_f32(x).to_f32(),
        _ => x,
    }
}
