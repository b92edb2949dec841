//! From the language's checked IR (`crate::lang::ir`) to the lowering's
//! [`Program`] and [`Site`]s.

use crate::lang::ir;

use super::LowerError;
use super::adapter::Site;
use super::program::{BinOp, Expr, Init, Output, Program, TensorDecl};

fn init(i: &ir::Init) -> Result<Init, LowerError> {
    i.try_map_expr(expr)
}

/// Convert one checked expression.
pub fn expr(e: &ir::Expr) -> Result<Expr, LowerError> {
    use ir::ExprKind as K;
    let b = |e: &ir::Expr| expr(e).map(Box::new);
    Ok(match &e.kind {
        K::X | K::Eye => Expr::X,
        K::W => Expr::W,
        K::Tensor(n) => Expr::Tensor(n.clone()),
        K::Let(n) => Expr::Let(n.clone()),
        K::Num(v) => Expr::Num(*v),
        K::Unary { func, arg } => {
            let a = b(arg)?;
            match func {
                ir::UnaryFn::Neg => Expr::Neg(a),
                ir::UnaryFn::Sqrt => Expr::Sqrt(a),
                ir::UnaryFn::Abs => Expr::Abs(a),
                ir::UnaryFn::Exp => Expr::Exp(a),
                ir::UnaryFn::Log => Expr::Log(a),
                ir::UnaryFn::Detach => Expr::Detach(a),
            }
        }
        K::Binary { op, lhs, rhs } => {
            let (l, r) = (b(lhs)?, b(rhs)?);
            match op {
                ir::BinOp::Add => Expr::Bin(BinOp::Add, l, r),
                ir::BinOp::Sub => Expr::Bin(BinOp::Sub, l, r),
                ir::BinOp::Mul => Expr::Bin(BinOp::Mul, l, r),
                ir::BinOp::Div => Expr::Bin(BinOp::Div, l, r),
                ir::BinOp::Min => Expr::Min(l, r),
                ir::BinOp::Max => Expr::Max(l, r),
                ir::BinOp::Pow => match *r {
                    Expr::Num(k) => Expr::Pow(l, k),
                    _ => {
                        return Err(LowerError::InitExpr { tensor: "^".into(), reason: "an exponent must be a constant number".into() });
                    }
                },
            }
        }
        K::MatMul { lhs, rhs, contract } => Expr::Matmul(b(lhs)?, b(rhs)?, Some(contract.clone())),
        K::Reduce { func, arg, over, eps } => match func {
            ir::ReduceFn::Rms => Expr::Rms { arg: b(arg)?, over: over.clone(), eps: *eps },
            ir::ReduceFn::Norm => Expr::Norm { arg: b(arg)?, over: over.clone(), eps: *eps },
        },
        K::Einsum { output, args, .. } => Expr::Einsum { args: args.iter().map(expr).collect::<Result<_, _>>()?, out: output.clone() },
    })
}

/// The lowering program of a checked scheme instance.
pub fn program(s: &ir::SchemeInstance) -> Result<Program, LowerError> {
    let mut dims = std::collections::BTreeMap::new();
    for t in &s.targets {
        for (k, v) in &t.sizes {
            if k != "in" && k != "out" {
                dims.insert(k.clone(), *v);
            }
        }
    }
    let tensors = s
        .tensors
        .iter()
        .map(|d| {
            let (init_, mix_init) = match &d.init {
                ir::TensorInit::Plain(i) => (init(i)?, None),
                ir::TensorInit::Partial { basis, mix } => (init(basis)?, Some(init(mix)?)),
            };
            Ok(TensorDecl {
                name: d.name.clone(),
                dims: d.dims.clone(),
                tying: d.tying,
                across: d.groups.iter().filter(|g| g.len() > 1).cloned().collect(),
                init: init_,
                mix_init,
                frozen: !d.trainable,
            })
        })
        .collect::<Result<Vec<_>, LowerError>>()?;
    let lets = s.lets.iter().map(|l| Ok((l.name.clone(), expr(&l.expr)?))).collect::<Result<Vec<_>, LowerError>>()?;
    let output = match &s.output {
        ir::Output::Delta(e) => Output::Delta(expr(e)?),
        ir::Output::Y(e) => Output::Y(expr(e)?),
    };
    Ok(Program { scheme: s.name.clone(), dims, tensors, lets, output, mergeable: s.mergeability.linear })
}

/// Every adapted (layer, target) of a scheme instance.
pub fn sites(s: &ir::SchemeInstance) -> Vec<Site> {
    let mut out = Vec::new();
    for t in &s.targets {
        let d_in = t.sizes.get("in").copied().unwrap_or(0);
        let d_out = t.sizes.get("out").copied().unwrap_or(0);
        for layer in t.layers.clone() {
            out.push(Site { layer, target: t.target, d_in, d_out });
        }
    }
    out.sort_by_key(|s| (s.layer, s.target));
    out
}
