//! The Burn Llama-family decoder (SmolLM2 and relatives), generic over the backend.

pub mod attention;
pub mod block;
pub mod error;
pub mod llama;
pub mod mlp;
pub mod rms_norm;
pub mod rope;

pub use error::ModelError;
pub use llama::{Llama, LlamaConfig};
