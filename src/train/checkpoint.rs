//! Step checkpoints: everything a run needs to continue exactly where it
//! stood — the adapter, the optimizer state (moments and step count, which
//! is also the schedule's position), the position in the data (epoch and
//! batches done of its order; the order is a pure function of the seed and
//! the epoch, [`super::fit::shuffled`], the only random stream training
//! draws from) and the partial epoch's sums and the completed epochs'
//! metrics — written as one unit.
//!
//! A checkpoint is a directory `checkpoints/e0002-s000150/` holding
//! `adapter.safetensors`, `optimizer.safetensors` and `state.json`, whose
//! manifest records the SHA-256 of the other two. It is written under a
//! hidden temporary name and renamed into place whole, and older
//! checkpoints are removed only after that, so a kill at any moment leaves
//! the previous checkpoint or the new one, never a mix; a checkpoint whose
//! files do not match its manifest (a torn write on a filesystem that lies)
//! is skipped for the one before it.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::optim::Optimizer;
use crate::lower::Adapter;
use crate::runs::RunDir;
use crate::runs::metrics::EpochMetrics;
use crate::runs::step_log::Position;
use crate::runs::tensor_file;

const ADAPTER: &str = "adapter.safetensors";
const OPTIMIZER: &str = "optimizer.safetensors";
const STATE: &str = "state.json";

/// Sums of the epoch in progress, over the batches done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochSums {
    pub loss_bits: f64,
    pub steps: u64,
    pub tokens: u64,
    pub train_seconds: f64,
}

/// Where a checkpoint stands (`state.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    pub version: u32,
    pub run_id: String,
    /// The epoch in progress and its batches done.
    pub position: Position,
    /// Optimizer steps taken (the schedule's position).
    pub optimizer_step: u64,
    /// The training seed: with the epoch, it fixes the data order.
    pub seed: u64,
    /// Real tokens trained on so far (the step log's running total).
    pub run_tokens: u64,
    pub sums: EpochSums,
    /// The completed epochs.
    pub epochs: Vec<EpochMetrics>,
    pub wall_seconds: f64,
    /// SHA-256 of each tensor file of the checkpoint.
    pub files: BTreeMap<String, String>,
}

/// Why a checkpoint write stopped.
#[derive(Debug)]
pub enum CheckpointError {
    /// A test's injected kill after this many file operations.
    InjectedKill {
        after_ops: usize,
    },
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckpointError::InjectedKill { after_ops } => {
                write!(f, "checkpoint write killed (injected) after {after_ops} file operations")
            }
            CheckpointError::Io { path, source } => write!(f, "writing checkpoint {}: {source}", path.display()),
        }
    }
}

impl std::error::Error for CheckpointError {}

/// Counts file operations and stops after `kill_after` of them, leaving the
/// disk as a kill there would (no clean-up): the tests' injected kill.
struct Ops {
    done: usize,
    kill_after: Option<usize>,
}

impl Ops {
    fn op(&mut self, path: &Path, f: impl FnOnce() -> std::io::Result<()>) -> Result<(), CheckpointError> {
        if self.kill_after.is_some_and(|k| self.done >= k) {
            return Err(CheckpointError::InjectedKill { after_ops: self.done });
        }
        f().map_err(|source| CheckpointError::Io { path: path.to_path_buf(), source })?;
        self.done += 1;
        Ok(())
    }

    /// A file written in two halves (a kill between leaves it torn), then synced.
    fn write_file(&mut self, path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
        let half = bytes.len() / 2;
        self.op(path, || fs::File::create_new(path)?.write_all(&bytes[..half]))?;
        self.op(path, || {
            let mut f = fs::OpenOptions::new().append(true).open(path)?;
            f.write_all(&bytes[half..])?;
            f.sync_all()
        })
    }
}

/// The directory name of a checkpoint at `p`.
fn dir_name(p: Position) -> String {
    format!("e{:04}-s{:06}", p.epoch, p.step)
}

/// Save a checkpoint of `state` (its `files` are filled in here) with the
/// adapter (inner backend) and optimizer; removes older checkpoints.
pub fn save<B: Backend>(run: &RunDir, state: CheckpointState, adapter: &Adapter<B>, opt: &Optimizer<B>) -> Result<()> {
    save_with_kill(run, state, adapter, opt, None).map_err(anyhow::Error::from)
}

