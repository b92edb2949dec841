//! Typing formulas: an AST expression enters with the names declared so far
//! (parameters, tensors, lets); an IR [`Expr`] leaves, every node carrying
//! its named dims (inferred by name: `@` contracts the one dim both sides
//! share, elementwise operations broadcast) and whether it depends on `x`
//! and on trainable tensors, scalar constants folded. Errors are
//! diagnostics; a name whose declaration failed is silent (no cascade).

use std::collections::{BTreeMap, BTreeSet};

use super::names::{FUNCTIONS, INITS};
use crate::lang::ast::*;
use crate::lang::diagnostic::{Diagnostic, ErrorKind};
use crate::lang::dims::{broadcast, fmt_dims, matmul_dims, shared};
use crate::lang::ir::*;

/// What formulas and the init-time warnings see of a declared tensor.
#[derive(Debug, Clone)]
pub(super) struct TensorInfo {
    pub(super) dims: Vec<Dim>,
    pub(super) trainable: bool,
    /// Starts at zero (its init, or a partial tensor's basis or mix, is zero).
    pub(super) zero: bool,
}

/// The names a formula may use at one point of the scheme, and the tensors
/// and lets it did use.
pub(super) struct Scope<'a> {
    /// Names whose declaration had an error: uses are silent (no cascade).
    pub(super) poisoned: &'a BTreeSet<String>,
    pub(super) params: &'a BTreeMap<String, f64>,
    pub(super) tensors: &'a BTreeMap<String, TensorInfo>,
    pub(super) lets: &'a BTreeMap<String, Expr>,
    /// Dimension names: not values, but using one gets a note saying so.
    pub(super) dim_names: &'a BTreeSet<String>,
    /// Tensors and lets referred to while typing.
    pub(super) used: std::cell::RefCell<BTreeSet<String>>,
}

/// An IR node from its kind, dims and dependence on `x` and trainables.
fn expr_node(kind: ExprKind, dims: Vec<Dim>, x: bool, t: bool) -> Expr {
    Expr { kind, dims, depends_on_x: x, depends_on_trainable: t }
}

/// A scalar constant node.
fn constant_expr(v: f64) -> Expr {
    expr_node(ExprKind::Num(v), vec![], false, false)
}

/// The value of a scalar constant node.
pub(super) fn constant_value(e: &Expr) -> Option<f64> {
    if let ExprKind::Num(v) = e.kind { Some(v) } else { None }
}

