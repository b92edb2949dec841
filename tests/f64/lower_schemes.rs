//! Lowered seed schemes on a tiny random model: gradients against finite
//! differences, identity at step 0, tied gradients, merged weights.
//!
//! Every test here runs on `NdArray<f64>` (see `main.rs`): burn 0.21
//! keeps one default float dtype per device *type* for the whole process, and
//! both element types share `NdArrayDevice`, so whichever test touches the
//! device first would decide the dtype of the other's new tensors (f64 data
//! silently built as f32, or the reverse). The f32 path is covered by the
//! other test binaries.

use crate::support::lower as lower_common;

use burn::backend::{Autodiff, NdArray};
use burn::prelude::*;
use lower_common::*;
use peftc::lower::program::{Program, Tying};
use peftc::lower::{Adapter, Site};
use peftc::model::causal_lm::CausalLm;
use peftc::model::hook::NoAdapter;
use peftc::train::optim::{Optimizer, OptimizerConfig, OptimizerKind};

type F64 = NdArray<f64>;
type Ad64 = Autodiff<F64>;

/// The std that keeps a scheme's delta O(1) when every factor is random: its
/// init scale 1/γ for the γ-scaled schemes.
fn random_std(p: &Program) -> f64 {
    match p.scheme.as_str() {
        "lora_gamma" | "hf_lora" | "dora" => 0.3,
        // 1/rms(B) ≈ 2000 > γ = 750: the detached min picks γ, a constant, so
        // finite differences (which see no detach) agree with the gradient.
        "strong_gamma_lora" => 5e-4,
        "tied_lora" => 0.012,
        _ => 1.0 / 750.0,
    }
}

fn weights_r<B: Backend>(device: &B::Device) -> Tensor<B, 3> {
    let v = peftc::lower::init::values(&peftc::lower::Init::Normal { mean: 0.0, std: 1.0 }, &[2, 6, 23], 3, "R").unwrap();
    Tensor::from_data(TensorData::new(v, [2, 6, 23]).convert::<B::FloatElem>(), device)
}

#[test]
fn gradients_match_finite_differences() {
    let dev = Default::default();
    let model = tiny::<Ad64>(&dev);
    let inner_model = tiny::<F64>(&dev);
    let r = weights_r::<Ad64>(&dev);
    let r_inner = weights_r::<F64>(&dev);
    for p in all_schemes() {
        let mut a = build(&p, &model, 0, &dev);
        randomize(&mut a, random_std(&p), 5, &dev);
        let loss = (model.logits(tokens(&dev), &a) * r.clone()).sum();
        let grads = loss.backward();
        let analytic: Vec<Vec<f64>> =
            a.params().iter().map(|t| t.grad(&grads).expect("grad").into_data().to_vec::<f64>().unwrap()).collect();
        let base = a.valid();
        let values: Vec<Vec<f64>> = base.params().iter().map(|t| t.to_data().to_vec::<f64>().unwrap()).collect();
        let (mut num2, mut den2, mut checked) = (0f64, 0f64, 0);
        for (i, info) in base.param_infos().iter().enumerate() {
            let n = info.numel();
            for j in [0, n / 2, n - 1] {
                // Steps relative to the values' scale; strong-γ's factors are tiny in
                // absolute terms, so its steps are relatively larger.
                let rel_step = if p.scheme == "strong_gamma_lora" { 0.5 } else { 1e-2 };
                let h = rel_step * random_std(&p);
                let eval = |delta: f64| {
                    let mut b = base.clone();
                    let mut ps: Vec<Tensor<F64, 1>> = b.params().to_vec();
                    let mut v = values[i].clone();
                    v[j] += delta;
                    ps[i] = Tensor::from_data(TensorData::new(v, [n]), &dev);
                    b.set_params(ps);
                    (inner_model.logits(tokens(&dev), &b) * r_inner.clone()).sum().into_scalar()
                };
                // Central differences with one Richardson step (error O(h⁴)), so h can
                // stay well above the backend's rounding noise (ndarray's vectorised
                // exp is accurate to ~1e-9 relative, not 1e-16).
                let d1 = (eval(h) - eval(-h)) / (2.0 * h);
                let d2 = (eval(h / 2.0) - eval(-h / 2.0)) / h;
                let fd = (4.0 * d2 - d1) / 3.0;
                let g = analytic[i][j];
                num2 += (fd - g).powi(2);
                den2 += g.powi(2);
                checked += 1;
            }
        }
        let rel = (num2 / den2.max(1e-300)).sqrt();
        assert!(den2 > 0.0, "{}: all sampled gradients are zero", p.scheme);
        assert!(rel < 5e-4, "{}: finite differences disagree, relative error {rel:e} over {checked} entries", p.scheme);
    }
}

#[test]
fn zero_initialised_schemes_leave_logits_unchanged() {
    let dev = Default::default();
    let model = tiny::<F64>(&dev);
    let base = model.logits(tokens(&dev), &NoAdapter);
    for p in all_schemes() {
        let a = build(&p, &model, 1, &dev);
        let out = model.logits(tokens(&dev), &a);
        let diff = (out - base.clone()).abs().max().into_scalar();
        assert!(diff < 1e-4, "{}: logits moved by {diff} at step 0", p.scheme);
    }
}

