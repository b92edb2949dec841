//! GSM8K: jsonl reading (`question`, `answer`), the prompt format of
//! `shared/reference/smollm2-135m-gsm8k-base.json`, tokenization, truncation
//! and the completion boundary.
//!
//! Format: `"Question: {question}\nAnswer: {answer}"` encoded without special
//! tokens, then the eos id appended; families that start every sequence
//! with BOS (Gemma) get it prepended ([`Framing`]). The prompt is
//! `"Question: {question}\nAnswer:"` (after the BOS, if any); the completion
//! is every token after it (the answer and the eos).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use tokenizers::Tokenizer;

use super::data_error::DataError;
use super::example::Example;
use crate::lang::ir::Subset;
use crate::pretrained::weights::ModelConfig;

/// The special ids around every example: the BOS first where the model's
/// family starts every sequence with one, the EOS last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framing {
    pub bos: Option<u32>,
    pub eos: u32,
}

impl Framing {
    /// No BOS, `eos` last (Llama, Qwen2, …).
    pub fn eos_only(eos: u32) -> Self {
        Framing { bos: None, eos }
    }

    /// The framing a model's family uses.
    pub fn for_model(c: &ModelConfig) -> Self {
        Framing { bos: if c.arch.add_bos { c.bos_token_id } else { None }, eos: c.eos_token_id }
    }
}

/// One GSM8K problem.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Gsm8kExample {
    pub question: String,
    pub answer: String,
}

impl Gsm8kExample {
    /// The prompt part: `Question: {question}\nAnswer:`.
    pub fn prompt_text(&self) -> String {
        format!("Question: {}\nAnswer:", self.question)
    }

    /// The whole text before eos: `Question: {question}\nAnswer: {answer}`.
    pub fn full_text(&self) -> String {
        format!("Question: {}\nAnswer: {}", self.question, self.answer)
    }
}

/// Reads a GSM8K jsonl file. Blank lines are skipped; any other line must be
/// a JSON object with string fields `question` and `answer` (extra fields are
/// ignored), else the error names the file and the 1-based line.
pub fn read_jsonl(path: &Path) -> Result<Vec<Gsm8kExample>, DataError> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::Io { path: path.to_path_buf(), message: e.to_string() })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let ex: Gsm8kExample = serde_json::from_str(line).map_err(|e| DataError::Malformed {
            path: path.to_path_buf(),
            line: i + 1,
            message: e.to_string(),
        })?;
        out.push(ex);
    }
    Ok(out)
}

/// Resolves a dataset argument to a GSM8K split file: `gsm8k` looks in
/// `data/gsm8k`, `../shared/data/gsm8k` and `$CARGO_MANIFEST_DIR/../shared/data/gsm8k`;
/// a directory is searched for `{split}.jsonl`; a file is taken as is.
pub fn resolve_split(data: &str, split: &str) -> Result<PathBuf, DataError> {
    let file = format!("{split}.jsonl");
    let as_path = PathBuf::from(data);
    let dirs: Vec<PathBuf> = if as_path.is_file() {
        return Ok(as_path);
    } else if as_path.is_dir() {
        vec![as_path]
    } else if data == "gsm8k" {
        vec![
            PathBuf::from("data/gsm8k"),
            PathBuf::from("../shared/data/gsm8k"),
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/gsm8k"),
            Path::new(env!("CARGO_MANIFEST_DIR")).join("data/gsm8k"),
        ]
    } else {
        return Err(DataError::NotFound { what: format!("dataset `{data}`"), tried: vec![as_path] });
    };
    let tried: Vec<PathBuf> = dirs.iter().map(|d| d.join(&file)).collect();
    tried.iter().find(|p| p.is_file()).cloned().ok_or(DataError::NotFound { what: format!("GSM8K split `{split}`"), tried })
}

fn encode_text(tok: &Tokenizer, text: &str) -> Result<Vec<u32>, DataError> {
    tok.encode(text, false).map(|e| e.get_ids().to_vec()).map_err(|e| DataError::Tokenizer { message: e.to_string() })
}

/// Tokenizes an example in the reference format and truncates it to
/// `max_len` tokens (keeping the start; the eos is lost if truncated).
pub fn encode_example(tok: &Tokenizer, ex: &Gsm8kExample, framing: Framing, max_len: usize) -> Result<Example, DataError> {
    if max_len < 2 {
        return Err(DataError::BadParameter { message: format!("max_len must be at least 2 tokens, got {max_len}") });
    }
    let bos: Vec<u32> = framing.bos.into_iter().collect();
    let mut ids = [bos.clone(), encode_text(tok, &ex.full_text())?].concat();
    ids.push(framing.eos);
    let prompt = [bos, encode_text(tok, &ex.prompt_text())?].concat();
    // The prompt ends at a word boundary (" " starts the answer), so its tokens are
    // a prefix of the full encoding; take the common prefix to be safe.
    let prompt_len = prompt.iter().zip(&ids).take_while(|(a, b)| a == b).count();
    ids.truncate(max_len);
    let prompt_len = prompt_len.min(ids.len());
    Ok(Example { tokens: ids, prompt_len })
}

/// Encodes many examples.
pub fn encode_all(tok: &Tokenizer, examples: &[Gsm8kExample], framing: Framing, max_len: usize) -> Result<Vec<Example>, DataError> {
    examples.iter().map(|e| encode_example(tok, e, framing, max_len)).collect()
}

/// A split of a GSM8K directory (see [`resolve_split`] for what `data` may
/// name), `subset` of it, encoded by [`encode_example`].
pub fn load_split(
    data: &Path,
    split: &str,
    subset: Subset,
    tok: &Tokenizer,
    framing: Framing,
    max_len: usize,
) -> Result<Vec<Example>, DataError> {
    let path = resolve_split(&data.to_string_lossy(), split)?;
    let mut all = read_jsonl(&path)?;
    if let Subset::First(n) = subset {
        all.truncate(n);
    }
    encode_all(tok, &all, framing, max_len)
}
