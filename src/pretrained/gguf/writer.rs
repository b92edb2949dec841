//! A small GGUF (version 3) writer, for tests and tiny fixture models, plus
//! ggml's reference quantizers for Q8_0 and Q4_1 so fixtures can mimic real
//! quantized files.

use std::path::Path;

use half::{bf16, f16};

use super::ggml_type::GgmlType;
use super::gguf_file::{DEFAULT_ALIGNMENT, GGUF_MAGIC};
use super::meta_value::MetaValue;

struct PendingTensor {
    name: String,
    /// ggml order (innermost first).
    dims: Vec<u64>,
    ty: GgmlType,
    data: Vec<u8>,
}

/// Builds a GGUF image: metadata in insertion order, tensors laid out in
/// insertion order at aligned offsets.
pub struct GgufWriter {
    metadata: Vec<(String, MetaValue)>,
    tensors: Vec<PendingTensor>,
    alignment: u64,
}

impl Default for GgufWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl GgufWriter {
    pub fn new() -> GgufWriter {
        GgufWriter { metadata: Vec::new(), tensors: Vec::new(), alignment: DEFAULT_ALIGNMENT }
    }

    /// Use a non-default data alignment (also written as `general.alignment`).
    pub fn alignment(&mut self, alignment: u32) -> &mut Self {
        assert!(alignment.is_power_of_two(), "GGUF alignment must be a power of two");
        self.alignment = alignment as u64;
        self.metadata.retain(|(k, _)| k != "general.alignment");
        self.metadata.push(("general.alignment".into(), MetaValue::U32(alignment)));
        self
    }

    pub fn meta(&mut self, key: &str, value: MetaValue) -> &mut Self {
        self.metadata.push((key.to_string(), value));
        self
    }

    pub fn meta_str(&mut self, key: &str, value: &str) -> &mut Self {
        self.meta(key, MetaValue::String(value.to_string()))
    }

    pub fn meta_u32(&mut self, key: &str, value: u32) -> &mut Self {
        self.meta(key, MetaValue::U32(value))
    }

    pub fn meta_f32(&mut self, key: &str, value: f32) -> &mut Self {
        self.meta(key, MetaValue::F32(value))
    }

    pub fn meta_str_array<S: AsRef<str>>(&mut self, key: &str, values: &[S]) -> &mut Self {
        let items = values.iter().map(|s| MetaValue::String(s.as_ref().to_string())).collect();
        self.meta(key, MetaValue::Array(8, items))
    }

    /// A tensor with already-encoded bytes. `shape` is outermost first
    /// (PyTorch order); it is stored reversed, as ggml does.
    pub fn tensor_raw(&mut self, name: &str, shape: &[usize], ty: GgmlType, data: Vec<u8>) -> &mut Self {
        self.tensors.push(PendingTensor { name: name.to_string(), dims: shape.iter().rev().map(|&d| d as u64).collect(), ty, data });
        self
    }

    /// A tensor encoded as `ty` from f32 values. Supported: F32, F16, BF16,
    /// Q8_0, Q4_1 (quantized types need `data.len()` divisible by 32).
    pub fn tensor(&mut self, name: &str, shape: &[usize], ty: GgmlType, data: &[f32]) -> &mut Self {
        assert_eq!(shape.iter().product::<usize>(), data.len(), "tensor `{name}`: shape does not match data");
        let bytes = match ty {
            GgmlType::F32 => data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            GgmlType::F16 => data.iter().flat_map(|v| f16::from_f32(*v).to_le_bytes()).collect(),
            GgmlType::BF16 => data.iter().flat_map(|v| bf16::from_f32(*v).to_le_bytes()).collect(),
            GgmlType::Q8_0 => quantize_q8_0(data),
            GgmlType::Q4_1 => quantize_q4_1(data),
            other => panic!("GgufWriter cannot encode {other}; use tensor_raw"),
        };
        self.tensor_raw(name, shape, ty, bytes)
    }

    /// The complete file image.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&GGUF_MAGIC);
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (key, value) in &self.metadata {
            write_string(&mut out, key);
            out.extend_from_slice(&value.type_id().to_le_bytes());
            write_value(&mut out, value);
        }
        let align = |n: u64| n.div_ceil(self.alignment) * self.alignment;
        let mut offset = 0u64;
        for t in &self.tensors {
            write_string(&mut out, &t.name);
            out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&t.ty.id().to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            offset = align(offset + t.data.len() as u64);
        }
        out.resize(align(out.len() as u64) as usize, 0);
        let data_start = out.len();
        for t in &self.tensors {
            out.extend_from_slice(&t.data);
            let end = data_start as u64 + align((out.len() - data_start) as u64);
            out.resize(end as usize, 0);
        }
        out
    }

    /// Write the file atomically.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        crate::runs::atomic::write_atomic(path, &self.to_bytes())
    }
}

fn write_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn write_value(out: &mut Vec<u8>, v: &MetaValue) {
    match v {
        MetaValue::U8(x) => out.push(*x),
        MetaValue::I8(x) => out.push(*x as u8),
        MetaValue::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::Bool(x) => out.push(*x as u8),
        MetaValue::String(s) => write_string(out, s),
        MetaValue::Array(elem, items) => {
            out.extend_from_slice(&elem.to_le_bytes());
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for item in items {
                debug_assert_eq!(item.type_id(), *elem, "GGUF arrays are homogeneous");
                write_value(out, item);
            }
        }
        MetaValue::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
    }
}

/// ggml's `quantize_row_q8_0_ref`: per block of 32, `d = amax / 127`,
/// `q = round(x / d)`.
pub fn quantize_q8_0(data: &[f32]) -> Vec<u8> {
    assert!(data.len().is_multiple_of(32), "Q8_0 needs a multiple of 32 values");
    let mut out = Vec::with_capacity(data.len() / 32 * 34);
    for block in data.chunks_exact(32) {
        let amax = block.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
        out.extend(block.iter().map(|v| (v * id).round() as i8 as u8));
    }
    out
}

/// ggml's `quantize_row_q4_1_ref`: per block of 32, `d = (max - min) / 15`,
/// `m = min`, `q = min(15, (x - min) / d + 0.5)`; low nibbles hold values
/// 0..16, high nibbles 16..32.
pub fn quantize_q4_1(data: &[f32]) -> Vec<u8> {
    assert!(data.len().is_multiple_of(32), "Q4_1 needs a multiple of 32 values");
    let mut out = Vec::with_capacity(data.len() / 32 * 20);
    for block in data.chunks_exact(32) {
        let min = block.iter().fold(f32::INFINITY, |m, &v| m.min(v));
        let max = block.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let d = (max - min) / 15.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
        out.extend_from_slice(&f16::from_f32(min).to_le_bytes());
        for j in 0..16 {
            let q0 = (((block[j] - min) * id + 0.5) as u8).min(15);
            let q1 = (((block[j + 16] - min) * id + 0.5) as u8).min(15);
            out.push(q0 | (q1 << 4));
        }
    }
    out
}
