//! Markdown reports of hand-written fixture runs (`tests/fixtures/report/runs`):
//! snapshots, file layout, determinism, bad input.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use peftc::report::{render_experiment, render_experiment_with_plan, render_path};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/report/runs")
}

fn names(paths: &[PathBuf], root: &Path) -> Vec<String> {
    paths.iter().map(|p| p.strip_prefix(root).unwrap().to_string_lossy().into_owned()).collect()
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            fs::copy(e.path(), target).unwrap();
        }
    }
}

#[test]
fn quick_experiment_markdown_snapshot() {
    let out = tempfile::tempdir().unwrap();
    let written = render_experiment(&fixtures(), "gsm8k_quick", out.path()).unwrap();
    assert_eq!(
        names(&written, out.path()),
        [
            "gsm8k_quick.md",
            "gsm8k_quick.html",
            "gsm8k_quick/train_loss.svg",
            "gsm8k_quick/test_loss.svg",
            "gsm8k_quick/params_vs_train.svg",
            "gsm8k_quick/params_vs_loss.svg",
            "gsm8k_quick/sweep-lora_gamma-gamma.svg",
            "gsm8k_quick/sweep-partially_tied_lora-k_a.svg",
        ]
    );
    let md = fs::read_to_string(out.path().join("gsm8k_quick.md")).unwrap();
    insta::assert_snapshot!("gsm8k_quick_md", md);
}

#[test]
fn quick_experiment_lists_every_run_with_its_status() {
    let out = tempfile::tempdir().unwrap();
    render_experiment(&fixtures(), "gsm8k_quick", out.path()).unwrap();
    let md = fs::read_to_string(out.path().join("gsm8k_quick.md")).unwrap();
    // Ranked: complete runs by best test loss, then unfinished, failed, unreadable, missing.
    let order = [
        "`lora_gamma-gamma=32` ★ ◆",
        "`tied_lora` ◆",
        "`partially_tied_lora-k_a=4`",
        "`partially_tied_lora-k_a=1` ◆",
        "`lora_gamma-gamma=1`",
        "`partially_tied_lora-k_a=30`",
        "`lora_gamma-gamma=750`",
        "`dora`",
        "`tied_lora_extra`",
        "`simple_dora`",
    ];
    let results = md.split("## Schemes").next().unwrap();
    let mut at = 0;
    for (rank, name) in order.iter().enumerate() {
        let needle = format!("| {} | {name} |", rank + 1);
        let pos = results.find(&needle).unwrap_or_else(|| panic!("row {needle:?} missing or out of place"));
        assert!(pos >= at, "{name} out of order");
        at = pos;
    }
    assert!(md.contains("**incomplete (1/3 epochs)**"));
    assert!(md.contains("**diverged (epoch 2, step 17)**"));
    assert!(md.contains("train loss is NaN at epoch 2, step 17"));
    assert!(md.contains("**failed**: building adapter for layer 3 \\`down\\`"));
    assert!(md.contains("**unreadable**: parsing metrics.json: missing field"));
    assert!(md.contains("`simple_dora` — **missing**"));
    assert!(md.contains("10 runs: 5 complete, 1 incomplete, 1 diverged, 1 failed, 1 unreadable, 1 missing."));
    // The base model is the reference row; trainable params have separators.
    assert!(md.contains("| — | *base model* | — | — | reference | 2.716 | — | 6.57 | 2.144 | +0.000 | 0 | — | — | — |"));
    assert!(md.contains("| 2,442,240 |"));
}

#[test]
fn gpu_single_markdown_snapshot_escapes_names() {
    let out = tempfile::tempdir().unwrap();
    render_experiment(&fixtures(), "gpu_single", out.path()).unwrap();
    let md = fs::read_to_string(out.path().join("gpu_single.md")).unwrap();
    insta::assert_snapshot!("gpu_single_md", md);
    let html = fs::read_to_string(out.path().join("gpu_single.html")).unwrap();
    assert!(html.contains("lora_gamma-gamma=32 &lt;h100|bf16&gt; &amp; co"));
    assert!(!html.contains("<h100"));
    let svg = fs::read_to_string(out.path().join("gpu_single/test_loss.svg")).unwrap();
    assert!(svg.contains("&lt;h100|bf16&gt; &amp; co"));
    assert!(!svg.contains("<h100"));
}

