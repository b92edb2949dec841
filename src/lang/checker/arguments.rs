//! Scheme parameters: a scheme's parameter list and the arguments a run
//! gives enter; every parameter's value leaves (the given argument, else the
//! default evaluated over the parameters before it), or diagnostics.

use std::collections::BTreeMap;

use super::constant::eval_const;
use super::names::RESERVED;
use crate::lang::ast::*;
use crate::lang::diagnostic::{Diagnostic, ErrorKind};

/// A concrete argument given by a run, with the span that set it.
#[derive(Debug, Clone)]
pub struct GivenArg {
    pub value: f64,
    pub span: Span,
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
