//! Init rules: a tensor's `init …` clause enters with its tying and dims;
//! an IR [`TensorInit`] leaves (`zeros`, `normal(mean, std)`, …, an
//! expression of `W` and constants, or `basis …, mix …` for `partial(k)`),
//! its arguments checked and its fit to the tensor checked, or diagnostics.

use std::collections::BTreeMap;

use super::names::INITS;
use super::scope::{Scope, constant_value};
use super::target_slot::{TargetSlot, dim_size};
use crate::lang::ast::*;
use crate::lang::diagnostic::{Diagnostic, ErrorKind};
use crate::lang::dims::{self, fmt_dims};
use crate::lang::ir::*;

/// Parse an init rule (not `basis/mix`).
pub(super) fn init_rule(e: &AstExpr, scope: &Scope, d: &mut Vec<Diagnostic>) -> Option<(Init, Span)> {
    let cst = |a: &AstExpr, d: &mut Vec<Diagnostic>| -> Option<f64> {
        match scope.type_expr(a, d) {
            Some(x) => match constant_value(&x) {
                Some(v) if v.is_finite() => Some(v),
                _ => {
                    d.push(
                        Diagnostic::error(ErrorKind::NotAConstant("init arguments are numbers".into()), a.span)
                            .label("not a constant number"),
                    );
                    None
                }
            },
            None => None,
        }
    };
    let (name, args): (&str, &[AstArg]) = match &e.kind {
        AstExprKind::Ident(n) if INITS.contains(&n.as_str()) => (n.as_str(), &[]),
        AstExprKind::Call { func, args } if INITS.contains(&func.name.as_str()) => (func.name.as_str(), args.as_slice()),
        _ => {
            // An expression of W and constants.
            let x = scope.type_expr(e, d)?;
            if let Some(v) = constant_value(&x) {
                return Some((Init::Constant(v), e.span));
            }
            return Some((Init::Expr(x), e.span));
        }
    };
    let pos: Vec<&AstArg> = args.iter().filter(|a| a.name.is_none()).collect();
    let named = |k: &str| args.iter().find(|a| a.name.as_ref().is_some_and(|n| n.name == k)).map(|a| &a.value);
    let want = |n: usize, d: &mut Vec<Diagnostic>| -> bool {
        let given = pos.len() + args.iter().filter(|a| a.name.is_some()).count();
        if given > n {
            d.push(
                Diagnostic::error(ErrorKind::BadCall(format!("`{name}` takes at most {n} argument(s)")), e.span)
                    .label("too many arguments"),
            );
            false
        } else {
            true
        }
    };
    let arg = |i: usize, key: &str| pos.get(i).map(|a| &a.value).or_else(|| named(key));
    Some((
        match name {
            "zeros" => {
                if !want(0, d) {
                    return None;
                }
                Init::Zeros
            }
            "ones" => {
                if !want(0, d) {
                    return None;
                }
                Init::Ones
            }
            "identity" => {
                if !want(0, d) {
                    return None;
                }
                Init::Identity
            }
            "normal" => {
                if !want(2, d) {
                    return None;
                }
                let mean = match arg(0, "mean") {
                    Some(a) => cst(a, d)?,
                    None => 0.0,
                };
                let std = match arg(1, "std") {
                    Some(a) => cst(a, d)?,
                    None => 1.0,
                };
                if std < 0.0 {
                    d.push(Diagnostic::error(ErrorKind::BadValue("a standard deviation must be ≥ 0".into()), e.span));
                    return None;
                }
                Init::Normal { mean, std }
            }
            "uniform" => {
                if !want(2, d) {
                    return None;
                }
                let low = match arg(0, "low") {
                    Some(a) => cst(a, d)?,
                    None => 0.0,
                };
                let high = match arg(1, "high") {
                    Some(a) => cst(a, d)?,
                    None => 1.0,
                };
                if low > high {
                    d.push(Diagnostic::error(ErrorKind::BadValue("uniform needs low ≤ high".into()), e.span));
                    return None;
                }
                Init::Uniform { low, high }
            }
            _ => {
                if !want(1, d) {
                    return None;
                }
                let a = match arg(0, "a") {
                    Some(a) => cst(a, d)?,
                    None => 5f64.sqrt(),
                };
                Init::KaimingUniform { a }
            }
        },
        e.span,
    ))
}

fn init_is_zero(i: &Init) -> bool {
    matches!(i, Init::Zeros | Init::Constant(0.0))
}

/// Whether a tensor with this init starts at zero (for a partial tensor:
/// its basis or its mix does).
pub(super) fn starts_at_zero(init: &TensorInit) -> bool {
    match init {
        TensorInit::Plain(i) => init_is_zero(i),
        TensorInit::Partial { basis, mix } => init_is_zero(basis) || init_is_zero(mix),
    }
}

