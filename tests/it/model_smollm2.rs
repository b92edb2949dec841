//! The real SmolLM2-135M-Instruct (Q4_1 GGUF) against the reference numbers
//! measured with HF transformers (`shared/reference/smollm2-135m-gsm8k-base.json`):
//! tokenization, top-5 logits at reference positions (proves the GGUF
//! un-permutation and the rotate-half RoPE), per-example losses, a GGUF →
//! HF-safetensors round trip, and (slow) the first-32-example test loss.

use std::path::PathBuf;

use burn::backend::NdArray;
use burn::prelude::*;
use peftc::data::gsm8k::{encode_all, resolve_split};
use peftc::data::{Example, read_jsonl};
use peftc::train::evaluate::{EvalPlan, evaluate};

use crate::support::reference::{ReferenceExample, check_reference, ids_of};
use peftc::model::Llama;
use peftc::model::hook::NoAdapter;
use peftc::pretrained::tokenizer::Tokenizer;
use peftc::pretrained::weights::LoadedModel;
use serde_json::Value;

type B = NdArray<f32>;

fn model_path() -> PathBuf {
    let p = std::env::var_os("PEFTC_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/SmolLM2-135M-Instruct.Q4_1.gguf"));
    assert!(p.exists(), "model {} not found: run scripts/setup.sh (or set PEFTC_MODEL)", p.display());
    p
}

fn load() -> LoadedModel {
    peftc::pretrained::source::load_model(&model_path()).expect("load SmolLM2 GGUF")
}

fn reference() -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/smollm2-135m-gsm8k-base.json");
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

fn test_examples(tok: &Tokenizer, eos: u32, n: usize) -> Vec<Example> {
    let mut ex = read_jsonl(&resolve_split("gsm8k", "test").unwrap()).unwrap();
    ex.truncate(n);
    encode_all(tok.inner(), &ex, peftc::data::Framing::eos_only(eos), 512).unwrap()
}

#[test]
fn gguf_tokenizer_reproduces_reference_token_ids() {
    let loaded = load();
    let tok = Tokenizer::for_model(&loaded).unwrap();
    let r = reference();
    let enc = test_examples(&tok, loaded.config.eos_token_id, 2);
    for ex in r["examples"].as_array().unwrap() {
        let i = ex["test_index"].as_u64().unwrap() as usize;
        assert_eq!(enc[i].tokens, ids_of(&ex["token_ids"]), "token ids of test example {i}");
        assert_eq!(enc[i].prompt_len as u64, ex["prompt_tokens"].as_u64().unwrap());
    }
}

/// Both reference examples in one padded batch: top-5 logits within 1e-2 at
/// the reference positions, and per-example losses within 1e-3 bits.
#[test]
fn reference_logits_and_losses_match_transformers() {
    let loaded = load();
    let model: Llama<B> = Llama::from_loaded(&loaded, &Default::default()).unwrap();
    let refs = ReferenceExample::all_from_json(&reference(), |p| {
        let ids = ids_of(&p["top5_ids"]).into_iter().map(|x| x as usize);
        ids.zip(p["top5_logits"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap())).collect()
    });
    check_reference(&model, &refs, 1e-2, 1e-3);
}

#[test]
fn gguf_to_hf_safetensors_round_trip_gives_identical_logits() {
    let loaded = load();
    let dir = tempfile::tempdir().unwrap();
    peftc::pretrained::hf_dir::save_hf_dir(&loaded, dir.path()).unwrap();
    let reloaded = peftc::pretrained::source::load_model(dir.path()).unwrap();
    assert_eq!(reloaded.config, loaded.config);
    let dev = Default::default();
    let tok = Tokenizer::for_model(&reloaded).unwrap();
    let ex = &test_examples(&tok, reloaded.config.eos_token_id, 2)[1];
    let ids: Vec<i64> = ex.tokens[..24].iter().map(|&i| i as i64).collect();
    let input = || Tensor::<B, 2, Int>::from_data(burn::tensor::TensorData::new(ids.clone(), [1, 24]), &dev);
    let pad = || Tensor::<B, 2, Bool>::from_data(burn::tensor::TensorData::new(vec![true; 24], [1, 24]), &dev);
    let a = Llama::<B>::from_loaded(&loaded, &dev).unwrap().forward(input(), pad(), &NoAdapter);
    drop(loaded);
    let b = Llama::<B>::from_loaded(&reloaded, &dev).unwrap().forward(input(), pad(), &NoAdapter);
    assert_eq!(a.into_data().into_vec::<f32>().unwrap(), b.into_data().into_vec::<f32>().unwrap());
}

#[test]
#[ignore = "slow: 32 real-model examples (~1-2 min on 2 free cores)"]
fn slow_first_32_test_examples_match_reference_loss() {
    let loaded = load();
    let tok = Tokenizer::for_model(&loaded).unwrap();
    let enc = test_examples(&tok, loaded.config.eos_token_id, 32);
    let dev = Default::default();
    let model: Llama<B> = Llama::from_loaded(&loaded, &dev).unwrap();
    let report = evaluate(&model, &NoAdapter, &enc, EvalPlan { micro_tokens: 2048, max_len: 512, workers: 2 }, &dev, |_, _| {});
    let r = reference();
    let (all, comp) = (report.bits_all(), report.bits_completion());
    println!("first 32: {all:.5} / {comp:.5} bits, {:.1} tokens/s", report.tokens_per_second());
    assert!((all - r["first32_test_bits_all"].as_f64().unwrap()).abs() < 0.002, "{all}");
    assert!((comp - r["first32_test_bits_completion"].as_f64().unwrap()).abs() < 0.002, "{comp}");
}
