//! Listing a results or model directory: the non-hidden entries of one
//! kind, sorted by name (hidden entries are leases, temporary files, the
//! base-loss cache and checkpoints being written).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Subdirectories or plain files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entries {
    Dirs,
    Files,
}

/// The non-hidden entries of `dir` of one kind, sorted.
pub fn visible(dir: &Path, kind: Entries) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading directory {}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| if kind == Entries::Dirs { p.is_dir() } else { p.is_file() })
        .filter(|p| !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    out.sort();
    Ok(out)
}
