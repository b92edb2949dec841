//! Lowering: a checked scheme becomes Burn tensors and a [`LinearHook`].
//!
//! Enters: an [`crate::lang::ir::SchemeInstance`] (converted by
//! [`from_lang`] into the small [`program::Program`] the evaluator walks)
//! and the base model's weights. Leaves: an [`Adapter`] — its trainable
//! tensors, and the formula evaluated per layer and target as the model's
//! hook; after training, the merged weights ([`merge`]) and the adapter in
//! HF PEFT's terms ([`peft_export`]).
//!
//! - Storage per tying mode ([`Adapter::build`]): `per_layer` holds one tensor
//!   per layer and target (or `across` group); `tied` holds one tensor for all
//!   layers, kept once in the adapter and passed into every layer's
//!   computation; `partial(k)` holds a basis `[k, dims…]` and a per-layer `[k]`
//!   mixing vector, materialised once per forward call of that layer.
//! - Evaluation follows the formula's tree, so `x @ A @ B` is `(x A) B`
//!   (x first, never an `[in, out]` per token); `W + AB` is only formed where
//!   the formula itself builds it (DoRA's norm).
//! - Subexpressions that depend only on `W`, frozen tensors and numbers are
//!   folded once at build time per layer and target.
//!
//! [`LinearHook`]: crate::model::hook::LinearHook

mod adapter;
pub mod adapter_file;
pub mod from_lang;
pub mod init;
pub mod merge;
mod named;
pub mod peft_export;
pub mod program;

pub use adapter::{Adapter, ParamInfo, Site};
pub use named::Named;
pub use program::{BinOp, Expr, Init, Output, Program, TensorDecl, Tying};

use std::fmt;

/// Everything that can go wrong while lowering a scheme.
#[derive(Debug, Clone, PartialEq)]
pub enum LowerError {
    TooManyDims { dims: Vec<String> },
    Contraction { left: Vec<String>, right: Vec<String> },
    UnknownDim { dim: String, dims: Vec<String> },
    UnboundDim { tensor: String, dim: String },
    UnknownTensor { name: String },
    UnknownLet { name: String },
    OutputDims { dims: Vec<String> },
    XInConstant { context: String },
    AcrossShapes { tensor: String, group: String },
    InitExpr { tensor: String, reason: String },
    NotMergeable { scheme: String },
}

impl fmt::Display for LowerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LowerError::TooManyDims { dims } => {
                write!(f, "a value with dims [{}] has more than {} named dims", dims.join(", "), named::MAX_DIMS)
            }
            LowerError::Contraction { left, right } => write!(
                f,
                "cannot contract [{}] @ [{}]: they must share exactly one dim of equal size and no other",
                left.join(", "),
                right.join(", ")
            ),
            LowerError::UnknownDim { dim, dims } => write!(f, "dim `{dim}` is not one of [{}]", dims.join(", ")),
            LowerError::UnboundDim { tensor, dim } => {
                write!(f, "tensor `{tensor}`: dim `{dim}` has no size (not in, out, or a scheme size parameter)")
            }
            LowerError::UnknownTensor { name } => write!(f, "unknown tensor `{name}`"),
            LowerError::UnknownLet { name } => write!(f, "unknown let binding `{name}`"),
            LowerError::OutputDims { dims } => {
                write!(f, "the output must have dims [tok, out] (x's tokens by the layer's outputs), found [{}]", dims.join(", "))
            }
            LowerError::XInConstant { context } => write!(f, "{context} may not depend on x or on trainable tensors"),
            LowerError::AcrossShapes { tensor, group } => {
                write!(f, "tensor `{tensor}` is tied across {group}, whose shapes differ")
            }
            LowerError::InitExpr { tensor, reason } => write!(f, "init of `{tensor}`: {reason}"),
            LowerError::NotMergeable { scheme } => {
                write!(f, "scheme `{scheme}` is not linear in x, so it cannot be merged into the base weights")
            }
        }
    }
}

impl std::error::Error for LowerError {}
