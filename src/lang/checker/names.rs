//! Names of a scheme: the lists the other passes resolve names against
//! (names no declaration may take, the functions a formula may call, the
//! init rules), and the declaration of names. A scheme's parameter list, or
//! one declared name, enters; the names in scope leave, or the reserved or
//! duplicate name is reported.

use std::collections::{BTreeMap, BTreeSet};

use crate::lang::ast::*;
use crate::lang::diagnostic::{Diagnostic, ErrorKind};

/// Names that cannot be declared as parameters, tensors or lets.
pub const RESERVED: [&str; 9] = ["x", "W", "I", "tokens", "in", "out", "delta", "y", "all"];

/// Functions of the formula language.
pub const FUNCTIONS: [&str; 10] = ["sqrt", "rms", "norm", "detach", "min", "max", "abs", "exp", "log", "einsum"];

/// Init rules usable after `init`.
pub const INITS: [&str; 6] = ["zeros", "ones", "normal", "uniform", "identity", "kaiming_uniform"];

/// The names the parameter list declares, each at its first declaration (a
/// repeated parameter is reported by [`resolve_params`](super::resolve_params)).
pub(super) fn parameter_names(s: &AstScheme) -> BTreeMap<String, Span> {
    let mut declared: BTreeMap<String, Span> = BTreeMap::new();
    for p in &s.params {
        declared.entry(p.name.name.clone()).or_insert(p.name.span);
    }
    declared
}

/// The names a tensor's dim list may use: `in`, `out` and the parameters.
pub(super) fn dimension_names(s: &AstScheme) -> BTreeSet<String> {
    let mut dim_names: BTreeSet<String> = ["in".to_string(), "out".to_string()].into();
    for p in &s.params {
        dim_names.insert(p.name.name.clone());
    }
    dim_names
}

/// Declare `n` (a `what`: tensor or let binding) next to the names in
/// `declared`. `false`, reported, when the name is reserved or taken.
pub(super) fn declare_name(n: &Ident, what: &'static str, declared: &mut BTreeMap<String, Span>, d: &mut Vec<Diagnostic>) -> bool {
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
}
