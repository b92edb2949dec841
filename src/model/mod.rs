//! The Burn decoder of every family peftc trains (Llama and SmolLM2,
//! Mistral, Qwen2, Gemma 1/2/3, Phi-3: what differs is resolved into
//! [`crate::pretrained::family::Arch`] at load), generic over the backend,
//! and what plugs into it.
//!
//! Enters: a [`crate::pretrained::weights::LoadedModel`] (or a random one of
//! a config's shapes). Leaves: [`Llama`] — hidden states and the frozen head
//! for the trainer ([`causal_lm::CausalLm`]), every target linear routed
//! through a [`hook::LinearHook`] (the adapter), the fused output head and
//! loss ([`head_loss`]), and the bf16/f32 split of mixed precision
//! ([`precision`]). One file per model part; `forward`s document their shapes.

pub mod attention;
pub mod block;
pub mod causal_lm;
pub mod error;
pub mod head_loss;
pub mod hook;
pub mod llama;
pub mod mlp;
pub mod precision;
pub mod rms_norm;
pub mod rope;
pub mod softcap;

pub use error::ModelError;
pub use llama::{Llama, LlamaConfig};
