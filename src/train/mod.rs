//! Training: optimizers (PyTorch semantics), schedules, clipping, the epoch
//! loop with evaluation, checkpoints and resumption, and results files.

pub mod data;
pub mod fit;
pub mod lm;
pub mod loss;
pub mod optim;
pub mod schedule;
pub mod st;

pub use data::{Example, LossOn};
pub use fit::{TrainConfig, TrainOptions, blank_metrics, evaluate, fit};
pub use lm::{CausalLm, TinyLm};
pub use optim::{OptimizerConfig, OptimizerKind};
pub use schedule::{Schedule, ScheduleKind};
