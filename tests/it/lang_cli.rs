//! The `check`, `params` and `explain` subcommands end to end.

use std::process::Command;

fn peftc(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_peftc"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .output()
        .expect("runs peftc");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn check_specs_exits_zero() {
    let (code, _, err) = peftc(&["check", "specs/"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("0 errors, 0 warnings"), "{err}");
}

#[test]
fn seed_protocol_checks_and_counts_through_the_cli() {
    let (code, _, err) = peftc(&["check", "specs/seed"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("126 run(s); 0 errors, 0 warnings"), "{err}");
    let (code, out, err) = peftc(&["params", "specs/seed", "--model", "llama-3.1-8b"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("experiment seed on llama-3.1-8b (32 layers)"), "{out}");
    let line = |name: &str| out.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_default().to_string();
    assert!(line("peft_lora-lr=0.001-seed=2").ends_with("20,971,520"), "{out}");
    assert_eq!(out.lines().filter(|l| l.contains("-seed=")).filter(|l| !l.starts_with("run ")).count(), 126, "{out}");
}

#[test]
fn check_bad_specs_exits_one_with_every_error() {
    let (code, _, err) = peftc(&["check", "tests/fixtures/lang/err_syntax.peft", "tests/fixtures/lang/err_bad_value.peft"]);
    assert_eq!(code, 1);
    assert!(err.contains("error[E0001]") && err.contains("err_syntax.peft:3:15"), "{err}");
    assert_eq!(err.matches("error[E0408]").count(), 2, "{err}");
    assert!(err.contains("failed: 3 errors"), "{err}");
}

#[test]
fn params_prints_the_hand_counts() {
    let (code, out, err) = peftc(&["params", "specs/schemes.peft"]);
    assert_eq!(code, 0, "{err}");
    let line = |name: &str| out.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_default().to_string();
    assert!(line("lora_gamma").ends_with("2,442,240"), "{out}");
    assert!(line("tied_lora").ends_with("321,696"), "{out}");
}

#[test]
fn explain_on_another_preset_and_bad_model() {
    let (code, out, err) = peftc(&["explain", "specs/schemes.peft", "--model", "gemma-2b"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("model shapes: gemma-2b (18 layers)"));
    assert!(out.contains("W' = W + 1.06066 * A @ B"), "{out}");
    let (code, _, err) = peftc(&["params", "specs/schemes.peft", "--model", "no-such-model"]);
    assert_eq!(code, 2);
    assert!(err.contains("neither a preset"), "{err}");
    let (code, _, err) = peftc(&["check", "no/such/dir"]);
    assert_eq!(code, 1, "{err}");
}

#[test]
fn explain_json_is_the_ir() {
    let (code, out, err) = peftc(&["explain", "--json", "specs/quick/quick.peft"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    let runs = v["experiments"][0]["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 5);
    assert_eq!(runs[1]["name"], "tied_lora");
    assert_eq!(runs[1]["instance"]["trainable_params"], 321_696);
}
