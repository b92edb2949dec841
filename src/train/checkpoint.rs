//! End-of-epoch checkpoints: the adapter, the optimizer state and the
//! position (epoch, optimizer step), in the run's `checkpoint/` folder
//! ([`RunDir::checkpoint_dir`]). A run resumes only from a checkpoint whose
//! run id and epoch agree with its `metrics.json`.

use std::collections::HashMap;

use anyhow::{Context, Result};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

use super::optim::Optimizer;
use crate::lower::Adapter;
use crate::lower::adapter_file::{load_adapter, save_adapter};
use crate::runs::RunDir;
use crate::runs::atomic::write_atomic;
use crate::runs::metrics::RunMetrics;
use crate::runs::tensor_file;

/// Where a checkpoint stands.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CheckpointState {
    run_id: String,
    /// Epochs completed.
    epoch: usize,
    /// Optimizer steps taken.
    step: u64,
}

/// Save the state after `epoch` (adapter given on the inner backend).
pub fn save<B: Backend>(run: &RunDir, run_id: &str, epoch: usize, adapter: &Adapter<B>, opt: &Optimizer<B>) -> Result<()> {
    let meta = HashMap::from([("run_id".to_string(), run_id.to_string())]);
    save_adapter(adapter, &run.checkpoint_adapter(), meta)?;
    tensor_file::save(&run.checkpoint_optimizer(), &opt.state(), None)?;
    let state = CheckpointState { run_id: run_id.to_string(), epoch, step: opt.step };
    write_atomic(&run.checkpoint_state(), serde_json::to_string(&state)?.as_bytes())
}

/// Restore `adapter` and `opt` from this run's last end-of-epoch checkpoint,
/// if there is one for `run_id`; returns the metrics recorded up to it.
pub fn resume<B: AutodiffBackend>(
    run: &RunDir,
    run_id: &str,
    adapter: &mut Adapter<B>,
    opt: &mut Optimizer<B::InnerBackend>,
    device: &B::Device,
) -> Result<Option<RunMetrics>> {
    let Ok(text) = std::fs::read_to_string(run.checkpoint_state()) else {
        return Ok(None);
    };
    let state: CheckpointState = serde_json::from_str(&text).context("reading checkpoint/state.json")?;
    let Some(prev) = run.read_metrics().filter(|p| p.run_id == run_id && state.run_id == run_id && p.epochs.len() == state.epoch) else {
        return Ok(None);
    };
    let mut inner = adapter.valid();
    load_adapter(&mut inner, &run.checkpoint_adapter(), device)?;
    *adapter = Adapter::from_inner(&inner);
    let sizes: Vec<usize> = inner.params().iter().map(|p| p.dims()[0]).collect();
    opt.load_state(state.step, &sizes, &tensor_file::load(&run.checkpoint_optimizer())?, device)?;
    Ok(Some(prev))
}
