//! The f64 test binary: finite-difference gradient checks of the lowered
//! schemes. It is separate from `tests/it` because burn 0.21 keeps one
//! default float dtype per device (`NdArrayDevice` for both `NdArray<f32>`
//! and `NdArray<f64>`) for the whole process: in one binary, whichever test
//! touched the device first would decide the dtype of the other's new
//! tensors.

#[path = "../it/support/mod.rs"]
#[allow(unused_imports)]
mod support;

mod lower_schemes;
