//! HF directories: loading config.json + safetensors (single, sharded,
//! f32/f16/bf16), the writer, GGUF → HF round trips, and clear errors.

use crate::support::io as io_support;

use std::collections::HashMap;
use std::path::Path;

use io_support::{tiny_bpe_source, tiny_config, tiny_model};
use peftc::pretrained::gguf::GgmlType;
use peftc::pretrained::gguf::llama::gguf_writer_for;
use peftc::pretrained::hf_dir::{config_to_json, load_hf_dir, save_hf_dir, save_sharded_weights};
use peftc::pretrained::source::{load_config, load_model};
use peftc::pretrained::tokenizer::Tokenizer;
use peftc::pretrained::weights::{LoadedModel, TokenizerSource};
use safetensors::Dtype;

fn write_config(dir: &Path, model: &LoadedModel) {
    std::fs::write(dir.join("config.json"), serde_json::to_string(&config_to_json(&model.config).unwrap()).unwrap()).unwrap();
}

#[test]
fn tiny_gguf_to_hf_dir_round_trip_is_bit_identical() {
    for tied in [true, false] {
        let mut model = tiny_model(tiny_config(tied), 11);
        model.tokenizer = Some(tiny_bpe_source(Some("smollm")));
        let dir = tempfile::tempdir().unwrap();
        let gguf = dir.path().join("tiny.gguf");
        gguf_writer_for(&model, GgmlType::F32).write(&gguf).unwrap();
        let from_gguf = load_model(&gguf).unwrap();

        let hf = dir.path().join("hf");
        save_hf_dir(&from_gguf, &hf).unwrap();
        for f in ["config.json", "model.safetensors", "tokenizer.json"] {
            assert!(hf.join(f).is_file(), "{f} written");
        }
        let back = load_model(&hf).unwrap();
        assert_eq!(back.config, from_gguf.config);
        assert_eq!(back.tensors, from_gguf.tensors);
        assert_eq!(back.tensors, model.tensors);
        assert_eq!(load_config(&hf).unwrap(), from_gguf.config);
        // Also reachable by naming a file inside the directory.
        assert_eq!(load_config(&hf.join("config.json")).unwrap(), from_gguf.config);

        // The saved tokenizer.json tokenizes like the GGUF-built one.
        assert!(matches!(back.tokenizer, Some(TokenizerSource::Json(_))));
        let (a, b) = (Tokenizer::for_model(&from_gguf).unwrap(), Tokenizer::for_model(&back).unwrap());
        for text in ["the ab", " the 123", "<|im_end|>"] {
            assert_eq!(a.encode(text).unwrap(), b.encode(text).unwrap(), "{text}");
        }
        assert_eq!(b.eos_id(), Some(2));
    }
}

#[test]
fn sharded_checkpoints_load() {
    let model = tiny_model(tiny_config(false), 5);
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &model);
    save_sharded_weights(&model.tensors, dir.path(), 3).unwrap();
    assert!(dir.path().join("model-00003-of-00003.safetensors").is_file());
    assert!(!dir.path().join("model.safetensors").exists());
    let back = load_hf_dir(dir.path()).unwrap();
    assert_eq!(back.tensors, model.tensors);
    assert_eq!(back.config, model.config);
    assert!(back.tokenizer.is_none());
    assert!(!load_config(dir.path()).unwrap().tie_word_embeddings);
}

