//! What an instance costs: its typed output and lets, its declarations and
//! the per-target sizes enter; out come the contraction order of every `@`
//! chain (the cheapest summed over the targets), the storage every tensor
//! needs under its tying with exact element counts, and the FLOPs per token
//! and per step on each target.

use std::collections::BTreeMap;

use super::target_slot::{TargetSlot, dim_size};
use crate::lang::dims::{self, Sizes};
use crate::lang::ir::*;

/// Stored tensors of a scheme on the given targets.
pub fn storage(decls: &[TensorDecl], targets: &[TargetSlot], params: &BTreeMap<String, f64>) -> Vec<ParamStorage> {
    let mut out = Vec::new();
    for t in decls {
        for g in &t.groups {
            let Some(slot) = targets.iter().find(|s| s.target == g[0]) else { continue };
            let shape: Vec<usize> = t.dims.iter().map(|d| dim_size(d, slot, params).unwrap_or(0)).collect();
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

/// `sizes` with `tokens` at [`NOMINAL_TOKENS`]: the sizes contraction orders
/// and FLOPs are costed with.
pub(super) fn with_nominal_tokens(sizes: &Sizes) -> Sizes {
    let mut with_tokens: Sizes = sizes.clone();
    with_tokens.insert(TOKENS.into(), NOMINAL_TOKENS);
    with_tokens
}

/// The output and the lets with every `@` chain re-associated into the
/// order that costs least summed over `size_sets` (one per target).
pub(super) fn contraction_order(output: Expr, lets: Vec<LetBinding>, size_sets: &[Sizes]) -> (Expr, Vec<LetBinding>) {
    let out_expr = dims::reassociate(output, size_sets);
    let let_list: Vec<LetBinding> = lets.into_iter().map(|l| LetBinding { expr: dims::reassociate(l.expr, size_sets), ..l }).collect();
    (out_expr, let_list)
}

/// The exact number of trainable parameters: the trainable storage summed.
pub(super) fn trainable_count(storage: &[ParamStorage]) -> u64 {
    storage.iter().filter(|s| s.trainable).fold(0u64, |a, s| a.saturating_add(s.numel))
}

/// Every adapted target with its sizes (`sizes`, without `tokens`) and the
/// FLOPs of `output` on it, costed with `size_sets` (with `tokens`).
pub(super) fn target_instances(
    targets: &[TargetSlot],
    sizes: Vec<Sizes>,
    size_sets: &[Sizes],
    output: &Expr,
    lets: &BTreeMap<String, Expr>,
) -> Vec<TargetInstance> {
    targets
        .iter()
        .zip(sizes)
        .zip(size_sets)
        .map(|((tg, sizes), with_tokens)| {
            let (ft, fs) = dims::flops(output, with_tokens, lets);
            TargetInstance { target: tg.target, layers: tg.layers.clone(), sizes, flops_per_token: ft, flops_per_step: fs }
        })
        .collect()
}
