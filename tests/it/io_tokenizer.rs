//! The tokenizer built from the SmolLM2 GGUF's embedded byte-level BPE must
//! reproduce the reference token ids, and agree with the tokenizer that
//! transformers built from the same file on GSM8K text.

use crate::support::io as io_support;

use std::sync::OnceLock;

use io_support::{gsm8k_dir, reference_file, smollm2_path, tiny_bpe_source};
use peftc::pretrained::gguf::GgufFile;
use peftc::pretrained::gguf::llama::tokenizer_from_gguf;
use peftc::pretrained::tokenizer::Tokenizer;
use peftc::pretrained::weights::TokenizerSource;
use serde_json::Value;

/// The SmolLM2 tokenizer, built from the GGUF metadata only (no tensors).
fn smollm2() -> &'static Tokenizer {
    static TOK: OnceLock<Tokenizer> = OnceLock::new();
    TOK.get_or_init(|| {
        let g = GgufFile::open(&smollm2_path()).unwrap();
        let source = tokenizer_from_gguf(&g).unwrap().expect("SmolLM2 GGUF has tokenizer metadata");
        Tokenizer::from_source(&source).unwrap()
    })
}

fn gsm8k_lines(split: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(gsm8k_dir().join(format!("{split}.jsonl"))).unwrap();
    text.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["question"].as_str().unwrap().to_string(), v["answer"].as_str().unwrap().to_string())
        })
        .collect()
}

#[test]
fn gguf_tokenizer_metadata() {
    let tok = smollm2();
    assert_eq!(tok.vocab_size(), 49152);
    assert_eq!(tok.eos_id(), Some(2));
    assert_eq!(tok.bos_id(), Some(1));
    assert_eq!(tok.id_to_token(2).as_deref(), Some("<|im_end|>"));
    assert_eq!(tok.token_to_id("<|endoftext|>"), Some(0));
}

