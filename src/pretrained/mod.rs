//! Pretrained model files → a loaded model.
//!
//! Enters: a GGUF file or an HF model directory (`config.json` +
//! safetensors + `tokenizer.json`). Leaves: [`weights::LoadedModel`] — the
//! resolved configuration and f32 tensors under HF names — and its
//! [`tokenizer::Tokenizer`]. Also writes HF directories (`to-hf`, `merge`)
//! and HF PEFT adapters ([`peft_adapter`]).

pub mod family;
pub mod gguf;
pub mod hf_dir;
pub mod peft_adapter;
pub mod rope_scaling;
pub mod source;
pub mod tokenizer;
pub mod weights;
