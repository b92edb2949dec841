//! Training: from a checked program, a loaded model and tokenized data to
//! trained adapters and their recorded runs.
//!
//! Enters: [`crate::lang::ir::Program`] runs, the Burn model
//! ([`crate::model`]), [`crate::data::Example`]s and a backend picked by the
//! CLI ([`backend::dispatch`]). Leaves: `runs/<experiment>/<run>/`
//! ([`crate::runs`]). A [`session`] loads each experiment once
//! ([`session::ExperimentContext`]) and trains its runs: [`fit`] is the
//! epoch loop (steps from [`loss`] on [`parallel`] micro-batches sized by
//! [`memory`], [`optim`] and [`schedule`], [`evaluate`] at each epoch's
//! end, [`checkpoint`]s, [`progress`] lines), [`preempt`] turns a signal into a
//! checkpointed stop, and [`run_id`] names what a run computes.

pub mod backend;
pub mod checkpoint;
pub mod evaluate;
pub mod fit;
pub mod host_reads;
pub mod loss;
pub mod memory;
pub mod optim;
pub mod parallel;
pub mod preempt;
pub mod progress;
pub mod run_id;
pub mod schedule;
pub mod session;

pub use fit::{FitEnd, TrainConfig, TrainInputs, TrainOptions, fit};
pub use optim::{OptimizerConfig, OptimizerKind};
pub use schedule::{Schedule, ScheduleKind};
