//! The real SmolLM2-135M-Instruct Q4_1 GGUF: configuration, tensor layout
//! and values (spot-checked against an independent Python dequantization
//! of the same file, with llama.cpp's q/k permutation undone by hand).

use crate::support::io as io_support;

use io_support::smollm2_path;
use peftc::pretrained::gguf::{GgmlType, GgufFile};
use peftc::pretrained::source::{load_config, load_model};
use peftc::pretrained::tokenizer::Tokenizer;

#[test]
#[allow(clippy::excessive_precision)] // exact dyadic values, written out in full
fn smollm2_gguf_loads_with_the_guide_config_and_reference_values() {
    let path = smollm2_path();
    let g = GgufFile::open(&path).unwrap();
    assert_eq!(g.version(), 3);
    assert_eq!(g.tensors().len(), 272);
    assert_eq!(g.tensor_info("token_embd.weight").unwrap().ty, GgmlType::Q8_0);
    assert_eq!(g.tensor_info("blk.0.attn_q.weight").unwrap().ty, GgmlType::Q4_1);
    assert_eq!(g.get_str("tokenizer.ggml.pre").unwrap(), "smollm");

    let config = load_config(&path).unwrap();
    let m = load_model(&path).unwrap();
    assert_eq!(m.config, config, "load_config agrees with load_model");
    let c = &m.config;
    assert_eq!(c.architecture, "llama");
    assert_eq!((c.num_layers, c.hidden_size, c.num_heads, c.num_kv_heads, c.head_dim), (30, 576, 9, 3, 64));
    assert_eq!((c.intermediate_size, c.vocab_size, c.max_position_embeddings), (1536, 49152, 8192));
    assert_eq!(c.rope_theta, 100_000.0);
    assert!((c.rms_norm_eps - 1e-5).abs() < 1e-12);
    assert!(c.tie_word_embeddings);
    assert_eq!((c.bos_token_id, c.eos_token_id), (Some(1), 2));

    assert_eq!(m.tensors.len(), 2 + 30 * 9);
    assert!(!m.tensors.contains_key("lm_head.weight"));
    let shape = |n: &str| m.tensors[n].shape.clone();
    assert_eq!(shape("model.embed_tokens.weight"), vec![49152, 576]);
    assert_eq!(shape("model.layers.0.self_attn.q_proj.weight"), vec![576, 576]);
    assert_eq!(shape("model.layers.0.self_attn.k_proj.weight"), vec![192, 576]);
    assert_eq!(shape("model.layers.29.mlp.down_proj.weight"), vec![576, 1536]);
    assert_eq!(shape("model.layers.29.mlp.up_proj.weight"), vec![1536, 576]);
    assert_eq!(shape("model.norm.weight"), vec![576]);

    // Spot values from an independent Python reader of the same file
    // (HF row r of q/k read from GGUF row h*hd + 2*i + j where
    // r = h*hd + j*hd/2 + i).
    let at = |n: &str, row: usize, col: usize| {
        let t = &m.tensors[n];
        t.data[row * t.shape[1] + col]
    };
    let cases: [(&str, usize, usize, f32); 14] = [
        ("model.embed_tokens.weight", 0, 0, -0.10654449462890625),
        ("model.embed_tokens.weight", 0, 1, 0.032978057861328125),
        ("model.embed_tokens.weight", 49151, 575, -0.0417022705078125),
        ("model.layers.0.self_attn.q_proj.weight", 1, 0, -0.1591796875),
        ("model.layers.0.self_attn.q_proj.weight", 1, 1, 0.39794921875),
        ("model.layers.0.self_attn.q_proj.weight", 100, 2, -0.4453125),
        ("model.layers.5.self_attn.k_proj.weight", 40, 0, -0.05999755859375),
        ("model.layers.5.self_attn.k_proj.weight", 40, 1, 0.20330810546875),
        ("model.layers.5.self_attn.k_proj.weight", 40, 2, -0.01611328125),
        ("model.layers.29.mlp.down_proj.weight", 575, 1535, 0.056640625),
        ("model.layers.3.self_attn.v_proj.weight", 7, 0, 0.130615234375),
        ("model.layers.3.self_attn.v_proj.weight", 7, 1, -0.1904296875),
        ("model.layers.3.self_attn.v_proj.weight", 7, 2, 0.06640625),
        ("model.layers.0.self_attn.q_proj.weight", 100, 0, -0.0821533203125),
    ];
    for (name, row, col, want) in cases {
        assert_eq!(at(name, row, col), want, "{name}[{row}, {col}]");
    }
    assert_eq!(&m.tensors["model.norm.weight"].data[..3], &[1.7578125, 1.8203125, 1.78125]);
    assert!(m.tensors.values().all(|t| t.data.iter().all(|v| v.is_finite())));

    let tok = Tokenizer::for_model(&m).unwrap();
    assert_eq!(tok.eos_id(), Some(2));
    assert_eq!(tok.vocab_size(), 49152);
}
