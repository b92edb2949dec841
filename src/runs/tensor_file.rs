//! Small f32 safetensors read/write used for adapters, checkpoints and merges.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{Context, Result, bail};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::runs::atomic::write_atomic;

/// A named f32 tensor, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct F32Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Serialize `tensors` (f32) with string metadata.
pub fn to_bytes(tensors: &BTreeMap<String, F32Tensor>, metadata: Option<HashMap<String, String>>) -> Result<Vec<u8>> {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> =
        tensors.iter().map(|(k, t)| (k.clone(), t.shape.clone(), t.data.iter().flat_map(|v| v.to_le_bytes()).collect())).collect();
    let views = bytes
        .iter()
        .map(|(k, s, b)| Ok((k.clone(), TensorView::new(Dtype::F32, s.clone(), b)?)))
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
    Ok(safetensors::tensor::serialize(views, metadata)?)
}

/// Write `tensors` atomically to `path`.
pub fn save(path: &Path, tensors: &BTreeMap<String, F32Tensor>, metadata: Option<HashMap<String, String>>) -> Result<()> {
    write_atomic(path, &to_bytes(tensors, metadata)?)
}

/// Read every tensor of an f32 (or bf16/f16, converted) safetensors file.
pub fn load(path: &Path) -> Result<BTreeMap<String, F32Tensor>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    from_bytes(&bytes).with_context(|| path.display().to_string())
}

/// [`load`] from a file's bytes.
pub fn from_bytes(bytes: &[u8]) -> Result<BTreeMap<String, F32Tensor>> {
    let st = SafeTensors::deserialize(bytes).context("parsing safetensors")?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let b = view.data();
        let data: Vec<f32> = match view.dtype() {
            Dtype::F32 => b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
            Dtype::BF16 => b.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
            Dtype::F16 => b.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
            other => bail!("tensor `{name}` has unsupported dtype {other:?}"),
        };
        out.insert(name.to_string(), F32Tensor { shape: view.shape().to_vec(), data });
    }
    Ok(out)
}
