//! The `runs/<experiment>/<run>/` contract.
//!
//! Enters: what a training session records. Leaves: files on disk that
//! `peftc run` (skip/resume), `merge`, `export-peft` and the reports read
//! back. Every file is written atomically ([`atomic::write_atomic`]).

pub mod atomic;
pub mod metrics;
pub mod tensor_file;
