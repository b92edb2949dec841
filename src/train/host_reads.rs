//! Reads from the device back to the host, counted. On a GPU each one
//! waits for every queued kernel (a sync point), so a training step makes at
//! most one — its loss — and `peftc bench` reports the count per step.

use std::sync::atomic::{AtomicU64, Ordering};

use burn::prelude::*;

static READS: AtomicU64 = AtomicU64::new(0);

/// The value of a one-element tensor, as f64: one counted read.
pub fn read_scalar<B: Backend>(t: Tensor<B, 1>) -> f64 {
    READS.fetch_add(1, Ordering::Relaxed);
    t.into_scalar().elem::<f64>()
}

/// Reads made so far by this process (through [`read_scalar`]).
pub fn count() -> u64 {
    READS.load(Ordering::Relaxed)
}
