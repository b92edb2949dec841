//! peftc: a declarative experiment-spec compiler for parameter-efficient fine-tuning.

pub mod atomic;
pub mod hook;
pub mod metrics;
pub mod target;
pub mod weights;
pub mod lower;
pub mod train;
pub mod backend;
pub mod lang;
pub mod data;
pub mod eval;
pub mod model;
pub mod gguf;
pub mod hf_dir;
pub mod model_source;
pub mod tokenizer;
pub mod run;
pub mod merge;
pub mod bench;
pub mod report;
