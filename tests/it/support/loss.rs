//! Reference cross entropy over materialised logits, for tests: the product
//! never builds `[tokens, vocab]` logits for a loss (it goes through the fused
//! head, `peftc::model::head_loss`), and these are what it is checked against.
#![allow(dead_code)]

use burn::prelude::*;

/// Per-token negative log-likelihood in nats: `logsumexp(logits) - logits[target]`.
///
/// # Shapes
/// - `logits`: `[batch, seq, vocab]`
/// - `targets`: `[batch, seq]`
/// - returns `[batch, seq]`
pub fn token_nll<B: Backend>(logits: Tensor<B, 3>, targets: Tensor<B, 2, Int>) -> Tensor<B, 2> {
    let [batch, seq, _] = logits.dims();
    let max = logits.clone().max_dim(2).detach();
    let target_logit = logits.clone().gather(2, targets.reshape([batch, seq, 1]));
    let lse = logits.sub(max.clone()).exp().sum_dim(2).log().add(max);
    lse.sub(target_logit).reshape([batch, seq])
}

/// Sum of per-token NLL (nats) under a 0/1 mask, and the mask's count.
///
/// # Shapes
/// - `logits`: `[batch, seq, vocab]`
/// - `targets`, `mask`: `[batch, seq]`
/// - returns (`[1]` summed nats, number of masked-in tokens)
pub fn token_losses<B: Backend>(logits: Tensor<B, 3>, targets: Tensor<B, 2, Int>, mask: Tensor<B, 2>) -> (Tensor<B, 1>, f32) {
    let count = mask.clone().sum().into_scalar().elem::<f32>();
    (token_nll(logits, targets).mul(mask).sum(), count)
}

/// Mean NLL (nats) over the masked tokens: the training loss (differentiable).
///
/// # Shapes
/// - `logits`: `[batch, seq, vocab]`
/// - `targets`, `mask`: `[batch, seq]`
/// - `count`: number of masked-in tokens (`LmBatch::num_tokens`)
/// - returns `[1]`
pub fn mean_nll<B: Backend>(logits: Tensor<B, 3>, targets: Tensor<B, 2, Int>, mask: Tensor<B, 2>, count: usize) -> Tensor<B, 1> {
    token_nll(logits, targets).mul(mask).sum().div_scalar(count.max(1) as f32)
}
