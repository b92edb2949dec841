//! Model shapes: named presets from public configs, or read from a model file
//! (only the GGUF metadata header / HF `config.json` is read, never weights).

use std::io::{BufReader, Read};
use std::path::Path;

use super::ir::ModelShapes;

/// Names of the built-in presets.
pub const PRESETS: [&str; 3] = ["smollm2-135m", "llama-3.1-8b", "gemma-2b"];

/// A preset by name (`smollm2-135m`, `llama-3.1-8b`, `gemma-2b`).
pub fn preset(name: &str) -> Option<ModelShapes> {
    let (l, d, f, h, kv, hd, v) = match name {
        // HuggingFaceTB/SmolLM2-135M-Instruct config.json
        "smollm2-135m" => (30, 576, 1536, 9, 3, 64, 49152),
        // meta-llama/Llama-3.1-8B config.json
        "llama-3.1-8b" => (32, 4096, 14336, 32, 8, 128, 128256),
        // google/gemma-2b config.json (multi-query attention, head_dim 256)
        "gemma-2b" => (18, 2048, 16384, 8, 1, 256, 256000),
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
    let p = dir.join("config.json");
    let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?;
    let get = |k: &str| v.get(k).and_then(|x| x.as_u64()).map(|x| x as usize);
    let need = |k: &str| get(k).ok_or_else(|| format!("{}: missing `{k}`", p.display()));
    let hidden = need("hidden_size")?;
    let heads = need("num_attention_heads")?;
    if heads == 0 {
        return Err(format!("{}: num_attention_heads is 0", p.display()));
    }
    Ok(ModelShapes {
        name: dir.display().to_string(),
        num_layers: need("num_hidden_layers")?,
        hidden_size: hidden,
        intermediate_size: need("intermediate_size")?,
        num_heads: heads,
        num_kv_heads: get("num_key_value_heads").unwrap_or(heads),
        head_dim: get("head_dim").unwrap_or(hidden / heads),
        vocab_size: need("vocab_size")?,
    })
}

#[derive(Debug)]
enum Val {
    Int(u64),
    Str(String),
    ArrayLen(u64),
    Other,
}

struct R<T: Read> {
    r: T,
}

impl<T: Read> R<T> {
    fn bytes<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut b = [0u8; N];
        self.r.read_exact(&mut b).map_err(|e| format!("truncated GGUF header: {e}"))?;
        Ok(b)
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.bytes::<4>()?))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.bytes::<8>()?))
    }
    fn skip(&mut self, n: u64) -> Result<(), String> {
        let got = std::io::copy(&mut (&mut self.r).take(n), &mut std::io::sink()).map_err(|e| e.to_string())?;
        if got != n { Err("truncated GGUF header".into()) } else { Ok(()) }
    }
    fn string(&mut self) -> Result<String, String> {
        let n = self.u64()?;
        if n > 1 << 20 {
            return Err("GGUF string too long".into());
        }
        let mut b = vec![0u8; n as usize];
        self.r.read_exact(&mut b).map_err(|e| format!("truncated GGUF header: {e}"))?;
        Ok(String::from_utf8_lossy(&b).into_owned())
    }
    fn scalar_size(t: u32) -> Option<u64> {
        Some(match t {
            0 | 1 | 7 => 1,
            2 | 3 => 2,
            4 | 5 | 6 => 4,
            10..=12 => 8,
            _ => return None,
        })
    }
    fn value(&mut self, t: u32) -> Result<Val, String> {
        Ok(match t {
            0 => Val::Int(self.bytes::<1>()?[0] as u64),
            2 => Val::Int(u16::from_le_bytes(self.bytes::<2>()?) as u64),
            4 => Val::Int(self.u32()? as u64),
            5 => Val::Int(i32::from_le_bytes(self.bytes::<4>()?).max(0) as u64),
            10 => Val::Int(self.u64()?),
            11 => Val::Int(i64::from_le_bytes(self.bytes::<8>()?).max(0) as u64),
            8 => Val::Str(self.string()?),
            9 => {
                let et = self.u32()?;
                let n = self.u64()?;
                if let Some(sz) = Self::scalar_size(et) {
                    self.skip(sz.checked_mul(n).ok_or("GGUF array too long")?)?;
                } else if et == 8 {
                    for _ in 0..n {
                        let len = self.u64()?;
                        self.skip(len)?;
                    }
                } else {
                    return Err(format!("unsupported GGUF array element type {et}"));
                }
                Val::ArrayLen(n)
            }
            t => match Self::scalar_size(t) {
                Some(sz) => {
                    self.skip(sz)?;
                    Val::Other
                }
                None => return Err(format!("unknown GGUF value type {t}")),
            },
        })
    }
}

/// Read the shapes from a GGUF file's metadata (the tensor data is not read).
pub fn read_gguf_shapes(path: &Path) -> Result<ModelShapes, String> {
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut r = R { r: BufReader::new(f) };
    let err = |m: String| format!("{}: {m}", path.display());
    if &r.bytes::<4>().map_err(err)? != b"GGUF" {
        return Err(err("not a GGUF file".into()));
    }
    let version = r.u32().map_err(err)?;
    let (_tensors, kvs) = if version == 1 {
        (r.u32().map_err(err)? as u64, r.u32().map_err(err)? as u64)
    } else {
        (r.u64().map_err(err)?, r.u64().map_err(err)?)
    };
    let mut map = std::collections::HashMap::new();
    for _ in 0..kvs {
        let key = r.string().map_err(err)?;
        let t = r.u32().map_err(err)?;
        let v = r.value(t).map_err(err)?;
        map.insert(key, v);
    }
    let arch = match map.get("general.architecture") {
        Some(Val::Str(s)) => s.clone(),
        _ => return Err(err("no general.architecture".into())),
    };
    let int = |k: &str| match map.get(&format!("{arch}.{k}")) {
        Some(Val::Int(v)) => Some(*v as usize),
        _ => None,
    };
    let need = |k: &str| int(k).ok_or_else(|| err(format!("missing `{arch}.{k}`")));
    let hidden = need("embedding_length")?;
    let heads = need("attention.head_count")?;
    if heads == 0 {
        return Err(err("head_count is 0".into()));
    }
    let vocab = int("vocab_size")
        .or(match map.get("tokenizer.ggml.tokens") {
            Some(Val::ArrayLen(n)) => Some(*n as usize),
            _ => None,
        })
        .ok_or_else(|| err("no vocabulary size".into()))?;
    Ok(ModelShapes {
        name: path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        num_layers: need("block_count")?,
        hidden_size: hidden,
        intermediate_size: need("feed_forward_length")?,
        num_heads: heads,
        num_kv_heads: int("attention.head_count_kv").unwrap_or(heads),
        head_dim: int("attention.key_length").unwrap_or(hidden / heads),
        vocab_size: vocab,
    })
}
