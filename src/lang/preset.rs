//! Model shapes: named presets from public configs, or read from a model file
//! (only the GGUF metadata header / HF `config.json` is read, never weights).

use std::path::Path;

use super::ir::ModelShapes;

/// Names of the built-in presets.
pub const PRESETS: [&str; 8] =
    ["smollm2-135m", "llama-3.1-8b", "llama-3.2-1b", "gemma-2b", "gemma-2-2b", "gemma-3-270m", "qwen2.5-0.5b", "mistral-7b"];

/// A preset by name (one of [`PRESETS`]): the shapes of the published
/// `config.json` (layers, hidden, MLP, heads, KV heads, head_dim, vocab).
/// These size parameter counts (`params`, `check`, `--model`); training
/// needs the weights, and peftc trains the Llama family (see the README's
/// model families).
pub fn preset(name: &str) -> Option<ModelShapes> {
    let (l, d, f, h, kv, hd, v) = match name {
        // HuggingFaceTB/SmolLM2-135M-Instruct config.json
        "smollm2-135m" => (30, 576, 1536, 9, 3, 64, 49152),
        // meta-llama/Llama-3.1-8B config.json
        "llama-3.1-8b" => (32, 4096, 14336, 32, 8, 128, 128256),
        // google/gemma-2b config.json (multi-query attention, head_dim 256)
        "gemma-2b" => (18, 2048, 16384, 8, 1, 256, 256000),
        // meta-llama/Llama-3.2-1B config.json
        "llama-3.2-1b" => (16, 2048, 8192, 32, 8, 64, 128256),
        // google/gemma-2-2b config.json
        "gemma-2-2b" => (26, 2304, 9216, 8, 4, 256, 256000),
        // google/gemma-3-270m config.json (heads × head_dim = 1024 ≠ hidden 640)
        "gemma-3-270m" => (18, 640, 2048, 4, 1, 256, 262144),
        // Qwen/Qwen2.5-0.5B config.json (head_dim = hidden / heads = 64)
        "qwen2.5-0.5b" => (24, 896, 4864, 14, 2, 64, 151936),
        // mistralai/Mistral-7B-v0.3 config.json
        "mistral-7b" => (32, 4096, 14336, 32, 8, 128, 32768),
        _ => return None,
    };
    Some(ModelShapes {
        name: name.to_string(),
        num_layers: l,
        hidden_size: d,
        intermediate_size: f,
        num_heads: h,
        num_kv_heads: kv,
        head_dim: hd,
        vocab_size: v,
    })
}

/// Shapes for `--model`: a preset name, a GGUF file, or an HF directory.
pub fn resolve_model_arg(arg: &str) -> Result<ModelShapes, String> {
    if let Some(p) = preset(arg) {
        return Ok(p);
    }
    let path = Path::new(arg);
    if path.is_dir() {
        return read_hf_config(path);
    }
    if path.is_file() {
        return read_gguf_shapes(path);
    }
    Err(format!("`{arg}` is neither a preset ({}) nor an existing GGUF file or HF directory", PRESETS.join(", ")))
}

/// Read the shapes from an HF directory's `config.json`.
pub fn read_hf_config(dir: &Path) -> Result<ModelShapes, String> {
    shapes_from_file(dir)
}

/// Read the shapes from a GGUF file's metadata (the tensor data is not read).
pub fn read_gguf_shapes(path: &Path) -> Result<ModelShapes, String> {
    shapes_from_file(path)
}

/// Shapes from a model file's configuration, through the model loaders
/// (`crate::pretrained::source`), so that `params`/`check` read exactly what
/// training will load.
#[cfg(not(fuzzing))]
fn shapes_from_file(path: &Path) -> Result<ModelShapes, String> {
    let c = crate::pretrained::source::load_config(path).map_err(|e| format!("{e:#}"))?;
    Ok(ModelShapes {
        name: path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        num_layers: c.num_layers,
        hidden_size: c.hidden_size,
        intermediate_size: c.intermediate_size,
        num_heads: c.num_heads,
        num_kv_heads: c.num_kv_heads,
        head_dim: c.head_dim,
        vocab_size: c.vocab_size,
    })
}

/// The fuzz target compiles the language alone, without the model loaders.
#[cfg(fuzzing)]
fn shapes_from_file(path: &Path) -> Result<ModelShapes, String> {
    Err(format!("{}: model files are not read in the fuzz build", path.display()))
}
