//! Snapshot tests over `tests/fixtures/lang/`: rendered diagnostics of bad
//! specs (one per error kind), warnings, parse trees and `explain` output of
//! good specs, and `explain`/`params` for every scheme in `specs/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use peftc::lang::{self, Options};

/// Path relative to the crate root, so rendered file names are stable.
fn rel(path: &Path) -> PathBuf {
    path.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap_or(path).to_path_buf()
}

/// The error code each `err_*.peft` fixture exists to show.
fn expected_codes() -> BTreeMap<&'static str, &'static str> {
    [
        ("err_syntax", "E0001"),
        ("err_import_not_found", "E0002"),
        ("err_import_cycle", "E0003"),
        ("err_too_complex", "E0004"),
        ("err_duplicate", "E0101"),
        ("err_unknown_name", "E0102"),
        ("err_unknown_scheme", "E0103"),
        ("err_unknown_dim", "E0104"),
        ("err_unknown_argument", "E0105"),
        ("err_reserved_name", "E0106"),
        ("err_unknown_function", "E0107"),
        ("err_missing_output", "E0108"),
        ("err_duplicate_output", "E0109"),
        ("err_repeated_dim", "E0110"),
        ("err_missing_argument", "E0111"),
        ("err_matmul_no_shared_dim", "E0201"),
        ("err_matmul_ambiguous", "E0202"),
        ("err_broadcast_mismatch", "E0203"),
        ("err_reduce_missing_dim", "E0204"),
        ("err_output_dims", "E0205"),
        ("err_bad_call", "E0206"),
        ("err_einsum", "E0207"),
        ("err_non_scalar_exponent", "E0208"),
        ("err_not_a_constant", "E0209"),
        ("err_not_a_number", "E0210"),
        ("err_partial_k", "E0301"),
        ("err_dim_not_positive_integer", "E0302"),
        ("err_across_shape_mismatch", "E0303"),
        ("err_across_target", "E0304"),
        ("err_tied_init_from_w", "E0305"),
        ("err_init_shape", "E0306"),
        ("err_init_kind", "E0307"),
        ("err_init_dependency", "E0308"),
        ("err_merge_required", "E0401"),
        ("err_missing_setting", "E0402"),
        ("err_unknown_setting", "E0403"),
        ("err_bad_layer_range", "E0404"),
        ("err_duplicate_run_name", "E0405"),
        ("err_unknown_target", "E0406"),
        ("err_model_shapes", "E0407"),
        ("err_bad_value", "E0408"),
        ("err_micro_tokens", "E0408"),
        ("err_checkpoint", "E0408"),
        ("err_empty_sweep", "E0409"),
        ("err_bad_search", "E0410"),
        ("err_bad_selection", "E0411"),
        ("err_unknown_reference", "E0412"),
    ]
    .into_iter()
    .collect()
}

#[test]
fn bad_specs_render_diagnostics() {
    let codes = expected_codes();
    let mut seen = Vec::new();
    let mut ran = 0;
    insta::glob!("..", "fixtures/lang/err_*.peft", |path| {
        ran += 1;
        let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
        let (program, d) = lang::check(&[rel(path)], &Options::default());
        assert!(program.is_none(), "{stem} must fail");
        assert!(d.has_errors(), "{stem} must report an error");
        let want = codes.get(stem.as_str()).unwrap_or_else(|| panic!("no expected code listed for {stem}"));
        assert!(
            d.items.iter().any(|x| x.kind.code() == *want),
            "{stem} should report {want}, got {:?}",
            d.items.iter().map(|x| x.kind.code()).collect::<Vec<_>>()
        );
        seen.push(*want);
        insta::assert_snapshot!(d.render(false));
    });
    seen.sort();
    seen.dedup();
    assert!(seen.len() >= 25, "only {} distinct error kinds covered", seen.len());
    assert_eq!(ran, codes.len(), "every listed fixture ran");
}

#[test]
fn warning_specs_render_warnings() {
    insta::glob!("..", "fixtures/lang/warn_*.peft", |path| {
        let (program, d) = lang::check(&[rel(path)], &Options::default());
        assert!(program.is_some(), "warnings alone must not fail: {}", d.render(false));
        assert!(!d.items.is_empty() && !d.has_errors());
        insta::assert_snapshot!(d.render(false));
    });
}

#[test]
fn good_specs_parse_trees() {
    insta::glob!("..", "fixtures/lang/ok_*.peft", |path| {
        let text = std::fs::read_to_string(path).unwrap();
        let ast = lang::parser::parse_file(0, &text).expect("parses");
        insta::assert_snapshot!(ast.sexpr());
    });
}

