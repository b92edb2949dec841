//! Root-mean-square layer norm (Llama): `x / sqrt(mean(x²) + eps) * w`.

use burn::prelude::*;

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
        let inv_rms = x.clone().square().mean_dim(2).add_scalar(self.eps).sqrt().recip();
        x.mul(inv_rms).mul(self.weight.clone().unsqueeze::<3>())
    }
}
