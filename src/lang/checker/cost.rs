//! What an instance costs: its declarations and targets enter; the storage
//! every tensor needs under its tying, with exact element counts, leaves.

use std::collections::BTreeMap;

use super::target_slot::TargetSlot;
use crate::lang::ir::*;

/// Stored tensors of a scheme on the given targets.
pub fn storage(decls: &[TensorDecl], targets: &[TargetSlot], params: &BTreeMap<String, f64>) -> Vec<ParamStorage> {
    let mut out = Vec::new();
    for t in decls {
        for g in &t.groups {
            let Some(slot) = targets.iter().find(|s| s.target == g[0]) else { continue };
            let shape: Vec<usize> = t
                .dims
                .iter()
                .map(|d| match d.as_str() {
                    "in" => slot.in_dim,
                    "out" => slot.out_dim,
                    p => params.get(p).map(|v| *v as usize).unwrap_or(0),
                })
                .collect();
            let layers = slot.layers.len();
            let mut push = |part: StoragePart, shape: Vec<usize>| {
                let numel = shape.iter().fold(1u64, |a, &x| a.saturating_mul(x as u64));
                out.push(ParamStorage { tensor: t.name.clone(), part, targets: g.clone(), shape, numel, trainable: t.trainable });
            };
            match t.tying {
                Tying::PerLayer => push(StoragePart::Full, [vec![layers], shape].concat()),
                Tying::Tied => push(StoragePart::Full, shape),
                Tying::Partial { k } => {
                    push(StoragePart::Basis, [vec![k], shape].concat());
                    push(StoragePart::Mix, vec![layers, k]);
                }
            }
        }
    }
    out
}

/// Token count used to choose contraction orders (a typical step:
/// batch 8 × 256 tokens).
pub const NOMINAL_TOKENS: usize = 2048;
