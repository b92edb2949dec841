//! The scheme checker: name resolution, named-dimension inference, tying and
//! init rules, and instantiation of a scheme with concrete arguments on
//! concrete target shapes (producing an [`ir::SchemeInstance`]).

use std::collections::{BTreeMap, BTreeSet};

use super::ast::*;
use super::diagnostic::{Diagnostic, ErrorKind};
use super::dims::{self, broadcast, fmt_dims, matmul_dims, shared, Sizes};
use super::ir::{self, *};
use super::linearity;
use super::number;
use crate::lang::target::Target;

/// Names that cannot be declared as parameters, tensors or lets.
pub const RESERVED: [&str; 9] = ["x", "W", "I", "tokens", "in", "out", "delta", "y", "all"];

/// Functions of the formula language.
pub const FUNCTIONS: [&str; 10] = ["sqrt", "rms", "norm", "detach", "min", "max", "abs", "exp", "log", "einsum"];

/// Init rules usable after `init`.
pub const INITS: [&str; 6] = ["zeros", "ones", "normal", "uniform", "identity", "kaiming_uniform"];

/// A concrete argument given by a run, with the span that set it.
#[derive(Debug, Clone)]
pub struct GivenArg {
    pub value: f64,
    pub span: Span,
}

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

#[derive(Debug, Clone)]
struct TensorInfo {
    dims: Vec<Dim>,
    trainable: bool,
    zero: bool,
}

struct Scope<'a> {
    /// Names whose declaration had an error: uses are silent (no cascade).
    poisoned: &'a BTreeSet<String>,
    params: &'a BTreeMap<String, f64>,
    tensors: &'a BTreeMap<String, TensorInfo>,
    lets: &'a BTreeMap<String, Expr>,
    dim_names: &'a BTreeSet<String>,
    used: std::cell::RefCell<BTreeSet<String>>,
}

fn mk(kind: ExprKind, dims: Vec<Dim>, x: bool, t: bool) -> Expr {
    Expr { kind, dims, depends_on_x: x, depends_on_trainable: t }
}

fn num(v: f64) -> Expr {
    mk(ExprKind::Num(v), vec![], false, false)
}

fn as_num(e: &Expr) -> Option<f64> {
    if let ExprKind::Num(v) = e.kind { Some(v) } else { None }
}

/// Fold `op` over two numbers.
fn fold_bin(op: BinOp, a: f64, b: f64) -> f64 {
    match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div => a / b,
        BinOp::Pow => a.powf(b),
        BinOp::Min => a.min(b),
        BinOp::Max => a.max(b),
    }
}

fn fold_un(f: UnaryFn, a: f64) -> f64 {
    match f {
        UnaryFn::Neg => -a,
        UnaryFn::Sqrt => a.sqrt(),
        UnaryFn::Abs => a.abs(),
        UnaryFn::Exp => a.exp(),
        UnaryFn::Log => a.ln(),
        UnaryFn::Detach => a,
    }
}

