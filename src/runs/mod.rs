//! The `runs/<experiment>/<run>/` contract: what is on disk, under which
//! names, in which format.
//!
//! Enters: what a training session records. Leaves: files that `peftc run`
//! (skip/resume), `merge`, `export-peft` and the reports read back.
//! [`RunDir`] owns every file name; [`metrics::RunMetrics`] is
//! `metrics.json`; [`step_log`] `steps.jsonl` (the per-step training
//! curve); [`tensor_file`] the f32 safetensors of adapters and
//! optimizer states; [`lease`] who trains a run (`.lease`); [`plan`] a
//! sweep's frozen run list and its shards (`plan.json`). Every file is written atomically
//! ([`atomic::write_atomic`], also used for model files and reports). This
//! stage depends on no other: the run id that names a run's content is
//! computed by the trainer ([`crate::train::run_id`]).

pub mod atomic;
pub mod lease;
pub mod listing;
pub mod metrics;
pub mod plan;
pub mod run_dir;
pub mod step_log;
pub mod study;
pub mod tensor_file;

pub use run_dir::RunDir;
