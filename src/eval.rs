//! Cross-entropy loss helpers and dataset evaluation in bits per token.
//!
//! Evaluation runs on whatever backend the model is on; pass the inner
//! (non-autodiff) model (`model.valid()`) so no graph is recorded.

use std::time::Instant;

use burn::prelude::*;

use crate::data::batcher::BatchData;
use crate::data::gsm8k::EncodedExample;
use crate::data::sorted_batches;
use crate::hook::LinearHook;
use crate::model::Llama;

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

/// Losses of one example, in nats, and their token counts.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct ExampleLoss {
    pub nats_all: f64,
    pub tokens_all: usize,
    pub nats_completion: f64,
    pub tokens_completion: usize,
}

/// The result of evaluating a dataset.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EvalReport {
    /// Per-example losses, in the order of the input examples.
    pub examples: Vec<ExampleLoss>,
    pub seconds: f64,
    /// Input tokens pushed through the model (padding excluded).
    pub tokens_processed: usize,
}

impl EvalReport {
    fn total(&self) -> ExampleLoss {
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

    /// Per-example mean bits, averaged over examples (all tokens, completion).
    pub fn bits_per_example_mean(&self) -> (f64, f64) {
        let n = self.examples.len().max(1) as f64;
        let all = self.examples.iter().map(|e| e.nats_all / e.tokens_all.max(1) as f64).sum::<f64>();
        let comp = self.examples.iter().map(|e| e.nats_completion / e.tokens_completion.max(1) as f64).sum::<f64>();
        (all / n / std::f64::consts::LN_2, comp / n / std::f64::consts::LN_2)
    }

    pub fn tokens_per_second(&self) -> f64 {
        self.tokens_processed as f64 / self.seconds.max(1e-9)
    }
}

/// Evaluates the model (with `hook`) on `examples`, `batch_size` at a time
/// (batches of similar length), computing the output head one sequence at a
/// time so that at most `seq × vocab` logits exist at once.
/// `progress(done, total)` is called after each batch.
pub fn evaluate<B: Backend, H: LinearHook<B>>(
    model: &Llama<B>,
    hook: &H,
    examples: &[EncodedExample],
    batch_size: usize,
    pad_id: u32,
    device: &B::Device,
    mut progress: impl FnMut(usize, usize),
) -> EvalReport {
    let start = Instant::now();
    let lengths: Vec<usize> = examples.iter().map(|e| e.ids.len()).collect();
    let mut out = vec![ExampleLoss::default(); examples.len()];
    let mut done = 0;
    let mut tokens_processed = 0;
    for batch_idx in sorted_batches(&lengths, batch_size) {
        let refs: Vec<&EncodedExample> = batch_idx.iter().map(|&i| &examples[i]).collect();
        let data = BatchData::new(&refs, pad_id);
        let batch = data.to_batch::<B>(device);
        tokens_processed += batch.padding.clone().int().sum().into_scalar().elem::<i64>() as usize;
        let hidden = model.forward_hidden(batch.tokens, batch.padding, hook);
        let [bsz, seq, d] = hidden.dims();
        for (row, &i) in batch_idx.iter().enumerate() {
            let h = hidden.clone().slice([row..row + 1, 0..seq, 0..d]);
            let targets = batch.targets.clone().slice([row..row + 1, 0..seq]);
            let nll = token_nll(model.logits(h), targets);
            let mall = batch.mask_all.clone().slice([row..row + 1, 0..seq]);
            let mcomp = batch.mask_completion.clone().slice([row..row + 1, 0..seq]);
            let sums = Tensor::cat(vec![nll.clone().mul(mall).sum(), nll.mul(mcomp).sum()], 0);
            let sums = sums.into_data().convert::<f32>().into_vec::<f32>().expect("f32 sums");
            let ex = &examples[i];
            out[i] = ExampleLoss {
                nats_all: sums[0] as f64,
                tokens_all: ex.num_predicted(),
                nats_completion: sums[1] as f64,
                tokens_completion: ex.num_completion(),
            };
        }
        debug_assert_eq!(bsz, batch_idx.len());
        done += batch_idx.len();
        progress(done, examples.len());
    }
    EvalReport { examples: out, seconds: start.elapsed().as_secs_f64(), tokens_processed }
}
