//! Tying: a tensor's tying clause (`per_layer`, `tied`, `partial(k)`) and
//! its `across (…)` clause enter; its IR [`Tying`] and its sharing groups
//! over the adapted targets leave (every target in exactly one group, the
//! targets of a group of equal shapes and layers), or diagnostics.

use std::collections::BTreeMap;

use super::arguments::GivenArg;
use super::constant::eval_const;
use super::target_slot::{TargetSlot, dim_size};
use crate::lang::ast::*;
use crate::lang::diagnostic::{Diagnostic, ErrorKind};
use crate::lang::ir::*;
use crate::lang::number;
use crate::lang::target::Target;

/// The tying of tensor `t`, and whether it is valid. `partial(k)` needs a
/// constant integer k ≥ 1 (a k that covers every layer is a warning); an
/// invalid one is reported and read as `tied`.
pub(super) fn tensor_tying(
    t: &AstTensor,
    params: &BTreeMap<String, f64>,
    given: &BTreeMap<String, GivenArg>,
    targets: &[TargetSlot],
    d: &mut Vec<Diagnostic>,
) -> (Tying, bool) {
    let mut ok = true;
    let tying = match &t.tying {
        AstTying::PerLayer => Tying::PerLayer,
        AstTying::Tied => Tying::Tied,
        AstTying::Partial(k) => {
            let mut diag = None;
            let kv = match eval_const(k, params) {
                Ok(v) => Some(v),
                Err((sp, m)) => {
                    d.push(Diagnostic::error(ErrorKind::NotAConstant(m), sp).label("in `partial(…)`"));
                    ok = false;
                    None
                }
            };
            if let Some(v) = kv
                && !(v >= 1.0 && v.fract() == 0.0 && v < 1e9)
            {
                let mut dg =
                    Diagnostic::error(ErrorKind::PartialK(format!("k must be an integer ≥ 1, but it is {}", number::plain(v))), k.span)
                        .label("the number of basis tensors");
                if let AstExprKind::Ident(n) = &k.kind
                    && let Some(g) = given.get(n)
                {
                    dg = dg.with(g.span, "value given here");
                }
                diag = Some(dg);
            }
            match (kv, diag) {
                (_, Some(dg)) => {
                    d.push(dg);
                    ok = false;
                    Tying::Tied
                }
                (Some(v), None) => {
                    let k = v as usize;
                    let layers = targets.iter().map(|t| t.layers.len()).min().unwrap_or(0);
                    if layers > 0 && k >= layers {
                        d.push(
                            Diagnostic::error(ErrorKind::PartialCoversLayers { k, layers }, partial_k_span(&t.tying))
                                .label("as expressive as `per_layer`, with more parameters")
                                .note("use `per_layer`, or a k below the number of layers"),
                        );
                    }
                    Tying::Partial { k }
                }
                (None, None) => Tying::Tied,
            }
        }
    };
    (tying, ok)
}

/// The span of `k` in `partial(k)` (an empty span for other tyings).
fn partial_k_span(t: &AstTying) -> Span {
    match t {
        AstTying::Partial(k) => k.span,
        _ => Span::new(0, 0, 0),
    }
}

/// Resolve `across (…)` into sharing groups over the adapted targets.
pub(super) fn across_groups(
    t: &AstTensor,
    dims: &[Dim],
    params: &BTreeMap<String, f64>,
    targets: &[TargetSlot],
    d: &mut Vec<Diagnostic>,
) -> Option<Vec<Vec<Target>>> {
    let mut assigned: BTreeMap<Target, Span> = BTreeMap::new();
    let mut groups: Vec<Vec<Target>> = Vec::new();
    let mut ok = true;
    for set in &t.across {
        let mut g = Vec::new();
        let mut first: Option<(&TargetSlot, Span)> = None;
        for id in set {
            let tgt = match id.name.parse::<Target>() {
                Ok(x) => x,
                Err(_) => {
                    d.push(Diagnostic::error(ErrorKind::UnknownTarget(id.name.clone()), id.span).label("in `across`"));
                    ok = false;
                    continue;
                }
            };
            if let Some(prev) = assigned.insert(tgt, id.span) {
                d.push(
                    Diagnostic::error(ErrorKind::AcrossTarget(format!("target `{tgt}` is in two groups")), id.span)
                        .label("again here")
                        .with(prev, "first here"),
                );
                ok = false;
                continue;
            }
            // Targets not adapted by this experiment are skipped.
            let Some(slot) = targets.iter().find(|s| s.target == tgt) else { continue };
            if let Some((f, fspan)) = first {
                let shape = |s: &TargetSlot| -> Vec<usize> { dims.iter().filter_map(|x| dim_size(x, s, params)).collect() };
                if shape(f) != shape(slot) {
                    d.push(
                        Diagnostic::error(
                            ErrorKind::AcrossShapeMismatch {
                                tensor: t.name.name.clone(),
                                a: format!("`{}` {:?}", f.target, shape(f)),
                                b: format!("`{}` {:?}", slot.target, shape(slot)),
                            },
                            id.span,
                        )
                        .label(format!("`{}` has shape {:?} here", slot.target, shape(slot)))
                        .with(fspan, format!("tied here with shape {:?}", shape(f)))
                        .with(t.dims_span, "the tensor's dims"),
                    );
                    ok = false;
                    continue;
                }
                if f.layers != slot.layers {
                    d.push(
                        Diagnostic::error(
                            ErrorKind::AcrossTarget(format!(
                                "`{}` and `{}` are adapted on different layers ({:?} vs {:?})",
                                f.target, slot.target, f.layers, slot.layers
                            )),
                            id.span,
                        )
                        .label("shared here")
                        .with(fspan, "tied here"),
                    );
                    ok = false;
                    continue;
                }
            } else {
                first = Some((slot, id.span));
            }
            g.push(tgt);
        }
        if !g.is_empty() {
            g.sort();
            groups.push(g);
        }
    }
    for s in targets {
        if !assigned.contains_key(&s.target) {
            groups.push(vec![s.target]);
        }
    }
    groups.sort();
    ok.then_some(groups)
}
