//! Linearity in `x` (hence mergeability and the merged weight `W' = f(I)`),
//! and the zero-at-initialisation analysis.

use std::collections::BTreeMap;

use super::dims::{self, Sizes};
use super::ir::*;

/// Degree of an expression in `x`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Degree {
    Const,
    Linear,
    Nonlinear,
}

fn degree(e: &Expr, lets: &BTreeMap<String, Expr>, why: &mut Option<String>) -> Degree {
    use Degree::*;
    let nl = |m: String, why: &mut Option<String>| {
        if why.is_none() {
            *why = Some(m);
        }
        Nonlinear
    };
    match &e.kind {
        ExprKind::X | ExprKind::Eye => Linear,
        ExprKind::W | ExprKind::Tensor(_) | ExprKind::Num(_) => Const,
        ExprKind::Let(n) => match lets.get(n) {
            Some(l) => degree(l, lets, why),
            None => Const,
        },
        ExprKind::Unary { func, arg } => {
            let d = degree(arg, lets, why);
            match (func, d) {
                (_, Const) => Const,
                (UnaryFn::Neg | UnaryFn::Detach, d) => d,
                (f, _) => nl(format!("`{}` is applied to a value that depends on `x`", unary_name(*f)), why),
            }
        }
        ExprKind::Reduce { func, arg, .. } => match degree(arg, lets, why) {
            Const => Const,
            _ => nl(format!("`{}` is applied to a value that depends on `x`", if *func == ReduceFn::Rms { "rms" } else { "norm" }), why),
        },
        ExprKind::Binary { op, lhs, rhs } => {
            let (a, b) = (degree(lhs, lets, why), degree(rhs, lets, why));
            if a == Nonlinear || b == Nonlinear {
                return Nonlinear;
            }
            match op {
                BinOp::Add | BinOp::Sub => match (a, b) {
                    (Const, Const) => Const,
                    (Linear, Linear) => Linear,
                    _ => nl("a term that depends on `x` is added to one that does not (affine, not linear)".into(), why),
                },
                BinOp::Mul => match (a, b) {
                    (Const, d) | (d, Const) => d,
                    _ => nl("two values that depend on `x` are multiplied".into(), why),
                },
                BinOp::Div => match b {
                    Const => a,
                    _ => nl("a value is divided by one that depends on `x`".into(), why),
                },
                BinOp::Pow => match (a, b) {
                    (Const, Const) => Const,
                    (Linear, Const) if matches!(rhs.kind, ExprKind::Num(v) if v == 1.0) => Linear,
                    _ => nl("a value that depends on `x` is raised to a power".into(), why),
                },
                BinOp::Min | BinOp::Max => match (a, b) {
                    (Const, Const) => Const,
                    _ => nl("`min`/`max` of a value that depends on `x`".into(), why),
                },
            }
        }
        ExprKind::MatMul { lhs, rhs, .. } => {
            let (a, b) = (degree(lhs, lets, why), degree(rhs, lets, why));
            match (a, b) {
                (Nonlinear, _) | (_, Nonlinear) => Nonlinear,
                (Const, d) | (d, Const) => d,
                _ => nl("two values that depend on `x` are contracted with `@`".into(), why),
            }
        }
        ExprKind::Einsum { args, .. } => {
            let mut lin = 0;
            for a in args {
                match degree(a, lets, why) {
                    Nonlinear => return Nonlinear,
                    Linear => lin += 1,
                    Const => {}
                }
            }
            match lin {
                0 => Const,
                1 => Linear,
                _ => nl("einsum of several values that depend on `x`".into(), why),
            }
        }
    }
}

fn unary_name(f: UnaryFn) -> &'static str {
    match f {
        UnaryFn::Neg => "-",
        UnaryFn::Sqrt => "sqrt",
        UnaryFn::Abs => "abs",
        UnaryFn::Exp => "exp",
        UnaryFn::Log => "log",
        UnaryFn::Detach => "detach",
    }
}

