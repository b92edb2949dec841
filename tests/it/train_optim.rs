//! The multi-tensor optimizer: against `torch.optim` (trajectories recorded
//! by `scripts/torch-optim-reference.py` in f64) and against updating each
//! tensor on its own; clipping on the device as `clip_grad_norm_`.

use burn::backend::NdArray;
use burn::prelude::*;
use peftc::train::optim::{Optimizer, OptimizerConfig, OptimizerKind, clip_global_norm};
use serde::Deserialize;

type B = NdArray<f32>;

#[derive(Deserialize)]
struct Reference {
    init: Vec<Vec<f64>>,
    grads: Vec<Vec<Vec<f64>>>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    kind: String,
    config: serde_json::Map<String, serde_json::Value>,
    clip: Option<f64>,
    trajectory: Vec<Vec<Vec<f64>>>,
}

fn tensors(values: &[Vec<f64>]) -> Vec<Tensor<B, 1>> {
    values
        .iter()
        .map(|v| Tensor::from_data(TensorData::new(v.iter().map(|&x| x as f32).collect::<Vec<_>>(), [v.len()]), &Default::default()))
        .collect()
}

fn values(t: &Tensor<B, 1>) -> Vec<f32> {
    t.to_data().to_vec::<f32>().unwrap()
}

fn config(case: &Case) -> OptimizerConfig {
    let kind = match case.kind.as_str() {
        "adamw" => OptimizerKind::AdamW,
        "adam" => OptimizerKind::Adam,
        _ => OptimizerKind::Sgd,
    };
    let num = |k: &str| case.config.get(k).and_then(|v| v.as_f64());
    let mut c = OptimizerConfig::pytorch(kind, num("lr").unwrap());
    c.weight_decay = num("weight_decay").unwrap();
    if let Some(b) = case.config.get("betas").and_then(|v| v.as_array()) {
        c.betas = (b[0].as_f64().unwrap(), b[1].as_f64().unwrap());
    }
    if let Some(e) = num("eps") {
        c.eps = e;
    }
    if let Some(m) = num("momentum") {
        c.momentum = m;
    }
    c
}

#[test]
fn matches_torch_optim_with_and_without_clipping() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/optim/torch_optim.json");
    let r: Reference = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(r.cases.len(), 5);
    for case in &r.cases {
        let mut opt = Optimizer::<B>::new(config(case), r.init.len());
        let mut params = tensors(&r.init);
        for (step, (grads, expect)) in r.grads.iter().zip(&case.trajectory).enumerate() {
            params = opt.update(params, tensors(grads), config(case).lr, case.clip);
            for (p, e) in params.iter().zip(expect) {
                for (a, b) in values(p).iter().zip(e) {
                    let d = (*a as f64 - b).abs();
                    assert!(d <= 1e-6 * b.abs().max(1.0), "{} clip {:?}, step {}: {a} vs torch {b}", case.kind, case.clip, step + 1);
                }
            }
        }
    }
}

#[test]
fn one_flat_update_equals_each_tensor_updated_alone() {
    let dev = Default::default();
    let shapes = [5usize, 1, 64, 3];
    let init: Vec<Vec<f64>> =
        shapes.iter().enumerate().map(|(k, &n)| (0..n).map(|i| ((k * 31 + i) as f64 * 0.37).sin()).collect()).collect();
    for kind in [OptimizerKind::AdamW, OptimizerKind::Adam, OptimizerKind::Sgd] {
        let mut c = OptimizerConfig::pytorch(kind, 1e-2);
        c.weight_decay = 0.05;
        c.momentum = if kind == OptimizerKind::Sgd { 0.9 } else { 0.0 };
        let mut all = Optimizer::<B>::new(c.clone(), shapes.len());
        let mut alone: Vec<Optimizer<B>> = shapes.iter().map(|_| Optimizer::new(c.clone(), 1)).collect();
        let (mut p_all, mut p_alone) = (tensors(&init), tensors(&init));
        for step in 0..4 {
            let g: Vec<Vec<f64>> = init.iter().map(|v| v.iter().map(|x| (x * 3.0 + step as f64).cos()).collect()).collect();
            p_all = all.update(p_all, tensors(&g), 1e-2, None);
            p_alone = p_alone
                .into_iter()
                .zip(tensors(&g))
                .zip(alone.iter_mut())
                .map(|((p, g), o)| o.update(vec![p], vec![g], 1e-2, None).remove(0))
                .collect();
        }
        for (a, b) in p_all.iter().zip(&p_alone) {
            assert_eq!(values(a), values(b), "{kind:?}: elementwise the flat update is the per-tensor one, bit for bit");
        }
        // The checkpointed state restores the same flat moments.
        let mut again = Optimizer::<B>::new(c.clone(), shapes.len());
        again.load_state(all.step, &shapes, &all.state(), &dev).unwrap();
        assert_eq!(again.state(), all.state());
        let err = again.load_state(all.step, &[5, 1, 63, 4], &all.state(), &dev).unwrap_err();
        assert!(err.to_string().contains("other sizes"), "{err}");
    }
}

#[test]
fn clipping_scales_to_the_global_norm_on_the_device() {
    let g = tensors(&[vec![3.0, 4.0, 0.0, 12.0]]).remove(0); // norm 13
    assert_eq!(values(&clip_global_norm(g.clone(), Some(100.0))), vec![3.0, 4.0, 0.0, 12.0]);
    assert_eq!(values(&clip_global_norm(g.clone(), None)), vec![3.0, 4.0, 0.0, 12.0]);
    let c = values(&clip_global_norm(g, Some(1.3)));
    let coef = 1.3 / (13.0 + 1e-6);
    for (a, b) in c.iter().zip([3.0, 4.0, 0.0, 12.0]) {
        assert!((*a as f64 - b * coef).abs() < 1e-6, "{a} vs {}", b * coef);
    }
}
