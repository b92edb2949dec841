//! The scheme checker: name resolution, named-dimension inference, tying and
//! init rules, and instantiation of a scheme with concrete arguments on
//! concrete target shapes (producing an [`ir::SchemeInstance`]).

mod arguments;
mod constant;
mod cost;
mod init;
mod names;
mod scope;
mod target_slot;
mod tying;

use std::collections::{BTreeMap, BTreeSet};

pub use arguments::{GivenArg, resolve_params};
pub use constant::eval_const;
pub use cost::{NOMINAL_TOKENS, storage};
use names::RESERVED;
pub use target_slot::{TargetSlot, all_targets};

use crate::lang::ast::*;
use crate::lang::diagnostic::{Diagnostic, ErrorKind};
use crate::lang::dims::{self, Sizes, fmt_dims};
use crate::lang::ir::{self, *};
use crate::lang::linearity;
use crate::lang::number;
use init::{init_is_zero, init_rule};
use scope::{Scope, TensorInfo};
use target_slot::size_of;
use tying::{across_groups, k_span};

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
                        if let Some(h) = crate::lang::diagnostic::did_you_mean(&di.name, dim_names.iter().map(String::as_str)) {
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
