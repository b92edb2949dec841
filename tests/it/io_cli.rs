//! The io subcommands on bad input: a clear message, a non-zero exit, no panic.

use crate::support::io as io_support;

use std::process::Command;

use io_support::{tiny_config, tiny_model};
use peftc::pretrained::gguf::GgmlType;
use peftc::pretrained::gguf::llama::gguf_writer_for;

fn peftc(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_peftc")).args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn bad_model_files_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = gguf_writer_for(&tiny_model(tiny_config(true), 1), GgmlType::Q8_0).to_bytes();
    let good = dir.path().join("tiny.gguf");
    std::fs::write(&good, &bytes).unwrap();
    let cut = dir.path().join("cut.gguf");
    std::fs::write(&cut, &bytes[..bytes.len() - 100]).unwrap();
    let junk = dir.path().join("junk.bin");
    std::fs::write(&junk, b"GGUF\x07\x00\x00\x00").unwrap();

    let (ok, stdout, _) = peftc(&["inspect", good.to_str().unwrap()]);
    assert!(ok);
    assert!(stdout.contains("\"num_layers\": 2"), "{stdout}");

    for (file, want) in [
        (cut.to_str().unwrap(), "outside the file"),
        (junk.to_str().unwrap(), "unsupported GGUF version 7"),
        ("/nonexistent/model.gguf", "does not exist"),
    ] {
        for cmd in [&["inspect", "--tensors", file][..], &["bench-load", file, "--repeat", "1"]] {
            let (ok, _, stderr) = peftc(cmd);
            assert!(!ok, "{cmd:?} succeeded");
            assert!(stderr.contains(want), "{cmd:?}: {stderr}");
            assert!(!stderr.contains("panicked"), "{cmd:?}: {stderr}");
        }
    }
}