#[test]
fn reference_examples_token_ids_identical() {
    let reference: Value = serde_json::from_str(&std::fs::read_to_string(reference_file("smollm2-135m-gsm8k-base.json")).unwrap()).unwrap();
    let test = gsm8k_lines("test");
    let examples = reference["examples"].as_array().unwrap();
    assert_eq!(examples.len(), 2);
    for ex in examples {
        let index = ex["test_index"].as_u64().unwrap() as usize;
        let (q, a) = &test[index];
        // Prompt format of the reference: text encoded with no special
        // tokens, then eos (id 2) appended.
        let mut ids = smollm2().encode(&format!("Question: {q}\nAnswer: {a}")).unwrap();
        ids.push(smollm2().eos_id().unwrap());
        let want: Vec<u32> = ex["token_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        assert_eq!(ids, want, "test example {index}");
        let prompt = smollm2().encode(&format!("Question: {q}\nAnswer:")).unwrap();
        assert_eq!(prompt.len() as u64, ex["prompt_tokens"].as_u64().unwrap(), "prompt length of example {index}");
        assert_eq!(&ids[..prompt.len()], &prompt[..], "the prompt's tokens are a prefix of the example's");
    }
}

#[test]
fn agrees_with_transformers_tokenizer_on_gsm8k() {
    let reference = Tokenizer::from_json_file(&reference_file("smollm2-135m-tokenizer.json")).unwrap();
    let mine = smollm2();
    let mut texts: Vec<String> = Vec::new();
    for (q, a) in gsm8k_lines("test").into_iter().take(200) {
        texts.push(format!("Question: {q}\nAnswer: {a}"));
    }
    for (q, a) in gsm8k_lines("train").into_iter().take(200) {
        texts.push(q);
        texts.push(a);
    }
    texts.push("  leading spaces, tabs\tand\r\nnewlines;  émigré café ½ ² 3.14 1,000,000 $5.00 <<2*3=6>> ".into());
    texts.push("<|im_start|>user\nHi<|im_end|>".into());
    for text in &texts {
        let got = mine.encode(text).unwrap();
        assert_eq!(got, reference.encode(text).unwrap(), "text: {text:?}");
        assert_eq!(mine.decode(&got, false).unwrap(), *text, "decode round trip");
    }
}

#[test]
fn digits_come_out_one_per_token_and_no_special_tokens_are_added() {
    let tok = smollm2();
    let ids = tok.encode("12345").unwrap();
    let pieces: Vec<String> = ids.iter().map(|&i| tok.decode(&[i], false).unwrap()).collect();
    assert_eq!(pieces, ["1", "2", "3", "4", "5"]);
    let ids = tok.encode(" 2024").unwrap();
    assert_eq!(ids.len(), 5, "a space then four digits: {ids:?}");
    assert!(!tok.encode("Hello").unwrap().contains(&2), "no eos is appended");
    assert!(tok.encode("").unwrap().is_empty());
}

#[test]
fn tiny_bpe_merges_apply_in_rank_order() {
    let tok = Tokenizer::from_source(&tiny_bpe_source(Some("smollm"))).unwrap();
    let id = |t: &str| tok.token_to_id(t).unwrap();
    // " the": Ġ+t (rank 0), h+e (rank 1), Ġt+he (rank 2) → one token.
    assert_eq!(tok.encode(" the").unwrap(), vec![id("Ġthe")]);
    assert_eq!(tok.encode("the ab").unwrap(), vec![id("t"), id("he"), id("Ġ"), id("ab")]);
    assert_eq!(tok.decode(&tok.encode("the ab").unwrap(), false).unwrap(), "the ab");
    // Control tokens are special: matched whole in text, skippable in decode.
    assert_eq!(tok.encode("<|im_end|>").unwrap(), vec![2]);
    assert_eq!(tok.decode(&[2, id("ab")], true).unwrap(), "ab");
}

#[test]
fn unsupported_tokenizers_are_clear_errors() {
    let err = Tokenizer::from_source(&tiny_bpe_source(Some("llama3"))).unwrap_err().to_string();
    assert!(err.contains("llama3") && err.contains("smollm") && err.contains("tokenizer.json"), "{err}");

    let TokenizerSource::GgufBpe { tokens, merges, token_types, .. } = tiny_bpe_source(None) else { unreachable!() };
    let spm = TokenizerSource::GgufBpe {
        model: "llama".into(),
        pre: None,
        tokens: tokens.clone(),
        merges: merges.clone(),
        token_types: token_types.clone(),
        bos_id: None,
        eos_id: None,
    };
    let err = Tokenizer::from_source(&spm).unwrap_err().to_string();
    assert!(err.contains("`llama`") && err.contains("gpt2"), "{err}");

    let mut bad_merges = merges.clone();
    bad_merges.push("Ġ zz".into());
    let bad = TokenizerSource::GgufBpe {
        model: "gpt2".into(),
        pre: None,
        tokens: tokens.clone(),
        merges: bad_merges,
        token_types: token_types.clone(),
        bos_id: None,
        eos_id: None,
    };
    let err = Tokenizer::from_source(&bad).unwrap_err().to_string();
    assert!(err.contains("merge 4") && err.contains("zz"), "{err}");

    let mut dup = tokens.clone();
    dup[10] = dup[9].clone();
    let bad = TokenizerSource::GgufBpe { model: "gpt2".into(), pre: None, tokens: dup, merges, token_types, bos_id: None, eos_id: None };
    let err = Tokenizer::from_source(&bad).unwrap_err().to_string();
    assert!(err.contains("token 10") && err.contains("duplicates"), "{err}");

    let err = Tokenizer::from_source(&TokenizerSource::Json("{not json".into())).unwrap_err().to_string();
    assert!(err.contains("invalid tokenizer.json"), "{err}");
}

#[test]
fn serialized_tokenizer_reloads_identically() {
    let json = smollm2().to_json().unwrap();
    let again = Tokenizer::from_source(&TokenizerSource::Json(json)).unwrap();
    let text = "Question: Natalia sold clips to 48 of her friends in April.\nAnswer: 48/2 = <<48/2=24>>24";
    assert_eq!(again.encode(text).unwrap(), smollm2().encode(text).unwrap());
}

#[test]
fn built_tokenizer_json_equals_the_transformers_one() {
    // Every field — normalizer, pre-tokenizer, post-processor, decoder,
    // added tokens, BPE options, vocabulary and merges — equals what
    // transformers built from the same GGUF.
    let mine: Value = serde_json::from_str(&smollm2().to_json().unwrap()).unwrap();
    let reference: Value = serde_json::from_str(&std::fs::read_to_string(reference_file("smollm2-135m-tokenizer.json")).unwrap()).unwrap();
    let (mine, reference) = (mine.as_object().unwrap(), reference.as_object().unwrap());
    let keys = |o: &serde_json::Map<String, Value>| o.keys().cloned().collect::<std::collections::BTreeSet<_>>();
    assert_eq!(keys(mine), keys(reference));
    for (k, v) in reference {
        if k == "model" {
            for (mk, mv) in v.as_object().unwrap() {
                assert!(mine["model"][mk] == *mv, "model.{mk} differs");
            }
            assert_eq!(keys(mine["model"].as_object().unwrap()), keys(v.as_object().unwrap()));
        } else {
            assert_eq!(&mine[k], v, "{k} differs");
        }
    }
}
