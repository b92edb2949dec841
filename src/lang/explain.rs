//! `peftc explain`: the resolved IR in words — storage per tying mode, the
//! chosen contraction order with its FLOP estimate, and the merged weight.

use std::fmt::Write;

use super::ir::*;
use super::number::{significant, thousands};
use super::params::{arg_list, tying_name};

fn precedence(e: &Expr) -> u8 {
    match &e.kind {
        ExprKind::MatMul { lhs, rhs, .. } if lhs.kind == ExprKind::Eye => precedence(rhs),
        ExprKind::Binary { op: BinOp::Add | BinOp::Sub, .. } => 1,
        ExprKind::Binary { op: BinOp::Mul | BinOp::Div, .. } => 2,
        ExprKind::MatMul { .. } => 3,
        ExprKind::Unary { func: UnaryFn::Neg, .. } => 4,
        ExprKind::Num(v) if *v < 0.0 => 4,
        ExprKind::Binary { op: BinOp::Pow, .. } => 5,
        _ => 6,
    }
}

/// Print an expression; nested `@` are parenthesised to show the order.
pub fn fmt_expr(e: &Expr) -> String {
    let wrap = |c: &Expr, min: u8| {
        let s = fmt_expr(c);
        if precedence(c) < min { format!("({s})") } else { s }
    };
    match &e.kind {
        ExprKind::X => "x".into(),
        ExprKind::W => "W".into(),
        ExprKind::Eye => "I".into(),
        ExprKind::Tensor(n) | ExprKind::Let(n) => n.clone(),
        ExprKind::Num(v) => significant(*v),
        ExprKind::Unary { func, arg } => match func {
            UnaryFn::Neg => format!("-{}", wrap(arg, 5)),
            f => format!("{}({})", format!("{f:?}").to_lowercase(), fmt_expr(arg)),
        },
        ExprKind::Binary { op, lhs, rhs } => match op {
            BinOp::Min | BinOp::Max => format!("{}({}, {})", format!("{op:?}").to_lowercase(), fmt_expr(lhs), fmt_expr(rhs)),
            _ => {
                let (sym, p) = match op {
                    BinOp::Add => ("+", 1),
                    BinOp::Sub => ("-", 1),
                    BinOp::Mul => ("*", 2),
                    BinOp::Div => ("/", 2),
                    _ => ("^", 5),
                };
                let rmin = if matches!(op, BinOp::Sub | BinOp::Div | BinOp::Pow) { p + 1 } else { p };
                let lmin = if *op == BinOp::Pow { p + 1 } else { p };
                format!("{} {sym} {}", wrap(lhs, lmin), wrap(rhs, rmin))
            }
        },
        // `I @ T` over `in` is `T` (its `in` rows become the rows of W').
        ExprKind::MatMul { lhs, rhs, .. } if lhs.kind == ExprKind::Eye => fmt_expr(rhs),
        ExprKind::MatMul { lhs, rhs, .. } => format!("{} @ {}", wrap(lhs, 4), wrap(rhs, 4)),
        ExprKind::Reduce { func, arg, over, eps } => {
            let mut s = format!("{}({}", if *func == ReduceFn::Rms { "rms" } else { "norm" }, fmt_expr(arg));
            if let Some(o) = over {
                let _ = write!(s, ", over: {o}");
            }
            if *eps != 0.0 {
                let _ = write!(s, ", eps: {}", significant(*eps));
            }
            s.push(')');
            s
        }
        ExprKind::Einsum { inputs, output, args } => {
            let spec = format!("{} -> {}", inputs.iter().map(|i| i.join(" ")).collect::<Vec<_>>().join(", "), output.join(" "));
            let a: Vec<String> = args.iter().map(fmt_expr).collect();
            format!("einsum(\"{spec}\", {})", a.join(", "))
        }
    }
}

fn fmt_init(i: &Init) -> String {
    match i {
        Init::Zeros => "zeros".into(),
        Init::Ones => "ones".into(),
        Init::Constant(v) => significant(*v),
        Init::Normal { mean, std } => format!("normal({}, {})", significant(*mean), significant(*std)),
        Init::Uniform { low, high } => format!("uniform({}, {})", significant(*low), significant(*high)),
        Init::Identity => "identity".into(),
        Init::KaimingUniform { a } => format!("kaiming_uniform(a: {})", significant(*a)),
        Init::Expr(e) => fmt_expr(e),
    }
}

