//! The Burn Llama-family decoder (SmolLM2 and relatives), generic over the backend.

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

pub use error::ModelError;
pub use llama::{Llama, LlamaConfig};
