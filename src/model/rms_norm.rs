//! Root-mean-square layer norm: `x / sqrt(mean(x²) + eps) * g`, where the
//! gain `g` is the stored `w` (Llama) or `1 + w` (Gemma).

use burn::prelude::*;

use crate::model::precision;

/// RMSNorm with a frozen gain vector (held as a constant tensor, no gradient).
#[derive(Module, Debug)]
pub struct RmsNorm<B: Backend> {
    /// `[d]`: the gain itself (Gemma's `1 + w` already added).
    pub weight: Tensor<B, 1>,
    pub eps: f64,
    /// Multiply by the gain in full precision and cast after (Gemma's
    /// `(x * rsqrt(...)) * (1 + w.float())`, then `.to(dtype)`), rather
    /// than cast first and multiply in the activations' dtype (Llama).
    pub gain_in_full: bool,
}

impl<B: Backend> RmsNorm<B> {
    /// Llama's norm: gain `w`, applied after the cast back.
    pub fn new(weight: Tensor<B, 1>, eps: f64) -> Self {
        Self { weight, eps, gain_in_full: false }
    }

    /// Gemma's norm: gain `1 + w`, applied in full precision.
    pub fn gemma(w: Tensor<B, 1>, eps: f64) -> Self {
        Self { weight: w.add_scalar(1.0), eps, gain_in_full: true }
    }

    /// # Shapes
    /// - `x`: `[batch, seq, d]`
    /// - returns `[batch, seq, d]`
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        // In bf16 the mean square and the scaling run in full precision
        // (HF's LlamaRMSNorm and GemmaRMSNorm alike).
        let dtype = precision::dtype_of(&x);
        let x = precision::to_full(x);
        let inv_rms = x.clone().square().mean_dim(2).add_scalar(self.eps).sqrt().recip();
        let gain = self.weight.clone().unsqueeze::<3>();
        if self.gain_in_full {
            precision::cast(x.mul(inv_rms).mul(precision::to_full(gain)), dtype)
        } else {
            precision::cast(x.mul(inv_rms), dtype).mul(gain)
        }
    }

    /// The norm over the last axis of a 4-D tensor (per-head q/k norms).
    ///
    /// # Shapes
    /// - `x`: `[batch, heads, seq, d]`
    /// - returns `[batch, heads, seq, d]`
    pub fn forward4(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [b, h, s, d] = x.dims();
        self.forward(x.reshape([b * h, s, d])).reshape([b, h, s, d])
    }

    /// The same norm with its gain in `dtype` (a full-precision gain stays).
    pub fn with_dtype(self, dtype: burn::tensor::FloatDType) -> Self {
        if self.gain_in_full { self } else { Self { weight: precision::cast(self.weight, dtype), ..self } }
    }
}
