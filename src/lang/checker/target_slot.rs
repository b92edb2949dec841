//! The adapted targets an instance is sized for: model shapes (or an
//! experiment's `targets`) enter; one [`TargetSlot`] per target module
//! leaves, with its layers and `(in, out)`, and the size of each named dim
//! on it.

use std::collections::BTreeMap;

use crate::lang::ir::ModelShapes;
use crate::lang::target::Target;

/// What the checker knows about one adapted target.
#[derive(Debug, Clone)]
pub struct TargetSlot {
    pub target: Target,
    pub layers: std::ops::Range<usize>,
    pub in_dim: usize,
    pub out_dim: usize,
}

/// All adapted targets of a model (all 7 on all layers).
pub fn all_targets(shapes: &ModelShapes) -> Vec<TargetSlot> {
    Target::ALL
        .iter()
        .map(|&t| {
            let (i, o) = shapes.target_shape(t);
            TargetSlot { target: t, layers: 0..shapes.num_layers, in_dim: i, out_dim: o }
        })
        .collect()
}

/// Size of a named dim for one target.
pub(super) fn dim_size(dim: &str, tg: &TargetSlot, params: &BTreeMap<String, f64>) -> Option<usize> {
    match dim {
        "in" => Some(tg.in_dim),
        "out" => Some(tg.out_dim),
        p => params.get(p).map(|v| *v as usize),
    }
}
