//! Root-mean-square layer norm (Llama): `x / sqrt(mean(x²) + eps) * w`.

use burn::prelude::*;

use crate::model::precision;

/// RMSNorm with a frozen gain vector (held as a constant tensor, no gradient).
#[derive(Module, Debug)]
pub struct RmsNorm<B: Backend> {
    /// `[d]`
    pub weight: Tensor<B, 1>,
    pub eps: f64,
}

impl<B: Backend> RmsNorm<B> {
    pub fn new(weight: Tensor<B, 1>, eps: f64) -> Self {
        Self { weight, eps }
    }

    /// # Shapes
    /// - `x`: `[batch, seq, d]`
    /// - returns `[batch, seq, d]`
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        // In bf16 the mean square and the scaling run in full precision and
        // the result is cast back before the gain (HF's LlamaRMSNorm).
        let dtype = precision::dtype_of(&x);
        let x = precision::to_full(x);
        let inv_rms = x.clone().square().mean_dim(2).add_scalar(self.eps).sqrt().recip();
        precision::cast(x.mul(inv_rms), dtype).mul(self.weight.clone().unsqueeze::<3>())
    }

    /// The same norm with its gain in `dtype`.
    pub fn with_dtype(self, dtype: burn::tensor::FloatDType) -> Self {
        Self { weight: precision::cast(self.weight, dtype), eps: self.eps }
    }
}
