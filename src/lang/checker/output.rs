//! The scheme's output: the typed `delta = …` or `y = …` enters; it leaves
//! checked to have dims `[tokens, out]`, with its mergeability (whether it
//! is linear in `x`, and the merged weight), and the warnings about it: not
//! mergeable, not zero at initialisation.

use std::collections::BTreeMap;

use super::scope::TensorInfo;
use crate::lang::ast::*;
use crate::lang::diagnostic::{Diagnostic, ErrorKind};
use crate::lang::dims::{self, Sizes, fmt_dims};
use crate::lang::ir::*;
use crate::lang::linearity;

/// The one output of scheme `s`, typed, with dims `[tokens, out]`. `None`,
/// reported, when it is missing or has other dims; `None` alone when typing
/// it failed (reported already).
pub(super) fn checked_output<'s>(
    s: &AstScheme,
    output: Option<(&'s AstOutput, Option<Expr>)>,
    d: &mut Vec<Diagnostic>,
) -> Option<(&'s AstOutput, Expr)> {
    let Some((out_ast, out_expr)) = output else {
        d.push(Diagnostic::error(ErrorKind::MissingOutput(s.name.name.clone()), s.name.span).label("declared here"));
        return None;
    };
    let out_expr = out_expr?;
    let want = [TOKENS.to_string(), "out".to_string()];
    if out_expr.dims.len() != 2 || !dims::subset(&want, &out_expr.dims) {
        d.push(
            Diagnostic::error(ErrorKind::OutputDims { expected: fmt_dims(&want), found: fmt_dims(&out_expr.dims) }, out_ast.value.span)
                .label(format!("this has dims {}", fmt_dims(&out_expr.dims))),
        );
        return None;
    }
    Some((out_ast, out_expr))
}

/// Whether the output is linear in `x` and, if so, its merged weight,
/// costed over `size_sets` (one per target) with `tokens` sized as `in`:
/// the merged weight is the output on an identity batch.
pub(super) fn mergeability(output: &Output, lets: &BTreeMap<String, Expr>, size_sets: &[Sizes]) -> Mergeability {
    let merge_sizes: Vec<Sizes> = size_sets
        .iter()
        .map(|s| {
            let mut s = s.clone();
            s.insert(TOKENS.into(), *s.get("in").unwrap_or(&1));
            s
        })
        .collect();
    linearity::analyse(output, lets, &merge_sizes)
}

/// Warn (W0103) when the output is not linear in `x`.
pub(super) fn warn_not_mergeable(mergeability: &Mergeability, out_ast: &AstOutput, d: &mut Vec<Diagnostic>) {
    if !mergeability.linear {
        d.push(
            Diagnostic::error(ErrorKind::NotMergeable(mergeability.reason.clone().unwrap_or_default()), out_ast.value.span)
                .label("not linear in `x`")
                .note("the adapter cannot be baked into the base weights; it costs extra work at inference"),
        );
    }
}

/// Warn (W0101) when the adapted layer does not start as the base layer: a
/// `delta` that is not zero at initialisation, or a `y` scheme without a
/// trainable tensor that starts at zero. The warning points at the
/// trainable tensors' inits.
pub(super) fn warn_not_identity_at_init(
    s: &AstScheme,
    out_ast: &AstOutput,
    output: &Output,
    tensors: &BTreeMap<String, TensorInfo>,
    init_spans: &BTreeMap<String, Span>,
    lets: &BTreeMap<String, Expr>,
    d: &mut Vec<Diagnostic>,
) {
    let starts_at_identity = match output {
        Output::Delta(e) => linearity::is_zero_at_init(e, &|n| tensors.get(n).is_some_and(|t| t.zero), lets),
        Output::Y(_) => tensors.values().any(|t| t.trainable && t.zero),
    };
    if !starts_at_identity {
        let mut diag =
            Diagnostic::error(ErrorKind::NotIdentityAtInit(s.name.name.clone()), out_ast.span).label("this is not zero at initialisation");
        for (n, sp) in init_spans {
            if tensors.get(n).is_some_and(|t| t.trainable) {
                diag = diag.with(*sp, format!("`{n}` starts non-zero"));
            }
        }
        d.push(diag.note("zero-initialise one factor (e.g. `init zeros`) so training starts from the base model"));
    }
}
