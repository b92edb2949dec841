//! The output head fused with its cross entropy, chunked over tokens.
//!
//! `[tokens, vocab]` logits are the largest tensors of a small LM (8 × 256
//! tokens × 49,152 = 400 MB for SmolLM2), and autodiff through
//! `log_softmax` keeps several of them alive and passes over them a dozen
//! times. The head is frozen, so the only gradient the head and loss pass back
//! is the one to the hidden states,
//! `∂/∂h Σₜ wₜ·nllₜ = (softmax(h Wₕ) − onehot(target)) · w · Wₕᵀ`,
//! which this module computes directly, a few hundred tokens at a time, in
//! the same pass as the loss. Training backpropagates it into the adapter
//! through the surrogate `Σ h ⊙ stopgrad(∂/∂h)` (see [`surrogate`]), whose
//! gradient with respect to `h` is exactly that tensor.

use burn::prelude::*;
use burn::tensor::IndexingUpdateOp;
use burn::tensor::backend::AutodiffBackend;

use crate::model::precision;

/// Logits per chunk: rows × vocab stays at most this many elements (128 MB f32).
pub const CHUNK_ELEMENTS: usize = 32 << 20;

/// Per-token losses and, when weights were given, the gradient of the
/// weighted loss sum with respect to the hidden states.
pub struct HeadLoss<B: Backend> {
    /// `[tokens]`, negative log-likelihood of each target in nats.
    pub nll: Tensor<B, 1>,
    /// `[tokens, d]`, `∂(Σₜ wₜ·nllₜ)/∂hidden`.
    pub grad: Option<Tensor<B, 2>>,
}

/// Negative log-likelihood of `targets` under `softmax(hidden · head)`, and
/// optionally its weighted gradient with respect to `hidden`, in chunks of
/// equal size ([`balanced_rows`]).
///
/// # Shapes
/// - `hidden`: `[tokens, d]`
/// - `head`: `[d, vocab]`, `head_t`: the same weights as `[vocab, d]`
///   (both contiguous: upstream burn-ndarray copied a transposed view on
///   every product — the vendored one no longer does, measured neutral on
///   the CPU — and the GPU backends were never measured with one)
/// - `targets`: `[tokens]`, `weights`: `[tokens]`
///
/// With a `softcap` the logits are `cap · tanh(h Wₕ / cap)` (Gemma 2), and
/// the gradient carries the cap's derivative `1 − tanh²`.
pub fn head_loss<B: Backend>(
    hidden: Tensor<B, 2>,
    head: &Tensor<B, 2>,
    head_t: &Tensor<B, 2>,
    softcap: Option<f64>,
    targets: Tensor<B, 1, Int>,
    weights: Option<Tensor<B, 1>>,
) -> HeadLoss<B> {
    let (n, vocab) = (hidden.dims()[0], head.dims()[1]);
    let rows = balanced_rows(n, (CHUNK_ELEMENTS / vocab.max(1)).max(1));
    head_loss_chunked(hidden, head, head_t, softcap, targets, weights, rows)
}

/// Rows per chunk for `n` tokens and at most `max_rows` per chunk, equal
/// across the chunks (2,048 tokens at 682 at most: 4 chunks of 512, not
/// 682/682/682/2, whose last chunk is a product too small to pay its launch).
pub fn balanced_rows(n: usize, max_rows: usize) -> usize {
    let max_rows = max_rows.max(1);
    let chunks = n.div_ceil(max_rows).max(1);
    n.div_ceil(chunks).max(1)
}

/// [`head_loss`] with an explicit chunk of `rows` tokens (for tests).
pub fn head_loss_chunked<B: Backend>(
    hidden: Tensor<B, 2>,
    head: &Tensor<B, 2>,
    head_t: &Tensor<B, 2>,
    softcap: Option<f64>,
    targets: Tensor<B, 1, Int>,
    weights: Option<Tensor<B, 1>>,
    rows: usize,
) -> HeadLoss<B> {
    let [n, d] = hidden.dims();
    let low = precision::dtype_of(head);
    let rows = rows.clamp(1, n.max(1));
    let mut nlls = Vec::new();
    let mut grads = Vec::new();
    for start in (0..n).step_by(rows) {
        let end = (start + rows).min(n);
        let c = end - start;
        let h = hidden.clone().slice([start..end, 0..d]);
        let t = targets.clone().narrow(0, start, c).reshape([c, 1]);
        // The product in the head's dtype (bf16 under mixed precision), the
        // softmax and the loss in full precision.
        let mut logits = precision::to_full(precision::cast(h, low).matmul(head.clone()));
        let mut cap_slope = None;
        if let Some(cap) = softcap {
            let t = burn::tensor::activation::tanh(logits.div_scalar(cap));
            cap_slope = weights.is_some().then(|| t.clone().square().neg().add_scalar(1.0));
            logits = t.mul_scalar(cap);
        }
        let max = logits.clone().max_dim(1);
        let z = logits.sub(max);
        let z_target = z.clone().gather(1, t.clone());
        let e = z.exp();
        let sum = e.clone().sum_dim(1);
        nlls.push(sum.clone().log().sub(z_target).reshape([c]));
        if let Some(w) = &weights {
            let w = w.clone().narrow(0, start, c).reshape([c, 1]);
            // (softmax − onehot) · w, without a one-hot tensor.
            let mut g = e.mul(w.clone().div(sum)).scatter(1, t, w.neg(), IndexingUpdateOp::Add);
            if let Some(slope) = cap_slope {
                g = g.mul(slope);
            }
            grads.push(precision::to_full(precision::cast(g, low).matmul(head_t.clone())));
        }
    }
    if nlls.is_empty() {
        let device = hidden.device();
        return HeadLoss { nll: Tensor::zeros([0], &device), grad: weights.map(|_| Tensor::zeros([0, d], &device)) };
    }
    HeadLoss { nll: Tensor::cat(nlls, 0), grad: weights.map(|_| Tensor::cat(grads, 0)) }
}

/// The scalar whose gradient with respect to `hidden` is `grad`:
/// `Σ hidden ⊙ grad`, with `grad` a constant. Its value means nothing; its
/// `backward()` sends `grad` into everything `hidden` depends on.
///
/// # Shapes
/// - `hidden`: `[tokens, d]` (tracked), `grad`: `[tokens, d]` (inner backend)
pub fn surrogate<B: AutodiffBackend>(hidden: Tensor<B, 2>, grad: Tensor<B::InnerBackend, 2>) -> Tensor<B, 1> {
    precision::to_full(hidden).mul(Tensor::from_inner(grad)).sum()
}

#[cfg(test)]
mod tests {
    use super::balanced_rows;

    #[test]
    fn chunks_are_equal_not_full_then_a_remainder() {
        assert_eq!(balanced_rows(2048, 682), 512);
        assert_eq!(balanced_rows(682, 682), 682);
        assert_eq!(balanced_rows(683, 682), 342);
        assert_eq!(balanced_rows(5, 682), 5);
        assert_eq!(balanced_rows(0, 682), 1);
    }
}
