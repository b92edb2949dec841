//! The fused output head + cross entropy against autodiff through
//! `log_softmax`, and token-budget micro-batches on dynamically scheduled
//! workers against one full batch.

use crate::support::lower as lower_common;

use burn::backend::{Autodiff, NdArray};
use burn::prelude::*;
use lower_common::*;
use peftc::data::{Batch, Example, LossOn};
use peftc::model::causal_lm::CausalLm;
use peftc::model::head_loss::{head_loss_chunked, surrogate};
use peftc::train::loss::{StepGradients, StepPlan, step_gradients};

type B = NdArray<f32>;
type Ad = Autodiff<B>;

fn random<Bk: Backend, const D: usize>(shape: [usize; D], seed: u64, dev: &Bk::Device) -> Tensor<Bk, D> {
    let n: usize = shape.iter().product();
    let v = peftc::lower::init::values(&peftc::lower::Init::Normal { mean: 0.0, std: 1.0 }, &[n], seed, "t").unwrap();
    Tensor::<Bk, 1>::from_data(TensorData::new(v, [n]), dev).reshape(shape)
}

fn max_abs<const D: usize>(t: Tensor<B, D>) -> f32 {
    t.abs().max().into_scalar()
}

#[test]
fn fused_head_matches_log_softmax_and_its_gradient() {
    let dev = Default::default();
    let (n, d, v) = (11, 6, 37);
    let hidden = random::<B, 2>([n, d], 1, &dev);
    let head = random::<B, 2>([d, v], 2, &dev).mul_scalar(2.0);
    let head_t = Tensor::<B, 2>::from_data(head.clone().transpose().to_data(), &dev);
    let tv: Vec<i64> = (0..n as i64).map(|i| (i * 13 + 5) % v as i64).collect();
    let targets = Tensor::<B, 1, Int>::from_data(TensorData::new(tv, [n]), &dev);
    let wv: Vec<f32> = (0..n).map(|i| if i % 4 == 3 { 0.0 } else { 0.1 + i as f32 / 50.0 }).collect();
    let weights = Tensor::<B, 1>::from_data(TensorData::new(wv, [n]), &dev);

    // Reference: autodiff through log_softmax over the full logits.
    let h_ad = Tensor::<Ad, 2>::from_inner(hidden.clone()).require_grad();
    let logits = h_ad.clone().matmul(Tensor::from_inner(head.clone()));
    let lp = burn::tensor::activation::log_softmax(logits, 1);
    let nll_ref = lp.gather(1, Tensor::<Ad, 1, Int>::from_inner(targets.clone()).reshape([n, 1])).reshape([n]).neg();
    let loss = (nll_ref.clone() * Tensor::from_inner(weights.clone())).sum();
    let grads = loss.backward();
    let grad_ref = h_ad.grad(&grads).unwrap();
    let nll_ref = nll_ref.inner();

    // Chunks of 1, 4 (with a remainder of 3) and all 11 tokens.
    for rows in [1, 4, n] {
        let out = head_loss_chunked(hidden.clone(), &head, &head_t, None, targets.clone(), Some(weights.clone()), rows);
        let dn = max_abs(out.nll - nll_ref.clone());
        let dg = max_abs(out.grad.unwrap() - grad_ref.clone());
        assert!(dn < 1e-5, "rows {rows}: nll differs by {dn}");
        assert!(dg < 1e-6, "rows {rows}: gradient differs by {dg} (scale {})", max_abs(grad_ref.clone()));
    }
    // The surrogate sends exactly that gradient back.
    let h2 = Tensor::<Ad, 2>::from_inner(hidden.clone()).require_grad();
    let g = head_loss_chunked(hidden, &head, &head_t, None, targets, Some(weights), 4).grad.unwrap();
    let back = h2.grad(&surrogate(h2.clone(), g.clone()).backward()).unwrap();
    assert!(max_abs(back - g) == 0.0);
}

fn examples() -> Vec<Example> {
    (0..7u32)
        .map(|i| Example { tokens: (0..5 + i as usize % 4).map(|k| (i * 5 + k as u32 * 3) % 23).collect(), prompt_len: 2 + i as usize % 3 })
        .collect()
}

/// `a`'s loss and gradients equal `b`'s up to float summation order.
fn assert_same_step(a: &StepGradients<B>, b: &StepGradients<B>, what: &str) {
    assert!((a.nats - b.nats).abs() < 1e-5, "{what}: loss {} vs {}", a.nats, b.nats);
    for (x, g) in a.grads.iter().zip(&b.grads) {
        let scale = max_abs(g.clone()).max(1e-6);
        let diff = max_abs(x.clone() - g.clone());
        assert!(diff < 1e-4 * scale, "{what}: gradient differs by {diff} (scale {scale})");
    }
}

