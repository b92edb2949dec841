//! Learning-rate schedules with linear warmup, as HF transformers' schedulers
//! (`get_{constant,linear,cosine}_schedule_with_warmup`): the factor for the
//! optimizer step taken after `step` earlier steps is
//! - warmup (`step < warmup`): `step / warmup`
//! - constant: 1
//! - linear: `(total − step) / (total − warmup)`, floored at 0
//! - cosine: `½ (1 + cos(π · (step − warmup) / (total − warmup)))`

use serde::{Deserialize, Serialize};

pub use crate::lang::ir::ScheduleKind;

/// The trainer's schedule: the spec's kind with its warmup resolved to steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub kind: ScheduleKind,
    /// Warmup steps (optimizer steps).
    pub warmup: u64,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule { kind: ScheduleKind::Constant, warmup: 0 }
    }
}

impl Schedule {
    /// Multiplier of the base learning rate for the step after `step` steps of `total`.
    pub fn factor(&self, step: u64, total: u64) -> f64 {
        if step < self.warmup {
            return step as f64 / self.warmup.max(1) as f64;
        }
        let span = total.saturating_sub(self.warmup).max(1) as f64;
        let done = (step - self.warmup) as f64;
        match self.kind {
            ScheduleKind::Constant => 1.0,
            ScheduleKind::Linear => ((span - done) / span).max(0.0),
            ScheduleKind::Cosine => 0.5 * (1.0 + (std::f64::consts::PI * (done / span).min(1.0)).cos()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_decay() {
        let s = Schedule { kind: ScheduleKind::Cosine, warmup: 10 };
        assert_eq!(s.factor(0, 110), 0.0);
        assert!((s.factor(5, 110) - 0.5).abs() < 1e-12);
        assert!((s.factor(10, 110) - 1.0).abs() < 1e-12);
        assert!((s.factor(60, 110) - 0.5).abs() < 1e-12);
        assert!(s.factor(110, 110).abs() < 1e-12);
        let l = Schedule { kind: ScheduleKind::Linear, warmup: 0 };
        assert!((l.factor(25, 100) - 0.75).abs() < 1e-12);
        assert_eq!(Schedule::default().factor(7, 100), 1.0);
    }
}
