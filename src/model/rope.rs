//! Rotary position embeddings in the HF / GGUF-dequantized "rotate-half"
//! layout: the head vector is split into halves `(x1, x2)` and the pair
//! `(x1[i], x2[i])` is rotated by angle `p * inv_freq[i]`, where the inverse
//! frequencies come from the checkpoint's config
//! ([`crate::pretrained::weights::ModelConfig::rope_inv_freq`]: `theta^(-2i/d)`,
//! possibly rescaled, e.g. Llama 3's `llama3` RoPE).
//!
//! This is NOT burn's `RotaryEncoding`, which rotates interleaved pairs
//! `(x[2i], x[2i+1])`; HF checkpoints (and GGUF ones once the llama
//! permutation is undone by the loader) need rotate-half.

use burn::prelude::*;
use burn::tensor::TensorData as BurnData;

use crate::model::precision;

/// Precomputed `cos` / signed `sin` tables for positions `0..max_len`.
#[derive(Module, Debug)]
pub struct Rope<B: Backend> {
    /// `[max_len, head_dim]`: `cos(p·f_i)` repeated over both halves.
    cos: Tensor<B, 2>,
    /// `[max_len, head_dim]`: `-sin(p·f_i)` on the first half, `+sin(p·f_i)` on the second.
    sin_signed: Tensor<B, 2>,
    pub head_dim: usize,
    pub max_len: usize,
}

impl<B: Backend> Rope<B> {
    /// Tables for positions `0..max_len` from one inverse frequency per
    /// pair (`head_dim = 2 * inv_freq.len()`). Each angle is the f32 product
    /// `p * inv_freq[i]`, as HF's rotary embedding computes it.
    pub fn new(inv_freq: &[f32], max_len: usize, device: &B::Device) -> Self {
        let head_dim = 2 * inv_freq.len();
        let mut cos = Vec::with_capacity(max_len * head_dim);
        let mut sin = Vec::with_capacity(max_len * head_dim);
        for p in 0..max_len {
            let angles: Vec<f32> = inv_freq.iter().map(|f| p as f32 * f).collect();
            cos.extend(angles.iter().map(|a| a.cos()));
            cos.extend(angles.iter().map(|a| a.cos()));
            sin.extend(angles.iter().map(|a| -a.sin()));
            sin.extend(angles.iter().map(|a| a.sin()));
        }
        Self {
            cos: Tensor::from_data(BurnData::new(cos, [max_len, head_dim]).convert::<B::FloatElem>(), device),
            sin_signed: Tensor::from_data(BurnData::new(sin, [max_len, head_dim]).convert::<B::FloatElem>(), device),
            head_dim,
            max_len,
        }
    }

    /// The same tables in `dtype` (computed in f32, then cast, as HF does).
    pub fn with_dtype(self, dtype: burn::tensor::FloatDType) -> Self {
        Self { cos: precision::cast(self.cos, dtype), sin_signed: precision::cast(self.sin_signed, dtype), ..self }
    }

    /// Rotates every head at positions `0..seq`:
    /// `x * cos + [x2, x1] * [-sin, sin]`, i.e. HF's `x * cos + rotate_half(x) * sin`.
    ///
    /// # Shapes
    /// - `x`: `[batch, heads, seq, head_dim]`
    /// - returns `[batch, heads, seq, head_dim]`
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [_, _, seq, head_dim] = x.dims();
        assert!(seq <= self.max_len, "sequence length {seq} exceeds the rotary table ({} positions)", self.max_len);
        assert_eq!(head_dim, self.head_dim, "rotary head_dim mismatch");
        let half = head_dim / 2;
        let cos = self.cos.clone().narrow(0, 0, seq).unsqueeze::<4>();
        let sin = self.sin_signed.clone().narrow(0, 0, seq).unsqueeze::<4>();
        let x1 = x.clone().narrow(3, 0, half);
        let x2 = x.clone().narrow(3, half, half);
        let swapped = Tensor::cat(vec![x2, x1], 3);
        x.mul(cos).add(swapped.mul(sin))
    }
}
