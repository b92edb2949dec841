//! GGUF model files: a bounds-checked reader (header, metadata, tensor
//! infos, aligned data), dequantization of the common ggml block formats to
//! f32, a small writer for fixtures, and the Llama mapping to
//! [`crate::pretrained::weights::LoadedModel`].

pub mod dequant;
pub mod error;
pub mod ggml_type;
pub mod gguf_file;
pub mod llama;
pub mod meta_value;
pub mod writer;

pub use error::GgufError;
pub use ggml_type::GgmlType;
pub use gguf_file::{GgufFile, TensorInfo};
pub use llama::{config_from_gguf, load_gguf, loaded_from_gguf};
pub use meta_value::MetaValue;
pub use writer::GgufWriter;