/// The init of tensor `t` under its tying, with the span of the clause:
/// one rule for `per_layer` and `tied`, `basis …, mix …` for `partial(k)`.
/// `None` (reported) when it is missing, of the wrong kind or invalid.
pub(super) fn tensor_init(t: &AstTensor, tying: Tying, scope: &Scope, d: &mut Vec<Diagnostic>) -> Option<(TensorInit, Span)> {
    match (&t.init, tying) {
        (None, _) => {
            d.push(
                Diagnostic::error(ErrorKind::InitKind(format!("tensor `{}` has no `init`", t.name.name)), t.name.span)
                    .label("declared without an init")
                    .note("add e.g. `init zeros` or `init normal(0, 1 / gamma)`"),
            );
            None
        }
        (Some(AstInit::BasisMix { .. }), Tying::PerLayer | Tying::Tied) => {
            d.push(
                Diagnostic::error(
                    ErrorKind::InitKind("`init basis …, mix …` is only for `partial(k)` tensors".into()),
                    t.init_span.unwrap_or(t.span),
                )
                .label("basis/mix init here")
                .with(t.tying_span, "this tensor is not partially tied"),
            );
            None
        }
        (Some(AstInit::Expr(_)), Tying::Partial { .. }) => {
            d.push(
                Diagnostic::error(
                    ErrorKind::InitKind("a `partial(k)` tensor needs `init basis …, mix …`".into()),
                    t.init_span.unwrap_or(t.span),
                )
                .label("a single init here")
                .with(t.tying_span, "partially tied here"),
            );
            None
        }
        (Some(AstInit::Expr(e)), _) => init_rule(e, scope, d).map(|(i, sp)| (TensorInit::Plain(i), sp)),
        (Some(AstInit::BasisMix { basis, mix }), _) => {
            let b = init_rule(basis, scope, d);
            let m = init_rule(mix, scope, d);
            match (b, m) {
                (Some((b, bs)), Some((m, ms))) => Some((TensorInit::Partial { basis: b, mix: m }, bs.to(ms))),
                _ => None,
            }
        }
    }
}

/// Whether `init` fits tensor `t` (reported when not): an expression init
/// only on a `per_layer` tensor, without `x`, with dims among the tensor's;
/// `identity` only on two dims of equal size on every target.
#[allow(clippy::too_many_arguments)]
pub(super) fn init_fits(
    t: &AstTensor,
    init: &TensorInit,
    ispan: Span,
    tying: Tying,
    dims: &[Dim],
    params: &BTreeMap<String, f64>,
    targets: &[TargetSlot],
    d: &mut Vec<Diagnostic>,
) -> bool {
    let mut ok = true;
    // Validate expression inits.
    let parts: Vec<&Init> = match init {
        TensorInit::Plain(i) => vec![i],
        TensorInit::Partial { basis, mix } => vec![basis, mix],
    };
    for (pi, part) in parts.iter().enumerate() {
        match part {
            Init::Expr(x) => {
                if tying != Tying::PerLayer {
                    d.push(
                        Diagnostic::error(ErrorKind::TiedInitFromW(t.name.name.clone()), ispan)
                            .label("depends on `W`")
                            .with(t.tying_span, "shared between layers here"),
                    );
                    ok = false;
                } else if x.depends_on_x {
                    d.push(Diagnostic::error(ErrorKind::InitDependency("it uses the input `x`".into()), ispan).label("uses `x`"));
                    ok = false;
                } else if !dims::subset(&x.dims, dims) {
                    d.push(
                        Diagnostic::error(
                            ErrorKind::InitShape(format!(
                                "the init has dims {} but the tensor has dims {}",
                                fmt_dims(&x.dims),
                                fmt_dims(dims)
                            )),
                            ispan,
                        )
                        .label(format!("this has dims {}", fmt_dims(&x.dims)))
                        .with(t.dims_span, "the tensor's dims"),
                    );
                    ok = false;
                }
            }
            Init::Identity => {
                let tdims = if pi == 1 { 1 } else { dims.len() };
                let square = tdims == 2 && targets.iter().all(|tg| dim_size(&dims[0], tg, params) == dim_size(&dims[1], tg, params));
                if !square {
                    d.push(
                        Diagnostic::error(ErrorKind::InitShape("`identity` needs exactly two dimensions of equal size".into()), ispan)
                            .label("identity init")
                            .with(t.dims_span, format!("dims {}", fmt_dims(dims))),
                    );
                    ok = false;
                }
            }
            _ => {}
        }
    }
    ok
}
