//! Grouped-query self-attention with rotary embeddings, causal, padding and
//! sliding-window masks; optionally q/k/v biases (Qwen2), per-head q/k
//! norms (Gemma 3) and soft-capped scores (Gemma 2).

use burn::prelude::*;
use burn::tensor::activation::softmax;

use super::rms_norm::RmsNorm;
use super::rope::Rope;
use super::softcap::softcap;
use crate::lang::target::Target;
use crate::model::hook::LinearHook;
use crate::model::precision;

/// The frozen projections of one attention layer, stored `[in, out]` so that
/// `x W`; every projection goes through the adapter hook.
#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
    /// `[d, heads * head_dim]`
    pub wq: Tensor<B, 2>,
    /// `[d, kv_heads * head_dim]`
    pub wk: Tensor<B, 2>,
    /// `[d, kv_heads * head_dim]`
    pub wv: Tensor<B, 2>,
    /// `[heads * head_dim, d]`
    pub wo: Tensor<B, 2>,
    /// Frozen biases of q, k and v (`[heads * head_dim]`, `[kv_heads * head_dim]` ×2), added to `x W` and the adapter's output.
    pub biases: Option<[Tensor<B, 1>; 3]>,
    /// RMSNorms over each head's q and k, before RoPE.
    pub qk_norm: Option<[RmsNorm<B>; 2]>,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    /// The multiplier of `q·k` (`head_dim^-½` unless the family says otherwise).
    pub scale: f64,
    /// Scores pass through `cap · tanh(s / cap)` before the mask.
    pub softcap: Option<f64>,
}

/// Builds the additive attention bias for one batch (0 = visible, a huge
/// negative number = masked), in the grouped layout [`Attention::forward`]
/// consumes. Built once per forward and shared by every layer and every
/// key/value head (it broadcasts over them).
///
/// Key `j` is masked for query `i` when `j > i` (causal), when token `j` is
/// padding, or, with a sliding `window`, when `j ≤ i - window`
/// (transformers' `sliding_window_overlay`: visible iff `j > i - window`).
/// Padding is expected on the right, so real tokens never see it and their
/// outputs do not depend on the padding.
///
/// # Shapes
/// - `padding`: `[batch, seq]`, true for real tokens
/// - returns `[batch, 1, groups * seq, seq]`
pub fn attention_bias<B: Backend>(
    padding: Tensor<B, 2, Bool>,
    num_heads: usize,
    num_kv_heads: usize,
    window: Option<usize>,
) -> Tensor<B, 4> {
    let [batch, seq] = padding.dims();
    let device = padding.device();
    let groups = num_heads / num_kv_heads;
    // burn's `tril_mask` is true outside the lower triangle: key j > query i.
    let mut causal = Tensor::<B, 2, Bool>::tril_mask([seq, seq], 0, &device);
    if let Some(w) = window.filter(|&w| w < seq) {
        // `triu_mask(o)` is true where j - i < o: here j - i ≤ -w.
        causal = causal.bool_or(Tensor::<B, 2, Bool>::triu_mask([seq, seq], 1 - w as i64, &device));
    }
    let causal = causal.unsqueeze::<3>().expand([batch, seq, seq]);
    let pad = padding.bool_not().reshape([batch, 1, seq]).expand([batch, seq, seq]);
    let masked = causal.bool_or(pad).reshape([batch, 1, seq, seq]).expand([batch, groups, seq, seq]).reshape([batch, 1, groups * seq, seq]);
    // Finite, so a row could never turn into NaN; exp() of it is exactly 0.
    Tensor::<B, 4>::zeros([batch, 1, groups * seq, seq], &device).mask_fill(masked, -1e30)
}

impl<B: Backend> Attention<B> {
    /// The same projections stored in `dtype`.
    pub fn with_dtype(self, dtype: burn::tensor::FloatDType) -> Self {
        let c = |t| precision::cast(t, dtype);
        Self {
            wq: c(self.wq),
            wk: c(self.wk),
            wv: c(self.wv),
            wo: c(self.wo),
            biases: self.biases.map(|bs| bs.map(|b| precision::cast(b, dtype))),
            qk_norm: self.qk_norm.map(|ns| ns.map(|n| n.with_dtype(dtype))),
            ..self
        }
    }

    /// # Shapes
    /// - `x`: `[batch, seq, d]`
    /// - `bias`: `[batch, 1, groups * seq, seq]` from [`attention_bias`]
    /// - returns `[batch, seq, d]`
    pub fn forward<H: LinearHook<B>>(&self, layer: usize, x: Tensor<B, 3>, rope: &Rope<B>, bias: &Tensor<B, 4>, hook: &H) -> Tensor<B, 3> {
        let [batch, seq, _] = x.dims();
        let (h, kvh, hd) = (self.num_heads, self.num_kv_heads, self.head_dim);
        let groups = h / kvh;

        let mut q = hook.linear(layer, Target::Q, x.clone(), &self.wq);
        let mut k = hook.linear(layer, Target::K, x.clone(), &self.wk);
        let mut v = hook.linear(layer, Target::V, x, &self.wv);
        if let Some([bq, bk, bv]) = &self.biases {
            q = q.add(bq.clone().unsqueeze::<3>());
            k = k.add(bk.clone().unsqueeze::<3>());
            v = v.add(bv.clone().unsqueeze::<3>());
        }

        let mut q = q.reshape([batch, seq, h, hd]).swap_dims(1, 2);
        let mut k = k.reshape([batch, seq, kvh, hd]).swap_dims(1, 2);
        if let Some([qn, kn]) = &self.qk_norm {
            q = qn.forward4(q);
            k = kn.forward4(k);
        }
        // The scale goes on q, a quarter of the scores' size here.
        let q = rope.forward(q).mul_scalar(self.scale);
        let k = rope.forward(k);
        let v = v.reshape([batch, seq, kvh, hd]).swap_dims(1, 2);

        // Query head `g*kv + j` uses key/value head `kv` (HF's repeat_kv): fold the
        // group into the query-sequence axis instead of copying K and V.
        let q = q.reshape([batch, kvh, groups * seq, hd]);
        // softmax(q kᵀ + bias) v, composed from plain ops: burn's `softmax`
        // detaches its max shift, so autodiff differentiates neither a max nor
        // a mask fill (burn's attention fallback does both).
        // In bf16 the scores are cast up for the mask and softmax (f32 `bias`),
        // and the probabilities back down for the product with v.
        let dtype = precision::dtype_of(&v);
        let scores = softcap(precision::to_full(q.matmul(k.swap_dims(2, 3))), self.softcap).add(bias.clone());
        let ctx = precision::cast(softmax(scores, 3), dtype).matmul(v);
        let ctx = ctx.reshape([batch, h, seq, hd]).swap_dims(1, 2).reshape([batch, seq, h * hd]);
        hook.linear(layer, Target::O, ctx, &self.wo)
    }
}
