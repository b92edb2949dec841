//! GSM8K reading, encoding, batching and the loss helpers.

use std::path::PathBuf;

use burn::backend::NdArray;
use burn::prelude::*;
use burn::tensor::TensorData as BurnData;
use peftc::data::gsm8k::resolve_split;
use peftc::data::{Batch, DataError, Example, Framing, Gsm8kExample, encode_example, read_jsonl};
use peftc::train::fit::shuffled;

use crate::support::loss::{token_losses, token_nll};

type B = NdArray<f32>;

fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared")
}

fn reference() -> serde_json::Value {
    let p = shared().join("reference/smollm2-135m-gsm8k-base.json");
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

fn reference_tokenizer() -> tokenizers::Tokenizer {
    tokenizers::Tokenizer::from_file(shared().join("reference/smollm2-135m-tokenizer.json")).unwrap()
}

fn write_tmp(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("mini.jsonl");
    std::fs::write(&p, text).unwrap();
    (dir, p)
}

#[test]
fn reads_examples_and_skips_blank_lines() {
    let (_d, p) =
        write_tmp("{\"question\": \"1+1?\", \"answer\": \"2\\n#### 2\"}\n\n{\"question\": \"q2\", \"answer\": \"a2\", \"extra\": 5}\n");
    let ex = read_jsonl(&p).unwrap();
    assert_eq!(
        ex,
        vec![
            Gsm8kExample { question: "1+1?".into(), answer: "2\n#### 2".into() },
            Gsm8kExample { question: "q2".into(), answer: "a2".into() },
        ]
    );
}

#[test]
fn malformed_line_is_reported_with_file_and_line() {
    let (_d, p) = write_tmp("{\"question\": \"a\", \"answer\": \"b\"}\n\n{\"question\": \"a\"}\n{not json\n");
    let err = read_jsonl(&p).unwrap_err();
    match &err {
        DataError::Malformed { path, line, message } => {
            assert_eq!(path, &p);
            assert_eq!(*line, 3);
            assert!(message.contains("answer"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().starts_with(&format!("{}:3: malformed example", p.display())), "{err}");

    let (_d, p) = write_tmp("{\"question\": \"a\", \"answer\": \"b\"}\n{not json\n");
    assert!(matches!(read_jsonl(&p).unwrap_err(), DataError::Malformed { line: 2, .. }));
    let missing = p.with_file_name("nope.jsonl");
    assert!(matches!(read_jsonl(&missing).unwrap_err(), DataError::Io { .. }));
}

#[test]
fn test_split_resolves_and_has_1319_examples() {
    let p = resolve_split("gsm8k", "test").unwrap();
    assert_eq!(read_jsonl(&p).unwrap().len(), 1319);
    let err = resolve_split("gsm8k", "nosuchsplit").unwrap_err();
    assert!(err.to_string().contains("scripts/setup.sh"), "{err}");
}

#[test]
fn reference_examples_encode_to_the_reference_token_ids() {
    let r = reference();
    let tok = reference_tokenizer();
    let test = read_jsonl(&resolve_split("gsm8k", "test").unwrap()).unwrap();
    for ex in r["examples"].as_array().unwrap() {
        let i = ex["test_index"].as_u64().unwrap() as usize;
        let want: Vec<u32> = ex["token_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        let enc = encode_example(&tok, &test[i], Framing::eos_only(2), 512).unwrap();
        assert_eq!(enc.tokens, want, "example {i}");
        assert_eq!(enc.prompt_len as u64, ex["prompt_tokens"].as_u64().unwrap(), "example {i}");
        assert_eq!(*enc.tokens.last().unwrap(), 2, "eos appended");
    }
}

#[test]
fn truncation_keeps_the_first_max_len_tokens() {
    let tok = reference_tokenizer();
    let ex = Gsm8kExample { question: "What is 12 + 30?".into(), answer: "12 + 30 = <<12+30=42>>42\n#### 42".into() };
    let full = encode_example(&tok, &ex, Framing::eos_only(2), 512).unwrap();
    let p = full.prompt_len;
    assert!(p > 6 && full.tokens.len() > p + 6, "{full:?}");
    let cut = encode_example(&tok, &ex, Framing::eos_only(2), p + 3).unwrap();
    assert_eq!(cut.tokens, full.tokens[..p + 3].to_vec());
    assert_eq!((cut.prompt_len, cut.num_completion()), (p, 3));
    let tiny = encode_example(&tok, &ex, Framing::eos_only(2), p - 2).unwrap();
    assert_eq!(tiny.tokens, full.tokens[..p - 2].to_vec());
    assert_eq!(tiny.prompt_len, p - 2, "a prompt longer than max_len is cut to max_len");
    assert_eq!(tiny.num_completion(), 0);
    assert!(matches!(encode_example(&tok, &ex, Framing::eos_only(2), 1).unwrap_err(), DataError::BadParameter { .. }));
}

#[test]
fn families_with_bos_get_it_first_and_inside_the_prompt() {
    let tok = reference_tokenizer();
    let ex = Gsm8kExample { question: "What is 12 + 30?".into(), answer: "12 + 30 = <<12+30=42>>42\n#### 42".into() };
    let plain = encode_example(&tok, &ex, Framing::eos_only(2), 512).unwrap();
    let framed = encode_example(&tok, &ex, Framing { bos: Some(1), eos: 2 }, 512).unwrap();
    assert_eq!(framed.tokens, [vec![1], plain.tokens.clone()].concat());
    assert_eq!(framed.prompt_len, plain.prompt_len + 1);
    assert_eq!(framed.num_completion(), plain.num_completion());
    // A family's framing comes from its config: Gemma adds BOS, Llama does not.
    let mut config = crate::support::io::tiny_config(true);
    assert_eq!(Framing::for_model(&config), Framing::eos_only(2));
    config.arch = peftc::pretrained::family::Family::Gemma.base_arch();
    config.bos_token_id = Some(1);
    assert_eq!(Framing::for_model(&config), Framing { bos: Some(1), eos: 2 });
}

#[test]
fn batch_shifts_targets_pads_right_and_masks_the_completion() {
    let a = Example { tokens: vec![10, 11, 12, 13, 14, 2], prompt_len: 3 };
    let b = Example { tokens: vec![20, 21, 2], prompt_len: 2 };
    let ints = |t: Tensor<B, 2, Int>| t.into_data().convert::<i64>().into_vec::<i64>().unwrap();
    let floats = |t: Tensor<B, 2>| t.into_data().into_vec::<f32>().unwrap();
    let batch = Batch::<B>::new(&[&a, &b], 512, &Default::default());
    assert_eq!(batch.inputs.dims(), [2, 5]);
    assert_eq!(ints(batch.inputs.clone()), vec![10, 11, 12, 13, 14, 20, 21, 0, 0, 0]);
    assert_eq!(ints(batch.targets.clone()), vec![11, 12, 13, 14, 2, 21, 2, 0, 0, 0]);
    assert_eq!(floats(batch.mask_all.clone()), vec![1., 1., 1., 1., 1., 1., 1., 0., 0., 0.]);
    // Position t predicts tokens[t+1]; completion tokens are tokens[prompt_len..].
    assert_eq!(floats(batch.mask_completion.clone()), vec![0., 0., 1., 1., 1., 0., 1., 0., 0., 0.]);
    assert_eq!((a.num_predicted(), a.num_completion(), b.num_completion()), (5, 3, 1));
    assert_eq!((batch.tokens, batch.n_all, batch.n_completion), (9, 7, 4));
    // Cut at max_len: the first example keeps 4 tokens (3 predictions, 1 in the completion).
    let cut = Batch::<B>::new(&[&a, &b], 4, &Default::default());
    assert_eq!(cut.inputs.dims(), [2, 3]);
    assert_eq!((cut.tokens, cut.n_all, cut.n_completion), (7, 5, 2));
}

#[test]
fn epoch_order_is_a_permutation_fixed_by_seed_and_epoch() {
    let e1 = shuffled(203, 7, 1);
    assert_eq!(e1, shuffled(203, 7, 1), "same seed and epoch, same order");
    assert_ne!(e1, shuffled(203, 7, 2), "epochs differ");
    assert_ne!(e1, shuffled(203, 8, 1), "seeds differ");
    let mut all = e1.clone();
    all.sort();
    assert_eq!(all, (0..203).collect::<Vec<_>>());
    assert_ne!(e1, (0..203).collect::<Vec<_>>(), "shuffled");
}

#[test]
fn token_nll_matches_hand_computed_cross_entropy() {
    let dev = Default::default();
    let logits: Tensor<B, 3> = Tensor::from_data(BurnData::new(vec![1.0f32, 2.0, 3.0, 0.0, 0.0, 0.0], [1, 2, 3]), &dev);
    let targets: Tensor<B, 2, Int> = Tensor::from_data(BurnData::new(vec![0i64, 2], [1, 2]), &dev);
    let nll = token_nll(logits.clone(), targets.clone()).into_data().into_vec::<f32>().unwrap();
    let lse = (1f64.exp() + 2f64.exp() + 3f64.exp()).ln();
    assert!((nll[0] as f64 - (lse - 1.0)).abs() < 1e-5);
    assert!((nll[1] as f64 - 3f64.ln()).abs() < 1e-5);
    let mask: Tensor<B, 2> = Tensor::from_data(BurnData::new(vec![0.0f32, 1.0], [1, 2]), &dev);
    let (sum, count) = token_losses(logits, targets, mask);
    assert_eq!(count, 1.0);
    assert!((sum.into_scalar() as f64 - 3f64.ln()).abs() < 1e-5);
}