/// Explain one instance.
pub fn instance(inst: &SchemeInstance, title: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{title} = {}({})", inst.name, arg_list(&inst.params));
    let _ = writeln!(s, "  tensors:");
    for t in &inst.tensors {
        let init = match &t.init {
            TensorInit::Plain(i) => fmt_init(i),
            TensorInit::Partial { basis, mix } => format!("basis {}, mix {}", fmt_init(basis), fmt_init(mix)),
        };
        let _ = writeln!(
            s,
            "    {} : [{}] {}{} init {}",
            t.name,
            t.dims.join(", "),
            tying_name(t.tying),
            if t.trainable { "" } else { " frozen" },
            init
        );
        let shared: Vec<String> =
            t.groups.iter().filter(|g| g.len() > 1).map(|g| g.iter().map(|x| x.name()).collect::<Vec<_>>().join("+")).collect();
        if !shared.is_empty() {
            let _ = writeln!(s, "      shared across modules: {}", shared.join(", "));
        }
        let storage: Vec<String> = inst
            .storage
            .iter()
            .filter(|x| x.tensor == t.name)
            .map(|x| {
                let part = match x.part {
                    StoragePart::Full => "",
                    StoragePart::Basis => " basis",
                    StoragePart::Mix => " mix",
                };
                format!("{}{part} {:?}", x.targets.iter().map(|t| t.name()).collect::<Vec<_>>().join("+"), x.shape)
            })
            .collect();
        let total: u64 = inst.storage.iter().filter(|x| x.tensor == t.name).map(|x| x.numel).sum();
        let _ = writeln!(s, "      storage: {}  = {}", storage.join(", "), thousands(total));
    }
    for l in &inst.lets {
        let _ = writeln!(
            s,
            "  let {} = {}    // [{}] {}",
            l.name,
            fmt_expr(&l.expr),
            l.expr.dims.join(", "),
            if l.constant {
                "constant: folded once per layer"
            } else if l.expr.depends_on_x {
                "per forward"
            } else {
                "per step"
            }
        );
    }
    let (kind, e) = match &inst.output {
        Output::Delta(e) => ("delta", e),
        Output::Y(e) => ("y", e),
    };
    let _ = writeln!(s, "  {kind} = {}", fmt_expr(e));
    let _ = writeln!(s, "  FLOPs per token and layer (contraction order as printed):");
    for t in &inst.targets {
        let _ = write!(
            s,
            "    {:<4} in {:>5} out {:>5}: {:>12}",
            t.target.name(),
            t.sizes["in"],
            t.sizes["out"],
            significant(t.flops_per_token)
        );
        if t.flops_per_step > 0.0 {
            let _ = write!(s, "  (+ {} per step)", significant(t.flops_per_step));
        }
        s.push('\n');
    }
    let total: f64 = inst.targets.iter().map(|t| t.flops_per_token * t.layers.len() as f64).sum();
    let _ = writeln!(s, "    all layers and targets: {} FLOPs per token", significant(total));
    let m = &inst.mergeability;
    if m.linear {
        let f = m.merged.as_ref().map(fmt_expr).unwrap_or_default();
        if m.adds_base {
            let _ = writeln!(s, "  mergeable: linear in x;  W' = W + {f}");
        } else {
            let _ = writeln!(s, "  mergeable: linear in x;  W' = {f}");
        }
        let _ = writeln!(s, "    (I is the identity over `in`; `tokens` of the result indexes the rows of W')");
    } else {
        let _ = writeln!(s, "  not mergeable: {}", m.reason.clone().unwrap_or_default());
    }
    let _ = writeln!(s, "  trainable parameters: {}", thousands(inst.trainable_params));
    s
}

/// The `peftc explain` report.
pub fn report(p: &Program) -> String {
    let mut s = String::new();
    if p.experiments.is_empty() {
        let _ = writeln!(s, "model shapes: {} ({} layers)\n", p.default_shapes.name, p.default_shapes.num_layers);
        for i in &p.schemes {
            s.push_str(&instance(i, &format!("scheme {}", i.name)));
            s.push('\n');
        }
    }
    for e in &p.experiments {
        let _ = writeln!(s, "experiment {} on {} ({} layers)", e.name, e.shapes.name, e.shapes.num_layers);
        for g in &e.targets {
            let _ = writeln!(
                s,
                "  targets {} in layers {}..{}",
                g.modules.iter().map(|t| t.name()).collect::<Vec<_>>().join(", "),
                g.layers.start,
                g.layers.end
            );
        }
        let _ = write!(s, "  select {}", e.select);
        if let Some(r) = &e.reference {
            let _ = write!(s, ", reference {r}");
        }
        if !e.train.seeds.is_empty() {
            let _ = write!(s, ", seeds {}", e.train.seeds.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", "));
        }
        s.push('\n');
        s.push('\n');
        for r in &e.runs {
            s.push_str(&instance(&r.instance, &format!("run {}", r.name)));
            s.push('\n');
        }
    }
    s
}
