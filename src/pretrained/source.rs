//! One entry point for pretrained models: a GGUF file or an HF directory.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::pretrained::gguf::{self, GgufFile};
use crate::pretrained::hf_dir;
use crate::pretrained::weights::{LoadedModel, ModelConfig};

/// What kind of model a path holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelFormat {
    Gguf,
    HfDir,
}

/// Decide the format of `path`: a directory (or a file inside one named
/// `config.json`, `*.safetensors`, `*.safetensors.index.json`) is an HF
/// directory; a file starting with the bytes `GGUF` is a GGUF file.
pub fn detect_format(path: &Path) -> Result<(ModelFormat, std::path::PathBuf)> {
    let meta = std::fs::metadata(path).with_context(|| format!("model path {} does not exist or cannot be read", path.display()))?;
    if meta.is_dir() {
        return Ok((ModelFormat::HfDir, path.to_path_buf()));
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if name == hf_dir::CONFIG_FILE || name.ends_with(".safetensors") || name.ends_with(".safetensors.index.json") {
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        return Ok((ModelFormat::HfDir, dir.to_path_buf()));
    }
    let mut magic = [0u8; 4];
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let n = f.read(&mut magic).with_context(|| format!("reading {}", path.display()))?;
    if n == 4 && &magic == b"GGUF" {
        return Ok((ModelFormat::Gguf, path.to_path_buf()));
    }
    bail!(
        "{} is neither a GGUF file (it does not start with `GGUF`) nor an HF model directory (config.json + model.safetensors)",
        path.display()
    )
}

/// Load a pretrained model: GGUF file or HF directory, tensors dequantized
/// to f32 under HF names, with its tokenizer material.
pub fn load_model(path: &Path) -> Result<LoadedModel> {
    let (format, path) = detect_format(path)?;
    match format {
        ModelFormat::Gguf => gguf::load_gguf(&path).with_context(|| format!("loading GGUF model {}", path.display())),
        ModelFormat::HfDir => hf_dir::load_hf_dir(&path).with_context(|| format!("loading HF model directory {}", path.display())),
    }
}

/// Only the configuration of a model (no tensor data is read or
/// dequantized; fast even for large models).
pub fn load_config(path: &Path) -> Result<ModelConfig> {
    let (format, path) = detect_format(path)?;
    match format {
        ModelFormat::Gguf => {
            let g = GgufFile::open(&path).with_context(|| format!("reading GGUF model {}", path.display()))?;
            gguf::config_from_gguf(&g).with_context(|| format!("in GGUF model {}", path.display()))
        }
        ModelFormat::HfDir => {
            let mut config = hf_dir::load_hf_config(&path)?;
            if !hf_dir::has_lm_head(&path)? {
                config.tie_word_embeddings = true;
            }
            Ok(config)
        }
    }
}