fn plan(loss_on: LossOn, micro_tokens: usize, workers: usize) -> StepPlan {
    StepPlan { max_len: 8, loss_on, micro_tokens, workers, time_phases: false }
}

#[test]
fn micro_batches_on_threads_give_the_full_batch_gradient() {
    let dev = Default::default();
    let model = tiny::<Ad>(&dev);
    let mut adapter = build(&lora_gamma(4, 3.0, 1.0), &model, 0, &dev);
    randomize(&mut adapter, 0.3, 7, &dev);
    let exs = examples();
    let refs: Vec<&Example> = exs.iter().collect();
    for loss_on in [LossOn::All, LossOn::Completion] {
        let one = step_gradients(&model, &adapter, &refs, plan(loss_on, 1000, 1), &dev).unwrap();
        assert_eq!(one.micro_batches, 1);
        // The reference: the mean over the whole batch, through full logits.
        let b = Batch::<Ad>::new(&refs, 8, &dev);
        let (mask, n) = match loss_on {
            LossOn::All => (b.mask_all.clone(), b.n_all),
            LossOn::Completion => (b.mask_completion.clone(), b.n_completion),
        };
        let logits = model.logits(b.inputs.clone(), &adapter);
        let nll = crate::support::loss::token_nll(logits, b.targets.clone());
        let loss = (nll * mask).sum().div_scalar(n as f64);
        let nats_ref: f64 = loss.clone().into_scalar().elem();
        let grads = loss.backward();
        assert!((one.nats - nats_ref).abs() < 1e-5, "{loss_on:?}: fused loss {} vs {nats_ref}", one.nats);
        for (p, g) in adapter.params().iter().zip(&one.grads) {
            let r = p.grad(&grads).unwrap();
            let scale = max_abs(r.clone()).max(1e-6);
            let diff = max_abs(r - g.clone());
            assert!(diff < 1e-4 * scale, "{loss_on:?}: single-batch gradient differs by {diff} (scale {scale})");
        }
        // Budgets of one example (8 tokens), two and three: 7, 4 and 2 micro-batches.
        for (budget, parts) in [(8, 7), (16, 4), (24, 2)] {
            let seq = step_gradients(&model, &adapter, &refs, plan(loss_on, budget, 1), &dev).unwrap();
            assert_eq!((seq.micro_batches, seq.tokens), (parts, one.tokens), "budget {budget}");
            assert!(seq.padded_tokens <= (parts * budget) as u64);
            assert_same_step(&seq, &one, &format!("budget {budget}"));
            // Workers take micro-batches as they are free, but the sum runs in
            // micro-batch order: the same bits for any number of workers > 1
            // (with one worker the tail is not tapered, so the split differs).
            let two = step_gradients(&model, &adapter, &refs, plan(loss_on, budget, 2), &dev).unwrap();
            assert!(two.micro_batches >= parts && two.busy.len() == 2, "budget {budget}");
            assert_same_step(&two, &one, &format!("budget {budget}, 2 workers"));
            for workers in [3, 5] {
                let par = step_gradients(&model, &adapter, &refs, plan(loss_on, budget, workers), &dev).unwrap();
                assert_eq!(par.micro_batches, two.micro_batches);
                assert_eq!(par.nats.to_bits(), two.nats.to_bits(), "budget {budget}, {workers} workers");
                for (a, g) in par.grads.iter().zip(&two.grads) {
                    assert_eq!(a.to_data(), g.to_data(), "budget {budget}, {workers} workers: gradients differ");
                }
            }
        }
    }
}

#[test]
fn tiny_lm_is_causal_so_right_padding_changes_nothing() {
    let dev = Default::default();
    let model = tiny::<B>(&dev);
    let mut adapter = build(&lora_gamma(4, 3.0, 1.0), &model, 0, &dev);
    randomize(&mut adapter, 0.3, 7, &dev);
    let exs = examples();
    let refs: Vec<&Example> = exs.iter().collect();
    // Rows 4..7 padded to 7 positions inside the full batch, and to 6 alone.
    let full = Batch::<B>::new(&refs, 8, &dev);
    let part = Batch::<B>::new(&refs[4..], 8, &dev);
    assert_eq!((full.inputs.dims(), part.inputs.dims()), ([7, 7], [3, 6]));
    let in_full = model.logits(full.inputs.clone(), &adapter).slice([4..7, 0..6]);
    let alone = model.logits(part.inputs.clone(), &adapter);
    let d = max_abs(in_full - alone);
    assert!(d < 1e-5, "padding changed the logits by {d}");
}
