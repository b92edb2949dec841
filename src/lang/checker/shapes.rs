//! Dimensions of declarations: a tensor's dim list enters, checked against
//! the names in scope (`in`, `out`, the scheme's parameters) and against the
//! parameters' values (a scheme dim must be a positive integer); its dims
//! leave. Then, for sizing, the size of every named dim on each adapted
//! target.

use std::collections::{BTreeMap, BTreeSet};

use super::arguments::GivenArg;
use super::target_slot::{TargetSlot, dim_size};
use crate::lang::ast::*;
use crate::lang::diagnostic::{Diagnostic, ErrorKind};
use crate::lang::dims::Sizes;
use crate::lang::ir::*;
use crate::lang::number;

/// The dims of tensor `t`, and whether every one is valid: declared, not
/// repeated, and (for a scheme dim) a positive integer. Invalid dims are
/// reported and left out.
pub(super) fn tensor_dims(
    t: &AstTensor,
    dim_names: &BTreeSet<String>,
    params: &BTreeMap<String, f64>,
    given: &BTreeMap<String, GivenArg>,
    d: &mut Vec<Diagnostic>,
) -> (Vec<Dim>, bool) {
    // Sizes of the scheme's own dims (validated when used in a declaration).
    let dim_value = |name: &str| params.get(name).copied();
    let mut ok = true;
    let mut dims: Vec<Dim> = Vec::new();
    for di in &t.dims {
        if dims.contains(&di.name) {
            d.push(
                Diagnostic::error(ErrorKind::RepeatedDim(di.name.clone()), di.span).label("repeated").with(t.dims_span, "in this shape"),
            );
            ok = false;
            continue;
        }
        if !dim_names.contains(&di.name) {
            let mut diag =
                Diagnostic::error(ErrorKind::UnknownDim(di.name.clone()), di.span).label("not `in`, `out` or a parameter of this scheme");
            if let Some(h) = crate::lang::diagnostic::did_you_mean(&di.name, dim_names.iter().map(String::as_str)) {
                diag = diag.note(h);
            }
            if di.name == TOKENS {
                diag = diag.note("`tokens` belongs to `x` only");
            }
            d.push(diag);
            ok = false;
            continue;
        }
        if di.name != "in" && di.name != "out" {
            let v = dim_value(&di.name).unwrap_or(0.0);
            if !(v >= 1.0 && v.fract() == 0.0 && v < 1e9) {
                let mut diag =
                    Diagnostic::error(ErrorKind::DimNotPositiveInteger { dim: di.name.clone(), value: number::plain(v) }, di.span)
                        .label("used as a dimension here");
                if let Some(g) = given.get(&di.name) {
                    diag = diag.with(g.span, "value given here");
                }
                d.push(diag);
                ok = false;
                continue;
            }
        }
        dims.push(di.name.clone());
    }
    (dims, ok)
}

/// The size of every named dim on each target (`in`, `out`, and the scheme
/// dims of the declared tensors), in the order of `targets`; `tokens` is not
/// included.
pub(super) fn per_target_sizes(targets: &[TargetSlot], decls: &[TensorDecl], params: &BTreeMap<String, f64>) -> Vec<Sizes> {
    let mut size_sets = Vec::new();
    for tg in targets {
        let mut sizes = BTreeMap::new();
        sizes.insert("in".to_string(), tg.in_dim);
        sizes.insert("out".to_string(), tg.out_dim);
        for dd in decls {
            for x in &dd.dims {
                if let Some(v) = dim_size(x, tg, params) {
                    sizes.insert(x.clone(), v);
                }
            }
        }
        size_sets.push(sizes);
    }
    size_sets
}
