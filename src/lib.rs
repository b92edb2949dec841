//! peftc: a declarative experiment-spec compiler for parameter-efficient fine-tuning.
//!
//! The pipeline, one folder per stage (each `mod.rs` says what enters and
//! what leaves it):
//!
//! ```text
//! .peft text ──lang──▶ checked IR ──lower──▶ adapter (a LinearHook)
//! model files ──pretrained──▶ LoadedModel ──model──▶ Burn decoder
//! GSM8K jsonl ──data──▶ Example ──▶ Batch
//! IR + decoder + adapter + batches ──train──▶ runs/<experiment>/<run>/ (runs)
//! runs/ ──report──▶ Markdown + HTML
//! ```
//!
//! `cli` holds one file per subcommand; it is the only place that picks a
//! concrete Burn backend.

pub mod cli;
pub mod data;
pub mod lang;
pub mod lower;
pub mod model;
pub mod pretrained;
pub mod report;
pub mod runs;
pub mod train;
