//! Optimizers over flat adapter tensors: AdamW, Adam, SGD, with PyTorch's
//! update rules and defaults.
//!
//! Burn ships its own optimizers, but their defaults differ from PyTorch's
//! (burn's `AdamWConfig`: eps 1e-5, weight_decay 1e-4; `AdamConfig`: eps
//! 1e-5), and their state is serialised through burn records. peftc runs
//! must match PyTorch runs, so the update is written out here exactly as
//! `torch.optim` does it, with PyTorch's defaults when a spec omits a value:
//!
//! - AdamW: betas (0.9, 0.999), eps 1e-8, weight_decay 0.01, decoupled decay
//!   `p ← p − lr·wd·p`, then the bias-corrected Adam step
//!   `p ← p − lr · m̂ / (√v̂ + eps)`.
//! - Adam: betas (0.9, 0.999), eps 1e-8, weight_decay 0 (L2: `g ← g + wd·p`).
//! - SGD: momentum 0, weight_decay 0 (L2), PyTorch's momentum buffer
//!   (`buf ← μ·buf + g`, first step `buf = g`).
//!
//! The state (moments, step count) is plain tensors, saved in checkpoints.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use burn::prelude::*;

use crate::runs::tensor_file::F32Tensor;

/// The spec's optimizer settings are the trainer's: one type, in the IR.
pub use crate::lang::ir::{Optimizer as OptimizerConfig, OptimizerKind};

/// Optimizer state for a list of flat tensors.
#[derive(Debug, Clone)]
pub struct Optimizer<B: Backend> {
    pub config: OptimizerConfig,
    /// Optimizer steps taken so far.
    pub step: u64,
    m: Vec<Option<Tensor<B, 1>>>,
    v: Vec<Option<Tensor<B, 1>>>,
}

impl<B: Backend> Optimizer<B> {
    pub fn new(config: OptimizerConfig, n_params: usize) -> Self {
        Optimizer { config, step: 0, m: vec![None; n_params], v: vec![None; n_params] }
    }

    /// One update at learning rate `lr`; returns the new parameters.
    pub fn update(&mut self, params: Vec<Tensor<B, 1>>, grads: Vec<Tensor<B, 1>>, lr: f64) -> Vec<Tensor<B, 1>> {
        self.step += 1;
        let c = self.config.clone();
        let t = self.step as i32;
        let mut out = Vec::with_capacity(params.len());
        for (i, (p, g)) in params.into_iter().zip(grads).enumerate() {
            let np = match c.kind {
                OptimizerKind::AdamW | OptimizerKind::Adam => {
                    let (p, g) = if c.kind == OptimizerKind::AdamW {
                        (if c.weight_decay != 0.0 { p.clone().sub(p.mul_scalar(lr * c.weight_decay)) } else { p }, g)
                    } else if c.weight_decay != 0.0 {
                        let g = g.add(p.clone().mul_scalar(c.weight_decay));
                        (p, g)
                    } else {
                        (p, g)
                    };
                    let (b1, b2) = c.betas;
                    let m = match self.m[i].take() {
                        Some(m) => m.mul_scalar(b1).add(g.clone().mul_scalar(1.0 - b1)),
                        None => g.clone().mul_scalar(1.0 - b1),
                    };
                    let v = match self.v[i].take() {
                        Some(v) => v.mul_scalar(b2).add(g.square().mul_scalar(1.0 - b2)),
                        None => g.square().mul_scalar(1.0 - b2),
                    };
                    let bc1 = 1.0 - b1.powi(t);
                    let bc2 = 1.0 - b2.powi(t);
                    // PyTorch: denom = sqrt(v)/sqrt(bc2) + eps; p -= lr/bc1 * m/denom
                    let denom = v.clone().sqrt().div_scalar(bc2.sqrt()).add_scalar(c.eps);
                    let np = p.sub(m.clone().div(denom).mul_scalar(lr / bc1));
                    self.m[i] = Some(m);
                    self.v[i] = Some(v);
                    np
                }
                OptimizerKind::Sgd => {
                    let g = if c.weight_decay != 0.0 { g.add(p.clone().mul_scalar(c.weight_decay)) } else { g };
                    let d = if c.momentum != 0.0 {
                        let buf = match self.m[i].take() {
                            Some(b) => b.mul_scalar(c.momentum).add(g),
                            None => g,
                        };
                        self.m[i] = Some(buf.clone());
                        buf
                    } else {
                        g
                    };
                    p.sub(d.mul_scalar(lr))
                }
            };
            out.push(np);
        }
        out
    }

    /// The state as named tensors (`m.{i}`, `v.{i}`) for a checkpoint.
    pub fn state(&self) -> BTreeMap<String, F32Tensor> {
        let mut out = BTreeMap::new();
        for (prefix, list) in [("m", &self.m), ("v", &self.v)] {
            for (i, t) in list.iter().enumerate() {
                if let Some(t) = t {
                    let data = t.to_data().convert::<f32>().to_vec::<f32>().unwrap_or_default();
                    out.insert(format!("{prefix}.{i}"), F32Tensor { shape: vec![data.len()], data });
                }
            }
        }
        out
    }

    /// Restore from [`Optimizer::state`] and a step count.
    pub fn load_state(&mut self, step: u64, state: &BTreeMap<String, F32Tensor>, device: &B::Device) -> Result<()> {
        self.step = step;
        for (prefix, list) in [("m", &mut self.m), ("v", &mut self.v)] {
            for (i, slot) in list.iter_mut().enumerate() {
                *slot = state
                    .get(&format!("{prefix}.{i}"))
                    .map(|t| Tensor::from_data(TensorData::new(t.data.clone(), [t.data.len()]).convert::<B::FloatElem>(), device));
            }
        }
        if step > 0 && self.config.kind != OptimizerKind::Sgd && self.m.iter().any(|m| m.is_none()) {
            bail!("checkpoint's optimizer state is missing moments");
        }
        Ok(())
    }
}

/// Scale `grads` so their global L2 norm is at most `max_norm`, as
/// `torch.nn.utils.clip_grad_norm_` (factor `max / (norm + 1e-6)`, applied
/// only when below 1). Returns the norm before clipping.
pub fn clip_global_norm<B: Backend>(grads: Vec<Tensor<B, 1>>, max_norm: Option<f64>) -> (Vec<Tensor<B, 1>>, f64) {
    let Some(max) = max_norm else {
        return (grads, f64::NAN);
    };
    let sq: f64 = grads.iter().map(|g| g.clone().square().sum().into_scalar().elem::<f64>()).sum();
    let norm = sq.sqrt();
    let coef = max / (norm + 1e-6);
    if coef < 1.0 { (grads.into_iter().map(|g| g.mul_scalar(coef)).collect(), norm) } else { (grads, norm) }
}
