//! Init rules: an `init …` clause enters; an IR [`Init`] leaves (`zeros`,
//! `normal(mean, std)`, …, or an expression of `W` and constants), its
//! arguments checked, or diagnostics.

use super::names::INITS;
use super::scope::{Scope, as_num};
use crate::lang::ast::*;
use crate::lang::diagnostic::{Diagnostic, ErrorKind};
use crate::lang::ir::*;

/// Parse an init rule (not `basis/mix`).
pub(super) fn init_rule(e: &AstExpr, scope: &Scope, d: &mut Vec<Diagnostic>) -> Option<(Init, Span)> {
    let cst = |a: &AstExpr, d: &mut Vec<Diagnostic>| -> Option<f64> {
        match scope.ty(a, d) {
            Some(x) => match as_num(&x) {
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
            let x = scope.ty(e, d)?;
            if let Some(v) = as_num(&x) {
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

pub(super) fn init_is_zero(i: &Init) -> bool {
    matches!(i, Init::Zeros | Init::Constant(0.0))
}
