//! Helpers shared by the integration tests.

pub mod io;
pub mod loss;
pub mod lower;
pub mod reference;
pub mod sweep;
pub mod tiny_lm;

#[allow(unused_imports)]
pub use tiny_lm::TinyLm;
