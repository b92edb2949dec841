//! One run of an experiment as found on disk: recorded metrics, or the reason
//! there are none.

use std::fs;
use std::path::Path;

use crate::metrics::RunMetrics;

/// A run directory (or a planned run) and what could be read of it.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEntry {
    /// `metrics.json` was read.
    Recorded { dir_name: String, metrics: Box<RunMetrics> },
    /// Planned, or a run directory without `metrics.json` (never started, or
    /// killed before its first write).
    Missing { run_name: String },
    /// `metrics.json` exists but could not be read or parsed.
    Unreadable { run_name: String, error: String },
}

impl RunEntry {
    /// Read `dir/metrics.json`; never fails, bad input becomes `Missing` or `Unreadable`.
    pub fn load(dir: &Path) -> RunEntry {
        let dir_name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let path = dir.join("metrics.json");
        if !path.exists() {
            return RunEntry::Missing { run_name: dir_name };
        }
        match fs::read_to_string(&path) {
            Err(e) => RunEntry::Unreadable { run_name: dir_name, error: format!("reading {}: {e}", path.display()) },
            Ok(text) => match serde_json::from_str::<RunMetrics>(&text) {
                Ok(metrics) => RunEntry::Recorded { dir_name, metrics: Box::new(metrics) },
                Err(e) => RunEntry::Unreadable { run_name: dir_name, error: format!("parsing metrics.json: {e}") },
            },
        }
    }

    /// The run's name: `run_name` from the metrics, else the directory name.
    pub fn run_name(&self) -> &str {
        match self {
            RunEntry::Recorded { metrics, .. } => &metrics.run_name,
            RunEntry::Missing { run_name } | RunEntry::Unreadable { run_name, .. } => run_name,
        }
    }

    /// Whether this entry answers to `name` (its run name or its directory name).
    pub fn is_named(&self, name: &str) -> bool {
        match self {
            RunEntry::Recorded { dir_name, metrics } => metrics.run_name == name || dir_name == name,
            _ => self.run_name() == name,
        }
    }

    /// The scheme: recorded, or guessed from a run name of the form
    /// `<scheme>-<args>` / `<scheme>` when there are no metrics.
    pub fn scheme(&self) -> String {
        match self {
            RunEntry::Recorded { metrics, .. } => metrics.scheme.clone(),
            _ => {
                let name = self.run_name();
                name.split('-').next().filter(|s| !s.is_empty()).unwrap_or(name).to_string()
            }
        }
    }

    pub fn metrics(&self) -> Option<&RunMetrics> {
        match self {
            RunEntry::Recorded { metrics, .. } => Some(metrics),
            _ => None,
        }
    }
}
