//! One run of an experiment as found on disk: recorded metrics, or the reason
//! there are none.

use std::fs;
use std::path::Path;

use crate::runs::metrics::RunMetrics;
use crate::runs::step_log::StepRecord;

/// Stands in for a float written as `null` while parsing; never a real loss.
const NULL_FLOAT: f64 = -1.234_567_890_123e300;

/// Float fields of `metrics.json`, as paths (`*` = every array element).
const FLOAT_PATHS: [&[&str]; 10] = [
    &["epochs", "*", "train_bits"],
    &["epochs", "*", "test_bits_all"],
    &["epochs", "*", "test_bits_completion"],
    &["epochs", "*", "train_seconds"],
    &["best", "bits"],
    &["best", "bits_completion"],
    &["base", "test_bits_all"],
    &["base", "test_bits_completion"],
    &["wall_seconds"],
    &["train_tokens_per_s"],
];

fn replace_nulls(v: &mut serde_json::Value, path: &[&str]) -> usize {
    match path.split_first() {
        None => {
            if v.is_null() {
                *v = serde_json::json!(NULL_FLOAT);
                1
            } else {
                0
            }
        }
        Some((&"*", rest)) => v.as_array_mut().map(|a| a.iter_mut().map(|x| replace_nulls(x, rest)).sum()).unwrap_or(0),
        Some((key, rest)) => v.get_mut(*key).map(|x| replace_nulls(x, rest)).unwrap_or(0),
    }
}

fn nan_if_null(x: &mut f64) {
    if *x == NULL_FLOAT {
        *x = f64::NAN;
    }
}

/// Parse `metrics.json`. serde_json writes a NaN or infinite float as
/// `null`, which it then refuses to read back as a number; such a loss is
/// read as NaN instead of making the whole run unreadable.
pub fn parse_metrics(text: &str) -> Result<RunMetrics, serde_json::Error> {
    let strict = serde_json::from_str::<RunMetrics>(text);
    let Err(err) = strict else { return strict };
    let Ok(mut v) = serde_json::from_str::<serde_json::Value>(text) else { return Err(err) };
    if FLOAT_PATHS.iter().map(|p| replace_nulls(&mut v, p)).sum::<usize>() == 0 {
        return Err(err);
    }
    let mut m: RunMetrics = serde_json::from_value(v).map_err(|_| err)?;
    for e in &mut m.epochs {
        nan_if_null(&mut e.train_bits);
        nan_if_null(&mut e.test_bits_all);
        nan_if_null(&mut e.test_bits_completion);
        nan_if_null(&mut e.train_seconds);
    }
    if let Some(b) = &mut m.best {
        nan_if_null(&mut b.bits);
        nan_if_null(&mut b.bits_completion);
    }
    if let Some(b) = &mut m.base {
        nan_if_null(&mut b.test_bits_all);
        nan_if_null(&mut b.test_bits_completion);
    }
    nan_if_null(&mut m.wall_seconds);
    nan_if_null(&mut m.train_tokens_per_s);
    Ok(m)
}

/// A run directory (or a planned run) and what could be read of it.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEntry {
    /// `metrics.json` was read.
    /// With the run's training curve (`steps.jsonl`; empty when absent).
    Recorded { dir_name: String, metrics: Box<RunMetrics>, steps: Vec<StepRecord> },
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
        let path = crate::runs::RunDir::at(dir).metrics();
        if !path.exists() {
            return RunEntry::Missing { run_name: dir_name };
        }
        match fs::read_to_string(&path) {
            Err(e) => RunEntry::Unreadable { run_name: dir_name, error: format!("reading {}: {e}", path.display()) },
            Ok(text) => match parse_metrics(&text) {
                Ok(metrics) => {
                    let steps = crate::runs::step_log::read(&crate::runs::RunDir::at(dir).steps());
                    RunEntry::Recorded { dir_name, metrics: Box::new(metrics), steps }
                }
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
            RunEntry::Recorded { dir_name, metrics, .. } => metrics.run_name == name || dir_name == name,
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

    /// The run's per-step training curve (empty when not recorded).
    pub fn steps(&self) -> &[StepRecord] {
        match self {
            RunEntry::Recorded { steps, .. } => steps,
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_losses_read_as_nan() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/report/runs/gsm8k_quick/lora_gamma-gamma=1/metrics.json");
        let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        v["epochs"][2]["test_bits_all"] = serde_json::Value::Null;
        v["train_tokens_per_s"] = serde_json::Value::Null;
        let text = v.to_string();
        assert!(serde_json::from_str::<RunMetrics>(&text).is_err(), "serde_json itself rejects null floats");
        let m = parse_metrics(&text).unwrap();
        assert!(m.epochs[2].test_bits_all.is_nan());
        assert!(m.train_tokens_per_s.is_nan());
        assert_eq!(m.epochs[1].test_bits_all, 2.473);
        // Any other problem is still an error.
        v["run_id"] = serde_json::Value::Null;
        assert!(parse_metrics(&v.to_string()).is_err());
    }
}
