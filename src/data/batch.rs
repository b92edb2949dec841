//! A right-padded batch of examples on a device: inputs, next-token
//! targets and the two loss masks.

use burn::prelude::*;

use super::{Example, LossOn};

/// A right-padded batch. Example tokens `t[..n]` give inputs `t[..n-1]` and
/// targets `t[1..]`; position `i` predicts `t[i+1]`. Padding (id 0) comes
/// after every real token of its row, so under causal attention it never
/// changes a real position's output, and the masks exclude it from losses.
#[derive(Debug, Clone)]
pub struct Batch<B: Backend> {
    /// `[batch, seq]`
    pub inputs: Tensor<B, 2, Int>,
    /// `[batch, seq]`, the next token of each input position.
    pub targets: Tensor<B, 2, Int>,
    /// `[batch, seq]`, 1 where a target exists.
    pub mask_all: Tensor<B, 2>,
    /// `[batch, seq]`, 1 where the target is a completion token.
    pub mask_completion: Tensor<B, 2>,
    /// Real (unpadded) input tokens.
    pub tokens: u64,
    pub n_all: u64,
    pub n_completion: u64,
}

impl<B: Backend> Batch<B> {
    /// The loss mask `loss_on` selects and its count of positions.
    pub fn selected(&self, loss_on: LossOn) -> (&Tensor<B, 2>, u64) {
        match loss_on {
            LossOn::All => (&self.mask_all, self.n_all),
            LossOn::Completion => (&self.mask_completion, self.n_completion),
        }
    }
}

impl<B: Backend> Batch<B> {
    /// Build a batch from examples, each cut to `max_len` tokens.
    pub fn new(examples: &[&Example], max_len: usize, device: &B::Device) -> Self {
        let lens: Vec<usize> = examples.iter().map(|e| e.tokens.len().min(max_len)).collect();
        let seq = lens.iter().copied().max().unwrap_or(1).saturating_sub(1).max(1);
        let b = examples.len();
        let mut inp = vec![0i64; b * seq];
        let mut tgt = vec![0i64; b * seq];
        let mut ma = vec![0f32; b * seq];
        let mut mc = vec![0f32; b * seq];
        let (mut tokens, mut n_all, mut n_completion) = (0u64, 0u64, 0u64);
        for (bi, (e, &len)) in examples.iter().zip(&lens).enumerate() {
            tokens += len as u64;
            for i in 0..len.saturating_sub(1) {
                inp[bi * seq + i] = e.tokens[i] as i64;
                tgt[bi * seq + i] = e.tokens[i + 1] as i64;
                ma[bi * seq + i] = 1.0;
                n_all += 1;
                if i + 1 >= e.prompt_len {
                    mc[bi * seq + i] = 1.0;
                    n_completion += 1;
                }
            }
            if len == 1 {
                inp[bi * seq] = e.tokens[0] as i64;
            }
        }
        Batch {
            inputs: Tensor::from_data(TensorData::new(inp, [b, seq]).convert::<B::IntElem>(), device),
            targets: Tensor::from_data(TensorData::new(tgt, [b, seq]).convert::<B::IntElem>(), device),
            mask_all: Tensor::from_data(TensorData::new(ma, [b, seq]).convert::<B::FloatElem>(), device),
            mask_completion: Tensor::from_data(TensorData::new(mc, [b, seq]).convert::<B::FloatElem>(), device),
            tokens,
            n_all,
            n_completion,
        }
    }
}
