//! Run ids: the hash of everything that affects a run's result.
//!
//! `peftc run` skips a complete run whose recorded id equals the id of the
//! run it is asked for, and resumes an incomplete one; any change to the
//! scheme, its arguments, the train or data settings, the model file, the
//! tokenized data, the backend or (for bf16) the precision gives a new id.
//! The serialized form below is a contract: changing a field's name, order
//! or serialization changes every id (a test pins one).

use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::data::Example;
use crate::lang::ir;

/// What a run id hashes, in this field order.
#[derive(Serialize)]
pub struct RunIdentity<'a, T: Serialize> {
    /// `major.minor` of peftc: a patch release keeps ids.
    pub peftc_major_minor: &'a str,
    pub scheme_source: &'a str,
    pub args: &'a [ir::Arg],
    pub tensors: &'a [ir::TensorDecl],
    pub lets: &'a [ir::LetBinding],
    pub output: &'a ir::Output,
    pub targets: &'a [ir::TargetInstance],
    /// The trainer's settings (`train::TrainConfig`).
    pub train: &'a T,
    pub data: &'a ir::DataSpec,
    pub model_hash: &'a str,
    pub dataset_hash: &'a str,
    pub backend: &'a str,
    /// Only a bf16 run names its precision, so f32 runs keep the ids they
    /// had before mixed precision existed.
    #[serde(skip_serializing_if = "is_f32")]
    pub precision: &'a str,
}

fn is_f32(p: &&str) -> bool {
    *p == "f32"
}

/// `major.minor` of this peftc.
pub fn peftc_major_minor() -> &'static str {
    let version = env!("CARGO_PKG_VERSION");
    version.rsplit_once('.').map(|v| v.0).unwrap_or(version)
}

impl<T: Serialize> RunIdentity<'_, T> {
    /// The identity's canonical JSON.
    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string(self)?)
    }

    /// The full sha256 of [`Self::to_json`] (recorded as `spec_hash`); the
    /// run id is its first 16 hex digits.
    pub fn hash(&self) -> Result<String> {
        Ok(sha256_hex(self.to_json()?.as_bytes()))
    }
}

/// Lowercase hex sha256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hash of a file's bytes (models).
pub fn file_hash(path: &Path) -> Result<String> {
    if path.is_dir() {
        return dir_hash(path);
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(sha256_hex(&bytes))
}

/// Hash of a model directory (HF layout): every file's name and content
/// hash, by name (a GGUF file hashes as [`file_hash`] always did).
fn dir_hash(dir: &Path) -> Result<String> {
    let files = crate::runs::listing::visible(dir, crate::runs::listing::Entries::Files)?;
    let mut listing = String::from("model directory v1\n");
    for f in files {
        let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        listing.push_str(&format!("{name} {}\n", file_hash(&f)?));
    }
    Ok(sha256_hex(listing.as_bytes()))
}

/// Hash of the tokenized data a run trains and evaluates on: every example's
/// tokens and prompt length, in order (train split, then test).
pub fn dataset_hash<'a>(examples: impl Iterator<Item = &'a Example>) -> String {
    let mut h = Sha256::new();
    for ex in examples {
        for t in &ex.tokens {
            h.update(t.to_le_bytes());
        }
        h.update((ex.prompt_len as u64).to_le_bytes());
    }
    hex(&h.finalize())
}