/// [`save`], stopped dead after `kill_after` file operations when given (tests).
pub fn save_with_kill<B: Backend>(
    run: &RunDir,
    mut state: CheckpointState,
    adapter: &Adapter<B>,
    opt: &Optimizer<B>,
    kill_after: Option<usize>,
) -> Result<(), CheckpointError> {
    let root = run.checkpoints_dir();
    let adapter_bytes = crate::lower::adapter_file::adapter_bytes(adapter, HashMap::from([("run_id".to_string(), state.run_id.clone())]))
        .map_err(|e| CheckpointError::Io { path: root.clone(), source: std::io::Error::other(format!("{e:#}")) })?;
    let opt_bytes = tensor_file::to_bytes(&opt.state(), None)
        .map_err(|e| CheckpointError::Io { path: root.clone(), source: std::io::Error::other(format!("{e:#}")) })?;
    state.files = BTreeMap::from([(ADAPTER.to_string(), sha256(&adapter_bytes)), (OPTIMIZER.to_string(), sha256(&opt_bytes))]);
    let state_bytes = serde_json::to_vec_pretty(&state).expect("a checkpoint state serializes");

    let mut ops = Ops { done: 0, kill_after };
    static N: AtomicU64 = AtomicU64::new(0);
    let tmp = root.join(format!(".partial.{}.{}.{}", crate::runs::atomic::host(), std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
    ops.op(&tmp, || fs::create_dir_all(&tmp))?;
    ops.write_file(&tmp.join(ADAPTER), &adapter_bytes)?;
    ops.write_file(&tmp.join(OPTIMIZER), &opt_bytes)?;
    ops.write_file(&tmp.join(STATE), &state_bytes)?;
    let target = root.join(dir_name(state.position));
    if target.exists() {
        // The same position saved before (a stop right after a resume): keep that one.
        ops.op(&tmp, || fs::remove_dir_all(&tmp))?;
    } else {
        ops.op(&target, || fs::rename(&tmp, &target))?;
        // Durability of the rename where the filesystem offers it.
        let _ = fs::File::open(&root).and_then(|d| d.sync_all());
    }
    for old in list(&root).into_iter().filter(|p| *p != target) {
        ops.op(&old, || fs::remove_dir_all(&old))?;
    }
    Ok(())
}

/// Every checkpoint-like directory under `root` (complete ones by name,
/// partial ones of dead writers too), oldest name first.
fn list(root: &Path) -> Vec<PathBuf> {
    let Ok(rd) = fs::read_dir(root) else { return vec![] };
    let mut v: Vec<PathBuf> = rd.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()).collect();
    v.sort();
    v
}

/// The newest complete, intact checkpoint of `run_id`, read and verified
/// (`None` when there is none).
pub fn latest(run: &RunDir, run_id: &str) -> Option<(PathBuf, CheckpointState, Vec<u8>, Vec<u8>)> {
    let mut dirs: Vec<PathBuf> =
        list(&run.checkpoints_dir()).into_iter().filter(|p| !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))).collect();
    dirs.reverse();
    for dir in dirs {
        match verify(&dir, run_id) {
            Ok(x) => return Some(x),
            Err(why) => eprintln!("warning: checkpoint {} skipped: {why}", dir.display()),
        }
    }
    None
}

fn verify(dir: &Path, run_id: &str) -> Result<(PathBuf, CheckpointState, Vec<u8>, Vec<u8>), String> {
    let text = fs::read_to_string(dir.join(STATE)).map_err(|e| format!("no readable {STATE} ({e})"))?;
    let state: CheckpointState = serde_json::from_str(&text).map_err(|e| format!("{STATE} unreadable ({e})"))?;
    if state.run_id != run_id {
        return Err(format!("it is of run id {}, not {run_id}", state.run_id));
    }
    let read = |name: &str| -> Result<Vec<u8>, String> {
        let bytes = fs::read(dir.join(name)).map_err(|e| format!("{name}: {e}"))?;
        if state.files.get(name) != Some(&sha256(&bytes)) {
            return Err(format!("{name} does not match its manifest hash"));
        }
        Ok(bytes)
    };
    let (a, o) = (read(ADAPTER)?, read(OPTIMIZER)?);
    Ok((dir.to_path_buf(), state, a, o))
}

/// Restore `adapter` and `opt` from the newest intact checkpoint of
/// `run_id`; returns its state.
pub fn resume<B: AutodiffBackend>(
    run: &RunDir,
    run_id: &str,
    adapter: &mut Adapter<B>,
    opt: &mut Optimizer<B::InnerBackend>,
    device: &B::Device,
) -> Result<Option<CheckpointState>> {
    let Some((dir, state, adapter_bytes, opt_bytes)) = latest(run, run_id) else {
        return Ok(None);
    };
    let ctx = || format!("loading checkpoint {}", dir.display());
    let mut inner = adapter.valid();
    crate::lower::adapter_file::load_adapter_bytes(&mut inner, &adapter_bytes, device).with_context(ctx)?;
    *adapter = Adapter::from_inner(&inner);
    let sizes: Vec<usize> = inner.params().iter().map(|p| p.dims()[0]).collect();
    opt.load_state(state.optimizer_step, &sizes, &tensor_file::from_bytes(&opt_bytes).with_context(ctx)?, device).with_context(ctx)?;
    Ok(Some(state))
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}