impl Scope<'_> {
    /// Type an expression of the formula language.
    fn ty(&self, e: &AstExpr, d: &mut Vec<Diagnostic>) -> Option<Expr> {
        match &e.kind {
            AstExprKind::Num(v) => Some(num(*v)),
            AstExprKind::Str(_) => {
                d.push(Diagnostic::error(ErrorKind::BadCall("a string is not a value here".into()), e.span));
                None
            }
            AstExprKind::List(_) => {
                d.push(Diagnostic::error(
                    ErrorKind::BadCall("a list is only allowed as a run argument (a sweep)".into()),
                    e.span,
                ));
                None
            }
            AstExprKind::Ident(n) => self.ident(n, e.span, d),
            AstExprKind::Neg(a) => {
                let a = self.ty(a, d)?;
                Some(self.unary(UnaryFn::Neg, a))
            }
            AstExprKind::Bin { op, lhs, rhs } => {
                let (l, r) = (self.ty(lhs, d), self.ty(rhs, d));
                let (l, r) = (l?, r?);
                match op {
                    AstBinOp::MatMul => {
                        let s = shared(&l.dims, &r.dims);
                        match s.len() {
                            1 => {
                                let dims = matmul_dims(&l.dims, &r.dims, &s[0]);
                                let (x, t) = (l.depends_on_x || r.depends_on_x, l.depends_on_trainable || r.depends_on_trainable);
                                Some(mk(
                                    ExprKind::MatMul { lhs: Box::new(l), rhs: Box::new(r), contract: s[0].clone() },
                                    dims,
                                    x,
                                    t,
                                ))
                            }
                            0 => {
                                d.push(
                                    Diagnostic::error(
                                        ErrorKind::MatMulNoSharedDim { lhs: fmt_dims(&l.dims), rhs: fmt_dims(&r.dims) },
                                        lhs.span,
                                    )
                                    .label(format!("this has dims {}", fmt_dims(&l.dims)))
                                    .with(rhs.span, format!("this has dims {}", fmt_dims(&r.dims))),
                                );
                                None
                            }
                            _ => {
                                d.push(
                                    Diagnostic::error(
                                        ErrorKind::MatMulAmbiguous { shared: s.join(", ") },
                                        lhs.span,
                                    )
                                    .label(format!("this has dims {}", fmt_dims(&l.dims)))
                                    .with(rhs.span, format!("this has dims {}", fmt_dims(&r.dims)))
                                    .note("use einsum(\"…\", a, b) to say which dimensions to contract"),
                                );
                                None
                            }
                        }
                    }
                    AstBinOp::Pow => {
                        if !r.dims.is_empty() {
                            d.push(
                                Diagnostic::error(ErrorKind::NonScalarExponent(fmt_dims(&r.dims)), rhs.span)
                                    .label(format!("this has dims {}", fmt_dims(&r.dims))),
                            );
                            return None;
                        }
                        Some(self.binary(BinOp::Pow, l, r))
                    }
                    _ => {
                        let bop = match op {
                            AstBinOp::Add => BinOp::Add,
                            AstBinOp::Sub => BinOp::Sub,
                            AstBinOp::Mul => BinOp::Mul,
                            _ => BinOp::Div,
                        };
                        self.broadcast_bin(bop, op.symbol(), l, r, lhs.span, rhs.span, d)
                    }
                }
            }
            AstExprKind::Call { func, args } => self.call(func, args, e.span, d),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn broadcast_bin(
        &self,
        op: BinOp,
        sym: &'static str,
        l: Expr,
        r: Expr,
        ls: Span,
        rs: Span,
        d: &mut Vec<Diagnostic>,
    ) -> Option<Expr> {
        if broadcast(&l.dims, &r.dims).is_none() {
            let mut diag = Diagnostic::error(
                ErrorKind::BroadcastMismatch { op: sym, lhs: fmt_dims(&l.dims), rhs: fmt_dims(&r.dims) },
                rs,
            )
            .label(format!("this has dims {}", fmt_dims(&r.dims)))
            .with(ls, format!("this has dims {}", fmt_dims(&l.dims)));
            if r.dims.iter().any(|x| x == "out") && l.dims.iter().any(|x| x != "out" && x != TOKENS) {
                diag = diag.note("a tensor over `out` scales the output: apply it after the last `@`");
            } else {
                diag = diag.note("one operand's dimensions must contain the other's");
            }
            d.push(diag);
            return None;
        }
        Some(self.binary(op, l, r))
    }

    fn binary(&self, op: BinOp, l: Expr, r: Expr) -> Expr {
        if let (Some(a), Some(b)) = (as_num(&l), as_num(&r)) {
            return num(fold_bin(op, a, b));
        }
        // Multiplying or dividing by one changes nothing but the dims (which
        // a scalar does not contribute).
        match (op, as_num(&l), as_num(&r)) {
            (BinOp::Mul, Some(1.0), _) => return r,
            (BinOp::Mul | BinOp::Div | BinOp::Pow, _, Some(1.0)) => return l,
            _ => {}
        }
        let dims = if op == BinOp::Pow { l.dims.clone() } else { broadcast(&l.dims, &r.dims).unwrap_or_default() };
        let (x, t) = (l.depends_on_x || r.depends_on_x, l.depends_on_trainable || r.depends_on_trainable);
        mk(ExprKind::Binary { op, lhs: Box::new(l), rhs: Box::new(r) }, dims, x, t)
    }

    fn unary(&self, f: UnaryFn, a: Expr) -> Expr {
        if let Some(v) = as_num(&a) {
            return num(fold_un(f, v));
        }
        let (dims, x, t) = (a.dims.clone(), a.depends_on_x, a.depends_on_trainable);
        mk(ExprKind::Unary { func: f, arg: Box::new(a) }, dims, x, t)
    }

    fn ident(&self, n: &str, span: Span, d: &mut Vec<Diagnostic>) -> Option<Expr> {
        match n {
            "x" => return Some(mk(ExprKind::X, vec![TOKENS.into(), "in".into()], true, false)),
            "W" => return Some(mk(ExprKind::W, vec!["in".into(), "out".into()], false, false)),
            _ => {}
        }
        if let Some(v) = self.params.get(n) {
            return Some(num(*v));
        }
        if let Some(t) = self.tensors.get(n) {
            self.used.borrow_mut().insert(n.to_string());
            return Some(mk(ExprKind::Tensor(n.into()), t.dims.clone(), false, t.trainable));
        }
        if let Some(l) = self.lets.get(n) {
            self.used.borrow_mut().insert(n.to_string());
            return Some(mk(ExprKind::Let(n.into()), l.dims.clone(), l.depends_on_x, l.depends_on_trainable));
        }
        if self.poisoned.contains(n) {
            return None;
        }
        let mut diag = Diagnostic::error(ErrorKind::UnknownName(n.into()), span).label("not declared in this scheme");
        let names = ["x", "W"]
            .into_iter()
            .chain(self.params.keys().map(String::as_str))
            .chain(self.tensors.keys().map(String::as_str))
            .chain(self.lets.keys().map(String::as_str));
        if let Some(h) = super::diagnostic::did_you_mean(n, names) {
            diag = diag.note(h);
        }
        if self.dim_names.contains(n) || n == TOKENS {
            diag = diag.note("dimension names are not values; declare a parameter to use a size in a formula");
        } else if INITS.contains(&n) {
            diag = diag.note(format!("`{n}` is an init rule; use it after `init` in a tensor declaration"));
        }
        d.push(diag);
        None
    }

    fn call(&self, func: &Ident, args: &[AstArg], span: Span, d: &mut Vec<Diagnostic>) -> Option<Expr> {
        let name = func.name.as_str();
        let positional: Vec<&AstArg> = args.iter().filter(|a| a.name.is_none()).collect();
        let named = |k: &str| args.iter().find(|a| a.name.as_ref().is_some_and(|n| n.name == k));
        let allowed: &[&str] = match name {
            "rms" | "norm" => &["over", "eps"],
            _ => &[],
        };
        for a in args {
            if let Some(n) = &a.name
                && !allowed.contains(&n.name.as_str())
            {
                d.push(
                    Diagnostic::error(ErrorKind::BadCall(format!("`{name}` has no argument `{}`", n.name)), n.span)
                        .label("unexpected argument"),
                );
                return None;
            }
        }
        let arity = |n: usize, d: &mut Vec<Diagnostic>| -> bool {
            if positional.len() != n {
                d.push(
                    Diagnostic::error(
                        ErrorKind::BadCall(format!(
                            "`{name}` takes {n} argument{}, found {}",
                            if n == 1 { "" } else { "s" },
                            positional.len()
                        )),
                        span,
                    )
                    .label("in this call"),
                );
                false
            } else {
                true
            }
        };
        match name {
            "sqrt" | "abs" | "exp" | "log" | "detach" => {
                if !arity(1, d) {
                    return None;
                }
                let a = self.ty(&positional[0].value, d)?;
                let f = match name {
                    "sqrt" => UnaryFn::Sqrt,
                    "abs" => UnaryFn::Abs,
                    "exp" => UnaryFn::Exp,
                    "log" => UnaryFn::Log,
                    _ => UnaryFn::Detach,
                };
                Some(self.unary(f, a))
            }
            "min" | "max" => {
                if !arity(2, d) {
                    return None;
                }
                let (l, r) = (self.ty(&positional[0].value, d), self.ty(&positional[1].value, d));
                let op = if name == "min" { BinOp::Min } else { BinOp::Max };
                self.broadcast_bin(op, if name == "min" { "min" } else { "max" }, l?, r?, positional[0].value.span, positional[1].value.span, d)
            }
            "rms" | "norm" => {
                if !arity(1, d) {
                    return None;
                }
                let a = self.ty(&positional[0].value, d)?;
                let over = match named("over") {
                    None => None,
                    Some(o) => match &o.value.kind {
                        AstExprKind::Ident(dim) => {
                            if !a.dims.contains(dim) {
                                d.push(
                                    Diagnostic::error(
                                        ErrorKind::ReduceMissingDim { dim: dim.clone(), dims: fmt_dims(&a.dims) },
                                        o.value.span,
                                    )
                                    .label("reduced here")
                                    .with(positional[0].value.span, format!("this has dims {}", fmt_dims(&a.dims))),
                                );
                                return None;
                            }
                            Some(dim.clone())
                        }
                        _ => {
                            d.push(
                                Diagnostic::error(ErrorKind::BadCall("`over:` takes a dimension name".into()), o.value.span)
                                    .label("expected a dimension name"),
                            );
                            return None;
                        }
                    },
                };
                let eps = match named("eps") {
                    None => 0.0,
                    Some(a) => match self.ty(&a.value, d).as_ref().and_then(as_num) {
                        Some(v) if v >= 0.0 => v,
                        _ => {
                            d.push(
                                Diagnostic::error(
                                    ErrorKind::NotAConstant("`eps:` must be a non-negative constant".into()),
                                    a.value.span,
                                )
                                .label("not a non-negative constant"),
                            );
                            return None;
                        }
                    },
                };
                let dims: Vec<Dim> = match &over {
                    Some(o) => a.dims.iter().filter(|x| *x != o).cloned().collect(),
                    None => vec![],
                };
                let (x, t) = (a.depends_on_x, a.depends_on_trainable);
                let f = if name == "rms" { ReduceFn::Rms } else { ReduceFn::Norm };
                Some(mk(ExprKind::Reduce { func: f, arg: Box::new(a), over, eps }, dims, x, t))
            }
            "einsum" => self.einsum(&positional, span, d),
            n if INITS.contains(&n) => {
                d.push(
                    Diagnostic::error(
                        ErrorKind::BadCall(format!("`{n}` is an init rule, not a function of the formula")),
                        func.span,
                    )
                    .label("only allowed after `init`"),
                );
                None
            }
            n => {
                let mut diag = Diagnostic::error(ErrorKind::UnknownFunction(n.into()), func.span).label("not a function");
                if let Some(h) = super::diagnostic::did_you_mean(n, FUNCTIONS) {
                    diag = diag.note(h);
                }
                d.push(diag.note(format!("functions are {}", FUNCTIONS.join(", "))));
                None
            }
        }
    }

    fn einsum(&self, pos: &[&AstArg], span: Span, d: &mut Vec<Diagnostic>) -> Option<Expr> {
        let err = |m: String, s: Span, d: &mut Vec<Diagnostic>| {
            d.push(Diagnostic::error(ErrorKind::Einsum(m), s).label("in this einsum"));
            None
        };
        let Some(first) = pos.first() else {
            return err("expects a spec string and operands".into(), span, d);
        };
        let AstExprKind::Str(spec) = &first.value.kind else {
            return err("the first argument must be a spec string like \"k in r, k -> in r\"".into(), first.value.span, d);
        };
        let Some((lhs, rhs)) = spec.split_once("->") else {
            return err(format!("spec `{spec}` has no `->`"), first.value.span, d);
        };
        let inputs: Vec<Vec<Dim>> =
            lhs.split(',').map(|p| p.split_whitespace().map(str::to_string).collect()).collect();
        let output: Vec<Dim> = rhs.split_whitespace().map(str::to_string).collect();
        if inputs.len() != pos.len() - 1 {
            return err(
                format!("the spec names {} operands but {} are given", inputs.len(), pos.len() - 1),
                span,
                d,
            );
        }
        let mut args = Vec::new();
        let mut ok = true;
        for (inp, a) in inputs.iter().zip(&pos[1..]) {
            let Some(e) = self.ty(&a.value, d) else {
                ok = false;
                continue;
            };
            let mut s1 = inp.clone();
            s1.sort();
            let mut s2 = e.dims.clone();
            s2.sort();
            if s1 != s2 {
                d.push(
                    Diagnostic::error(
                        ErrorKind::Einsum(format!(
                            "the spec says [{}] but the operand has dims {}",
                            inp.join(", "),
                            fmt_dims(&e.dims)
                        )),
                        a.value.span,
                    )
                    .label(format!("this has dims {}", fmt_dims(&e.dims)))
                    .with(first.value.span, "spec given here"),
                );
                ok = false;
            }
            args.push(e);
        }
        if !ok {
            return None;
        }
        let mut seen = BTreeSet::new();
        for o in &output {
            if !seen.insert(o) || !inputs.iter().any(|i| i.contains(o)) {
                return err(format!("output dimension `{o}` is repeated or not in any input"), first.value.span, d);
            }
        }
        let x = args.iter().any(|a| a.depends_on_x);
        let t = args.iter().any(|a| a.depends_on_trainable);
        Some(mk(ExprKind::Einsum { inputs, output: output.clone(), args }, output, x, t))
    }
}

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

/// Resolve the parameters of a scheme: run arguments over defaults.
/// Returns `None` (with diagnostics) when one cannot be determined.
pub fn resolve_params(
    s: &AstScheme,
    given: &BTreeMap<String, GivenArg>,
    call_span: Option<Span>,
    d: &mut Vec<Diagnostic>,
) -> Option<Vec<(String, f64)>> {
    let mut env = BTreeMap::new();
    let mut out = Vec::new();
    let mut ok = true;
    let mut seen: BTreeMap<&str, Span> = BTreeMap::new();
    for p in &s.params {
        if let Some(prev) = seen.insert(&p.name.name, p.name.span) {
            d.push(
                Diagnostic::error(ErrorKind::Duplicate { what: "parameter", name: p.name.name.clone() }, p.name.span)
                    .label("declared again here")
                    .with(prev, "first declared here"),
            );
            ok = false;
            continue;
        }
        if RESERVED.contains(&p.name.name.as_str()) {
            d.push(Diagnostic::error(ErrorKind::ReservedName(p.name.name.clone()), p.name.span).label("reserved name"));
            ok = false;
            continue;
        }
        let v = if let Some(g) = given.get(&p.name.name) {
            g.value
        } else if let Some(def) = &p.default {
            match eval_const(def, &env) {
                Ok(v) if v.is_finite() => v,
                Ok(_) => {
                    d.push(
                        Diagnostic::error(ErrorKind::NotANumber("the default is not finite".into()), def.span)
                            .label("evaluates to a non-finite number"),
                    );
                    ok = false;
                    continue;
                }
                Err((sp, m)) => {
                    d.push(Diagnostic::error(ErrorKind::NotAConstant(m), sp).label("in this default"));
                    ok = false;
                    continue;
                }
            }
        } else {
            let sp = call_span.unwrap_or(s.name.span);
            d.push(
                Diagnostic::error(ErrorKind::MissingArgument(p.name.name.clone()), sp)
                    .label("needs a value")
                    .with(p.name.span, "parameter declared here"),
            );
            ok = false;
            continue;
        };
        env.insert(p.name.name.clone(), v);
        out.push((p.name.name.clone(), v));
    }
    ok.then_some(out)
}

/// Parse an init rule (not `basis/mix`).
fn init_rule(e: &AstExpr, scope: &Scope, d: &mut Vec<Diagnostic>) -> Option<(Init, Span)> {
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

fn init_is_zero(i: &Init) -> bool {
    matches!(i, Init::Zeros | Init::Constant(0.0))
}

/// Everything needed to instantiate a scheme once.
pub struct InstantiateCtx<'a> {
    pub scheme: &'a AstScheme,
    pub source_text: &'a str,
    pub given: &'a BTreeMap<String, GivenArg>,
    pub call_span: Option<Span>,
    pub targets: &'a [TargetSlot],
    /// Report scheme-level warnings (not-mergeable, identity at init, unused).
    pub warn: bool,
}

/// Instantiate (and check) a scheme. Diagnostics go to `d`; `None` when
/// an error prevents building the instance.
pub fn instantiate(cx: &InstantiateCtx, d: &mut Vec<Diagnostic>) -> Option<SchemeInstance> {
    let s = cx.scheme;
    let start_errors = d.iter().filter(|x| x.is_error()).count();
    let params_v = resolve_params(s, cx.given, cx.call_span, d)?;
    let params: BTreeMap<String, f64> = params_v.iter().cloned().collect();

    // Declared names.
    let mut declared: BTreeMap<String, Span> = BTreeMap::new();
    for p in &s.params {
        declared.entry(p.name.name.clone()).or_insert(p.name.span);
    }
    let mut dim_names: BTreeSet<String> = ["in".to_string(), "out".to_string()].into();
    for p in &s.params {
        dim_names.insert(p.name.name.clone());
    }

    let mut tensors: BTreeMap<String, TensorInfo> = BTreeMap::new();
    let mut tensor_order: Vec<&AstTensor> = Vec::new();
    let mut lets: BTreeMap<String, Expr> = BTreeMap::new();
    let mut let_list: Vec<LetBinding> = Vec::new();
    let mut let_spans: BTreeMap<String, Span> = BTreeMap::new();
    let mut output: Option<(&AstOutput, Option<Expr>)> = None;
    let mut decls: Vec<TensorDecl> = Vec::new();
    let mut init_spans: BTreeMap<String, Span> = BTreeMap::new();
    let mut used: BTreeSet<String> = BTreeSet::new();
    let mut poisoned: BTreeSet<String> = BTreeSet::new();

    let check_name = |n: &Ident, what: &'static str, declared: &mut BTreeMap<String, Span>, d: &mut Vec<Diagnostic>| -> bool {
        if RESERVED.contains(&n.name.as_str()) {
            d.push(Diagnostic::error(ErrorKind::ReservedName(n.name.clone()), n.span).label("reserved name"));
            return false;
        }
        if let Some(prev) = declared.get(&n.name) {
            d.push(
                Diagnostic::error(ErrorKind::Duplicate { what, name: n.name.clone() }, n.span)
                    .label("declared again here")
                    .with(*prev, "first declared here"),
            );
            return false;
        }
        declared.insert(n.name.clone(), n.span);
        true
    };

    // Sizes of the scheme's own dims (validated when used in a declaration).
    let dim_value = |name: &str| params.get(name).copied();

    for item in &s.items {
        match item {
            SchemeItem::Tensor(t) => {
                if !check_name(&t.name, "tensor", &mut declared, d) {
                    if RESERVED.contains(&t.name.name.as_str()) {
                        poisoned.insert(t.name.name.clone());
                    }
                    continue;
                }
                let mut ok = true;
                let mut dims: Vec<Dim> = Vec::new();
                for di in &t.dims {
                    if dims.contains(&di.name) {
                        d.push(
                            Diagnostic::error(ErrorKind::RepeatedDim(di.name.clone()), di.span)
                                .label("repeated")
                                .with(t.dims_span, "in this shape"),
                        );
                        ok = false;
                        continue;
                    }
                    if !dim_names.contains(&di.name) {
                        let mut diag = Diagnostic::error(ErrorKind::UnknownDim(di.name.clone()), di.span)
                            .label("not `in`, `out` or a parameter of this scheme");
                        if let Some(h) = super::diagnostic::did_you_mean(&di.name, dim_names.iter().map(String::as_str)) {
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
                            let mut diag = Diagnostic::error(
                                ErrorKind::DimNotPositiveInteger { dim: di.name.clone(), value: number::plain(v) },
                                di.span,
                            )
                            .label("used as a dimension here");
                            if let Some(g) = cx.given.get(&di.name) {
                                diag = diag.with(g.span, "value given here");
                            }
                            d.push(diag);
                            ok = false;
                            continue;
                        }
                    }
                    dims.push(di.name.clone());
                }
                // Tying.
                let tying = match &t.tying {
                    AstTying::PerLayer => Tying::PerLayer,
                    AstTying::Tied => Tying::Tied,
                    AstTying::Partial(k) => {
                        let mut diag = None;
                        let kv = match eval_const(k, &params) {
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
                            let mut dg = Diagnostic::error(
                                ErrorKind::PartialK(format!("k must be an integer ≥ 1, but it is {}", number::plain(v))),
                                k.span,
                            )
                            .label("the number of basis tensors");
                            if let AstExprKind::Ident(n) = &k.kind
                                && let Some(g) = cx.given.get(n)
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
                                let layers = cx.targets.iter().map(|t| t.layers.len()).min().unwrap_or(0);
                                if layers > 0 && k >= layers {
                                    d.push(
                                        Diagnostic::error(ErrorKind::PartialCoversLayers { k, layers }, k_span(&t.tying))
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
                // Register the tensor before the init so errors can refer to it.
                if !ok {
                    poisoned.insert(t.name.name.clone());
                    continue;
                }
                let scope = Scope {
                    poisoned: &poisoned,
                    params: &params,
                    tensors: &BTreeMap::new(),
                    lets: &BTreeMap::new(),
                    dim_names: &dim_names,
                    used: Default::default(),
                };
                let init = match (&t.init, tying) {
                    (None, _) => {
                        d.push(
                            Diagnostic::error(ErrorKind::InitKind(format!("tensor `{}` has no `init`", t.name.name)), t.name.span)
                                .label("declared without an init")
                                .note("add e.g. `init zeros` or `init normal(0, 1 / gamma)`"),
                        );
                        ok = false;
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
                        ok = false;
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
                        ok = false;
                        None
                    }
                    (Some(AstInit::Expr(e)), _) => init_rule(e, &scope, d).map(|(i, sp)| (TensorInit::Plain(i), sp)),
                    (Some(AstInit::BasisMix { basis, mix }), _) => {
                        let b = init_rule(basis, &scope, d);
                        let m = init_rule(mix, &scope, d);
                        match (b, m) {
                            (Some((b, bs)), Some((m, ms))) => Some((TensorInit::Partial { basis: b, mix: m }, bs.to(ms))),
                            _ => None,
                        }
                    }
                };
                let Some((init, ispan)) = init else {
                    poisoned.insert(t.name.name.clone());
                    continue;
                };
                // Validate expression inits.
                let parts: Vec<&Init> = match &init {
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
                                d.push(
                                    Diagnostic::error(ErrorKind::InitDependency("it uses the input `x`".into()), ispan)
                                        .label("uses `x`"),
                                );
                                ok = false;
                            } else if !dims::subset(&x.dims, &dims) {
                                d.push(
                                    Diagnostic::error(
                                        ErrorKind::InitShape(format!(
                                            "the init has dims {} but the tensor has dims {}",
                                            fmt_dims(&x.dims),
                                            fmt_dims(&dims)
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
                            let square = tdims == 2
                                && cx.targets.iter().all(|tg| size_of(&dims[0], tg, &params) == size_of(&dims[1], tg, &params));
                            if !square {
                                d.push(
                                    Diagnostic::error(
                                        ErrorKind::InitShape("`identity` needs exactly two dimensions of equal size".into()),
                                        ispan,
                                    )
                                    .label("identity init")
                                    .with(t.dims_span, format!("dims {}", fmt_dims(&dims))),
                                );
                                ok = false;
                            }
                        }
                        _ => {}
                    }
                }
                // Across-module groups.
                let groups = match across_groups(t, &dims, &params, cx.targets, d) {
                    Some(g) => g,
                    None => {
                        ok = false;
                        vec![]
                    }
                };
                if !ok {
                    poisoned.insert(t.name.name.clone());
                    continue;
                }
                let zero = match &init {
                    TensorInit::Plain(i) => init_is_zero(i),
                    TensorInit::Partial { basis, mix } => init_is_zero(basis) || init_is_zero(mix),
                };
                tensors.insert(t.name.name.clone(), TensorInfo { dims: dims.clone(), trainable: !t.frozen, zero });
                init_spans.insert(t.name.name.clone(), ispan);
                tensor_order.push(t);
                decls.push(TensorDecl { name: t.name.name.clone(), dims, tying, groups, init, trainable: !t.frozen });
            }
            SchemeItem::Let(l) => {
                if !check_name(&l.name, "let binding", &mut declared, d) {
                    if RESERVED.contains(&l.name.name.as_str()) {
                        poisoned.insert(l.name.name.clone());
                    }
                    continue;
                }
                let scope = Scope { poisoned: &poisoned, params: &params, tensors: &tensors, lets: &lets, dim_names: &dim_names, used: Default::default() };
                let e = scope.ty(&l.value, d);
                used.extend(scope.used.into_inner());
                if e.is_none() {
                    poisoned.insert(l.name.name.clone());
                }
                if let Some(e) = e {
                    let constant = !e.depends_on_x && !e.depends_on_trainable;
                    lets.insert(l.name.name.clone(), e.clone());
                    let_spans.insert(l.name.name.clone(), l.name.span);
                    let_list.push(LetBinding { name: l.name.name.clone(), expr: e, constant });
                }
            }
            SchemeItem::Output(o) => {
                if let Some((prev, _)) = &output {
                    d.push(
                        Diagnostic::error(ErrorKind::DuplicateOutput, o.span)
                            .label("second output")
                            .with(prev.span, "first output here"),
                    );
                    continue;
                }
                let scope = Scope { poisoned: &poisoned, params: &params, tensors: &tensors, lets: &lets, dim_names: &dim_names, used: Default::default() };
                let e = scope.ty(&o.value, d);
                used.extend(scope.used.into_inner());
                output = Some((o, e));
            }
        }
    }

    let Some((out_ast, out_expr)) = output else {
        d.push(Diagnostic::error(ErrorKind::MissingOutput(s.name.name.clone()), s.name.span).label("declared here"));
        return None;
    };
    let out_expr = out_expr?;
    let want = [TOKENS.to_string(), "out".to_string()];
    if out_expr.dims.len() != 2 || !dims::subset(&want, &out_expr.dims) {
        d.push(
            Diagnostic::error(
                ErrorKind::OutputDims { expected: fmt_dims(&want), found: fmt_dims(&out_expr.dims) },
                out_ast.value.span,
            )
            .label(format!("this has dims {}", fmt_dims(&out_expr.dims))),
        );
        return None;
    }
    if d.iter().filter(|x| x.is_error()).count() > start_errors {
        return None;
    }

    // Per-target sizes.
    let mut tinst = Vec::new();
    let mut size_sets = Vec::new();
    for tg in cx.targets {
        let mut sizes = BTreeMap::new();
        sizes.insert("in".to_string(), tg.in_dim);
        sizes.insert("out".to_string(), tg.out_dim);
        for dd in &decls {
            for x in &dd.dims {
                if let Some(v) = size_of(x, tg, &params) {
                    sizes.insert(x.clone(), v);
                }
            }
        }
        let mut with_tokens: Sizes = sizes.clone();
        with_tokens.insert(TOKENS.into(), NOMINAL_TOKENS);
        size_sets.push(with_tokens);
        tinst.push((tg, sizes));
    }

    // Contraction order.
    let out_expr = dims::reassociate(out_expr, &size_sets);
    let let_list: Vec<LetBinding> = let_list
        .into_iter()
        .map(|l| LetBinding { expr: dims::reassociate(l.expr, &size_sets), ..l })
        .collect();
    let lets_map: BTreeMap<String, Expr> = let_list.iter().map(|l| (l.name.clone(), l.expr.clone())).collect();

    let output = match out_ast.kind {
        OutputKind::Delta => Output::Delta(out_expr),
        OutputKind::Y => Output::Y(out_expr),
    };

    // Mergeability.
    let merge_sizes: Vec<Sizes> = size_sets
        .iter()
        .map(|s| {
            let mut s = s.clone();
            s.insert(TOKENS.into(), *s.get("in").unwrap_or(&1));
            s
        })
        .collect();
    let mergeability = linearity::analyse(&output, &lets_map, &merge_sizes);
    if cx.warn && !mergeability.linear {
        d.push(
            Diagnostic::error(
                ErrorKind::NotMergeable(mergeability.reason.clone().unwrap_or_default()),
                out_ast.value.span,
            )
            .label("not linear in `x`")
            .note("the adapter cannot be baked into the base weights; it costs extra work at inference"),
        );
    }

    // Identity at init.
    if cx.warn {
        let starts_at_identity = match &output {
            Output::Delta(e) => linearity::is_zero_at_init(e, &|n| tensors.get(n).is_some_and(|t| t.zero), &lets_map),
            Output::Y(_) => tensors.values().any(|t| t.trainable && t.zero),
        };
        if !starts_at_identity {
            let mut diag = Diagnostic::error(ErrorKind::NotIdentityAtInit(s.name.name.clone()), out_ast.span)
                .label("this is not zero at initialisation");
            for (n, sp) in &init_spans {
                if tensors.get(n).is_some_and(|t| t.trainable) {
                    diag = diag.with(*sp, format!("`{n}` starts non-zero"));
                }
            }
            d.push(diag.note("zero-initialise one factor (e.g. `init zeros`) so training starts from the base model"));
        }
        for t in &tensor_order {
            if !used.contains(&t.name.name) {
                d.push(
                    Diagnostic::error(ErrorKind::Unused(format!("tensor `{}` is never used", t.name.name)), t.name.span)
                        .label("declared here")
                        .note("it is still stored and counted"),
                );
            }
        }
        for (n, sp) in &let_spans {
            if !used.contains(n) {
                d.push(
                    Diagnostic::error(ErrorKind::Unused(format!("`let {n}` is never used")), *sp).label("declared here"),
                );
            }
        }
    }

    // Storage and parameter counts; FLOPs.
    let storage = storage(&decls, cx.targets, &params);
    let trainable_params = storage.iter().filter(|s| s.trainable).fold(0u64, |a, s| a.saturating_add(s.numel));
    let targets = tinst
        .into_iter()
        .zip(&size_sets)
        .map(|((tg, sizes), with_tokens)| {
            let (ft, fs) = dims::flops(output.expr(), with_tokens, &lets_map);
            TargetInstance { target: tg.target, layers: tg.layers.clone(), sizes, flops_per_token: ft, flops_per_step: fs }
        })
        .collect();

    let source = cx.source_text.get(s.span.start..s.span.end).unwrap_or("").to_string();
    Some(SchemeInstance {
        name: s.name.name.clone(),
        source,
        params: params_v.into_iter().map(|(name, value)| ir::Arg { name, value }).collect(),
        tensors: decls,
        lets: let_list,
        output,
        mergeability,
        targets,
        storage,
        trainable_params,
    })
}

/// Stored tensors of a scheme on the given targets.
pub fn storage(decls: &[TensorDecl], targets: &[TargetSlot], params: &BTreeMap<String, f64>) -> Vec<ParamStorage> {
    let mut out = Vec::new();
    for t in decls {
        for g in &t.groups {
            let Some(slot) = targets.iter().find(|s| s.target == g[0]) else { continue };
            let shape: Vec<usize> = t
                .dims
                .iter()
                .map(|d| match d.as_str() {
                    "in" => slot.in_dim,
                    "out" => slot.out_dim,
                    p => params.get(p).map(|v| *v as usize).unwrap_or(0),
                })
                .collect();
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


fn k_span(t: &AstTying) -> Span {
    match t {
        AstTying::Partial(k) => k.span,
        _ => Span::new(0, 0, 0),
    }
}

/// Size of a named dim for one target.
fn size_of(dim: &str, tg: &TargetSlot, params: &BTreeMap<String, f64>) -> Option<usize> {
    match dim {
        "in" => Some(tg.in_dim),
        "out" => Some(tg.out_dim),
        p => params.get(p).map(|v| *v as usize),
    }
}

/// Resolve `across (…)` into sharing groups over the adapted targets.
fn across_groups(
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
                let shape = |s: &TargetSlot| -> Vec<usize> { dims.iter().filter_map(|x| size_of(x, s, params)).collect() };
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
