//! Shared helpers for the io tests: where the real model, GSM8K and the
//! reference files live, and a tiny random Llama for fast tests.
#![allow(dead_code)]

use std::path::PathBuf;

use peftc::pretrained::family::expected_shapes;
use peftc::pretrained::weights::{LoadedModel, ModelConfig, TensorData, TensorStore, TokenizerSource};

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The real SmolLM2 GGUF; panics with a message naming the setup script.
pub fn smollm2_path() -> PathBuf {
    let path =
        std::env::var_os("PEFTC_MODEL").map(PathBuf::from).unwrap_or_else(|| manifest_dir().join("models/SmolLM2-135M-Instruct.Q4_1.gguf"));
    assert!(path.is_file(), "real model not found at {} — run scripts/setup.sh (or set PEFTC_MODEL)", path.display());
    path
}

/// `../shared/<rel>` beside the checkout, else `<fallback>` inside it.
fn shared_or(rel: &str, fallback: &str) -> PathBuf {
    let shared = manifest_dir().join("..").join("shared").join(rel);
    if shared.exists() { shared } else { manifest_dir().join(fallback) }
}

pub fn gsm8k_dir() -> PathBuf {
    let dir = shared_or("data/gsm8k", "data/gsm8k");
    assert!(dir.join("test.jsonl").is_file(), "GSM8K not found at {} — run scripts/setup.sh", dir.display());
    dir
}

pub fn reference_file(name: &str) -> PathBuf {
    let path = shared_or(&format!("reference/{name}"), &format!("tests/fixtures/io/{name}"));
    assert!(path.is_file(), "reference file {name} not found at {}", path.display());
    path
}

/// A small deterministic pseudo-random generator (xorshift), so fixtures do
/// not depend on any crate's RNG stream.
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    /// Uniform in [-1, 1).
    pub fn next_f32(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

pub fn tiny_config(tied: bool) -> ModelConfig {
    ModelConfig {
        architecture: "llama".into(),
        vocab_size: 44,
        hidden_size: 32,
        intermediate_size: 64,
        num_layers: 2,
        num_heads: 4,
        num_kv_heads: 2,
        head_dim: 8,
        rope_theta: 10_000.0,
        rope_scaling: Default::default(),
        // GGUF stores the epsilon as f32.
        rms_norm_eps: 1e-5f32 as f64,
        max_position_embeddings: 128,
        tie_word_embeddings: tied,
        bos_token_id: Some(1),
        eos_token_id: 2,
        arch: Default::default(),
        dtype: Default::default(),
    }
}

/// A random-weight Llama with the given config (values in [-1, 1), norms
/// around 1), exactly representable in f16 so lossless formats round-trip.
pub fn tiny_model(config: ModelConfig, seed: u64) -> LoadedModel {
    let mut rng = XorShift::new(seed);
    let mut tensors = TensorStore::new();
    for (name, shape) in expected_shapes(&config) {
        let n: usize = shape.iter().product();
        let data = (0..n)
            .map(|_| {
                let v = rng.next_f32();
                let v = if shape.len() == 1 { 1.0 + 0.25 * v } else { v };
                half::f16::from_f32(v).to_f32()
            })
            .collect();
        tensors.insert(name, TensorData { shape, data });
    }
    LoadedModel { config, tensors, tokenizer: None }
}

/// A tiny byte-level BPE tokenizer source (44 tokens, matching
/// [`tiny_config`]'s vocabulary): 3 control tokens, lowercase letters,
/// digits, `Ġ` (the byte-level space) and 4 merges.
pub fn tiny_bpe_source(pre: Option<&str>) -> TokenizerSource {
    let mut tokens: Vec<String> = vec!["<|endoftext|>".into(), "<|im_start|>".into(), "<|im_end|>".into()];
    let mut types = vec![3, 3, 3];
    for c in "abcdefghijklmnopqrstuvwxyz0123456789Ġ".chars() {
        tokens.push(c.to_string());
        types.push(1);
    }
    let merges: Vec<String> = vec!["Ġ t".into(), "h e".into(), "Ġt he".into(), "a b".into()];
    for m in &merges {
        tokens.push(m.replace(' ', ""));
        types.push(1);
    }
    TokenizerSource::GgufBpe {
        model: "gpt2".into(),
        pre: pre.map(str::to_string),
        tokens,
        merges,
        token_types: types,
        bos_id: Some(1),
        eos_id: Some(2),
    }
}

/// A tiny SentencePiece (GGUF `llama`, Gemma 3) tokenizer source of 28
/// tokens; the merges are implied by the token order (a token's splits into
/// two vocabulary tokens, lower merged id first, longer left part first):
///
/// | id | token | type | | id | token | type |
/// |----|-------|------|-|----|-------|------|
/// | 0 | `<pad>` | control | | 14..18 | `h e l o t` | normal |
/// | 1 | `<eos>` | control | | 19 | `he` = h+e | normal |
/// | 2 | `<bos>` | control | | 20 | `▁t` = ▁+t | normal |
/// | 3 | `<unk>` | unknown | | 21 | `▁the` = ▁t+he | normal |
/// | 4 | `<start_of_turn>` | control | | 22 | `ll` = l+l | normal |
/// | 5 | `\n` | user-defined | | 23 | `hell` = he+ll | normal |
/// | 6 | `"  "` (→ `▁▁` = ▁+▁) | user-defined | | 24 | `hello` = hell+o | normal |
/// | 7, 8, 9 | `<0xC3> <0xA9> <0x21>` | byte | | 25 | `ab` = a+b | normal |
/// | 10 | `▁` | normal | | 26 | `"   "` (→ `▁▁▁` = ▁▁+▁, ▁+▁▁) | user-defined |
/// | 11, 12, 13 | `a b c` | normal | | 27 | `bc` = b+c | normal |
pub fn tiny_spm_source() -> TokenizerSource {
    let mut tokens: Vec<String> = Vec::new();
    let mut types = Vec::new();
    let mut add = |t: &str, ty: i32| {
        tokens.push(t.to_string());
        types.push(ty);
    };
    for (t, ty) in [("<pad>", 3), ("<eos>", 3), ("<bos>", 3), ("<unk>", 2), ("<start_of_turn>", 3), ("\n", 4), ("  ", 4)] {
        add(t, ty);
    }
    for t in ["<0xC3>", "<0xA9>", "<0x21>"] {
        add(t, 6);
    }
    for t in ["▁", "a", "b", "c", "h", "e", "l", "o", "t", "he", "▁t", "▁the", "ll", "hell", "hello", "ab"] {
        add(t, 1);
    }
    add("   ", 4);
    add("bc", 1);
    TokenizerSource::GgufSentencePiece {
        architecture: "gemma3".into(),
        tokens,
        token_types: types,
        bos_id: Some(2),
        eos_id: Some(1),
        unk_id: Some(3),
        pad_id: Some(0),
        add_space_prefix: false,
    }
}
