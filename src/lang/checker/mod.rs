//! The scheme checker: name resolution, named-dimension inference, tying and
//! init rules, and instantiation of a scheme with concrete arguments on
//! concrete target shapes (producing an [`ir::SchemeInstance`]).
//!
//! [`instantiate`] is the driver; each pass is a file of this folder:
//! - `arguments.rs`: the parameters' values (run arguments over defaults);
//! - `declarations.rs`: the body in source order, through `names.rs`
//!   (declared and reserved names), `shapes.rs` (each tensor's dims),
//!   `tying.rs` (`partial(k)`, `across`), `init.rs` (init rules) and
//!   `scope.rs` (typing formulas, which infers every node's named dims);
//! - `output.rs`: the output's dims, its mergeability, and its warnings;
//! - `cost.rs`: contraction order, storage and parameter counts, FLOPs.
//!
//! `constant.rs` folds constant AST expressions ([`eval_const`]) and
//! `target_slot.rs` describes the adapted targets ([`TargetSlot`]); both are
//! also used by experiments.

mod arguments;
mod constant;
mod cost;
mod declarations;
mod init;
mod names;
mod output;
mod scope;
mod shapes;
mod target_slot;
mod tying;

use std::collections::BTreeMap;

pub use arguments::{GivenArg, resolve_params};
pub use constant::eval_const;
pub use cost::storage;
pub use target_slot::{TargetSlot, all_targets};

use crate::lang::ast::*;
use crate::lang::diagnostic::Diagnostic;
use crate::lang::dims::Sizes;
use crate::lang::ir::{self, *};
use cost::{contraction_order, target_instances, trainable_count, with_nominal_tokens};
use declarations::Declarations;
use output::{checked_output, mergeability, warn_not_identity_at_init, warn_not_mergeable};
use shapes::per_target_sizes;

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

    // Every declaration checked and typed, in source order.
    let mut body = Declarations::new(s, &params, cx.given, cx.targets);
    body.declare_items(&s.items, d);
    let (out_ast, out_expr) = checked_output(s, body.output.take(), d)?;
    if d.iter().filter(|x| x.is_error()).count() > start_errors {
        return None;
    }

    // Sizes on every target; the contraction order they make cheapest.
    let sizes = per_target_sizes(cx.targets, &body.decls, &params);
    let size_sets: Vec<Sizes> = sizes.iter().map(with_nominal_tokens).collect();
    let (out_expr, let_list) = contraction_order(out_expr, std::mem::take(&mut body.let_list), &size_sets);
    let lets_map: BTreeMap<String, Expr> = let_list.iter().map(|l| (l.name.clone(), l.expr.clone())).collect();
    let output = match out_ast.kind {
        OutputKind::Delta => Output::Delta(out_expr),
        OutputKind::Y => Output::Y(out_expr),
    };

    let mergeability = mergeability(&output, &lets_map, &size_sets);
    if cx.warn {
        warn_not_mergeable(&mergeability, out_ast, d);
        warn_not_identity_at_init(s, out_ast, &output, &body.tensors, &body.init_spans, &lets_map, d);
        body.warn_unused(d);
    }

    let storage = storage(&body.decls, cx.targets, &params);
    let trainable_params = trainable_count(&storage);
    let targets = target_instances(cx.targets, sizes, &size_sets, output.expr(), &lets_map);

    let source = cx.source_text.get(s.span.start..s.span.end).unwrap_or("").to_string();
    Some(SchemeInstance {
        name: s.name.name.clone(),
        source,
        params: params_v.into_iter().map(|(name, value)| ir::Arg { name, value }).collect(),
        tensors: body.decls,
        lets: let_list,
        output,
        mergeability,
        targets,
        storage,
        trainable_params,
    })
}
