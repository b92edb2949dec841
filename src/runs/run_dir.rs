//! `RunDir`: one run's directory and the name of every file in it.
//!
//! ```text
//! runs/<experiment>/<run>/
//!   metrics.json            what the run recorded (RunMetrics), rewritten every epoch
//!   run.json                the resolved run: scheme instance, train and data settings
//!   scheme.peft             the scheme's source
//!   adapter.safetensors     the trained adapter (written when the run completes)
//!   steps.jsonl             the per-step training curve
//!   checkpoints/            the last step checkpoint, one directory written whole
//!     e0002-s000150/        (crate::train::checkpoint)
//!       adapter.safetensors
//!       optimizer.safetensors
//!       state.json          position, optimizer step, sums, manifest of hashes
//!   .lease                  the worker training the run (super::lease)
//! ```
//!
//! No other module spells these names.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::atomic::write_atomic;
use super::metrics::RunMetrics;

/// The file holding a run's [`RunMetrics`] (also what marks a directory as a run).
pub const METRICS_FILE: &str = "metrics.json";

/// One run's directory, `runs/<experiment>/<run>/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// `<runs_root>/<experiment>/<run>`.
    pub fn new(runs_root: &Path, experiment: &str, run: &str) -> Self {
        RunDir { path: runs_root.join(experiment).join(run) }
    }

    /// An existing run directory given by its path (`peftc merge <run>`).
    pub fn at(path: &Path) -> Self {
        RunDir { path: path.to_path_buf() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn metrics(&self) -> PathBuf {
        self.path.join(METRICS_FILE)
    }

    pub fn run_json(&self) -> PathBuf {
        self.path.join("run.json")
    }

    pub fn scheme(&self) -> PathBuf {
        self.path.join("scheme.peft")
    }

    /// The per-step training curve ([`super::step_log`]).
    pub fn steps(&self) -> PathBuf {
        self.path.join("steps.jsonl")
    }

    pub fn adapter(&self) -> PathBuf {
        self.path.join("adapter.safetensors")
    }

    /// Default output folder of `peftc export-peft`.
    pub fn peft_export(&self) -> PathBuf {
        self.path.join("peft")
    }

    /// Step checkpoints ([`crate::train::checkpoint`] names what is inside).
    pub fn checkpoints_dir(&self) -> PathBuf {
        self.path.join("checkpoints")
    }

    /// The lease of the worker training the run ([`super::lease`]).
    pub fn lease(&self) -> PathBuf {
        self.path.join(".lease")
    }

    /// The recorded metrics, if the file exists and parses.
    pub fn read_metrics(&self) -> Option<RunMetrics> {
        let text = std::fs::read_to_string(self.metrics()).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// The recorded metrics, or an error saying this is not a run directory.
    pub fn load_metrics(&self) -> Result<RunMetrics> {
        let text = std::fs::read_to_string(self.metrics())
            .with_context(|| format!("{} is not a run directory (no {METRICS_FILE})", self.path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("reading {}", self.metrics().display()))
    }

    /// Write `metrics.json` atomically.
    pub fn write_metrics(&self, m: &RunMetrics) -> Result<()> {
        write_atomic(&self.metrics(), serde_json::to_string_pretty(m)?.as_bytes())
    }

    /// Is there a file of this run's name? (for callers listing runs)
    pub fn has_metrics(&self) -> bool {
        self.metrics().is_file()
    }
}
