//! An adapter's trainable tensors on disk (f32 safetensors, named as
//! [`crate::lower::ParamInfo`]): the trained adapter of a run and its
//! checkpoints.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{Context, Result, bail};
use burn::prelude::*;

use super::Adapter;
use crate::runs::tensor_file::{self, F32Tensor};

fn params_map<B: Backend>(adapter: &Adapter<B>) -> BTreeMap<String, F32Tensor> {
    adapter
        .params()
        .iter()
        .zip(adapter.param_infos())
        .map(|(p, i)| {
            let data = p.to_data().convert::<f32>().to_vec::<f32>().unwrap_or_default();
            (i.name.clone(), F32Tensor { shape: i.shape.clone(), data })
        })
        .collect()
}

/// Save the adapter's trainable tensors.
pub fn save_adapter<B: Backend>(adapter: &Adapter<B>, path: &Path, metadata: HashMap<String, String>) -> Result<()> {
    tensor_file::save(path, &params_map(adapter), Some(metadata))
}

/// The bytes [`save_adapter`] writes (for checkpoints, which hash them).
pub fn adapter_bytes<B: Backend>(adapter: &Adapter<B>, metadata: HashMap<String, String>) -> Result<Vec<u8>> {
    tensor_file::to_bytes(&params_map(adapter), Some(metadata))
}

/// Load trainable tensors saved by [`save_adapter`] into `adapter`.
pub fn load_adapter<B: Backend>(adapter: &mut Adapter<B>, path: &Path, device: &B::Device) -> Result<()> {
    set_from_map(adapter, &tensor_file::load(path)?, device).with_context(|| path.display().to_string())
}

/// [`load_adapter`] from the bytes of such a file.
pub fn load_adapter_bytes<B: Backend>(adapter: &mut Adapter<B>, bytes: &[u8], device: &B::Device) -> Result<()> {
    set_from_map(adapter, &tensor_file::from_bytes(bytes)?, device)
}

fn set_from_map<B: Backend>(adapter: &mut Adapter<B>, map: &BTreeMap<String, F32Tensor>, device: &B::Device) -> Result<()> {
    let mut params = Vec::new();
    for info in adapter.param_infos() {
        let t = map.get(&info.name).with_context(|| format!("missing tensor `{}`", info.name))?;
        if t.data.len() != info.numel() {
            bail!("tensor `{}` has {} values, expected {}", info.name, t.data.len(), info.numel());
        }
        params.push(Tensor::<B, 1>::from_data(TensorData::new(t.data.clone(), [t.data.len()]).convert::<B::FloatElem>(), device));
    }
    adapter.set_params(params);
    Ok(())
}
