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

/// Optimizer state for a list of flat tensors, updated as one: the
/// tensors are concatenated into one flat buffer (moments likewise), so a
/// step is a dozen kernels whatever the number of tensors (a LoRA on all
/// seven targets of 30 layers has 420), and the updated parameters come
/// back as views of it. Elementwise, the arithmetic is per tensor's.
#[derive(Debug, Clone)]
pub struct Optimizer<B: Backend> {
    pub config: OptimizerConfig,
    /// Optimizer steps taken so far.
    pub step: u64,
    /// Element counts of the tensors, in order (known from the first update
    /// or a checkpoint).
    sizes: Vec<usize>,
    /// First moments (AdamW, Adam) or the momentum buffer (SGD), flat.
    m: Option<Tensor<B, 1>>,
    /// Second moments (AdamW, Adam), flat.
    v: Option<Tensor<B, 1>>,
}

impl<B: Backend> Optimizer<B> {
    pub fn new(config: OptimizerConfig, n_params: usize) -> Self {
        Optimizer { config, step: 0, sizes: Vec::with_capacity(n_params), m: None, v: None }
    }

    /// Clip the gradients' global norm to `clip` (when given, as
    /// [`clip_global_norm`]), take one update at learning rate `lr`, and
    /// return the new parameters. Reads nothing back to the host.
    pub fn update(&mut self, params: Vec<Tensor<B, 1>>, grads: Vec<Tensor<B, 1>>, lr: f64, clip: Option<f64>) -> Vec<Tensor<B, 1>> {
        let sizes: Vec<usize> = params.iter().map(|p| p.dims()[0]).collect();
        if self.sizes != sizes {
            // Moments exist only for the sizes they were made or loaded for
            // ([`Optimizer::load_state`] checks them against the adapter).
            debug_assert!(self.m.is_none(), "optimizer state was for tensors of other sizes");
            self.sizes = sizes;
        }
        let p = Tensor::cat(params, 0);
        let g = clip_global_norm(Tensor::cat(grads, 0), clip);
        let p = self.update_flat(p, g, lr);
        split(p, &self.sizes)
    }

    /// [`Optimizer::update`] on the concatenated parameters and gradients.
    fn update_flat(&mut self, p: Tensor<B, 1>, g: Tensor<B, 1>, lr: f64) -> Tensor<B, 1> {
        self.step += 1;
        let c = &self.config;
        let t = self.step as i32;
        match c.kind {
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
                let m = match self.m.take() {
                    Some(m) => m.mul_scalar(b1).add(g.clone().mul_scalar(1.0 - b1)),
                    None => g.clone().mul_scalar(1.0 - b1),
                };
                let v = match self.v.take() {
                    Some(v) => v.mul_scalar(b2).add(g.square().mul_scalar(1.0 - b2)),
                    None => g.square().mul_scalar(1.0 - b2),
                };
                let bc1 = 1.0 - b1.powi(t);
                let bc2 = 1.0 - b2.powi(t);
                // PyTorch: denom = sqrt(v)/sqrt(bc2) + eps; p -= lr/bc1 * m/denom
                let denom = v.clone().sqrt().div_scalar(bc2.sqrt()).add_scalar(c.eps);
                let np = p.sub(m.clone().div(denom).mul_scalar(lr / bc1));
                self.m = Some(m);
                self.v = Some(v);
                np
            }
            OptimizerKind::Sgd => {
                let g = if c.weight_decay != 0.0 { g.add(p.clone().mul_scalar(c.weight_decay)) } else { g };
                let d = if c.momentum != 0.0 {
                    let buf = match self.m.take() {
                        Some(b) => b.mul_scalar(c.momentum).add(g),
                        None => g,
                    };
                    self.m = Some(buf.clone());
                    buf
                } else {
                    g
                };
                p.sub(d.mul_scalar(lr))
            }
        }
    }

    /// The state as named tensors (`m.{i}`, `v.{i}`, one per parameter
    /// tensor) for a checkpoint: one read of each flat moment.
    pub fn state(&self) -> BTreeMap<String, F32Tensor> {
        let mut out = BTreeMap::new();
        for (prefix, flat) in [("m", &self.m), ("v", &self.v)] {
            let Some(flat) = flat else { continue };
            let data = flat.to_data().convert::<f32>().to_vec::<f32>().unwrap_or_default();
            let mut at = 0;
            for (i, &n) in self.sizes.iter().enumerate() {
                out.insert(format!("{prefix}.{i}"), F32Tensor { shape: vec![n], data: data[at..at + n].to_vec() });
                at += n;
            }
        }
        out
    }

    /// Restore from [`Optimizer::state`] and a step count, for parameter
    /// tensors of `sizes` elements (an error if the state disagrees).
    pub fn load_state(&mut self, step: u64, sizes: &[usize], state: &BTreeMap<String, F32Tensor>, device: &B::Device) -> Result<()> {
        self.step = step;
        let needs_m = self.config.kind != OptimizerKind::Sgd || self.config.momentum != 0.0;
        let needs_v = self.config.kind != OptimizerKind::Sgd;
        self.sizes.clear();
        self.m = None;
        self.v = None;
        if step == 0 {
            return Ok(());
        }
        // One flat moment from its per-tensor pieces `{prefix}.{i}`.
        let load = |prefix: &str| -> Result<Tensor<B, 1>> {
            let parts: Option<Vec<&F32Tensor>> = (0..sizes.len()).map(|i| state.get(&format!("{prefix}.{i}"))).collect();
            let Some(parts) = parts else { bail!("checkpoint's optimizer state is missing moments") };
            if parts.iter().map(|t| t.data.len()).ne(sizes.iter().copied()) {
                bail!("checkpoint's optimizer moments are for tensors of other sizes than the adapter's");
            }
            let data: Vec<f32> = parts.iter().flat_map(|t| t.data.iter().copied()).collect();
            let n = data.len();
            Ok(Tensor::from_data(TensorData::new(data, [n]).convert::<B::FloatElem>(), device))
        };
        self.m = if needs_m { Some(load("m")?) } else { None };
        self.v = if needs_v { Some(load("v")?) } else { None };
        self.sizes = sizes.to_vec();
        Ok(())
    }
}

/// `flat` cut into consecutive pieces of `sizes` elements (views where the
/// backend has them).
fn split<B: Backend>(flat: Tensor<B, 1>, sizes: &[usize]) -> Vec<Tensor<B, 1>> {
    let mut at = 0;
    sizes
        .iter()
        .map(|&n| {
            let t = flat.clone().narrow(0, at, n);
            at += n;
            t
        })
        .collect()
}

/// Scale the (concatenated) gradients so their L2 norm is at most
/// `max_norm`, as `torch.nn.utils.clip_grad_norm_`: multiplied by
/// `min(1, max_norm / (norm + 1e-6))`, computed on the device (no host read).
pub fn clip_global_norm<B: Backend>(grads: Tensor<B, 1>, max_norm: Option<f64>) -> Tensor<B, 1> {
    let Some(max) = max_norm else {
        return grads;
    };
    let [n] = grads.dims();
    let norm = grads.clone().square().sum().sqrt();
    let coef = norm.add_scalar(1e-6).recip().mul_scalar(max).clamp_max(1.0);
    grads.mul(coef.expand([n]))
}
