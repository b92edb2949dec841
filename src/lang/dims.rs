//! Named-dimension helpers: formatting, broadcasting, and the choice of
//! contraction order for `@` chains with its FLOP estimate.

use std::collections::BTreeMap;

use super::ir::{Dim, Expr, ExprKind, TOKENS};

/// `[tokens, in]`.
pub fn fmt_dims(d: &[Dim]) -> String {
    format!("[{}]", d.join(", "))
}

/// `a ⊆ b` as sets of names.
pub fn subset(a: &[Dim], b: &[Dim]) -> bool {
    a.iter().all(|x| b.contains(x))
}

/// The broadcast result of two operands, or `None` when neither operand's
/// dims contain the other's.
pub fn broadcast(a: &[Dim], b: &[Dim]) -> Option<Vec<Dim>> {
    if subset(b, a) {
        Some(a.to_vec())
    } else if subset(a, b) {
        Some(b.to_vec())
    } else {
        None
    }
}

/// Dims shared by both.
pub fn shared(a: &[Dim], b: &[Dim]) -> Vec<Dim> {
    a.iter().filter(|x| b.contains(x)).cloned().collect()
}

/// Result dims of `a @ b` contracting `c`.
pub fn matmul_dims(a: &[Dim], b: &[Dim], c: &str) -> Vec<Dim> {
    a.iter().chain(b.iter()).filter(|x| x.as_str() != c).cloned().collect()
}

/// Sizes used to cost an expression: every named dim, `tokens` included.
pub type Sizes = BTreeMap<Dim, usize>;

/// Element count of dims `d` under `s` (an unknown dim counts 1).
fn numel(d: &[Dim], s: &Sizes) -> f64 {
    d.iter().map(|x| *s.get(x).unwrap_or(&1) as f64).product()
}

/// Flatten a left- or right-nested `@` tree into its operands (in order).
fn flatten_chain(e: Expr, out: &mut Vec<Expr>) {
    match e.kind {
        ExprKind::MatMul { lhs, rhs, .. } => {
            flatten_chain(*lhs, out);
            flatten_chain(*rhs, out);
        }
        _ => out.push(e),
    }
}

/// Dims of `a @ b` and the dim it contracts, when they share exactly one.
fn contract_pair(a: &Expr, b: &Expr) -> Option<(Vec<Dim>, Dim)> {
    let s = shared(&a.dims, &b.dims);
    if s.len() != 1 {
        return None;
    }
    Some((matmul_dims(&a.dims, &b.dims, &s[0]), s[0].clone()))
}

/// Re-associate every `@` chain of `e` into the order with the least cost
/// summed over `size_sets` (one map per target; `tokens` included), keeping
/// the result's dims. Returns the rewritten tree.
pub fn reassociate(e: Expr, size_sets: &[Sizes]) -> Expr {
    let Expr { kind, dims, depends_on_x, depends_on_trainable } = e;
    let kind = match kind {
        ExprKind::MatMul { lhs, rhs, contract } => {
            let mut ops = Vec::new();
            flatten_chain(ExprKind::MatMul { lhs, rhs, contract }.into_expr(dims.clone(), depends_on_x, depends_on_trainable), &mut ops);
            let ops: Vec<Expr> = ops.into_iter().map(|o| reassociate(o, size_sets)).collect();
            match best_chain(&ops, size_sets) {
                Some(t) => return build_chain(&ops, &t, 0, ops.len() - 1),
                None => return left_assoc(ops),
            }
        }
        ExprKind::Unary { func, arg } => ExprKind::Unary { func, arg: Box::new(reassociate(*arg, size_sets)) },
        ExprKind::Binary { op, lhs, rhs } => {
            ExprKind::Binary { op, lhs: Box::new(reassociate(*lhs, size_sets)), rhs: Box::new(reassociate(*rhs, size_sets)) }
        }
        ExprKind::Reduce { func, arg, over, eps } => ExprKind::Reduce { func, arg: Box::new(reassociate(*arg, size_sets)), over, eps },
        ExprKind::Einsum { inputs, output, args } => {
            ExprKind::Einsum { inputs, output, args: args.into_iter().map(|a| reassociate(a, size_sets)).collect() }
        }
        k => k,
    };
    Expr { kind, dims, depends_on_x, depends_on_trainable }
}

impl ExprKind {
    fn into_expr(self, dims: Vec<Dim>, x: bool, t: bool) -> Expr {
        Expr { kind: self, dims, depends_on_x: x, depends_on_trainable: t }
    }
}

/// The node `a @ b` (contracting their shared dim).
fn matmul_node(a: Expr, b: Expr) -> Expr {
    let (dims, c) = contract_pair(&a, &b).unwrap_or_else(|| (matmul_dims(&a.dims, &b.dims, ""), String::new()));
    let x = a.depends_on_x || b.depends_on_x;
    let t = a.depends_on_trainable || b.depends_on_trainable;
    ExprKind::MatMul { lhs: Box::new(a), rhs: Box::new(b), contract: c }.into_expr(dims, x, t)
}

/// `((a @ b) @ c) @ …`, the order as written.
fn left_assoc(ops: Vec<Expr>) -> Expr {
    let mut it = ops.into_iter();
    let first = it.next().expect("non-empty chain");
    it.fold(first, matmul_node)
}

/// `split[i][j]`: where the optimal product of ops i..=j splits.
type Splits = Vec<Vec<usize>>;

