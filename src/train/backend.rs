//! Backend selection at run time, by name.
//!
//! Code is generic over `B: Backend`; the concrete backend is chosen here.
//! `ndarray` (CPU, f32) is always built; `cuda` and `tch` (libtorch) only
//! with their cargo features, and naming one that is not built is a clear
//! error. Training runs on `Autodiff<backend>`; evaluation on the backend
//! itself. Everything runs in f32 unless a spec asks for `precision: bf16`
//! on a backend that computes it ([`computes_bf16`]): then the base model is
//! bf16 and the adapters and loss stay f32 ([`crate::model::precision`]).

use std::fmt;
use std::str::FromStr;

use burn::tensor::backend::AutodiffBackend;

/// A backend peftc knows by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    NdArray,
    Cuda,
    Tch,
}

/// Why a backend cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendError {
    Unknown(String),
    NotBuilt { name: &'static str, feature: &'static str },
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendError::Unknown(s) => write!(f, "unknown backend `{s}` (expected ndarray, cuda or tch)"),
            BackendError::NotBuilt { name, feature } => write!(
                f,
                "backend `{name}` is not built into this peftc; rebuild with `cargo build --release --features {feature}`{}",
                if *feature == "cuda" { " (with CUDARC_CUDA_VERSION=13000)" } else { "" }
            ),
        }
    }
}

impl std::error::Error for BackendError {}

impl FromStr for BackendKind {
    type Err = BackendError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ndarray" | "cpu" => Ok(BackendKind::NdArray),
            "cuda" => Ok(BackendKind::Cuda),
            "tch" | "libtorch" => Ok(BackendKind::Tch),
            other => Err(BackendError::Unknown(other.to_string())),
        }
    }
}

impl BackendKind {
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::NdArray => "ndarray",
            BackendKind::Cuda => "cuda",
            BackendKind::Tch => "tch",
        }
    }

    /// Is this backend compiled in?
    pub fn available(self) -> Result<(), BackendError> {
        let built = match self {
            BackendKind::NdArray => cfg!(feature = "ndarray"),
            BackendKind::Cuda => cfg!(feature = "cuda"),
            BackendKind::Tch => cfg!(feature = "tch"),
        };
        let feature = match self {
            BackendKind::NdArray => "ndarray",
            BackendKind::Cuda => "cuda",
            BackendKind::Tch => "tch",
        };
        if built { Ok(()) } else { Err(BackendError::NotBuilt { name: self.name(), feature }) }
    }
}

/// Does `backend` compute a `precision: bf16` run in bf16 (a bf16 base with
/// f32 adapters and loss, [`crate::model::precision`])? The GPU backends do, and
/// libtorch on the CPU too; burn-ndarray has no bf16 arithmetic.
pub fn computes_bf16(backend: &str) -> bool {
    matches!(backend, "cuda" | "tch" | "libtorch")
}

/// Whether a run with `precision` on `backend` keeps its base model in bf16:
/// `bf16` where the backend computes it, `checkpoint` (the default) where
/// the checkpoint itself is bf16 and the backend computes it, `f32` never.
pub fn bf16_for(precision: crate::lang::ir::Precision, backend: &str, checkpoint: crate::pretrained::weights::CheckpointDtype) -> bool {
    use crate::lang::ir::Precision;
    use crate::pretrained::weights::CheckpointDtype;
    let can = computes_bf16(backend);
    match precision {
        Precision::F32 => false,
        Precision::Bf16 => can,
        Precision::Checkpoint => can && checkpoint == CheckpointDtype::Bf16,
    }
}

/// Micro-batches a training step computes on parallel threads: one per core
/// (at most 8) on the CPU — the ndarray backend, or tch with
/// `PEFTC_TCH_DEVICE=cpu` — and one on GPUs. Each CPU worker's kernels then
/// run single-threaded (see [`crate::train::parallel::one_thread_per_worker`]).
/// `PEFTC_WORKERS=<n>` overrides.
pub fn training_workers(backend: &str) -> usize {
    if let Some(n) = std::env::var("PEFTC_WORKERS").ok().and_then(|v| v.parse::<usize>().ok()) {
        return n.max(1);
    }
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(8);
    if on_cpu(backend) { cores } else { 1 }
}

