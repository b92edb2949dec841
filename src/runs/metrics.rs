//! `metrics.json`: what a run records, and what reports read.
//!
//! Written by the trainer into `runs/<experiment>/<run>/metrics.json`
//! (atomically: temp file then rename), read by `peftc report`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// State of a run as recorded on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RunStatus {
    /// All epochs done.
    Complete,
    /// Started, not finished (interrupted, or still running); resumable.
    Incomplete,
    /// Stopped because the loss became NaN or infinite.
    Diverged { epoch: usize, step: usize, message: String },
    /// Any other failure, with its message.
    Failed { message: String },
}

/// Losses at the end of one epoch (epochs count from 1). Losses are cross
/// entropy per predicted token in bits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    /// Mean train loss over the epoch's steps (over the tokens the spec's
    /// `loss:` selects).
    pub train_bits: f64,
    /// Test loss over all predicted tokens.
    pub test_bits_all: f64,
    /// Test loss over the completion (answer) tokens only.
    pub test_bits_completion: f64,
    /// Seconds spent training in this epoch (evaluation excluded).
    pub train_seconds: f64,
    /// Real (unpadded) tokens trained on in this epoch.
    pub train_tokens: u64,
}

/// The best end-of-epoch test loss (over the spec's selected tokens).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BestTest {
    pub epoch: usize,
    pub bits: f64,
    pub bits_completion: f64,
}

/// The base model's test losses, the reference row of a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaseLoss {
    pub test_bits_all: f64,
    pub test_bits_completion: f64,
}

/// Everything recorded about one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMetrics {
    pub peftc_version: String,
    pub experiment: String,
    /// Readable, stable run name, e.g. `lora_gamma-gamma=32`.
    pub run_name: String,
    /// Hash of everything that affects the result.
    pub run_id: String,
    pub scheme: String,
    /// The scheme's arguments after defaults, by name.
    pub args: BTreeMap<String, serde_json::Value>,
    /// Names of arguments swept by a list (or drawn by a random search) in
    /// the experiment; never `seed`.
    pub swept: Vec<String>,
    /// The run statement's `as` name or scheme: the report's unit of
    /// selection (absent in runs recorded before it was: the scheme).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The configuration this run replicates: its name without a seed
    /// replicate's `-seed=N` (absent before it was recorded: the run name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    /// The scheme's formula as written, one line per declaration and output,
    /// with tying modes shown.
    pub formula: String,
    pub status: RunStatus,
    pub trainable_params: u64,
    /// `all` or `completion`: which tokens the training loss and `best` use.
    pub loss_on: String,
    pub epochs_planned: usize,
    pub epochs: Vec<EpochMetrics>,
    pub best: Option<BestTest>,
    pub base: Option<BaseLoss>,
    pub wall_seconds: f64,
    /// Training throughput over all epochs, real tokens per second.
    pub train_tokens_per_s: f64,
    pub backend: String,
    pub device: String,
    pub precision: String,
    pub seed: u64,
    pub spec_hash: String,
    pub dataset_hash: String,
    pub model: String,
    pub git_commit: Option<String>,
    /// Padded tokens per micro-batch the run trained with (absent in runs
    /// recorded before it was).
    #[serde(default)]
    pub micro_tokens: Option<usize>,
    /// The process's peak resident memory while the run trained, in bytes
    /// (Linux; the high-water mark restarts with each run).
    #[serde(default)]
    pub peak_rss_bytes: Option<u64>,
}

impl RunMetrics {
    /// A `RunMetrics` with every field empty or zero, for callers to fill.
    pub fn blank(experiment: &str, run_name: &str, run_id: &str) -> Self {
        RunMetrics {
            peftc_version: env!("CARGO_PKG_VERSION").to_string(),
            experiment: experiment.to_string(),
            run_name: run_name.to_string(),
            run_id: run_id.to_string(),
            scheme: String::new(),
            args: Default::default(),
            swept: vec![],
            group: None,
            config: None,
            formula: String::new(),
            status: RunStatus::Incomplete,
            trainable_params: 0,
            loss_on: "all".to_string(),
            epochs_planned: 0,
            epochs: vec![],
            best: None,
            base: None,
            wall_seconds: 0.0,
            train_tokens_per_s: 0.0,
            backend: String::new(),
            device: String::new(),
            precision: "f32".to_string(),
            seed: 0,
            spec_hash: String::new(),
            dataset_hash: String::new(),
            model: String::new(),
            git_commit: None,
            micro_tokens: None,
            peak_rss_bytes: None,
        }
    }

    /// The epoch with the lowest test loss over the selected tokens.
    pub fn compute_best(&self) -> Option<BestTest> {
        self.epochs
            .iter()
            .map(|e| {
                let bits = if self.loss_on == "completion" { e.test_bits_completion } else { e.test_bits_all };
                BestTest { epoch: e.epoch, bits, bits_completion: e.test_bits_completion }
            })
            .filter(|b| b.bits.is_finite())
            .min_by(|a, b| a.bits.total_cmp(&b.bits))
    }
}