#[test]
fn good_specs_explain() {
    insta::glob!("..", "fixtures/lang/ok_*.peft", |path| {
        let (program, d) = lang::check(&[rel(path)], &Options::default());
        let program = program.unwrap_or_else(|| panic!("{}", d.render(false)));
        assert!(d.items.is_empty(), "no warnings expected: {}", d.render(false));
        insta::assert_snapshot!(lang::explain::report(&program));
    });
}

fn specs_program() -> lang::Program {
    lang::load(&[PathBuf::from("specs/schemes.peft")]).unwrap_or_else(|d| panic!("{}", d.render(false)))
}

#[test]
fn explain_every_scheme_in_specs() {
    let p = specs_program();
    assert!(p.schemes.len() >= 12);
    for s in &p.schemes {
        insta::assert_snapshot!(format!("explain_{}", s.name), lang::explain::instance(s, &format!("scheme {}", s.name)));
    }
}

#[test]
fn params_every_scheme_in_specs() {
    let p = specs_program();
    insta::assert_snapshot!("params_specs_schemes", lang::params::report(&p));
}

#[test]
fn check_specs_dir_is_clean() {
    let (p, d) = lang::check(&[PathBuf::from("specs")], &Options::default());
    assert!(p.is_some() && d.items.is_empty(), "{}", d.render(false));
    let p = p.unwrap();
    let names: Vec<&str> = p.experiments.iter().map(|e| e.name.as_str()).collect();
    assert!(names.contains(&"quick") && names.contains(&"full"));
}

#[test]
fn specs_parse_trees() {
    for f in ["specs/schemes.peft", "specs/quick/quick.peft", "specs/full/full.peft"] {
        let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(f)).unwrap();
        let ast = lang::parser::parse_file(0, &text).expect("parses");
        insta::assert_snapshot!(format!("parse_{}", f.replace(['/', '.'], "_")), ast.sexpr());
    }
}

/// `specs/seed/`: the seed's protocol at full scale checks clean, plans the
/// whole sweep (every seed scheme × three learning rates × three seeds),
/// and counts parameters exactly, also for Llama-3.1-8B's shapes.
#[test]
fn seed_protocol_spec_is_ready_to_run() {
    let (p, d) = lang::check(&[PathBuf::from("specs/seed")], &Options::default());
    let p = p.unwrap_or_else(|| panic!("{}", d.render(false)));
    assert!(d.items.is_empty(), "{}", d.render(false));
    let e = &p.experiments[0];
    assert_eq!((e.name.as_str(), e.runs.len()), ("seed", 14 * 3 * 3));
    assert_eq!(e.select, lang::ir::Selection::TrainLoss { epoch: None });
    assert_eq!(e.reference.as_deref(), Some("peft_lora"));
    assert!(matches!(e.data.train, lang::ir::Subset::All) && matches!(e.data.test, lang::ir::Subset::All));
    let mut groups: BTreeMap<&str, Vec<&lang::ir::Run>> = BTreeMap::new();
    for r in &e.runs {
        assert_eq!(r.train.epochs, 3);
        groups.entry(r.group.as_str()).or_default().push(r);
    }
    assert_eq!(groups.len(), 14);
    for (g, runs) in &groups {
        let configs: std::collections::BTreeSet<&str> = runs.iter().map(|r| r.config.as_str()).collect();
        let seeds: std::collections::BTreeSet<u64> = runs.iter().map(|r| r.train.seed).collect();
        assert_eq!((configs.len(), seeds.len()), (3, 3), "{g}: three learning rates, three seeds");
        assert_eq!(runs[0].swept, ["lr"], "{g}");
    }
    // Every seed scheme is there.
    let schemes: std::collections::BTreeSet<&str> = e.runs.iter().map(|r| r.scheme.as_str()).collect();
    for s in [
        "lora_gamma",
        "normed_lora",
        "strong_gamma_lora",
        "tied_lora",
        "tied_lora_p",
        "tied_lora_extra",
        "tensor_embedding",
        "partially_tied_lora",
        "dora",
        "simple_dora",
        "peft_lora",
    ] {
        assert!(schemes.contains(s), "{s} missing");
    }
    // Counted on SmolLM2 and, with the shapes overridden, on Llama-3.1-8B:
    // HF PEFT's LoRA r 8 on all seven projections of its 32 layers is
    // 20,971,520 trainable parameters.
    let count = |p: &lang::Program, group: &str| p.experiments[0].runs.iter().find(|r| r.group == group).unwrap().instance.trainable_params;
    assert_eq!(count(&p, "peft_lora"), 2_442_240);
    let big = Options { model: lang::preset::preset("llama-3.1-8b") };
    let (p8, d8) = lang::check(&[PathBuf::from("specs/seed")], &big);
    let p8 = p8.unwrap_or_else(|| panic!("{}", d8.render(false)));
    assert_eq!(count(&p8, "peft_lora"), 20_971_520);
}
