//! Everything that can go wrong reading a GGUF file, as one data enum.

use std::path::PathBuf;

use thiserror::Error;

/// An error reading or interpreting a GGUF file. Offsets are byte offsets
/// from the start of the file.
#[derive(Debug, Error)]
pub enum GgufError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("not a GGUF file: expected magic bytes `GGUF`, found {found:02x?}")]
    BadMagic { found: Vec<u8> },
    #[error("big-endian GGUF files are not supported (version field reads {raw:#010x})")]
    BigEndian { raw: u32 },
    #[error("unsupported GGUF version {version} (supported: 2, 3)")]
    UnsupportedVersion { version: u32 },
    #[error("truncated GGUF file: reading {what} at offset {offset} needs {needed} bytes, but the file has {file_len}")]
    Truncated {
        what: String,
        offset: u64,
        needed: u64,
        file_len: u64,
    },
    #[error("corrupt GGUF file at offset {offset}: {message}")]
    Corrupt { offset: u64, message: String },
    #[error("corrupt GGUF file: metadata key `{key}` has unknown value type {ty} (offset {offset})")]
    UnknownValueType { key: String, ty: u32, offset: u64 },
    #[error("corrupt GGUF file: duplicate metadata key `{key}`")]
    DuplicateKey { key: String },
    #[error("corrupt GGUF file: duplicate tensor `{name}`")]
    DuplicateTensor { name: String },
    #[error(
        "tensor `{tensor}` has ggml type {ty} ({name}), which peftc cannot dequantize (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K)"
    )]
    UnsupportedTensorType {
        tensor: String,
        ty: u32,
        name: &'static str,
    },
    #[error("tensor `{tensor}`: {message}")]
    BadTensor { tensor: String, message: String },
    #[error(
        "tensor `{tensor}` data [{start}, {end}) lies outside the file's data section of {data_len} bytes (file truncated?)"
    )]
    TensorOutOfBounds {
        tensor: String,
        start: u64,
        end: u64,
        data_len: u64,
    },
    #[error("no tensor named `{name}` in the GGUF file")]
    MissingTensor { name: String },
    #[error("metadata key `{key}` is missing")]
    MissingKey { key: String },
    #[error("metadata key `{key}` has type {found}, expected {expected}")]
    WrongKeyType {
        key: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("unsupported model architecture `{arch}` (peftc loads Llama-family GGUFs: llama)")]
    UnsupportedArchitecture { arch: String },
    #[error("unexpected tensor `{name}` for a {arch} model ({why})")]
    UnexpectedTensor { name: String, arch: String, why: String },
    #[error("invalid model configuration: {message}")]
    BadConfig { message: String },
}

pub type Result<T, E = GgufError> = std::result::Result<T, E>;