#[test]
fn tied_tensor_gets_the_sum_of_layer_gradients_and_stays_one_tensor() {
    let dev = Default::default();
    let model = tiny::<Ad64>(&dev);
    let r = weights_r::<Ad64>(&dev);
    let tied = tied_lora(4, 100.0, 750.0);
    let mut per_layer = tied.clone();
    per_layer.tensors[0].tying = Tying::PerLayer; // A
    let mut at = build(&tied, &model, 0, &dev);
    randomize(&mut at, 1.0 / 750.0, 9, &dev);
    let mut ap = build(&per_layer, &model, 0, &dev);
    // Per-layer copies of the tied A, everything else equal.
    let lookup = |name: &str| -> Tensor<Ad64, 1> {
        let tied_name = if name.starts_with("A.") { name.rsplit_once('.').unwrap().0 } else { name };
        let i = at.param_infos().iter().position(|i| i.name == tied_name).unwrap();
        at.params()[i].clone().detach()
    };
    let ps: Vec<_> = ap.param_infos().iter().map(|i| lookup(&i.name)).collect();
    ap.set_params(ps);

    let gt = (model.logits(tokens(&dev), &at) * r.clone()).sum().backward();
    let gp = (model.logits(tokens(&dev), &ap) * r.clone()).sum().backward();
    let ia = at.param_infos().iter().position(|i| i.name == "A.q").expect("one tied A for q");
    let g_tied = at.params()[ia].grad(&gt).unwrap();
    let mut g_sum = g_tied.zeros_like();
    for l in 0..3 {
        let i = ap.param_infos().iter().position(|i| i.name == format!("A.q.{l}")).unwrap();
        g_sum = g_sum + ap.params()[i].grad(&gp).unwrap();
    }
    let scale = g_sum.clone().abs().max().into_scalar();
    let diff = (g_tied.clone() - g_sum).abs().max().into_scalar();
    assert!(scale > 0.0 && diff <= 1e-9 * scale.max(1.0), "tied grad differs from summed layer grads by {diff} (scale {scale})");

    // One SGD step: A.q is still a single stored tensor, moved by the summed gradient.
    let n_a = at.param_infos().iter().filter(|i| i.decl == "A").count();
    assert_eq!(n_a, 7, "one A per target, shared by all 3 layers");
    let mut opt = Optimizer::<F64>::new(OptimizerConfig::pytorch(OptimizerKind::Sgd, 0.5), at.params().len());
    let old: Vec<_> = at.params().iter().map(|p| p.clone().inner()).collect();
    let grads: Vec<_> = at.params().iter().map(|p| p.grad(&gt).unwrap_or_else(|| p.clone().inner().zeros_like())).collect();
    let new = opt.update(old.clone(), grads, 0.5, None);
    at.set_params(new.into_iter().map(Tensor::from_inner).collect());
    assert_eq!(at.param_infos().iter().filter(|i| i.decl == "A").count(), 7);
    let moved = at.params()[ia].clone().inner();
    let expect = old[ia].clone() - g_tied.mul_scalar(0.5);
    assert!((moved - expect).abs().max().into_scalar() < 1e-12);
}

#[test]
fn merged_weights_reproduce_adapted_logits() {
    let dev = Default::default();
    let model = tiny::<F64>(&dev);
    let base = model.logits(tokens(&dev), &NoAdapter);
    for p in all_schemes().into_iter().filter(|p| p.mergeable) {
        let mut a = build(&p, &model, 2, &dev);
        randomize(&mut a, random_std(&p), 4, &dev);
        let adapted = model.logits(tokens(&dev), &a);
        let merged = model.with_weights(|l, t, w| a.merged_weight(l, t, w).expect("merge"));
        let out = merged.logits(tokens(&dev), &NoAdapter);
        let moved = (adapted.clone() - base.clone()).abs().max().into_scalar();
        let diff = (out - adapted).abs().max().into_scalar();
        assert!(moved > 1e-3, "{}: the random adapter barely changes the logits ({moved})", p.scheme);
        assert!(diff < 1e-4, "{}: merged logits differ by {diff}", p.scheme);
    }
}

#[test]
fn storage_follows_tying() {
    let dev = Default::default();
    let model = tiny::<F64>(&dev);
    // 3 layers × 7 targets; hidden 8, inter 12.
    let sites: Vec<Site> = all_sites(&model);
    let count = |p: &Program| Adapter::<F64>::build(p, &sites, &|l, t| model.base_weight(l, t), 0, &dev).unwrap().num_trainable();
    let in_out: usize = sites.iter().take(7).map(|s| s.d_in + s.d_out).sum(); // one layer
    let outs: usize = sites.iter().take(7).map(|s| s.d_out).sum();
    assert_eq!(count(&lora_gamma(4, 3.0, 1.0)), (3 * 4 * in_out) as u64);
    assert_eq!(count(&tied_lora(4, 100.0, 750.0)), (4 * in_out + 3 * 7 * 4 + 3 * outs) as u64);
    // partial(k): basis [k, in, r] + per-layer [k] mix, for A (k 2) and B (k 3)
    let ins: usize = sites.iter().take(7).map(|s| s.d_in).sum();
    assert_eq!(count(&partially_tied_lora(4, 2, 3, 1.0, 1.0)), (2 * 4 * ins + 3 * 7 * 2 + 3 * 4 * outs + 3 * 7 * 3) as u64);
    // across (q, k, v): one A for the three (equal shapes in the tiny model)
    let mut across = tied_lora(4, 100.0, 750.0);
    across.tensors[0].across = vec![vec![peftc::lang::target::Target::Q, peftc::lang::target::Target::K, peftc::lang::target::Target::V]];
    assert_eq!(count(&across), count(&tied_lora(4, 100.0, 750.0)) - 2 * 8 * 4);
}
