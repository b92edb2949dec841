//! The real SmolLM2 GGUF → HF safetensors directory → reload gives
//! bit-identical tensors, the same config, and the same tokenizer.

use crate::support::io as io_support;

use io_support::smollm2_path;
use peftc::pretrained::hf_dir::save_hf_dir;
use peftc::pretrained::source::load_model;
use peftc::pretrained::tokenizer::Tokenizer;

#[test]
fn smollm2_gguf_to_hf_dir_round_trip_is_bit_identical() {
    let gguf = load_model(&smollm2_path()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    save_hf_dir(&gguf, dir.path()).unwrap();
    let hf = load_model(dir.path()).unwrap();
    assert_eq!(hf.config, gguf.config);
    assert_eq!(hf.tensors.len(), gguf.tensors.len());
    for (name, t) in &gguf.tensors {
        let h = &hf.tensors[name];
        assert_eq!(h.shape, t.shape, "{name}");
        assert!(h.data.iter().zip(&t.data).all(|(a, b)| a.to_bits() == b.to_bits()), "{name}: values differ");
    }
    let (a, b) = (Tokenizer::for_model(&gguf).unwrap(), Tokenizer::for_model(&hf).unwrap());
    let text = "Question: Janet’s ducks lay 16 eggs per day.\nAnswer: 16 - 3 - 4 = <<16-3-4=9>>9";
    assert_eq!(a.encode(text).unwrap(), b.encode(text).unwrap());
    assert_eq!(b.eos_id(), Some(2));
}
