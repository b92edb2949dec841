//! Constant folding of AST expressions: an expression enters with the
//! numbers known so far (scheme parameters); its value leaves, or the span
//! and reason it is not a constant. For defaults, `partial(k)` and
//! experiment settings.

use std::collections::BTreeMap;

use crate::lang::ast::*;

/// Evaluate a constant scalar expression over parameters (`params`).
pub fn eval_const(e: &AstExpr, params: &BTreeMap<String, f64>) -> Result<f64, (Span, String)> {
    let bad = |m: &str| Err((e.span, m.to_string()));
    match &e.kind {
        AstExprKind::Num(v) => Ok(*v),
        AstExprKind::Ident(n) => match params.get(n) {
            Some(v) => Ok(*v),
            None => bad(&format!("`{n}` is not a parameter declared before this point")),
        },
        AstExprKind::Neg(a) => Ok(-eval_const(a, params)?),
        AstExprKind::Bin { op, lhs, rhs } => {
            let (a, b) = (eval_const(lhs, params)?, eval_const(rhs, params)?);
            Ok(match op {
                AstBinOp::Add => a + b,
                AstBinOp::Sub => a - b,
                AstBinOp::Mul => a * b,
                AstBinOp::Div => a / b,
                AstBinOp::Pow => a.powf(b),
                AstBinOp::MatMul => return bad("`@` is not defined on numbers"),
            })
        }
        AstExprKind::Call { func, args } if args.iter().all(|a| a.name.is_none()) => {
            let vals: Result<Vec<f64>, _> = args.iter().map(|a| eval_const(&a.value, params)).collect();
            let v = vals?;
            Ok(match (func.name.as_str(), v.as_slice()) {
                ("sqrt", [a]) => a.sqrt(),
                ("abs", [a]) => a.abs(),
                ("exp", [a]) => a.exp(),
                ("log", [a]) => a.ln(),
                ("min", [a, b]) => a.min(*b),
                ("max", [a, b]) => a.max(*b),
                _ => return bad("not a constant function call"),
            })
        }
        _ => bad("not a constant number"),
    }
}