/// Does `backend` compute on the CPU (ndarray, or tch with `PEFTC_TCH_DEVICE=cpu`)?
pub fn on_cpu(backend: &str) -> bool {
    backend == "ndarray" || (matches!(backend, "tch" | "libtorch") && tch_on_cpu())
}

/// `PEFTC_TCH_DEVICE=cpu`: libtorch runs on the CPU instead of `cuda:0`.
pub fn tch_on_cpu() -> bool {
    std::env::var("PEFTC_TCH_DEVICE").is_ok_and(|v| v == "cpu")
}

/// Work to run on a concrete backend (a generic function, since closures
/// cannot be generic).
pub trait BackendTask {
    type Output;
    fn run<B: AutodiffBackend>(self, device: B::Device, backend: &str, device_name: &str) -> Self::Output;
}

/// Run `task` on the named backend, or say why it is not available.
pub fn dispatch<T: BackendTask>(kind: BackendKind, task: T) -> Result<T::Output, BackendError> {
    kind.available()?;
    match kind {
        #[cfg(feature = "ndarray")]
        BackendKind::NdArray => {
            let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
            Ok(task.run::<burn::backend::Autodiff<burn::backend::NdArray<f32>>>(
                Default::default(),
                "ndarray",
                &format!("cpu ({threads} threads)"),
            ))
        }
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => Ok(task.run::<burn::backend::Autodiff<burn::backend::Cuda<f32, i32>>>(Default::default(), "cuda", "cuda:0")),
        #[cfg(feature = "tch")]
        BackendKind::Tch => {
            let dev =
                if tch_cuda() { burn::backend::libtorch::LibTorchDevice::Cuda(0) } else { burn::backend::libtorch::LibTorchDevice::Cpu };
            let name = format!("{dev:?}");
            Ok(task.run::<burn::backend::Autodiff<burn::backend::LibTorch<f32>>>(dev, "tch", &name))
        }
        #[allow(unreachable_patterns)]
        other => Err(BackendError::NotBuilt { name: other.name(), feature: other.name() }),
    }
}

/// libtorch runs on `cuda:0` unless `PEFTC_TCH_DEVICE=cpu`.
#[cfg(feature = "tch")]
fn tch_cuda() -> bool {
    !tch_on_cpu()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_missing_features_are_explained() {
        assert_eq!("ndarray".parse::<BackendKind>().unwrap(), BackendKind::NdArray);
        assert!(BackendKind::NdArray.available().is_ok());
        let e = "tpu".parse::<BackendKind>().unwrap_err();
        assert!(e.to_string().contains("unknown backend `tpu`"));
        if !cfg!(feature = "cuda") {
            let e = BackendKind::Cuda.available().unwrap_err().to_string();
            assert!(e.contains("--features cuda") && e.contains("CUDARC_CUDA_VERSION=13000"), "{e}");
        }
    }
}

#[cfg(test)]
mod precision_tests {
    use super::bf16_for;
    use crate::lang::ir::Precision;
    use crate::pretrained::weights::CheckpointDtype;

    #[test]
    fn the_default_keeps_a_bf16_checkpoint_in_bf16_only_on_gpu_backends() {
        for (precision, backend, dtype, want) in [
            (Precision::Checkpoint, "cuda", CheckpointDtype::Bf16, true),
            (Precision::Checkpoint, "tch", CheckpointDtype::Bf16, true),
            (Precision::Checkpoint, "ndarray", CheckpointDtype::Bf16, false),
            (Precision::Checkpoint, "cuda", CheckpointDtype::F32, false),
            (Precision::Checkpoint, "cuda", CheckpointDtype::F16, false),
            (Precision::Bf16, "cuda", CheckpointDtype::F32, true),
            (Precision::Bf16, "ndarray", CheckpointDtype::Bf16, false),
            (Precision::F32, "cuda", CheckpointDtype::Bf16, false),
        ] {
            assert_eq!(bf16_for(precision, backend, dtype), want, "{precision:?} on {backend} with a {dtype:?} checkpoint");
        }
    }
}
