//! `steps.jsonl`: a run's training curve, one JSON line per optimizer step
//! (epoch, step, the run's real tokens so far, the step's loss in bits over
//! the tokens the spec's `loss:` selects, token-weighted within the step,
//! and the learning rate), appended and flushed as the run trains.
//!
//! A resumed run continues from its last checkpoint ([`Position`]), so the
//! log is first cut back to the steps that checkpoint covers (rewritten
//! atomically): after any number of interruptions every step is in it once.
//! A line torn by a kill is skipped when read.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// Where a run stands: the epoch in progress (from 1) and how many of its
/// batches are done. Ordered as training proceeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Position {
    pub epoch: usize,
    pub step: usize,
}

impl Position {
    /// Nothing trained yet.
    pub const START: Position = Position { epoch: 1, step: 0 };
}

/// One optimizer step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub epoch: usize,
    /// Step within the epoch, from 1.
    pub step: usize,
    /// Real (unpadded) tokens trained on by the run up to and including this step.
    pub tokens: u64,
    pub loss_bits: f64,
    pub lr: f64,
}

/// The records of a log; a missing file is empty, a torn or foreign line is skipped.
pub fn read(path: &Path) -> Vec<StepRecord> {
    let Ok(text) = std::fs::read_to_string(path) else { return vec![] };
    text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// An open log, appended to step by step.
pub struct StepLog {
    path: PathBuf,
    out: BufWriter<File>,
}

impl StepLog {
    /// Opens `path` keeping only the records up to `at` (the position the
    /// run resumes from); returns the log and the tokens those records
    /// trained on.
    pub fn open(path: &Path, at: Position) -> Result<(Self, u64)> {
        let kept: Vec<StepRecord> = read(path).into_iter().filter(|r| Position { epoch: r.epoch, step: r.step } <= at).collect();
        let mut text = String::new();
        for r in &kept {
            text.push_str(&serde_json::to_string(r)?);
            text.push('\n');
        }
        super::atomic::write_atomic(path, text.as_bytes())?;
        let file = std::fs::OpenOptions::new().append(true).open(path).with_context(|| format!("opening {}", path.display()))?;
        let tokens = kept.last().map_or(0, |r| r.tokens);
        Ok((StepLog { path: path.to_path_buf(), out: BufWriter::new(file) }, tokens))
    }

    /// Appends one record and flushes it.
    pub fn append(&mut self, r: &StepRecord) -> Result<()> {
        let line = serde_json::to_string(r)?;
        writeln!(self.out, "{line}").and_then(|_| self.out.flush()).with_context(|| format!("writing {}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(epoch: usize, step: usize) -> StepRecord {
        StepRecord { epoch, step, tokens: (10 * (epoch * 10 + step)) as u64, loss_bits: 1.5, lr: 1e-3 }
    }

    #[test]
    fn reopening_keeps_the_checkpointed_epochs_and_skips_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("steps.jsonl");
        let (mut log, tokens) = StepLog::open(&path, Position::START).unwrap();
        assert_eq!(tokens, 0);
        for r in [rec(1, 1), rec(1, 2), rec(2, 1)] {
            log.append(&r).unwrap();
        }
        drop(log);
        // A kill mid-line.
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"{\"epoch\":2,\"st").unwrap();
        assert_eq!(read(&path), vec![rec(1, 1), rec(1, 2), rec(2, 1)]);
        // Resuming after epoch 1: epoch 2's partial records go.
        let (mut log, tokens) = StepLog::open(&path, Position { epoch: 2, step: 0 }).unwrap();
        assert_eq!(read(&path), vec![rec(1, 1), rec(1, 2)]);
        assert_eq!(tokens, rec(1, 2).tokens);
        // Resuming mid-epoch, after step 1 of epoch 1.
        log.append(&rec(2, 1)).unwrap();
        drop(log);
        let (_, tokens) = StepLog::open(&path, Position { epoch: 1, step: 1 }).unwrap();
        assert_eq!(read(&path), vec![rec(1, 1)]);
        assert_eq!(tokens, rec(1, 1).tokens);
    }
}
