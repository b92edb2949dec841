//! The tokenizers built from a GGUF's embedded vocabulary — SmolLM2's
//! byte-level BPE and Gemma 3's SentencePiece — must reproduce the token
//! ids transformers produces from the same file on GSM8K text.

use crate::support::io as io_support;

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Instant;

use io_support::{gsm8k_dir, manifest_dir, reference_file, smollm2_path, tiny_bpe_source, tiny_config, tiny_model, tiny_spm_source};
use peftc::pretrained::gguf::llama::{gguf_writer_for, tokenizer_from_gguf};
use peftc::pretrained::gguf::{GgmlType, GgufFile, GgufWriter};
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

/// transformers' ids for the first 100 GSM8K test examples, from
/// `tests/fixtures/reference/tokenizer-ids-<name>.json`
/// (scripts/tokenizer-reference.py): `(text, ids)`, the text being
/// `Question: {q}\nAnswer: {a}`, encoded with no special tokens.
fn reference_ids(name: &str) -> Vec<(String, Vec<u32>)> {
    let path = manifest_dir().join(format!("tests/fixtures/reference/tokenizer-ids-{name}.json"));
    let reference: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let test = gsm8k_lines("test");
    let examples = reference["examples"].as_array().unwrap();
    assert_eq!(examples.len(), 100, "{}", path.display());
    examples
        .iter()
        .map(|ex| {
            let (q, a) = &test[ex["index"].as_u64().unwrap() as usize];
            let ids = ex["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
            (format!("Question: {q}\nAnswer: {a}"), ids)
        })
        .collect()
}

#[test]
fn smollm2_ids_equal_transformers_on_100_gsm8k_examples() {
    for (i, (text, want)) in reference_ids("smollm2").iter().enumerate() {
        assert_eq!(&smollm2().encode(text).unwrap(), want, "example {i}: {text:?}");
    }
}

fn gemma3_path() -> PathBuf {
    let path = manifest_dir().join("models/gemma-3-270m-q4_k_m.gguf");
    assert!(path.is_file(), "{} not found — run scripts/setup.sh --model gemma3-270m", path.display());
    path
}

#[test]
#[ignore = "slow: needs scripts/setup.sh --model gemma3-270m"]
fn gemma3_ids_equal_transformers_on_100_gsm8k_examples() {
    let g = GgufFile::open(&gemma3_path()).unwrap();
    let source = tokenizer_from_gguf(&g).unwrap().expect("the Gemma 3 GGUF has tokenizer metadata");
    assert!(matches!(source, TokenizerSource::GgufSentencePiece { ref architecture, .. } if architecture == "gemma3"));
    let start = Instant::now();
    let tok = Tokenizer::from_source(&source).unwrap();
    eprintln!("built the Gemma 3 tokenizer (262,144 tokens) in {:.2} s", start.elapsed().as_secs_f64());
    assert_eq!(tok.vocab_size(), 262_144);
    assert_eq!((tok.bos_id(), tok.eos_id()), (Some(2), Some(1)));
    assert_eq!(tok.token_to_id("<start_of_turn>"), Some(105));
    let merges = serde_json::from_str::<Value>(&tok.to_json().unwrap()).unwrap()["model"]["merges"].as_array().unwrap().len();
    assert_eq!(merges, 514_906, "transformers derives 514,906 merges from the vocabulary");
    for (i, (text, want)) in reference_ids("gemma3").iter().enumerate() {
        let ids = tok.encode(text).unwrap();
        assert_eq!(&ids, want, "example {i}: {text:?}");
        assert_eq!(tok.decode(&ids, false).unwrap(), *text, "decode round trip of example {i}");
    }
}

#[test]
fn tiny_sentencepiece_json_follows_transformers() {
    let tok = Tokenizer::from_source(&tiny_spm_source()).unwrap();
    let json: Value = serde_json::from_str(&tok.to_json().unwrap()).unwrap();
    // Every split of a token into two vocabulary tokens, by merged id, the
    // longer left part first; "  " and "   " are spelled "▁▁", "▁▁▁".
    let want = [
        ["▁", "▁"],
        ["h", "e"],
        ["▁", "t"],
        ["▁t", "he"],
        ["l", "l"],
        ["he", "ll"],
        ["hell", "o"],
        ["a", "b"],
        ["▁▁", "▁"],
        ["▁", "▁▁"],
        ["b", "c"],
    ];
    assert_eq!(json["model"]["merges"], serde_json::json!(want));
    assert_eq!(json["model"]["vocab"]["▁▁"], 6);
    assert_eq!(json["model"]["unk_token"], "<unk>");
    // Added tokens: the control ones (special), <unk> (type unknown, but
    // the file's unknown id and a GemmaTokenizer name: special) and "\n"
    // (user-defined, not special); not the space runs.
    let added = |source: &TokenizerSource| -> Vec<(u64, bool)> {
        let json: Value = serde_json::from_str(&Tokenizer::from_source(source).unwrap().to_json().unwrap()).unwrap();
        json["added_tokens"].as_array().unwrap().iter().map(|a| (a["id"].as_u64().unwrap(), a["special"].as_bool().unwrap())).collect()
    };
    assert_eq!(added(&tiny_spm_source()), [(0, true), (1, true), (2, true), (3, true), (4, true), (5, false)]);
    assert_eq!(json["post_processor"], Value::Null, "no BOS is added by the tokenizer");
    // As transformers: a user-defined token stays non-special even when
    // named special (<pad>); a normal token the file names special (bos
    // "ab") is special; <unk> named by neither id nor type is special by
    // its name alone.
    let TokenizerSource::GgufSentencePiece { tokens, mut token_types, .. } = tiny_spm_source() else { unreachable!() };
    token_types[0] = 4;
    let renamed = TokenizerSource::GgufSentencePiece {
        architecture: "gemma".into(),
        tokens,
        token_types,
        bos_id: Some(25),
        eos_id: None,
        unk_id: None,
        pad_id: Some(0),
        add_space_prefix: false,
    };
    assert_eq!(added(&renamed), [(0, false), (1, true), (2, true), (3, true), (4, true), (5, false), (25, true)]);
}

#[test]
fn tiny_sentencepiece_encodes_and_decodes_by_hand() {
    let tok = Tokenizer::from_source(&tiny_spm_source()).unwrap();
    assert_eq!((tok.vocab_size(), tok.bos_id(), tok.eos_id()), (28, Some(2), Some(1)));
    let cases: &[(&str, &[u32])] = &[
        // "hello▁the": h+e (rank 1) at both ends, ▁+t (2), ▁t+he (3), l+l
        // (4), he+ll (5), hell+o (6) → hello, ▁the. No prefix space.
        ("hello the", &[24, 21]),
        // A leading space is the text's own.
        (" the", &[21]),
        // "the" alone: t he (no "the" token).
        ("the", &[18, 19]),
        // Double spaces: ▁+▁ (rank 0) → ▁▁ (id 6, the respelled "  ").
        ("a  b", &[11, 6, 12]),
        // Three: ▁+▁ leftmost, then ▁▁+▁ → ▁▁▁ (id 26) — the space runs
        // go through BPE, they are not matched whole like added tokens.
        ("a   b", &[11, 26, 12]),
        // Four: ▁+▁ twice (leftmost first); ▁▁▁▁ is no token.
        ("a    b", &[11, 6, 6, 12]),
        // a+b (rank 7) before b+c (rank 10); bc when a comes after.
        ("abc", &[25, 13]),
        ("bca", &[27, 11]),
        // Byte fallback: é (not in the vocabulary) is <0xC3> <0xA9>, ! is
        // <0x21>.
        ("cé!", &[13, 7, 8, 9]),
        // Added tokens match whole, before the model: the control
        // <start_of_turn> and the user-defined "\n".
        ("<start_of_turn>hello\n\nthe", &[4, 24, 5, 5, 18, 19]),
        ("ab<bos>", &[25, 2]),
    ];
    for &(text, want) in cases {
        let ids = tok.encode(text).unwrap();
        assert_eq!(ids, want, "{text:?}");
        assert_eq!(tok.decode(&ids, false).unwrap(), text, "decode {want:?}");
    }
    // z has no byte token (0x7A): unknown, consecutive unknowns fused.
    assert_eq!(tok.encode("azzb").unwrap(), [11, 3, 12]);
    assert_eq!(tok.decode(&[11, 3, 12], false).unwrap(), "a<unk>b");
    // Control tokens are special (skippable), user-defined ones are not.
    assert_eq!(tok.decode(&[2, 24, 5], true).unwrap(), "hello\n");
    assert_eq!(tok.encode("a<unk>").unwrap(), [11, 3], "<unk> is a special added token");

    // tokenizer.json (as save_hf_dir writes it) reloads to the same ids.
    let again = Tokenizer::from_source(&TokenizerSource::Json(tok.to_json().unwrap())).unwrap();
    for &(text, want) in cases {
        assert_eq!(again.encode(text).unwrap(), want, "reloaded: {text:?}");
    }
}

#[test]
fn sentencepiece_source_round_trips_through_a_gguf() {
    let mut model = tiny_model(tiny_config(true), 7);
    model.config.architecture = "gemma3".into();
    model.config.arch = peftc::pretrained::family::Family::Gemma3.base_arch();
    // The writer takes the special ids from the config.
    (model.config.bos_token_id, model.config.eos_token_id) = (Some(2), 1);
    model.tokenizer = Some(tiny_spm_source());
    let g = GgufFile::from_bytes(gguf_writer_for(&model, GgmlType::F32).to_bytes()).unwrap();
    assert_eq!(tokenizer_from_gguf(&g).unwrap(), Some(tiny_spm_source()));
}

#[test]
fn unsupported_gguf_vocabularies_are_clear_errors() {
    // tokenizer_from_gguf refuses a model it cannot build, naming those it can.
    let mut w = GgufWriter::new();
    w.meta_str("general.architecture", "t5").meta_str("tokenizer.ggml.model", "t5").meta_str_array("tokenizer.ggml.tokens", &["a"]);
    let err = tokenizer_from_gguf(&GgufFile::from_bytes(w.to_bytes()).unwrap()).unwrap_err().to_string();
    assert!(err.contains("`tokenizer.ggml.model = t5`") && err.contains("gpt2, llama") && err.contains("tokenizer.json"), "{err}");

    let TokenizerSource::GgufSentencePiece { tokens, token_types, .. } = tiny_spm_source() else { unreachable!() };
    let spm = |architecture: &str, tokens: &[String], add_space_prefix: bool| TokenizerSource::GgufSentencePiece {
        architecture: architecture.into(),
        tokens: tokens.to_vec(),
        token_types: token_types.clone(),
        bos_id: None,
        eos_id: None,
        unk_id: None,
        pad_id: None,
        add_space_prefix,
    };
    // Other architectures' SentencePiece vocabularies rank merges by score.
    let err = Tokenizer::from_source(&spm("llama", &tokens, false)).unwrap_err().to_string();
    assert!(err.contains("`llama`") && err.contains("gemma3") && err.contains("tokenizer.json"), "{err}");
    let err = Tokenizer::from_source(&spm("gemma", &tokens, true)).unwrap_err().to_string();
    assert!(err.contains("add_space_prefix = true"), "{err}");
    // "▁▁" as well as "  " (which the vocabulary spells "▁▁").
    let mut dup = tokens.clone();
    dup[27] = "▁▁".into();
    let err = Tokenizer::from_source(&spm("gemma2", &dup, false)).unwrap_err().to_string();
    assert!(err.contains("token 27") && err.contains("duplicates token 6"), "{err}");
}
