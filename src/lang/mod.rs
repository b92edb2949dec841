//! The `.peft` language: grammar, parser, checker, diagnostics, and the
//! resolved IR ([`ir`]) that the trainer lowers to Burn.
//!
//! Enters: `.peft` files (or an in-memory text) and, for experiments, the
//! shapes of their model files ([`preset`], read through
//! [`crate::pretrained`]; no Burn). Leaves: a checked [`Program`] — schemes
//! instantiated on concrete targets, experiments with their expanded runs —
//! or every [`Diagnostic`], rustc-style. The stages inside: [`source`]
//! (files, imports) → [`parser`] (pest) → [`ast`] → [`checker`] (one file
//! per pass) and [`experiment`] → [`ir`]; [`params`] and [`explain`] print
//! the IR; [`interpret`] evaluates it (a test oracle); [`number`] is every
//! number format.
//!
//! Entry points: [`load`] (checked program or all diagnostics) and [`check`]
//! (program plus every warning), [`check_text`] for in-memory sources.

pub mod ast;
pub mod checker;
pub mod diagnostic;
pub mod dims;
pub mod experiment;
pub mod explain;
pub mod interpret;
pub mod ir;
pub mod linearity;
pub mod number;
pub mod params;
pub mod parser;
pub mod preset;
pub mod search;
pub mod source;
pub mod target;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use diagnostic::{Diagnostic, Diagnostics, ErrorKind};
pub use ir::Program;

use ast::{Item, Span};
use checker::{InstantiateCtx, all_targets};
use ir::ModelShapes;
use source::Sources;

/// Options of a check.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Shapes to use instead of each experiment's model (`--model`), and for
    /// instantiating bare schemes (default: the `smollm2-135m` preset).
    pub model: Option<ModelShapes>,
}

/// Load, parse and check files and directories (recursively, `*.peft`),
/// following imports. Returns the checked program, or every diagnostic
/// (errors and warnings) when there is an error.
pub fn load(paths: &[PathBuf]) -> Result<Program, Diagnostics> {
    let (p, d) = check(paths, &Options::default());
    match p {
        Some(p) if !d.has_errors() => Ok(p),
        _ => Err(d),
    }
}

/// Check files; the program is `Some` only when there is no error. The
/// diagnostics include every warning.
pub fn check(paths: &[PathBuf], opts: &Options) -> (Option<Program>, Diagnostics) {
    check_sources(Sources::load(paths), opts)
}

/// Every spec file that checking `paths` reads (directories expanded,
/// imports followed), absolute: what a sweep's plan hashes.
pub fn spec_files(paths: &[PathBuf]) -> Vec<PathBuf> {
    Sources::load(paths).files.into_iter().map(|f| f.path).collect()
}

/// Check one in-memory source (imports are reported as errors).
pub fn check_text(name: &str, text: &str, opts: &Options) -> (Option<Program>, Diagnostics) {
    check_sources(Sources::from_text(name, text), opts)
}