#[test]
fn stale_plots_of_an_earlier_render_are_removed() {
    let out = tempfile::tempdir().unwrap();
    let stale = out.path().join("gsm8k_quick/sweep-old_scheme-r.svg");
    fs::create_dir_all(stale.parent().unwrap()).unwrap();
    fs::write(&stale, "<svg/>").unwrap();
    let keep = out.path().join("gsm8k_quick/notes.txt");
    fs::write(&keep, "mine").unwrap();
    render_experiment(&fixtures(), "gsm8k_quick", out.path()).unwrap();
    assert!(!stale.exists());
    assert!(keep.exists(), "only SVGs are cleaned up");
    assert!(out.path().join("gsm8k_quick/train_loss.svg").exists());
}

#[test]
fn rendering_is_deterministic() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let wa = render_experiment(&fixtures(), "gsm8k_quick", a.path()).unwrap();
    let wb = render_experiment(&fixtures(), "gsm8k_quick", b.path()).unwrap();
    assert_eq!(names(&wa, a.path()), names(&wb, b.path()));
    for (x, y) in wa.iter().zip(&wb) {
        assert_eq!(fs::read(x).unwrap(), fs::read(y).unwrap(), "{} differs between renders", x.display());
    }
}

#[test]
fn runs_dir_renders_one_report_per_experiment() {
    let out = tempfile::tempdir().unwrap();
    let written = render_path(&fixtures(), out.path()).unwrap();
    let n = names(&written, out.path());
    for f in ["gpu_single.md", "gpu_single.html", "gsm8k_quick.md", "gsm8k_quick.html"] {
        assert!(n.contains(&f.to_string()), "{f} not written: {n:?}");
    }
    // An experiment whose runs all lack metrics is reported, not skipped.
    let runs = tempfile::tempdir().unwrap();
    copy_dir(&fixtures(), runs.path());
    fs::create_dir_all(runs.path().join("never_ran/lora_gamma-gamma=1")).unwrap();
    let out3 = tempfile::tempdir().unwrap();
    let n = names(&render_path(runs.path(), out3.path()).unwrap(), out3.path());
    assert!(n.contains(&"never_ran.md".to_string()), "{n:?}");
    let md = fs::read_to_string(out3.path().join("never_ran.md")).unwrap();
    assert!(md.contains("1 run: 0 complete, 1 missing."));
    // An experiment directory renders just that experiment.
    let out2 = tempfile::tempdir().unwrap();
    let written = render_path(&fixtures().join("gpu_single"), out2.path()).unwrap();
    assert_eq!(names(&written, out2.path())[..2], ["gpu_single.md", "gpu_single.html"]);
    assert!(!out2.path().join("gsm8k_quick.md").exists());
}

#[test]
fn planned_runs_without_a_directory_are_shown_as_missing() {
    let out = tempfile::tempdir().unwrap();
    let planned = ["lora_gamma-gamma=32".to_string(), "tensor_embedding".to_string()];
    render_experiment_with_plan(&fixtures(), "gsm8k_quick", &planned, out.path()).unwrap();
    let md = fs::read_to_string(out.path().join("gsm8k_quick.md")).unwrap();
    assert!(md.contains("11 runs:"), "the recorded run is not duplicated, the planned one is added");
    assert!(md.contains("`tensor_embedding` — **missing**"));
    assert!(md.contains("### `tensor_embedding`"));
    // An experiment that never ran at all still gets a report of its plan.
    let out = tempfile::tempdir().unwrap();
    render_experiment_with_plan(&fixtures(), "not_started", &planned, out.path()).unwrap();
    let md = fs::read_to_string(out.path().join("not_started.md")).unwrap();
    assert!(md.contains("2 runs: 0 complete, 2 missing."));
}

