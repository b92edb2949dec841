//! Errors raised while building the Burn model from a loaded checkpoint.

use std::fmt;

/// Why a [`crate::pretrained::weights::LoadedModel`] cannot become a [`super::Llama`].
#[derive(Debug, Clone, PartialEq)]
pub enum ModelError {
    /// A tensor the architecture needs is absent from the store.
    MissingTensor { name: String },
    /// A tensor is present with a shape other than the configuration implies.
    ShapeMismatch { name: String, expected: Vec<usize>, found: Vec<usize> },
    /// The configuration itself is inconsistent or unsupported.
    BadConfig { reason: String },
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelError::MissingTensor { name } => write!(f, "model tensor `{name}` is missing from the checkpoint"),
            ModelError::ShapeMismatch { name, expected, found } => {
                write!(f, "model tensor `{name}` has shape {found:?}, but the configuration implies {expected:?}")
            }
            ModelError::BadConfig { reason } => write!(f, "unsupported model configuration: {reason}"),
        }
    }
}

impl std::error::Error for ModelError {}
