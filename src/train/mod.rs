//! Training: optimizers (PyTorch semantics), schedules, clipping, the epoch
//! loop with evaluation, checkpoints and resumption, and results files.

pub mod backend;
pub mod data;
pub mod evaluate;
pub mod fit;
pub mod loss;
pub mod optim;
pub mod parallel;
pub mod schedule;
pub mod session;

pub use data::{Example, LossOn};
pub use fit::{TrainConfig, TrainOptions, blank_metrics, evaluate, fit};
pub use crate::model::causal_lm::{CausalLm, TinyLm};
pub use optim::{OptimizerConfig, OptimizerKind};
pub use schedule::{Schedule, ScheduleKind};