#[test]
fn bad_paths_are_clear_errors() {
    let out = tempfile::tempdir().unwrap();
    let err = render_experiment(&fixtures(), "no_such_experiment", out.path()).unwrap_err();
    assert!(format!("{err:#}").contains("no_such_experiment"), "{err:#}");
    let empty = tempfile::tempdir().unwrap();
    let err = render_path(empty.path(), out.path()).unwrap_err();
    assert!(format!("{err:#}").contains("no runs found"), "{err:#}");
    let err = render_path(&fixtures().join("gsm8k_quick/dora/metrics.json"), out.path()).unwrap_err();
    assert!(format!("{err:#}").contains("is not a directory"), "{err:#}");
}

#[test]
fn cli_report_subcommand() {
    let out = tempfile::tempdir().unwrap();
    let ok = Command::new(env!("CARGO_BIN_EXE_peftc"))
        .args(["report"])
        .arg(fixtures().join("gsm8k_quick"))
        .arg("-o")
        .arg(out.path())
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("gsm8k_quick.html"));
    assert!(out.path().join("gsm8k_quick.html").is_file());
    let bad = Command::new(env!("CARGO_BIN_EXE_peftc")).args(["report", "/nonexistent/runs", "-o"]).arg(out.path()).output().unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("error: /nonexistent/runs is not a directory"));
}

/// The `## Headline` section of a rendered report (up to `## Results`).
fn headline_section(md: &str) -> &str {
    let start = md.find("## Headline").expect("a headline section");
    &md[start..md.find("## Results").expect("a results section")]
}

#[test]
fn study_headline_selects_by_train_loss_and_marks_noise() {
    let out = tempfile::tempdir().unwrap();
    render_experiment(&fixtures(), "study_seeds", out.path()).unwrap();
    let md = fs::read_to_string(out.path().join("study_seeds.md")).unwrap();
    let head = headline_section(&md);
    // γ = 32 is selected by its lower train loss although γ = 1 tests better;
    // its test loss is within the seeds' spread of the reference's.
    assert!(head.contains("| `lora_gamma` ★ | γ=32 | 2,442,240 | 3 | 2.105 ± 0.005 | 2.300 ± 0.010 |"), "{head}");
    assert!(head.contains("| -0.005 ≈ |"), "{head}");
    assert!(head.contains("| `peft_lora` ≈ |"), "{head}");
    // tied_lora is 0.1 bits worse: distinguishable, unmarked; dora lost a seed.
    assert!(head.contains("| `tied_lora` | — | 321,696 | 3 |") && head.contains("| +0.100 |"), "{head}");
    assert!(head.contains("| `dora` | — | 2,472,480 | 2 of 3 |"), "{head}");
    insta::assert_snapshot!("study_seeds_headline", head);
}

#[test]
fn study_headline_follows_the_selection_rule() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixtures().join("study_seeds"), &dir.path().join("study_seeds"));
    let study = dir.path().join("study_seeds/study.json");
    let text = fs::read_to_string(&study).unwrap().replace(
        r#""by": "train_loss",
    "epoch": null"#,
        r#""by": "test_loss_best""#,
    );
    assert!(text.contains("test_loss_best"));
    fs::write(&study, text).unwrap();
    let out = tempfile::tempdir().unwrap();
    render_experiment(dir.path(), "study_seeds", out.path()).unwrap();
    let md = fs::read_to_string(out.path().join("study_seeds.md")).unwrap();
    let head = headline_section(&md);
    assert!(head.contains("`select = test_loss(best)`"), "{head}");
    assert!(head.contains("| `lora_gamma` ★ | γ=1 | 2,442,240 | 3 | 2.275 ± 0.005 | 2.275 ± 0.005 |"), "{head}");
    // Selecting by epoch 1's train loss instead: γ = 32 (2.40 < 2.50).
    let text = fs::read_to_string(&study).unwrap().replace(r#""by": "test_loss_best""#, r#""by": "train_loss", "epoch": 1"#);
    fs::write(&study, text).unwrap();
    render_experiment(dir.path(), "study_seeds", out.path()).unwrap();
    let md = fs::read_to_string(out.path().join("study_seeds.md")).unwrap();
    assert!(headline_section(&md).contains("| `lora_gamma` ★ | γ=32 | 2,442,240 | 3 | 2.400 ± 0.000 |"), "{md}");
}