/// Replace `x` by the identity, inlining lets that depend on `x`.
fn substitute(e: &Expr, lets: &BTreeMap<String, Expr>) -> Expr {
    let kind = match &e.kind {
        ExprKind::X => ExprKind::Eye,
        ExprKind::Let(n) if e.depends_on_x => {
            if let Some(l) = lets.get(n) {
                return substitute(l, lets);
            }
            ExprKind::Let(n.clone())
        }
        ExprKind::Unary { func, arg } => ExprKind::Unary { func: *func, arg: Box::new(substitute(arg, lets)) },
        ExprKind::Reduce { func, arg, over, eps } => {
            ExprKind::Reduce { func: *func, arg: Box::new(substitute(arg, lets)), over: over.clone(), eps: *eps }
        }
        ExprKind::Binary { op, lhs, rhs } => {
            ExprKind::Binary { op: *op, lhs: Box::new(substitute(lhs, lets)), rhs: Box::new(substitute(rhs, lets)) }
        }
        ExprKind::MatMul { lhs, rhs, contract } => {
            ExprKind::MatMul { lhs: Box::new(substitute(lhs, lets)), rhs: Box::new(substitute(rhs, lets)), contract: contract.clone() }
        }
        ExprKind::Einsum { inputs, output, args } => {
            ExprKind::Einsum { inputs: inputs.clone(), output: output.clone(), args: args.iter().map(|a| substitute(a, lets)).collect() }
        }
        k => k.clone(),
    };
    Expr { kind, dims: e.dims.clone(), depends_on_x: false, depends_on_trainable: e.depends_on_trainable }
}

/// Decide mergeability of an output and derive the merged weight.
/// `merge_sizes` are the per-target sizes with `tokens` = `in`.
pub fn analyse(out: &Output, lets: &BTreeMap<String, Expr>, merge_sizes: &[Sizes]) -> Mergeability {
    let e = out.expr();
    let mut why = None;
    let d = degree(e, lets, &mut why);
    let adds_base = matches!(out, Output::Delta(_));
    match d {
        Degree::Linear => {
            let merged = dims::reassociate(substitute(e, lets), merge_sizes);
            Mergeability { linear: true, merged: Some(merged), adds_base, reason: None }
        }
        Degree::Const => Mergeability { linear: false, merged: None, adds_base, reason: Some("the output does not depend on `x`".into()) },
        Degree::Nonlinear => Mergeability { linear: false, merged: None, adds_base, reason: why },
    }
}

/// Whether `e` is exactly zero at initialisation, given which tensors start
/// at zero. Conservative: `false` when unsure.
pub fn is_zero_at_init(e: &Expr, zero: &dyn Fn(&str) -> bool, lets: &BTreeMap<String, Expr>) -> bool {
    match &e.kind {
        ExprKind::Num(v) => *v == 0.0,
        ExprKind::Tensor(n) => zero(n),
        ExprKind::Let(n) => lets.get(n).is_some_and(|l| is_zero_at_init(l, zero, lets)),
        ExprKind::Unary { func, arg } => {
            matches!(func, UnaryFn::Neg | UnaryFn::Detach | UnaryFn::Sqrt | UnaryFn::Abs) && is_zero_at_init(arg, zero, lets)
        }
        ExprKind::Reduce { arg, eps, .. } => *eps == 0.0 && is_zero_at_init(arg, zero, lets),
        ExprKind::Binary { op, lhs, rhs } => match op {
            BinOp::Add | BinOp::Sub => is_zero_at_init(lhs, zero, lets) && is_zero_at_init(rhs, zero, lets),
            BinOp::Mul => is_zero_at_init(lhs, zero, lets) || is_zero_at_init(rhs, zero, lets),
            BinOp::Div | BinOp::Pow => is_zero_at_init(lhs, zero, lets),
            BinOp::Min | BinOp::Max => false,
        },
        ExprKind::MatMul { lhs, rhs, .. } => is_zero_at_init(lhs, zero, lets) || is_zero_at_init(rhs, zero, lets),
        ExprKind::Einsum { args, .. } => args.iter().any(|a| is_zero_at_init(a, zero, lets)),
        ExprKind::X | ExprKind::W | ExprKind::Eye => false,
    }
}
