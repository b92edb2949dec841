//! The training loss of a batch through the fused head
//! ([`crate::model::head_loss`]), with the surrogate whose `backward()` gives
//! the adapter's gradients, computed over data-parallel micro-batches.

use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;

use crate::data::{Batch, Example, LossOn};
use crate::lower::Adapter;
use crate::model::causal_lm::CausalLm;
use crate::model::head_loss::{head_loss, surrogate};
use crate::model::hook::LinearHook;

/// The mean training loss in nats over `mask` (`n` positions), and a scalar
/// whose `backward()` yields the gradients of that mean with respect to the
/// adapter's parameters.
pub fn loss_and_surrogate<B: AutodiffBackend, M: CausalLm<B>, H: LinearHook<B>>(
    model: &M,
    hook: &H,
    batch: &Batch<B>,
    mask: &Tensor<B, 2>,
    n: u64,
) -> (f64, Tensor<B, 1>) {
    let hidden = model.hidden(batch.inputs.clone(), hook);
    let [b, s, d] = hidden.dims();
    let hidden = hidden.reshape([b * s, d]);
    let (head, head_t) = model.head();
    let mask = mask.clone().inner().reshape([b * s]);
    let weights = mask.clone().div_scalar(n.max(1) as f64);
    let out = head_loss(
        hidden.clone().inner(),
        &head.inner(),
        &head_t.inner(),
        batch.targets.clone().inner().reshape([b * s]),
        Some(weights.clone()),
    );
    let nats = (out.nll * weights).sum().into_scalar().elem::<f64>();
    let grad = out.grad.expect("head_loss returns a gradient when given weights");
    (nats, surrogate(hidden, grad))
}

/// Loss and gradients of one training batch.
pub struct StepGradients<B: Backend> {
    /// Mean loss in nats over the selected positions of the whole batch.
    pub nats: f64,
    /// Gradients of that mean, one per trainable tensor of the adapter.
    pub grads: Vec<Tensor<B, 1>>,
    /// Real (unpadded) input tokens.
    pub tokens: u64,
}

/// The batch's mean loss over the positions `loss_on` selects and its
/// gradients with respect to the adapter, computed over `workers`
/// micro-batches on as many threads.
///
/// The mean's gradient is the sum of the micro-batches' gradients when every
/// micro-batch weighs its tokens by the whole batch's count, so the result
/// is the full batch's up to float summation order, and the same on every
/// run with the same `workers`. Examples are sorted by length before the
/// split, so each micro-batch is padded only to its own longest example. On
/// a CPU this runs every elementwise op of the forward and backward pass
/// (single-threaded in burn-ndarray) on all cores; each thread
/// differentiates its own copy of the adapter's tensors, so the autodiff
/// graphs (and their locks) are disjoint.
///
/// Returns `None` when no position of the batch is selected.
pub fn step_gradients<B, M>(
    model: &M,
    adapter: &Adapter<B>,
    examples: &[&Example],
    max_len: usize,
    loss_on: LossOn,
    workers: usize,
    device: &B::Device,
) -> Option<StepGradients<B::InnerBackend>>
where
    B: AutodiffBackend,
    M: CausalLm<B> + Sync,
{
    // Micro-batches of similar lengths: each is padded only to its own
    // longest example, and the batch's gradient does not depend on the split.
    let mut sorted: Vec<&Example> = examples.to_vec();
    sorted.sort_by_key(|e| e.tokens.len());
    let per = sorted.len().div_ceil(workers.max(1)).max(1);
    let batches: Vec<Batch<B>> = sorted.chunks(per).map(|c| Batch::<B>::new(c, max_len, device)).collect();
    let n: u64 = batches.iter().map(|b| b.selected(loss_on).1).sum();
    if n == 0 {
        return None;
    }
    let tokens = batches.iter().map(|b| b.tokens).sum();
    let one = |adapter: &Adapter<B>, b: &Batch<B>| {
        let (mask, _) = b.selected(loss_on);
        let (nats, loss) = loss_and_surrogate(model, adapter, b, mask, n);
        let grads = loss.backward();
        let g: Vec<Tensor<B::InnerBackend, 1>> =
            adapter.params().iter().map(|p| p.grad(&grads).unwrap_or_else(|| p.clone().inner().zeros_like())).collect();
        (nats, g)
    };
    let parts: Vec<(f64, Vec<Tensor<B::InnerBackend, 1>>)> = if batches.len() == 1 {
        vec![one(adapter, &batches[0])]
    } else {
        let inner = adapter.valid();
        crate::train::parallel::par_map(&batches, batches.len(), |b| one(&Adapter::<B>::from_inner(&inner), b))
    };
    let mut parts = parts.into_iter();
    let (mut nats, mut grads) = parts.next()?;
    for (n2, g2) in parts {
        nats += n2;
        grads = grads.into_iter().zip(g2).map(|(a, b)| a + b).collect();
    }
    Some(StepGradients { nats, grads, tokens })
}
