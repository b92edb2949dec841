//! peftc's integration tests, one binary (each module was a test binary of
//! its own; one binary links Burn's generic op stack once). Modules are named
//! by the stage they test: `lang_*`, `io_*` (pretrained model files),
//! `model_*`, `lower_*`, `data_*`, `train_*`, `report_*`, `cli_*`.
//!
//! Every backend here computes in f32 on `NdArrayDevice`: burn 0.21 keeps one
//! default float dtype per device for the whole process, so the f64 gradient
//! checks live in their own binary (`tests/f64`).
//!
//! Slow tests are `#[ignore]`d with a reason; run them with
//! `cargo test --release -- --ignored`.

mod support;

mod cli_families;
mod cli_run;
mod cli_sweep;
mod data_gsm8k;
mod io_cli;
mod io_config;
mod io_dequant;
mod io_gguf;
mod io_hf_dir;
mod io_reference_forward;
mod io_roundtrip;
mod io_smollm2;
mod io_tokenizer;
mod lang_cli;
mod lang_counts;
mod lang_eval;
mod lang_snapshots;
mod layout;
mod lower_specs;
mod model_families;
mod model_gemma3;
mod model_smollm2;
mod model_speed;
mod model_tiny;
mod ndarray_patches;
mod precision_bf16;
mod report_browser;
mod report_markdown;
mod slurm_local;
mod train_optim;
mod train_parallel;
mod train_resume;
mod train_run_id;
