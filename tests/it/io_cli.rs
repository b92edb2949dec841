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

/// The `[positions, vocab]` f32 tensor `logits` of a `peftc logits --out` file.
fn read_logits(path: &std::path::Path) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(st.names(), vec!["logits"]);
    let t = st.tensor("logits").unwrap();
    assert_eq!(t.dtype(), safetensors::Dtype::F32);
    (t.shape().to_vec(), t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
}

/// `position P (id I): a=x b=y ...` lines of `peftc logits` → `(P, [(a, x), ...])`.
fn printed_top5(stdout: &str) -> Vec<(usize, Vec<(usize, f32)>)> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("position "))
        .map(|l| {
            let (pos, rest) = l.split_once(' ').unwrap();
            let top = rest.split_once(": ").unwrap().1.split(' ').map(|kv| kv.split_once('=').unwrap()).collect::<Vec<_>>();
            (pos.parse().unwrap(), top.into_iter().map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap())).collect())
        })
        .collect()
}

#[test]
fn logits_command_matches_transformers_on_smollm2() {
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(io_support::reference_file("smollm2-135m-gsm8k-base.json")).unwrap()).unwrap();
    let ex = &r["examples"][1];
    let ids: Vec<String> = ex["token_ids"].as_array().unwrap().iter().map(|v| v.to_string()).collect();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("logits.safetensors");
    let model = io_support::smollm2_path();
    let (ok, stdout, stderr) =
        peftc(&["logits", "--model", model.to_str().unwrap(), "--ids", &ids.join(","), "--out", out.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    let printed = printed_top5(&stdout);
    assert_eq!(printed.len(), ids.len());
    let (shape, data) = read_logits(&out);
    assert_eq!(shape, vec![ids.len(), 49152]);
    let mut checked = 0;
    for p in ex["positions"].as_array().unwrap() {
        let pos = p["position"].as_u64().unwrap() as usize;
        let want_ids: Vec<usize> = p["top5_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        let want: Vec<f64> = p["top5_logits"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let (at, top) = &printed[pos];
        assert_eq!(*at, pos);
        assert_eq!(top.iter().map(|(i, _)| *i).collect::<Vec<_>>(), want_ids, "top-5 ids at position {pos}");
        for ((id, shown), w) in top.iter().zip(&want) {
            let stored = data[pos * 49152 + id];
            assert!((stored as f64 - w).abs() < 1e-2, "logit of {id} at {pos}: {stored} vs transformers {w}");
            assert!((stored - shown).abs() < 1e-4, "printed {shown} vs stored {stored}");
            checked += 1;
        }
    }
    assert_eq!(checked, 15);
}

#[test]
fn logits_command_on_a_tiny_model_equals_the_library_forward() {
    use burn::backend::NdArray;
    use burn::prelude::*;
    let model = tiny_model(tiny_config(false), 8);
    let dir = tempfile::tempdir().unwrap();
    let gguf = dir.path().join("tiny.gguf");
    gguf_writer_for(&model, GgmlType::F32).write(&gguf).unwrap();
    let out = dir.path().join("sub").join("logits.safetensors");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let (ok, stdout, stderr) = peftc(&["logits", "--model", gguf.to_str().unwrap(), "--ids", "1, 5,17,43", "--out", out.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    let (shape, data) = read_logits(&out);
    assert_eq!(shape, vec![4, 44]);

    let loaded = peftc::pretrained::source::load_model(&gguf).unwrap();
    let dev = Default::default();
    let llama: peftc::model::Llama<NdArray<f32>> = peftc::model::Llama::from_loaded(&loaded, &dev).unwrap();
    let tokens = Tensor::<NdArray<f32>, 2, Int>::from_data(burn::tensor::TensorData::new(vec![1i64, 5, 17, 43], [1, 4]), &dev);
    let pad = Tensor::<NdArray<f32>, 2, Bool>::from_data(burn::tensor::TensorData::new(vec![true; 4], [1, 4]), &dev);
    let want = llama.forward(tokens, pad, &peftc::model::hook::NoAdapter).into_data().into_vec::<f32>().unwrap();
    assert_eq!(data, want);
    let printed = printed_top5(&stdout);
    assert_eq!(printed.len(), 4);
    for (pos, top) in &printed {
        let row = &want[pos * 44..(pos + 1) * 44];
        let mut order: Vec<usize> = (0..44).collect();
        order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
        assert_eq!(top.iter().map(|(i, _)| *i).collect::<Vec<_>>(), order[..5].to_vec(), "position {pos}");
    }

    for (ids, want) in [
        ("44", "token id 44 (position 0) is outside the model's vocabulary of 44"),
        ("1,2,99999999999999999999", "`99999999999999999999` (position 2) is not a token id"),
        ("", "no token ids given"),
        ("1,,2", "`` (position 1) is not a token id"),
        ("3,x", "`x` (position 1) is not a token id"),
        ("-1", "`-1` (position 0) is not a token id"),
    ] {
        let bad = dir.path().join("bad.safetensors");
        let (ok, _, stderr) = peftc(&["logits", "--model", gguf.to_str().unwrap(), "--ids", ids, "--out", bad.to_str().unwrap()]);
        assert!(!ok, "--ids {ids:?} succeeded");
        assert!(stderr.contains(want), "--ids {ids:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "--ids {ids:?}: {stderr}");
        assert!(!bad.exists());
    }
    let long: Vec<String> = (0..129).map(|i| (i % 44).to_string()).collect();
    let (ok, _, stderr) = peftc(&["logits", "--model", gguf.to_str().unwrap(), "--ids", &long.join(",")]);
    assert!(!ok && stderr.contains("129 tokens exceed the model's 128 positions"), "{stderr}");
}
