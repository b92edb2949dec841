//! The GGUF reader on files written by the tests: metadata, tensors,
//! alignment, the Llama mapping (names, layout, q/k un-permutation, config),
//! and clear errors — never panics — for bad, truncated or unsupported files.

use crate::support::io as io_support;

use io_support::{tiny_bpe_source, tiny_config, tiny_model};
use peftc::pretrained::gguf::llama::{gguf_writer_for, permute_rows, unpermute_rows};
use peftc::pretrained::gguf::{GgmlType, GgufError, GgufFile, GgufWriter, MetaValue, load_gguf, loaded_from_gguf};
use peftc::pretrained::source::{load_config, load_model};
use peftc::pretrained::weights::TokenizerSource;

fn small_file() -> GgufWriter {
    let mut w = GgufWriter::new();
    w.meta_str("general.architecture", "toy")
        .meta("some.u8", MetaValue::U8(7))
        .meta("some.i64", MetaValue::I64(-5))
        .meta("some.f64", MetaValue::F64(0.125))
        .meta("some.bool", MetaValue::Bool(true))
        .meta("some.ints", MetaValue::Array(5, vec![MetaValue::I32(-1), MetaValue::I32(2)]))
        .meta_str_array("some.strings", &["a", "β", ""]);
    // A 2x3 f32 matrix (outermost first) and a 32-value Q8_0 vector.
    w.tensor("m", &[2, 3], GgmlType::F32, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let v: Vec<f32> = (0..32).map(|i| i as f32 - 16.0).collect();
    w.tensor("v", &[32], GgmlType::Q8_0, &v);
    w
}

#[test]
fn reads_metadata_and_tensors_it_wrote() {
    let g = GgufFile::from_bytes(small_file().to_bytes()).unwrap();
    assert_eq!(g.version(), 3);
    assert_eq!(g.alignment(), 32);
    assert_eq!(g.data_offset() % 32, 0);
    assert_eq!(g.get_str("general.architecture").unwrap(), "toy");
    assert_eq!(g.get("some.u8"), Some(&MetaValue::U8(7)));
    assert_eq!(g.get("some.i64").unwrap().as_i64(), Some(-5));
    assert_eq!(g.get_f64("some.f64").unwrap(), 0.125);
    assert_eq!(g.get("some.bool").unwrap().as_bool(), Some(true));
    assert_eq!(g.get("some.ints"), Some(&MetaValue::Array(5, vec![MetaValue::I32(-1), MetaValue::I32(2)])));
    assert_eq!(g.get_str_array("some.strings").unwrap(), vec!["a", "β", ""]);
    let keys: Vec<&str> = g.metadata().iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys[0], "general.architecture", "metadata keeps file order");

    let m = g.tensor_info("m").unwrap();
    assert_eq!(m.dims, vec![3, 2], "ggml stores the innermost dimension first");
    assert_eq!(m.shape(), vec![2, 3]);
    let t = g.dequantize("m").unwrap();
    assert_eq!((t.shape, t.data), (vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
    let v = g.tensor_info("v").unwrap();
    assert_eq!(v.offset % 32, 0);
    assert_eq!(v.ty, GgmlType::Q8_0);
    // Q8_0 with d = 16/127: error within half a step plus f16 rounding of d.
    let got = g.dequantize("v").unwrap().data;
    for (i, x) in got.iter().enumerate() {
        assert!((x - (i as f32 - 16.0)).abs() < 0.08, "{i}: {x}");
    }
    // Wrong key types are errors naming the key.
    let err = g.get_str("some.u8").unwrap_err().to_string();
    assert!(err.contains("some.u8") && err.contains("u8") && err.contains("string"), "{err}");
    assert!(matches!(g.get_u64("missing.key"), Err(GgufError::MissingKey { .. })));
}

#[test]
fn custom_alignment_is_honoured() {
    let mut w = small_file();
    w.alignment(64);
    let g = GgufFile::from_bytes(w.to_bytes()).unwrap();
    assert_eq!(g.alignment(), 64);
    assert_eq!(g.data_offset() % 64, 0);
    assert_eq!(g.tensor_info("v").unwrap().offset % 64, 0);
    assert_eq!(g.dequantize("m").unwrap().data, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
}

#[test]
fn bad_magic_version_and_endianness() {
    let mut bytes = small_file().to_bytes();
    bytes[3] = b'X';
    let err = GgufFile::from_bytes(bytes.clone()).unwrap_err();
    assert!(matches!(err, GgufError::BadMagic { .. }), "{err}");
    assert!(err.to_string().contains("not a GGUF file"));

    let mut bytes = small_file().to_bytes();
    bytes[4..8].copy_from_slice(&1u32.to_le_bytes());
    assert!(matches!(GgufFile::from_bytes(bytes).unwrap_err(), GgufError::UnsupportedVersion { version: 1 }));

    let mut bytes = small_file().to_bytes();
    bytes[4..8].copy_from_slice(&3u32.to_be_bytes());
    assert!(matches!(GgufFile::from_bytes(bytes).unwrap_err(), GgufError::BigEndian { .. }));

    assert!(matches!(GgufFile::from_bytes(Vec::new()).unwrap_err(), GgufError::BadMagic { .. }));
    assert!(matches!(GgufFile::from_bytes(b"GGUF".to_vec()).unwrap_err(), GgufError::Truncated { .. }));
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    let bytes = small_file().to_bytes();
    let g = GgufFile::from_bytes(bytes.clone()).unwrap();
    let v = g.tensor_info("v").unwrap();
    let data_end = (g.data_offset() + v.offset + 34) as usize;
    for len in 0..data_end {
        let err = GgufFile::from_bytes(bytes[..len].to_vec())
            .err()
            .unwrap_or_else(|| panic!("a file cut at {len} of {} bytes opened", bytes.len()));
        if len as u64 >= g.data_offset() {
            assert!(matches!(err, GgufError::TensorOutOfBounds { .. }), "cut at {len}: {err}");
            assert!(err.to_string().contains("outside the file"), "{err}");
        } else if len >= 4 {
            assert!(
                matches!(err, GgufError::Truncated { .. } | GgufError::Corrupt { .. } | GgufError::TensorOutOfBounds { .. }),
                "cut at {len}: {err}"
            );
        }
    }
    // The tail padding after the last tensor is not needed.
    assert!(GgufFile::from_bytes(bytes[..data_end].to_vec()).is_ok());
}

#[test]
fn corrupted_bytes_never_panic() {
    // Deterministic single-byte corruption of the whole header region with
    // several values: the reader must return Ok or Err, never panic or
    // allocate absurdly.
    let bytes = small_file().to_bytes();
    let g = GgufFile::from_bytes(bytes.clone()).unwrap();
    for pos in 0..g.data_offset() as usize {
        for val in [0x00u8, 0x01, 0x7F, 0x80, 0xFF] {
            let mut b = bytes.clone();
            b[pos] = val;
            if let Ok(g) = GgufFile::from_bytes(b) {
                for t in g.tensors().to_vec() {
                    let _ = g.dequantize(&t.name);
                }
            }
        }
    }
}

#[test]
fn hostile_counts_and_types_are_reported() {
    let base = small_file().to_bytes();
    // Tensor count 2^40.
    let mut b = base.clone();
    b[8..16].copy_from_slice(&(1u64 << 40).to_le_bytes());
    assert!(matches!(GgufFile::from_bytes(b).unwrap_err(), GgufError::Corrupt { .. }));
    // Metadata count 2^60.
    let mut b = base.clone();
    b[16..24].copy_from_slice(&(1u64 << 60).to_le_bytes());
    assert!(matches!(GgufFile::from_bytes(b).unwrap_err(), GgufError::Corrupt { .. }));

    // Unknown value type for the first key (right after its name).
    let key_len = "general.architecture".len();
    let ty_at = 24 + 8 + key_len;
    let mut b = base.clone();
    b[ty_at..ty_at + 4].copy_from_slice(&99u32.to_le_bytes());
    let err = GgufFile::from_bytes(b).unwrap_err();
    assert!(matches!(&err, GgufError::UnknownValueType { key, ty: 99, .. } if key == "general.architecture"), "{err}");

    // A string length of 2^62.
    let mut b = base.clone();
    b[ty_at + 4..ty_at + 12].copy_from_slice(&(1u64 << 62).to_le_bytes());
    let err = GgufFile::from_bytes(b).unwrap_err();
    assert!(matches!(err, GgufError::Truncated { .. }), "{err}");

    // A huge array length must not allocate: an array of 2^50 u32.
    let mut w = GgufWriter::new();
    w.meta("arr", MetaValue::Array(4, vec![MetaValue::U32(1)]));
    let mut b = w.to_bytes();
    let len_at = 24 + 8 + 3 + 4 + 4;
    b[len_at..len_at + 8].copy_from_slice(&(1u64 << 50).to_le_bytes());
    let err = GgufFile::from_bytes(b).unwrap_err();
    assert!(matches!(err, GgufError::Truncated { .. }), "{err}");
    assert!(err.to_string().contains("`arr`"), "{err}");
}

#[test]
fn duplicate_names_and_misaligned_offsets() {
    let mut w = GgufWriter::new();
    w.meta_u32("k", 1).meta_u32("k", 2);
    assert!(matches!(GgufFile::from_bytes(w.to_bytes()).unwrap_err(), GgufError::DuplicateKey { .. }));

    let mut w = GgufWriter::new();
    w.tensor("t", &[4], GgmlType::F32, &[0.0; 4]).tensor("t", &[4], GgmlType::F32, &[0.0; 4]);
    assert!(matches!(GgufFile::from_bytes(w.to_bytes()).unwrap_err(), GgufError::DuplicateTensor { .. }));

    // Misalign the offset of the second tensor (the last 8 bytes of its info).
    let mut w = GgufWriter::new();
    w.tensor("a", &[4], GgmlType::F32, &[0.0; 4]).tensor("b", &[4], GgmlType::F32, &[0.0; 4]);
    let mut b = w.to_bytes();
    let g = GgufFile::from_bytes(b.clone()).unwrap();
    let info_end = 24 + (8 + 1 + 4 + 8 + 4 + 8) * 2;
    assert!(info_end as u64 <= g.data_offset());
    b[info_end - 8..info_end].copy_from_slice(&33u64.to_le_bytes());
    let err = GgufFile::from_bytes(b).unwrap_err();
    assert!(matches!(err, GgufError::Corrupt { .. }) && err.to_string().contains("alignment"), "{err}");
}

#[test]
fn unsupported_tensor_types_fail_only_when_loaded() {
    let mut w = GgufWriter::new();
    // Q3_K (known size, 110 bytes per 256) and an id ggml does not define.
    w.tensor_raw("k3", &[256], GgmlType::from_id(11), vec![0u8; 110]);
    w.tensor_raw("weird", &[8], GgmlType::from_id(77), vec![0u8; 8]);
    let g = GgufFile::from_bytes(w.to_bytes()).unwrap();
    let err = g.dequantize("k3").unwrap_err();
    assert!(matches!(err, GgufError::UnsupportedTensorType { ty: 11, .. }), "{err}");
    assert!(err.to_string().contains("`k3`") && err.to_string().contains("Q3_K"), "{err}");
    let err = g.dequantize("weird").unwrap_err();
    assert!(matches!(err, GgufError::UnsupportedTensorType { ty: 77, .. }), "{err}");
    assert!(g.dequantize_all(2).is_err());
    assert!(matches!(g.dequantize("nope").unwrap_err(), GgufError::MissingTensor { .. }));
}

#[test]
fn unpermute_matches_llama_cpp_permute_by_hand() {
    // llama.cpp: w.reshape(n_head, 2, hd/2, cols).swapaxes(1, 2).reshape(w.shape)
    // maps HF rows [0 1 2 | 3 4 5] (head_dim 6, one head) to [0 3 1 4 2 5].
    let gguf: Vec<f32> = [0., 3., 1., 4., 2., 5.].to_vec();
    assert_eq!(unpermute_rows(&gguf, 1, 1), vec![0., 1., 2., 3., 4., 5.]);
    // Two heads of 4, two columns: HF rows r0..r7 → [r0 r2 r1 r3 r4 r6 r5 r7].
    let hf: Vec<f32> = (0..16).map(|i| i as f32).collect();
    let want_gguf: Vec<f32> = [0, 2, 1, 3, 4, 6, 5, 7].iter().flat_map(|&r| [2.0 * r as f32, 2.0 * r as f32 + 1.0]).collect();
    assert_eq!(permute_rows(&hf, 2, 2), want_gguf);
    assert_eq!(unpermute_rows(&want_gguf, 2, 2), hf);
}

fn write_tiny(ty: GgmlType, tied: bool, with_tokenizer: bool) -> (peftc::pretrained::weights::LoadedModel, Vec<u8>) {
    let mut model = tiny_model(tiny_config(tied), 7);
    if with_tokenizer {
        model.tokenizer = Some(tiny_bpe_source(Some("smollm")));
    }
    let bytes = gguf_writer_for(&model, ty).to_bytes();
    (model, bytes)
}

#[test]
fn tiny_llama_gguf_loads_to_hf_names_layout_and_config() {
    for tied in [true, false] {
        let (model, bytes) = write_tiny(GgmlType::F32, tied, true);
        let g = GgufFile::from_bytes(bytes).unwrap();
        // In the file, q is permuted and stored with ggml dims.
        let q = g.tensor_info("blk.1.attn_q.weight").unwrap();
        assert_eq!(q.dims, vec![32, 32]);
        let k = g.tensor_info("blk.0.attn_k.weight").unwrap();
        assert_eq!(k.dims, vec![32, 16], "k is [kv_heads * head_dim = 16, hidden 32] in HF order");
        assert_eq!(g.tensor_info("output.weight").is_none(), tied);

        let loaded = loaded_from_gguf(&g, 2).unwrap();
        assert_eq!(loaded.config, model.config);
        assert_eq!(loaded.tensors.len(), model.tensors.len());
        for (name, t) in &model.tensors {
            assert_eq!(loaded.tensors.get(name), Some(t), "{name}");
        }
        // The raw file rows of q differ from HF's (the permutation is real).
        let raw = g.dequantize("blk.1.attn_q.weight").unwrap();
        assert_ne!(raw.data, model.tensors["model.layers.1.self_attn.q_proj.weight"].data);
        match loaded.tokenizer {
            Some(TokenizerSource::GgufBpe { ref pre, ref tokens, eos_id, .. }) => {
                assert_eq!(pre.as_deref(), Some("smollm"));
                assert_eq!(tokens.len(), 44);
                assert_eq!(eos_id, Some(2));
            }
            ref other => panic!("tokenizer: {other:?}"),
        }
    }
}

#[test]
fn tiny_llama_in_q8_0_is_close_to_f32() {
    let (model, bytes) = write_tiny(GgmlType::Q8_0, true, false);
    let g = GgufFile::from_bytes(bytes).unwrap();
    assert_eq!(g.tensor_info("token_embd.weight").unwrap().ty, GgmlType::Q8_0);
    assert_eq!(g.tensor_info("output_norm.weight").unwrap().ty, GgmlType::F32);
    let loaded = loaded_from_gguf(&g, 2).unwrap();
    for (name, t) in &model.tensors {
        let got = &loaded.tensors[name];
        assert_eq!(got.shape, t.shape);
        let err = got.data.iter().zip(&t.data).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        // |w| < 1, so one Q8_0 step is < 1/127.
        assert!(err < 0.5 / 127.0 + 1e-3, "{name}: max error {err}");
    }
}

#[test]
fn load_model_and_load_config_dispatch_on_gguf_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    let (model, bytes) = write_tiny(GgmlType::F16, false, true);
    std::fs::write(&path, bytes).unwrap();
    assert_eq!(load_config(&path).unwrap(), model.config);
    let loaded = load_model(&path).unwrap();
    assert_eq!(loaded.tensors, model.tensors, "f16-exact values load exactly");
    assert_eq!(load_gguf(&path).unwrap().tensors, model.tensors);

    let not_model = dir.path().join("notes.txt");
    std::fs::write(&not_model, "hello").unwrap();
    let err = format!("{:#}", load_model(&not_model).unwrap_err());
    assert!(err.contains("neither a GGUF file"), "{err}");
    let err = format!("{:#}", load_model(&dir.path().join("missing.gguf")).unwrap_err());
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn llama_config_errors_name_the_problem() {
    let model = tiny_model(tiny_config(true), 3);
    // Wrong architecture.
    let mut w = GgufWriter::new();
    w.meta_str("general.architecture", "mamba");
    let err = loaded_from_gguf(&GgufFile::from_bytes(w.to_bytes()).unwrap(), 1).unwrap_err();
    assert!(matches!(err, GgufError::UnsupportedArchitecture { .. }), "{err}");
    assert!(err.to_string().contains("mamba"));

    // A tensor the Llama has no place for.
    let mut w = gguf_writer_for(&model, GgmlType::F32);
    w.tensor("blk.0.attn_q.bias", &[32], GgmlType::F32, &[0.0; 32]);
    let err = loaded_from_gguf(&GgufFile::from_bytes(w.to_bytes()).unwrap(), 1).unwrap_err();
    assert!(err.to_string().contains("blk.0.attn_q.bias"), "{err}");

    // A layer more in the file than block_count says.
    let mut w = gguf_writer_for(&model, GgmlType::F32);
    w.tensor("blk.2.attn_norm.weight", &[32], GgmlType::F32, &[1.0; 32]);
    let err = loaded_from_gguf(&GgufFile::from_bytes(w.to_bytes()).unwrap(), 1).unwrap_err();
    assert!(err.to_string().contains("blk.2.attn_norm.weight"), "{err}");

    // A missing tensor is reported by its GGUF name.
    let mut m = model.clone();
    m.tensors.remove("model.layers.1.mlp.down_proj.weight");
    let err = loaded_from_gguf(&GgufFile::from_bytes(gguf_writer_for(&m, GgmlType::F32).to_bytes()).unwrap(), 1).unwrap_err();
    assert!(err.to_string().contains("blk.1.ffn_down.weight"), "{err}");

    // The tokenizer may be smaller than the (padded) embedding, not larger.
    let mut cfg = tiny_config(true);
    cfg.vocab_size = 48;
    let mut padded = tiny_model(cfg, 4);
    padded.tokenizer = Some(tiny_bpe_source(None));
    let loaded = loaded_from_gguf(&GgufFile::from_bytes(gguf_writer_for(&padded, GgmlType::F32).to_bytes()).unwrap(), 1).unwrap();
    assert_eq!(loaded.config.vocab_size, 48);
    let mut cfg = tiny_config(true);
    cfg.vocab_size = 40;
    let mut short = tiny_model(cfg, 4);
    short.tokenizer = Some(tiny_bpe_source(None));
    let err = loaded_from_gguf(&GgufFile::from_bytes(gguf_writer_for(&short, GgmlType::F32).to_bytes()).unwrap(), 1).unwrap_err();
    assert!(err.to_string().contains("44 tokens") && err.to_string().contains("40 rows"), "{err}");

    // Absurd sizes from a corrupt header are rejected before any shape
    // arithmetic (no overflow, no enumeration of 2^40 layers).
    let mut w = GgufWriter::new();
    w.meta_str("general.architecture", "llama")
        .meta("llama.block_count", MetaValue::U64(1 << 40))
        .meta_u32("llama.context_length", 128)
        .meta_u32("llama.embedding_length", 32)
        .meta_u32("llama.feed_forward_length", 64)
        .meta_u32("llama.attention.head_count", 4)
        .meta_u32("tokenizer.ggml.eos_token_id", 2)
        .tensor("token_embd.weight", &[44, 32], GgmlType::F32, &[0.0; 44 * 32]);
    let err = peftc::pretrained::gguf::config_from_gguf(&GgufFile::from_bytes(w.to_bytes()).unwrap());
    assert!(err.is_err_and(|e| e.to_string().contains("num_layers = 1099511627776")));
}
