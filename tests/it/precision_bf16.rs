//! Mixed precision (`precision: bf16`): a bf16 base model with f32 adapters,
//! gradients and loss, on libtorch's CPU kernels. burn-ndarray has no bf16
//! arithmetic, so these tests need the `tch` feature (`cargo test --features
//! tch --test precision_bf16`, with `LIBTORCH_USE_PYTORCH=1` and torch 2.9 on
//! the path); CI, which does not download torch, skips the file.
//!
//! libtorch promotes mixed-dtype operands silently where burn's GPU kernels
//! would misread them, so besides the numbers the tests check the dtype of
//! every result they see: a missing cast shows up as an f32 where bf16 was
//! expected (or the reverse).
#![cfg(feature = "tch")]

use crate::support::lower as lower_common;

use burn::backend::Autodiff;
use burn::backend::libtorch::{LibTorch, LibTorchDevice};
use burn::prelude::*;
use burn::tensor::{DType, FloatDType};
use lower_common::*;
use peftc::data::{Example, LossOn};
use peftc::lower::Adapter;
use peftc::model::Llama;
use peftc::model::causal_lm::CausalLm;
use peftc::model::head_loss::head_loss;
use peftc::model::hook::NoAdapter;
use peftc::train::loss::{StepPlan, step_gradients};

type B = LibTorch<f32>;
type Ad = Autodiff<B>;

const DEV: LibTorchDevice = LibTorchDevice::Cpu;

fn model<Bk: Backend>(dev: &Bk::Device) -> Llama<Bk> {
    crate::support::tiny_lm::tiny_llama().with_seed(11).init::<Bk>(dev)
}

fn tokens<Bk: Backend>(dev: &Bk::Device) -> Tensor<Bk, 2, Int> {
    let v: Vec<i64> = (0..2 * 9).map(|i| (i * 17 + 3) % 64).collect();
    Tensor::from_data(TensorData::new(v, [2, 9]), dev)
}

fn max_abs<Bk: Backend, const D: usize>(t: Tensor<Bk, D>) -> f32 {
    t.abs().max().into_scalar().elem()
}

fn examples() -> Vec<Example> {
    (0..6u32).map(|i| Example { tokens: (0..6 + i as usize % 3).map(|k| (i * 7 + k as u32 * 5) % 64).collect(), prompt_len: 2 }).collect()
}

#[test]
fn a_bf16_model_computes_in_bf16_and_its_loss_in_f32_close_to_the_f32_model() {
    let m32 = model::<B>(&DEV);
    let m16 = m32.clone().with_dtype(FloatDType::BF16);
    assert_eq!(m16.dtype(), FloatDType::BF16);
    let h32 = m32.hidden(tokens(&DEV), &NoAdapter);
    let h16 = m16.hidden(tokens(&DEV), &NoAdapter);
    assert_eq!(h32.dtype(), DType::F32);
    assert_eq!(h16.dtype(), DType::BF16, "activations between layers stay bf16");
    let [b, s, d] = h32.dims();
    let targets: Tensor<B, 1, Int> = tokens::<B>(&DEV).reshape([b * s]);
    let nll = |m: &Llama<B>, h: Tensor<B, 3>| {
        let (head, head_t) = m.head();
        head_loss(h.reshape([b * s, d]), &head, &head_t, None, targets.clone(), None).nll
    };
    let n32 = nll(&m32, h32);
    let n16 = nll(&m16, h16);
    assert_eq!(n16.dtype(), DType::F32, "the loss is computed in f32");
    let diff = max_abs(n16.clone() - n32.clone());
    let mean: f32 = n32.mean().into_scalar();
    eprintln!("bf16 vs f32 per-token loss: max difference {diff} nats (mean loss {mean})");
    // bf16 keeps 8 significant bits: per-token losses move by a few 1e-2
    // (0.074 seen here); a misread or missing cast moves them by whole nats.
    assert!(diff < 0.25, "bf16 per-token loss differs from f32 by {diff} (mean loss {mean})");
    assert!(diff > 1e-5, "the bf16 model computed exactly the f32 numbers: it did not run in bf16");
}

#[test]
fn a_zero_initialised_adapter_leaves_the_bf16_model_unchanged() {
    let m16 = model::<B>(&DEV).with_dtype(FloatDType::BF16);
    let sites = all_sites(&m16);
    let adapter = Adapter::<B>::build(&lora_gamma(4, 3.0, 1.0), &sites, &|l, t| m16.base_weight(l, t), 0, &DEV).unwrap();
    assert!(adapter.params().iter().all(|p| p.dtype() == DType::F32), "adapter tensors are f32");
    let base = m16.hidden(tokens(&DEV), &NoAdapter);
    let adapted = m16.hidden(tokens(&DEV), &adapter);
    assert_eq!(adapted.dtype(), DType::BF16);
    // x·W in bf16, cast up, plus an exact zero, cast back: bit for bit.
    assert_eq!(max_abs(adapted - base), 0.0);
}

#[test]
fn adapter_gradients_on_a_bf16_base_are_f32_and_follow_the_f32_ones() {
    let m32 = model::<Ad>(&DEV);
    let m16 = m32.clone().with_dtype(FloatDType::BF16);
    let sites = all_sites(&m32);
    let mut adapter = Adapter::<Ad>::build(&lora_gamma(4, 3.0, 1.0), &sites, &|l, t| m32.base_weight(l, t), 0, &DEV).unwrap();
    randomize(&mut adapter, 0.1, 5, &DEV);
    let exs = examples();
    let refs: Vec<&Example> = exs.iter().collect();
    // The whole batch as one micro-batch, on one worker.
    let plan = StepPlan { max_len: 16, loss_on: LossOn::All, micro_tokens: 1 << 20, workers: 1, time_phases: false };
    let g32 = step_gradients(&m32, &adapter, &refs, plan, &DEV).unwrap();
    let g16 = step_gradients(&m16, &adapter, &refs, plan, &DEV).unwrap();
    assert!((g16.nats - g32.nats).abs() < 0.05 * g32.nats, "loss {} (bf16) vs {} (f32)", g16.nats, g32.nats);
    let (mut dot, mut n32, mut n16) = (0.0f64, 0.0f64, 0.0f64);
    for (a, b) in g32.grads.iter().zip(&g16.grads) {
        assert_eq!(b.dtype(), DType::F32, "gradients reach the optimizer in f32");
        let a: Vec<f32> = a.to_data().to_vec().unwrap();
        let b: Vec<f32> = b.to_data().to_vec().unwrap();
        for (x, y) in a.iter().zip(&b) {
            dot += (*x as f64) * (*y as f64);
            n32 += (*x as f64).powi(2);
            n16 += (*y as f64).powi(2);
        }
    }
    let cos = dot / (n32.sqrt() * n16.sqrt());
    eprintln!("loss {} (bf16) vs {} (f32) nats; gradient cosine {cos}", g16.nats, g32.nats);
    // A gradient lost or misread at a cast points elsewhere (cosine ≈ 0).
    assert!(n16 > 0.0 && cos > 0.97, "bf16 gradient direction: cosine {cos} with the f32 one");
}
