//! peftc: a declarative experiment-spec compiler for parameter-efficient fine-tuning.

pub mod atomic;
pub mod backend;
pub mod bench;
pub mod data;
pub mod eval;
pub mod gguf;
pub mod head_loss;
pub mod hf_dir;
pub mod hook;
pub mod io_cli;
pub mod lang;
pub mod lower;
pub mod merge;
pub mod metrics;
pub mod model;
pub mod model_source;
pub mod parallel;
pub mod precision;
pub mod report;
pub mod run;
pub mod target;
pub mod tokenizer;
pub mod train;
pub mod weights;