/// The cheapest split points of a chain, keeping its contracted dims and result.
fn best_chain(ops: &[Expr], size_sets: &[Sizes]) -> Option<Splits> {
    let n = ops.len();
    // The contracted dims of the left-associated chain must be preserved.
    let mut acc = ops[0].clone();
    let mut contracted = Vec::new();
    for o in &ops[1..] {
        let (d, c) = contract_pair(&acc, o)?;
        contracted.push(c);
        acc = Expr { dims: d, ..o.clone() };
    }
    let final_dims = acc.dims;
    let mut dims: Vec<Vec<Option<Vec<Dim>>>> = vec![vec![None; n]; n];
    let mut cost = vec![vec![f64::INFINITY; n]; n];
    let mut split = vec![vec![0usize; n]; n];
    for i in 0..n {
        dims[i][i] = Some(ops[i].dims.clone());
        cost[i][i] = 0.0;
    }
    for len in 2..=n {
        for i in 0..=n - len {
            let j = i + len - 1;
            for k in i..j {
                let (Some(l), Some(r)) = (&dims[i][k], &dims[k + 1][j]) else { continue };
                let s = shared(l, r);
                if s.len() != 1 || !contracted.contains(&s[0]) {
                    continue;
                }
                let mut all = l.clone();
                for d in r {
                    if !all.contains(d) {
                        all.push(d.clone());
                    }
                }
                let here: f64 = size_sets.iter().map(|sz| 2.0 * numel(&all, sz)).sum();
                let c = cost[i][k] + cost[k + 1][j] + here;
                if c < cost[i][j] {
                    cost[i][j] = c;
                    split[i][j] = k;
                    dims[i][j] = Some(matmul_dims(l, r, &s[0]));
                }
            }
        }
    }
    let d = dims[0][n - 1].as_ref()?;
    if d.len() != final_dims.len() || !subset(d, &final_dims) {
        return None;
    }
    Some(split)
}

/// The product of `ops[i..=j]` split as `split` says.
fn build_chain(ops: &[Expr], split: &Splits, i: usize, j: usize) -> Expr {
    if i == j {
        return ops[i].clone();
    }
    let k = split[i][j];
    matmul_node(build_chain(ops, split, i, k), build_chain(ops, split, k + 1, j))
}

/// FLOP estimate of evaluating `e` once: `(per_token, per_step)`, where
/// per-token work is any node whose result carries `tokens` (divided by the
/// token count), and per-step work is the rest that depends on trainables.
/// Work that depends only on `W` and constants (folded once) is free.
/// `@` costs 2·(product of all dims involved); elementwise ops and
/// reductions cost one FLOP per entry.
pub fn flops(e: &Expr, sizes: &Sizes, lets: &BTreeMap<String, Expr>) -> (f64, f64) {
    let tokens = *sizes.get(TOKENS).unwrap_or(&1) as f64;
    let mut per_token = 0.0;
    let mut per_step = 0.0;
    let mut visit = |node: &Expr, here: f64| {
        if node.dims.iter().any(|d| d == TOKENS) || node.depends_on_x {
            per_token += here / tokens;
        } else if node.depends_on_trainable {
            per_step += here;
        }
    };
    walk_costs(e, sizes, &mut visit);
    // A let used in the output is computed once per evaluation, count it once.
    let mut used = Vec::new();
    collect_lets(e, &mut used);
    used.sort();
    used.dedup();
    for name in used {
        if let Some(le) = lets.get(&name) {
            let (t, s) = flops(le, sizes, lets);
            per_token += t;
            per_step += s;
        }
    }
    (per_token, per_step)
}

/// Names of the lets `e` uses (with repeats).
fn collect_lets(e: &Expr, out: &mut Vec<String>) {
    if let ExprKind::Let(n) = &e.kind {
        out.push(n.clone());
    }
    for c in children(e) {
        collect_lets(c, out);
    }
}

/// Direct children of a node.
pub fn children(e: &Expr) -> Vec<&Expr> {
    match &e.kind {
        ExprKind::Unary { arg, .. } | ExprKind::Reduce { arg, .. } => vec![arg],
        ExprKind::Binary { lhs, rhs, .. } | ExprKind::MatMul { lhs, rhs, .. } => vec![lhs, rhs],
        ExprKind::Einsum { args, .. } => args.iter().collect(),
        _ => vec![],
    }
}

/// Visit every node of `e` that costs FLOPs, with its cost.
fn walk_costs(e: &Expr, sizes: &Sizes, visit: &mut dyn FnMut(&Expr, f64)) {
    let here = match &e.kind {
        ExprKind::MatMul { lhs, rhs, .. } => {
            let mut all = lhs.dims.clone();
            for d in &rhs.dims {
                if !all.contains(d) {
                    all.push(d.clone());
                }
            }
            2.0 * numel(&all, sizes)
        }
        ExprKind::Unary { func: super::ir::UnaryFn::Detach, .. } => 0.0,
        ExprKind::Unary { .. } | ExprKind::Binary { .. } => numel(&e.dims, sizes),
        ExprKind::Reduce { arg, .. } => 2.0 * numel(&arg.dims, sizes),
        ExprKind::Einsum { args, .. } => {
            let mut all: Vec<Dim> = Vec::new();
            for a in args {
                for d in &a.dims {
                    if !all.contains(d) {
                        all.push(d.clone());
                    }
                }
            }
            2.0 * numel(&all, sizes)
        }
        _ => 0.0,
    };
    if here > 0.0 {
        visit(e, here);
    }
    for c in children(e) {
        walk_costs(c, sizes, visit);
    }
}