fn check_sources(src: Sources, opts: &Options) -> (Option<Program>, Diagnostics) {
    let Sources { files, mut diags } = src;
    let mut d: Vec<Diagnostic> = Vec::new();
    let default_shapes = opts.model.clone().unwrap_or_else(|| preset::preset("smollm2-135m").expect("built-in preset"));

    // Global names.
    let mut schemes: BTreeMap<String, experiment::SchemeRef> = BTreeMap::new();
    let mut scheme_order = Vec::new();
    let mut experiments = Vec::new();
    let mut scheme_spans: BTreeMap<String, Span> = BTreeMap::new();
    let mut exp_spans: BTreeMap<String, Span> = BTreeMap::new();
    for f in &files {
        let text = diags.files[f.id].1.as_str();
        for it in &f.ast.items {
            match it {
                Item::Scheme(s) => {
                    if let Some(prev) = scheme_spans.get(&s.name.name) {
                        d.push(
                            Diagnostic::error(ErrorKind::Duplicate { what: "scheme", name: s.name.name.clone() }, s.name.span)
                                .label("defined again here")
                                .with(*prev, "first defined here"),
                        );
                        continue;
                    }
                    scheme_spans.insert(s.name.name.clone(), s.name.span);
                    schemes.insert(s.name.name.clone(), experiment::SchemeRef { ast: s, text });
                    scheme_order.push(s.name.name.clone());
                }
                Item::Experiment(x) => {
                    if let Some(prev) = exp_spans.get(&x.name.name) {
                        d.push(
                            Diagnostic::error(ErrorKind::Duplicate { what: "experiment", name: x.name.name.clone() }, x.name.span)
                                .label("defined again here")
                                .with(*prev, "first defined here"),
                        );
                        continue;
                    }
                    exp_spans.insert(x.name.name.clone(), x.name.span);
                    experiments.push((x, f.path.clone()));
                }
                Item::Import(_) => {}
            }
        }
    }

    // Every scheme on its defaults (scheme-level errors and warnings).
    let slots = all_targets(&default_shapes);
    let mut instances = Vec::new();
    let no_args = BTreeMap::new();
    for name in &scheme_order {
        let s = &schemes[name];
        if s.ast.params.iter().any(|p| p.default.is_none()) {
            continue; // checked through the runs that give its arguments
        }
        let cx = InstantiateCtx { scheme: s.ast, source_text: s.text, given: &no_args, call_span: None, targets: &slots, warn: true };
        if let Some(i) = checker::instantiate(&cx, &mut d) {
            instances.push(i);
        }
    }

    let mut exps = Vec::new();
    for (x, path) in experiments {
        if let Some(e) = experiment::check(x, Path::new(&path), &schemes, opts.model.as_ref(), &mut d) {
            exps.push(e);
        }
    }
    for x in d {
        diags.push(x);
    }
    let program = Program { experiments: exps, schemes: instances, default_shapes };
    if diags.has_errors() { (None, diags) } else { (Some(program), diags) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_src(src: &str) -> (Option<Program>, Diagnostics) {
        check_text("t.peft", src, &Options::default())
    }

    #[test]
    fn matmul_binds_tighter_than_mul() {
        let f = parser::parse_file(0, "scheme s(r = 2) { A : [in, r] per_layer init zeros delta = 2 * x @ A @ B * u }").unwrap();
        let ast::Item::Scheme(s) = &f.items[0] else { panic!() };
        let ast::SchemeItem::Output(o) = &s.items[1] else { panic!() };
        assert_eq!(o.value.sexpr(), "(* (* 2 (@ (@ x A) B)) u)");
    }

    #[test]
    fn named_dims_make_transposes_implicit() {
        // A is stored [r, in]: `x @ A` still contracts `in`.
        let (p, d) = check_src("scheme s(r = 4) { A : [r, in] per_layer init zeros  B : [r, out] per_layer init ones  delta = x @ A @ B }");
        let p = p.unwrap_or_else(|| panic!("{}", d.render(false)));
        let e = p.schemes[0].output.expr();
        let ir::ExprKind::MatMul { lhs, contract, .. } = &e.kind else { panic!("{e:?}") };
        assert_eq!(contract, "r");
        assert_eq!(lhs.dims, vec!["tokens".to_string(), "r".to_string()]);
    }

    #[test]
    fn every_error_is_collected_with_its_span() {
        let src = "scheme s(r = 4) {\n  A : [in, q] per_layer init zeros\n  B : [r, out] per_layer init zeros\n  delta = foo * x @ B\n}";
        let (p, d) = check_src(src);
        assert!(p.is_none());
        let codes: Vec<&str> = d.items.iter().map(|x| x.kind.code()).collect();
        assert!(codes.contains(&"E0104") && codes.contains(&"E0102") && codes.contains(&"E0201"), "{codes:?}");
        let unknown = d.items.iter().find(|x| x.kind.code() == "E0104").unwrap();
        assert_eq!(&src[unknown.primary.start..unknown.primary.end], "q");
    }

    #[test]
    fn nonlinear_output_is_not_mergeable() {
        let (p, d) = check_src(
            "scheme s(r = 4) { A : [in, r] per_layer init ones  B : [r, out] per_layer init zeros  delta = ((x @ A) * (x @ A)) @ B }",
        );
        let p = p.unwrap_or_else(|| panic!("{}", d.render(false)));
        assert!(!p.schemes[0].mergeability.linear);
        assert!(d.items.iter().any(|x| x.kind.code() == "W0103"));
    }

    #[test]
    fn typos_get_a_suggestion() {
        let (_, d) =
            check_src("scheme s(r = 4) { A : [in, r] per_layer init zeros  B : [r, out] per_layer init zeros  delta = x @ A @ b }");
        let e = d.items.iter().find(|x| x.kind.code() == "E0102").unwrap();
        assert!(e.notes.iter().any(|n| n == "did you mean `B`?"), "{:?}", e.notes);
        assert_eq!(diagnostic::did_you_mean("adamw_lr", ["lr", "batch"]), None);
        assert_eq!(diagnostic::did_you_mean("ephocs", ["epochs", "batch"]).as_deref(), Some("did you mean `epochs`?"));
    }
}
