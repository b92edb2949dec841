//! The training loss of a batch through the fused head
//! ([`crate::model::head_loss`]), with the surrogate whose `backward()` gives
//! the adapter's gradients, computed over data-parallel micro-batches.

use std::time::Instant;

use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;

use super::host_reads::read_scalar;
use super::parallel::ordered_fold;
use crate::data::micro_batch::{micro_batches, padded_tokens};
use crate::data::{Batch, Example, LossOn};
use crate::lower::Adapter;
use crate::model::causal_lm::CausalLm;
use crate::model::head_loss::{head_loss, surrogate};
use crate::model::hook::LinearHook;

/// This micro-batch's share of the mean training loss in nats over `mask`
/// (`n` positions in the whole batch), left on the device, and a scalar
/// whose `backward()` yields the gradients of that share with respect to the
/// adapter's parameters.
pub fn loss_and_surrogate<B: AutodiffBackend, M: CausalLm<B>, H: LinearHook<B>>(
    model: &M,
    hook: &H,
    batch: &Batch<B>,
    mask: &Tensor<B, 2>,
    n: u64,
) -> (Tensor<B::InnerBackend, 1>, Tensor<B, 1>) {
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
        model.final_softcap(),
        batch.targets.clone().inner().reshape([b * s]),
        Some(weights.clone()),
    );
    let nats = (out.nll * weights).sum();
    let grad = out.grad.expect("head_loss returns a gradient when given weights");
    (nats, surrogate(hidden, grad))
}

/// How a training step cuts its batch and spreads the work (none of it
/// changes the result beyond float summation order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepPlan {
    /// Every example is cut at this many tokens.
    pub max_len: usize,
    pub loss_on: LossOn,
    /// Padded tokens per micro-batch ([`crate::data::micro_batch`]).
    pub micro_tokens: usize,
    /// Threads computing micro-batches ([`super::backend::training_workers`]).
    pub workers: usize,
    /// Wait for the device after each micro-batch's forward and backward
    /// pass and time them ([`StepGradients::phases`]): for `peftc bench
    /// --phases` only, as each wait is a host read.
    pub time_phases: bool,
}

/// Loss and gradients of one training batch.
pub struct StepGradients<B: Backend> {
    /// Mean loss in nats over the selected positions of the whole batch.
    pub nats: f64,
    /// Gradients of that mean, one per trainable tensor of the adapter.
    pub grads: Vec<Tensor<B, 1>>,
    /// Real (unpadded) input tokens.
    pub tokens: u64,
    /// Tokens the micro-batches hold, padding included.
    pub padded_tokens: u64,
    /// Examples in the batch.
    pub rows: u64,
    pub micro_batches: usize,
    /// Seconds each worker spent computing micro-batches.
    pub busy: Vec<f64>,
    /// With [`StepPlan::time_phases`]: seconds in the forward passes (to
    /// the loss) and in the backward passes, summed over micro-batches.
    pub phases: Option<(f64, f64)>,
}

/// The batch's mean loss over the positions `plan.loss_on` selects and its
/// gradients with respect to the adapter, accumulated over micro-batches of
/// at most `plan.micro_tokens` padded tokens ([`micro_batches`]) computed by
/// `plan.workers` threads, each taking the next micro-batch when it is free.
///
/// The mean's gradient is the sum of the micro-batches' gradients when every
/// micro-batch weighs its tokens by the whole batch's count, so the result
/// is the full batch's up to float summation order. Micro-batches are
/// folded in their order whichever worker computed them, so the result is
/// the same for any number of workers. On a CPU this runs every elementwise
/// op of the forward and backward pass (single-threaded in burn-ndarray) on
/// all cores; each micro-batch differentiates its own copy of the adapter's
/// tensors, so the autodiff graphs (and their locks) are disjoint. Peak
/// activation memory follows `micro_tokens × workers`, not the batch size.
///
/// Returns `None` when no position of the batch is selected.
pub fn step_gradients<B, M>(
    model: &M,
    adapter: &Adapter<B>,
    examples: &[&Example],
    plan: StepPlan,
    device: &B::Device,
) -> Option<StepGradients<B::InnerBackend>>
where
    B: AutodiffBackend,
    M: CausalLm<B> + Sync,
{
    let StepPlan { max_len, loss_on, micro_tokens, workers, time_phases } = plan;
    let lens: Vec<usize> = examples.iter().map(|e| e.tokens.len().min(max_len)).collect();
    // Tapered with several workers: they then finish the step together.
    let groups = micro_batches(&lens, micro_tokens, workers > 1);
    let padded_tokens = padded_tokens(&lens, &groups) as u64;
    let batches: Vec<Batch<B>> =
        groups.iter().map(|g| Batch::<B>::new(&g.iter().map(|&i| examples[i]).collect::<Vec<_>>(), max_len, device)).collect();
    let n: u64 = batches.iter().map(|b| b.selected(loss_on).1).sum();
    if n == 0 {
        return None;
    }
    let tokens = batches.iter().map(|b| b.tokens).sum();
    let inner = adapter.valid();
    let one = |b: &Batch<B>| {
        let t0 = Instant::now();
        let adapter = Adapter::<B>::from_inner(&inner);
        let (mask, _) = b.selected(loss_on);
        let (nats, loss) = loss_and_surrogate(model, &adapter, b, mask, n);
        if time_phases {
            read_scalar(nats.clone());
        }
        let t1 = Instant::now();
        let grads = loss.backward();
        let g: Vec<Tensor<B::InnerBackend, 1>> =
            adapter.params().iter().map(|p| p.grad(&grads).unwrap_or_else(|| p.clone().inner().zeros_like())).collect();
        if time_phases {
            read_scalar(g[g.len() - 1].clone().sum());
        }
        let phases = ((t1 - t0).as_secs_f64(), t1.elapsed().as_secs_f64());
        (nats, g, phases)
    };
    type Part<T> = (T, Vec<T>, (f64, f64));
    let add = |acc: Option<Part<Tensor<B::InnerBackend, 1>>>, (nats, g, (f, b)): Part<Tensor<B::InnerBackend, 1>>| match acc {
        None => Some((nats, g, (f, b))),
        Some((a, grads, (fa, ba))) => Some((a + nats, grads.into_iter().zip(g).map(|(x, y)| x + y).collect(), (fa + f, ba + b))),
    };
    let (sum, busy) = ordered_fold(&batches, workers, one, None, add);
    let (nats, grads, phases) = sum?;
    // The step's one read back to the host.
    let nats = read_scalar(nats);
    let phases = time_phases.then_some(phases);
    Some(StepGradients { nats, grads, tokens, padded_tokens, rows: examples.len() as u64, micro_batches: batches.len(), busy, phases })
}
