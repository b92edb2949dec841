//! Evaluation: losses in bits per token of a model with an adapter hook
//! (or none) on a set of examples — one routine for `peftc run`'s base and
//! end-of-epoch test losses, `peftc eval` and the bench.
//!
//! Runs on whatever backend the model is on; pass the inner (non-autodiff)
//! model (`model.valid()`) so no graph is recorded.

use std::time::Instant;

use burn::prelude::*;

use super::parallel::ordered_fold;
use crate::data::micro_batch::micro_batches;
use crate::data::{Batch, Example};
use crate::model::causal_lm::CausalLm;
use crate::model::head_loss::head_loss;
use crate::model::hook::LinearHook;

/// Losses of one example, in nats, and their token counts.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct ExampleLoss {
    pub nats_all: f64,
    pub tokens_all: usize,
    pub nats_completion: f64,
    pub tokens_completion: usize,
}

/// The result of evaluating a set of examples.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EvalReport {
    /// Per-example losses, in the order of the input examples.
    pub examples: Vec<ExampleLoss>,
    pub seconds: f64,
    /// Input tokens pushed through the model (padding excluded).
    pub tokens_processed: usize,
}

impl EvalReport {
    pub fn total(&self) -> ExampleLoss {
        self.examples.iter().fold(ExampleLoss::default(), |a, e| ExampleLoss {
            nats_all: a.nats_all + e.nats_all,
            tokens_all: a.tokens_all + e.tokens_all,
            nats_completion: a.nats_completion + e.nats_completion,
            tokens_completion: a.tokens_completion + e.tokens_completion,
        })
    }

    /// Bits per predicted token, averaged over all predicted tokens of all examples.
    pub fn bits_all(&self) -> f64 {
        let t = self.total();
        t.nats_all / t.tokens_all.max(1) as f64 / std::f64::consts::LN_2
    }

    /// Bits per completion token, averaged over all completion tokens of all examples.
    pub fn bits_completion(&self) -> f64 {
        let t = self.total();
        t.nats_completion / t.tokens_completion.max(1) as f64 / std::f64::consts::LN_2
    }

    pub fn tokens_per_second(&self) -> f64 {
        self.tokens_processed as f64 / self.seconds.max(1e-9)
    }
}

/// How a set of examples is cut into forward passes (does not change the
/// per-token losses, up to float summation order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvalPlan {
    /// Padded tokens per forward pass ([`crate::data::micro_batch`]).
    pub micro_tokens: usize,
    /// Every example is cut at this many tokens.
    pub max_len: usize,
    /// Micro-batches evaluated on parallel threads (see
    /// [`super::backend::training_workers`]).
    pub workers: usize,
}

/// Evaluates `model` with `hook` on `examples`: grouped by length into
/// micro-batches of at most `plan.micro_tokens` padded tokens (little
/// padding; [`micro_batches`]), longest first, taken by `plan.workers`
/// threads as each is free. The output head and its loss go through
/// [`crate::model::head_loss`], so at most a few hundred tokens' logits
/// exist at once. `progress(done, total)` is called after each micro-batch.
pub fn evaluate<B, M, H>(
    model: &M,
    hook: &H,
    examples: &[Example],
    plan: EvalPlan,
    device: &B::Device,
    progress: impl FnMut(usize, usize) + Send,
) -> EvalReport
where
    B: Backend,
    M: CausalLm<B> + Sync,
    H: LinearHook<B> + Sync,
{
    let start = Instant::now();
    let lens: Vec<usize> = examples.iter().map(|e| e.tokens.len().min(plan.max_len)).collect();
    let groups = micro_batches(&lens, plan.micro_tokens, plan.workers > 1);
    let (head, head_t) = model.head();
    let one = |idx: &Vec<usize>| {
        let refs: Vec<&Example> = idx.iter().map(|&i| &examples[i]).collect();
        let batch = Batch::<B>::new(&refs, plan.max_len, device);
        let hidden = model.hidden(batch.inputs, hook);
        let [rows, seq, d] = hidden.dims();
        let nll =
            head_loss(hidden.reshape([rows * seq, d]), &head, &head_t, model.final_softcap(), batch.targets.reshape([rows * seq]), None)
                .nll;
        let nll = nll.reshape([rows, seq]);
        let sums = Tensor::cat(vec![nll.clone().mul(batch.mask_all).sum_dim(1), nll.mul(batch.mask_completion).sum_dim(1)], 1);
        let sums = sums.into_data().convert::<f32>().into_vec::<f32>().expect("f32 sums");
        let losses: Vec<(usize, ExampleLoss)> = idx
            .iter()
            .enumerate()
            .map(|(row, &i)| {
                // Counts of the example as cut at `max_len`.
                let len = lens[i];
                let loss = ExampleLoss {
                    nats_all: sums[2 * row] as f64,
                    tokens_all: len.saturating_sub(1),
                    nats_completion: sums[2 * row + 1] as f64,
                    tokens_completion: len.saturating_sub(examples[i].prompt_len.max(1)),
                };
                (i, loss)
            })
            .collect();
        (losses, batch.tokens as usize)
    };
    let mut progress = progress;
    let init = (vec![ExampleLoss::default(); examples.len()], 0usize, 0usize);
    let ((out, tokens_processed, _), _busy) = ordered_fold(&groups, plan.workers, one, init, |(mut out, tokens, done), (losses, t)| {
        let done = done + losses.len();
        for (i, loss) in losses {
            out[i] = loss;
        }
        progress(done, examples.len());
        (out, tokens + t, done)
    });
    EvalReport { examples: out, seconds: start.elapsed().as_secs_f64(), tokens_processed }
}
