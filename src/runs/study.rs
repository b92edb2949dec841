//! `runs/<experiment>/study.json`: what an experiment says about comparing
//! its runs — how each run group's representative is selected, the
//! reference group, and every planned run with its group and configuration.
//!
//! Written by `peftc run` before training (atomically, every session, so it
//! follows the spec); read by the report, which renders the same tables
//! from `peftc report runs/` as from `peftc run`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::atomic::write_atomic;

/// The file name, beside the experiment's run directories.
pub const STUDY_FILE: &str = "study.json";

/// How an experiment picks each run group's representative configuration
/// (`select = …`): the seed's protocol, and the default, is the train loss
/// after the final epoch. Values are means over a configuration's seeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Selection {
    /// `train_loss(epoch: last)` (`epoch: None`) or `train_loss(epoch: N)`.
    TrainLoss { epoch: Option<usize> },
    /// `test_loss(best)`: the best end-of-epoch test loss.
    TestLossBest,
}

impl Default for Selection {
    fn default() -> Self {
        Selection::TrainLoss { epoch: None }
    }
}

impl std::fmt::Display for Selection {
    /// As a spec writes it: `train_loss(epoch: last)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Selection::TrainLoss { epoch: None } => f.write_str("train_loss(epoch: last)"),
            Selection::TrainLoss { epoch: Some(n) } => write!(f, "train_loss(epoch: {n})"),
            Selection::TestLossBest => f.write_str("test_loss(best)"),
        }
    }
}

/// One planned run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedRun {
    pub name: String,
    /// Its run statement's `as` name, or its scheme.
    pub group: String,
    /// Its name without a seed replicate's `-seed=N`.
    pub config: String,
}

/// The comparison settings of one experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Study {
    pub select: Selection,
    /// The run group every other is compared against.
    pub reference: Option<String>,
    pub runs: Vec<PlannedRun>,
}

impl Study {
    /// `<experiment_dir>/study.json`.
    pub fn path(experiment_dir: &Path) -> PathBuf {
        experiment_dir.join(STUDY_FILE)
    }

    /// Read it; `Ok(None)` when the experiment has none (runs recorded
    /// before it existed, or a directory of runs copied without it).
    pub fn read(experiment_dir: &Path) -> Result<Option<Study>> {
        let p = Self::path(experiment_dir);
        match std::fs::read_to_string(&p) {
            Ok(text) => Ok(Some(serde_json::from_str(&text).with_context(|| format!("reading {}", p.display()))?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
        }
    }

    pub fn write(&self, experiment_dir: &Path) -> Result<()> {
        write_atomic(&Self::path(experiment_dir), serde_json::to_string_pretty(self)?.as_bytes())
    }
}
