//! Errors raised while reading or encoding datasets.

use std::fmt;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq)]
pub enum DataError {
    /// The file cannot be opened or read.
    Io { path: PathBuf, message: String },
    /// A line is not a JSON object with string fields `question` and `answer`.
    Malformed { path: PathBuf, line: usize, message: String },
    /// The dataset name or directory cannot be resolved.
    NotFound { what: String, tried: Vec<PathBuf> },
    /// The tokenizer failed on a text.
    Tokenizer { message: String },
    /// A parameter is out of range (e.g. `max_len` < 2).
    BadParameter { message: String },
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataError::Io { path, message } => write!(f, "{}: cannot read: {message}", path.display()),
            DataError::Malformed { path, line, message } => write!(f, "{}:{line}: malformed example: {message}", path.display()),
            DataError::NotFound { what, tried } => {
                write!(f, "{what} not found (tried ")?;
                for (i, p) in tried.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{}", p.display())?;
                }
                write!(f, "); run scripts/setup.sh to fetch it")
            }
            DataError::Tokenizer { message } => write!(f, "tokenizer error: {message}"),
            DataError::BadParameter { message } => write!(f, "{message}"),
        }
    }
}

impl std::error::Error for DataError {}
