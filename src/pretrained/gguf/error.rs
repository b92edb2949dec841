//! Everything that can go wrong reading a GGUF file, as one data enum; the
//! message text is in its one `Display`.

use std::fmt;
use std::path::PathBuf;

/// An error reading or interpreting a GGUF file. Offsets are byte offsets
/// from the start of the file.
#[derive(Debug)]
pub enum GgufError {
    Io { path: PathBuf, source: std::io::Error },
    BadMagic { found: Vec<u8> },
    BigEndian { raw: u32 },
    UnsupportedVersion { version: u32 },
    Truncated { what: String, offset: u64, needed: u64, file_len: u64 },
    Corrupt { offset: u64, message: String },
    UnknownValueType { key: String, ty: u32, offset: u64 },
    DuplicateKey { key: String },
    DuplicateTensor { name: String },
    UnsupportedTensorType { tensor: String, ty: u32, name: &'static str },
    BadTensor { tensor: String, message: String },
    TensorOutOfBounds { tensor: String, start: u64, end: u64, data_len: u64 },
    MissingTensor { name: String },
    MissingKey { key: String },
    WrongKeyType { key: String, expected: &'static str, found: &'static str },
    UnsupportedArchitecture { arch: String },
    UnexpectedTensor { name: String, arch: String, why: String },
    BadConfig { message: String },
    UnsupportedTokenizer { model: String, supported: &'static [&'static str] },
}

impl fmt::Display for GgufError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GgufError::Io { path, source } => write!(f, "cannot read {}: {source}", path.display()),
            GgufError::BadMagic { found } => write!(f, "not a GGUF file: expected magic bytes `GGUF`, found {found:02x?}"),
            GgufError::BigEndian { raw } => write!(f, "big-endian GGUF files are not supported (version field reads {raw:#010x})"),
            GgufError::UnsupportedVersion { version } => write!(f, "unsupported GGUF version {version} (supported: 2, 3)"),
            GgufError::Truncated { what, offset, needed, file_len } => {
                write!(f, "truncated GGUF file: reading {what} at offset {offset} needs {needed} bytes, but the file has {file_len}")
            }
            GgufError::Corrupt { offset, message } => write!(f, "corrupt GGUF file at offset {offset}: {message}"),
            GgufError::UnknownValueType { key, ty, offset } => {
                write!(f, "corrupt GGUF file: metadata key `{key}` has unknown value type {ty} (offset {offset})")
            }
            GgufError::DuplicateKey { key } => write!(f, "corrupt GGUF file: duplicate metadata key `{key}`"),
            GgufError::DuplicateTensor { name } => write!(f, "corrupt GGUF file: duplicate tensor `{name}`"),
            GgufError::UnsupportedTensorType { tensor, ty, name } => write!(
                f,
                "tensor `{tensor}` has ggml type {ty} ({name}), which peftc cannot dequantize (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K)"
            ),
            GgufError::BadTensor { tensor, message } => write!(f, "tensor `{tensor}`: {message}"),
            GgufError::TensorOutOfBounds { tensor, start, end, data_len } => write!(
                f,
                "tensor `{tensor}` data [{start}, {end}) lies outside the file's data section of {data_len} bytes (file truncated?)"
            ),
            GgufError::MissingTensor { name } => write!(f, "no tensor named `{name}` in the GGUF file"),
            GgufError::MissingKey { key } => write!(f, "metadata key `{key}` is missing"),
            GgufError::WrongKeyType { key, expected, found } => write!(f, "metadata key `{key}` has type {found}, expected {expected}"),
            GgufError::UnsupportedArchitecture { arch } => {
                write!(f, "unsupported model architecture `{arch}` (peftc loads GGUFs of: {})", super::llama::SUPPORTED_ARCHS.join(", "))
            }
            GgufError::UnexpectedTensor { name, arch, why } => write!(f, "unexpected tensor `{name}` for a {arch} model ({why})"),
            GgufError::BadConfig { message } => write!(f, "invalid model configuration: {message}"),
            GgufError::UnsupportedTokenizer { model, supported } => write!(
                f,
                "unsupported GGUF tokenizer `tokenizer.ggml.model = {model}` (peftc builds: {}); supply an HF directory with tokenizer.json instead",
                supported.join(", ")
            ),
        }
    }
}

impl std::error::Error for GgufError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            GgufError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

pub type Result<T, E = GgufError> = std::result::Result<T, E>;