/// Write the weights with the safetensors crate's own serializer in a
/// reduced dtype, to check the reader against an independent writer.
fn write_with_dtype(dir: &Path, model: &LoadedModel, dtype: Dtype) {
    let encoded: Vec<(String, Vec<usize>, Vec<u8>)> = model
        .tensors
        .iter()
        .map(|(n, t)| {
            let bytes = match dtype {
                Dtype::F16 => t.data.iter().flat_map(|v| half::f16::from_f32(*v).to_le_bytes()).collect(),
                Dtype::BF16 => t.data.iter().flat_map(|v| half::bf16::from_f32(*v).to_le_bytes()).collect(),
                _ => t.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            };
            (n.clone(), t.shape.clone(), bytes)
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> =
        encoded.iter().map(|(n, s, b)| (n.clone(), safetensors::tensor::TensorView::new(dtype, s.clone(), b).unwrap())).collect();
    let bytes = safetensors::serialize(views, None::<HashMap<String, String>>).unwrap();
    std::fs::write(dir.join("model.safetensors"), bytes).unwrap();
}

#[test]
fn f16_and_bf16_weights_load_to_f32() {
    let model = tiny_model(tiny_config(true), 9);
    for dtype in [Dtype::F16, Dtype::BF16, Dtype::F32] {
        let dir = tempfile::tempdir().unwrap();
        write_config(dir.path(), &model);
        write_with_dtype(dir.path(), &model, dtype);
        let back = load_hf_dir(dir.path()).unwrap();
        for (name, t) in &model.tensors {
            let got = &back.tensors[name];
            assert_eq!(got.shape, t.shape);
            for (a, b) in got.data.iter().zip(&t.data) {
                let want = match dtype {
                    // The fixture values are exact in f16; bf16 keeps 8 bits.
                    Dtype::BF16 => half::bf16::from_f32(*b).to_f32(),
                    _ => *b,
                };
                assert_eq!(*a, want, "{name} {dtype:?}");
            }
        }
    }
}

#[test]
fn untied_config_without_lm_head_is_treated_as_tied() {
    let model = tiny_model(tiny_config(true), 2);
    let dir = tempfile::tempdir().unwrap();
    let mut untied = model.config.clone();
    untied.tie_word_embeddings = false;
    let json = config_to_json(&untied).unwrap();
    std::fs::write(dir.path().join("config.json"), json.to_string()).unwrap();
    std::fs::write(dir.path().join("model.safetensors"), peftc::pretrained::hf_dir::safetensors_bytes(&model.tensors).unwrap()).unwrap();
    assert!(load_hf_dir(dir.path()).unwrap().config.tie_word_embeddings);
    assert!(load_config(dir.path()).unwrap().tie_word_embeddings);
}

#[test]
fn bad_directories_are_clear_errors() {
    let model = tiny_model(tiny_config(true), 1);
    let err_of = |dir: &Path| format!("{:#}", load_model(dir).unwrap_err());

    let dir = tempfile::tempdir().unwrap();
    let err = err_of(dir.path());
    assert!(err.contains("config.json"), "{err}");

    write_config(dir.path(), &model);
    let err = err_of(dir.path());
    assert!(err.contains("neither model.safetensors nor model.safetensors.index.json"), "{err}");

    // A tensor missing.
    let mut partial = model.tensors.clone();
    partial.remove("model.layers.1.mlp.up_proj.weight");
    std::fs::write(dir.path().join("model.safetensors"), peftc::pretrained::hf_dir::safetensors_bytes(&partial).unwrap()).unwrap();
    let err = err_of(dir.path());
    assert!(err.contains("missing tensor `model.layers.1.mlp.up_proj.weight`"), "{err}");

    // A tensor with the wrong shape.
    let mut wrong = model.tensors.clone();
    wrong.get_mut("model.norm.weight").unwrap().shape = vec![4, 8];
    std::fs::write(dir.path().join("model.safetensors"), peftc::pretrained::hf_dir::safetensors_bytes(&wrong).unwrap()).unwrap();
    let err = err_of(dir.path());
    assert!(err.contains("model.norm.weight") && err.contains("[4, 8]"), "{err}");

    // Garbage weights file.
    std::fs::write(dir.path().join("model.safetensors"), b"not safetensors").unwrap();
    let err = err_of(dir.path());
    assert!(err.contains("invalid safetensors"), "{err}");

    // An integer tensor.
    let ints = vec![0u8; 4 * 32];
    let view = safetensors::tensor::TensorView::new(Dtype::I32, vec![32], &ints).unwrap();
    let bytes = safetensors::serialize([("model.norm.weight", view)], None::<HashMap<String, String>>).unwrap();
    std::fs::write(dir.path().join("model.safetensors"), bytes).unwrap();
    let err = err_of(dir.path());
    assert!(err.contains("I32") && err.contains("F32, F16, BF16"), "{err}");

    // Unsupported architecture and bad JSON.
    std::fs::write(dir.path().join("config.json"), r#"{"model_type": "gpt_neox", "vocab_size": 10}"#).unwrap();
    let err = err_of(dir.path());
    assert!(err.contains("gpt_neox"), "{err}");
    std::fs::write(dir.path().join("config.json"), "{").unwrap();
    let err = err_of(dir.path());
    assert!(err.contains("parsing") && err.contains("config.json"), "{err}");
    std::fs::write(dir.path().join("config.json"), r#"{"model_type": "llama", "hidden_size": "big"}"#).unwrap();
    let err = err_of(dir.path());
    assert!(err.contains("hidden_size"), "{err}");

    let mut huge = config_to_json(&model.config).unwrap();
    huge["num_hidden_layers"] = serde_json::json!(1_000_000_000_000u64);
    std::fs::write(dir.path().join("config.json"), huge.to_string()).unwrap();
    let err = err_of(dir.path());
    assert!(err.contains("num_layers = 1000000000000"), "{err}");

    // The writer refuses an inconsistent model.
    let mut broken = model.clone();
    broken.tensors.remove("model.norm.weight");
    let err = format!("{:#}", save_hf_dir(&broken, &dir.path().join("out")).unwrap_err());
    assert!(err.contains("model.norm.weight"), "{err}");
}