/// Fold `op` over two numbers.
fn fold_binary(op: BinOp, a: f64, b: f64) -> f64 {
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

/// Fold `f` over a number.
fn fold_unary(f: UnaryFn, a: f64) -> f64 {
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
    pub(super) fn type_expr(&self, e: &AstExpr, d: &mut Vec<Diagnostic>) -> Option<Expr> {
        match &e.kind {
            AstExprKind::Num(v) => Some(constant_expr(*v)),
            AstExprKind::Str(_) => {
                d.push(Diagnostic::error(ErrorKind::BadCall("a string is not a value here".into()), e.span));
                None
            }
            AstExprKind::List(_) => {
                d.push(Diagnostic::error(ErrorKind::BadCall("a list is only allowed as a run argument (a sweep)".into()), e.span));
                None
            }
            AstExprKind::Ident(n) => self.ident(n, e.span, d),
            AstExprKind::Neg(a) => {
                let a = self.type_expr(a, d)?;
                Some(self.unary(UnaryFn::Neg, a))
            }
            AstExprKind::Bin { op, lhs, rhs } => {
                let (l, r) = (self.type_expr(lhs, d), self.type_expr(rhs, d));
                let (l, r) = (l?, r?);
                match op {
                    AstBinOp::MatMul => {
                        let s = shared(&l.dims, &r.dims);
                        match s.len() {
                            1 => {
                                let dims = matmul_dims(&l.dims, &r.dims, &s[0]);
                                let (x, t) = (l.depends_on_x || r.depends_on_x, l.depends_on_trainable || r.depends_on_trainable);
                                Some(expr_node(ExprKind::MatMul { lhs: Box::new(l), rhs: Box::new(r), contract: s[0].clone() }, dims, x, t))
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
                                    Diagnostic::error(ErrorKind::MatMulAmbiguous { shared: s.join(", ") }, lhs.span)
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
                        self.broadcast_binary(bop, op.symbol(), l, r, lhs.span, rhs.span, d)
                    }
                }
            }
            AstExprKind::Call { func, args } => self.call(func, args, e.span, d),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn broadcast_binary(
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
            let mut diag = Diagnostic::error(ErrorKind::BroadcastMismatch { op: sym, lhs: fmt_dims(&l.dims), rhs: fmt_dims(&r.dims) }, rs)
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
        if let (Some(a), Some(b)) = (constant_value(&l), constant_value(&r)) {
            return constant_expr(fold_binary(op, a, b));
        }
        // Multiplying or dividing by one changes nothing but the dims (which
        // a scalar does not contribute).
        match (op, constant_value(&l), constant_value(&r)) {
            (BinOp::Mul, Some(1.0), _) => return r,
            (BinOp::Mul | BinOp::Div | BinOp::Pow, _, Some(1.0)) => return l,
            _ => {}
        }
        let dims = if op == BinOp::Pow { l.dims.clone() } else { broadcast(&l.dims, &r.dims).unwrap_or_default() };
        let (x, t) = (l.depends_on_x || r.depends_on_x, l.depends_on_trainable || r.depends_on_trainable);
        expr_node(ExprKind::Binary { op, lhs: Box::new(l), rhs: Box::new(r) }, dims, x, t)
    }

    fn unary(&self, f: UnaryFn, a: Expr) -> Expr {
        if let Some(v) = constant_value(&a) {
            return constant_expr(fold_unary(f, v));
        }
        let (dims, x, t) = (a.dims.clone(), a.depends_on_x, a.depends_on_trainable);
        expr_node(ExprKind::Unary { func: f, arg: Box::new(a) }, dims, x, t)
    }

    fn ident(&self, n: &str, span: Span, d: &mut Vec<Diagnostic>) -> Option<Expr> {
        match n {
            "x" => return Some(expr_node(ExprKind::X, vec![TOKENS.into(), "in".into()], true, false)),
            "W" => return Some(expr_node(ExprKind::W, vec!["in".into(), "out".into()], false, false)),
            _ => {}
        }
        if let Some(v) = self.params.get(n) {
            return Some(constant_expr(*v));
        }
        if let Some(t) = self.tensors.get(n) {
            self.used.borrow_mut().insert(n.to_string());
            return Some(expr_node(ExprKind::Tensor(n.into()), t.dims.clone(), false, t.trainable));
        }
        if let Some(l) = self.lets.get(n) {
            self.used.borrow_mut().insert(n.to_string());
            return Some(expr_node(ExprKind::Let(n.into()), l.dims.clone(), l.depends_on_x, l.depends_on_trainable));
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
        if let Some(h) = crate::lang::diagnostic::did_you_mean(n, names) {
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
                let a = self.type_expr(&positional[0].value, d)?;
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
                let (l, r) = (self.type_expr(&positional[0].value, d), self.type_expr(&positional[1].value, d));
                let op = if name == "min" { BinOp::Min } else { BinOp::Max };
                self.broadcast_binary(
                    op,
                    if name == "min" { "min" } else { "max" },
                    l?,
                    r?,
                    positional[0].value.span,
                    positional[1].value.span,
                    d,
                )
            }
            "rms" | "norm" => {
                if !arity(1, d) {
                    return None;
                }
                let a = self.type_expr(&positional[0].value, d)?;
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
                    Some(a) => match self.type_expr(&a.value, d).as_ref().and_then(constant_value) {
                        Some(v) if v >= 0.0 => v,
                        _ => {
                            d.push(
                                Diagnostic::error(ErrorKind::NotAConstant("`eps:` must be a non-negative constant".into()), a.value.span)
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
                Some(expr_node(ExprKind::Reduce { func: f, arg: Box::new(a), over, eps }, dims, x, t))
            }
            "einsum" => self.einsum(&positional, span, d),
            n if INITS.contains(&n) => {
                d.push(
                    Diagnostic::error(ErrorKind::BadCall(format!("`{n}` is an init rule, not a function of the formula")), func.span)
                        .label("only allowed after `init`"),
                );
                None
            }
            n => {
                let mut diag = Diagnostic::error(ErrorKind::UnknownFunction(n.into()), func.span).label("not a function");
                if let Some(h) = crate::lang::diagnostic::did_you_mean(n, FUNCTIONS) {
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
        let inputs: Vec<Vec<Dim>> = lhs.split(',').map(|p| p.split_whitespace().map(str::to_string).collect()).collect();
        let output: Vec<Dim> = rhs.split_whitespace().map(str::to_string).collect();
        if inputs.len() != pos.len() - 1 {
            return err(format!("the spec names {} operands but {} are given", inputs.len(), pos.len() - 1), span, d);
        }
        let mut args = Vec::new();
        let mut ok = true;
        for (inp, a) in inputs.iter().zip(&pos[1..]) {
            let Some(e) = self.type_expr(&a.value, d) else {
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
                        ErrorKind::Einsum(format!("the spec says [{}] but the operand has dims {}", inp.join(", "), fmt_dims(&e.dims))),
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
        Some(expr_node(ExprKind::Einsum { inputs, output: output.clone(), args }, output, x, t))
    }
}
