//! The GGUF container: header, metadata key/values, tensor infos, aligned
//! tensor data. Every length and offset read from the file is bounds-checked
//! before use, so a truncated or corrupt file gives a [`GgufError`], never a
//! panic or a huge allocation.

use std::collections::HashMap;
use std::fs::File;
use std::ops::Deref;
use std::path::Path;

use crate::pretrained::weights::TensorData;

use super::dequant;
use super::error::{GgufError, Result};
use super::ggml_type::GgmlType;
use super::meta_value::MetaValue;

/// `GGUF` read as a little-endian u32.
pub const GGUF_MAGIC: [u8; 4] = *b"GGUF";
/// Alignment of the tensor data when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// ggml's maximum tensor rank.
pub const MAX_DIMS: u32 = 4;
const MAX_ARRAY_NESTING: usize = 8;

/// Where a tensor lives and how it is encoded.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// Dimensions in ggml order: `dims[0]` is the innermost (row length).
    pub dims: Vec<u64>,
    pub ty: GgmlType,
    /// Offset of the data from the start of the data section.
    pub offset: u64,
}

impl TensorInfo {
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// Shape outermost first (row-major, PyTorch/HF order): `dims` reversed.
    pub fn shape(&self) -> Vec<usize> {
        self.dims.iter().rev().map(|&d| d as usize).collect()
    }
}

enum Bytes {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// A parsed GGUF file; tensor data stays in the (memory-mapped) file until
/// asked for.
pub struct GgufFile {
    bytes: Bytes,
    version: u32,
    metadata: Vec<(String, MetaValue)>,
    meta_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
    alignment: u64,
    data_offset: u64,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("version", &self.version)
            .field("metadata_keys", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .field("alignment", &self.alignment)
            .field("data_offset", &self.data_offset)
            .finish()
    }
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: u64, what: &dyn Fn() -> String) -> Result<&'a [u8]> {
        let remaining = (self.buf.len() - self.pos) as u64;
        if n > remaining {
            return Err(GgufError::Truncated { what: what(), offset: self.pos as u64, needed: n, file_len: self.buf.len() as u64 });
        }
        let s = &self.buf[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    fn remaining(&self) -> u64 {
        (self.buf.len() - self.pos) as u64
    }

    fn array<const N: usize>(&mut self, what: &dyn Fn() -> String) -> Result<[u8; N]> {
        let s = self.take(N as u64, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &dyn Fn() -> String) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn string(&mut self, what: &dyn Fn() -> String) -> Result<String> {
        let start = self.pos as u64;
        let len = self.u64(&|| format!("length of {}", what()))?;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| GgufError::Corrupt { offset: start, message: format!("{} is not valid UTF-8", what()) })
    }

    fn value(&mut self, key: &str, ty: u32, depth: usize) -> Result<MetaValue> {
        let what = || format!("value of metadata key `{key}`");
        Ok(match ty {
            0 => MetaValue::U8(self.array::<1>(&what)?[0]),
            1 => MetaValue::I8(self.array::<1>(&what)?[0] as i8),
            2 => MetaValue::U16(u16::from_le_bytes(self.array(&what)?)),
            3 => MetaValue::I16(i16::from_le_bytes(self.array(&what)?)),
            4 => MetaValue::U32(u32::from_le_bytes(self.array(&what)?)),
            5 => MetaValue::I32(i32::from_le_bytes(self.array(&what)?)),
            6 => MetaValue::F32(f32::from_le_bytes(self.array(&what)?)),
            7 => {
                let offset = self.pos as u64;
                match self.array::<1>(&what)?[0] {
                    0 => MetaValue::Bool(false),
                    1 => MetaValue::Bool(true),
                    b => {
                        return Err(GgufError::Corrupt {
                            offset,
                            message: format!("metadata key `{key}`: bool byte is {b}, expected 0 or 1"),
                        });
                    }
                }
            }
            8 => MetaValue::String(self.string(&what)?),
            9 => {
                let offset = self.pos as u64;
                if depth >= MAX_ARRAY_NESTING {
                    return Err(GgufError::Corrupt {
                        offset,
                        message: format!("metadata key `{key}`: arrays nested more than {MAX_ARRAY_NESTING} deep"),
                    });
                }
                let elem = self.u32(&|| format!("array element type of metadata key `{key}`"))?;
                let min_size = match elem {
                    0 | 1 | 7 => 1,
                    2 | 3 => 2,
                    4..=6 => 4,
                    8 | 10..=12 => 8,
                    9 => 12,
                    _ => {
                        return Err(GgufError::UnknownValueType { key: key.to_string(), ty: elem, offset });
                    }
                };
                let n = self.u64(&|| format!("array length of metadata key `{key}`"))?;
                let needed = n.saturating_mul(min_size);
                if needed > self.remaining() {
                    return Err(GgufError::Truncated {
                        what: format!("{n} array elements of metadata key `{key}`"),
                        offset: self.pos as u64,
                        needed,
                        file_len: self.buf.len() as u64,
                    });
                }
                let mut items = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    items.push(self.value(key, elem, depth + 1)?);
                }
                MetaValue::Array(elem, items)
            }
            10 => MetaValue::U64(u64::from_le_bytes(self.array(&what)?)),
            11 => MetaValue::I64(i64::from_le_bytes(self.array(&what)?)),
            12 => MetaValue::F64(f64::from_le_bytes(self.array(&what)?)),
            _ => {
                return Err(GgufError::UnknownValueType { key: key.to_string(), ty, offset: self.pos as u64 - 4 });
            }
        })
    }
}

impl GgufFile {
    /// Open and parse a GGUF file, memory-mapping its contents.
    pub fn open(path: &Path) -> Result<GgufFile> {
        let io = |source| GgufError::Io { path: path.to_path_buf(), source };
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let bytes = if len == 0 {
            Bytes::Owned(Vec::new())
        } else {
            // SAFETY: the map is read-only; peftc never writes model files
            // while reading them. A file truncated by another process while
            // mapped is outside what any reader can defend against.
            Bytes::Mapped(unsafe { memmap2::Mmap::map(&file) }.map_err(io)?)
        };
        Self::parse(bytes)
    }

    /// Parse a GGUF image held in memory.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<GgufFile> {
        Self::parse(Bytes::Owned(bytes))
    }

    fn parse(bytes: Bytes) -> Result<GgufFile> {
        let buf: &[u8] = &bytes;
        let mut c = Cursor { buf, pos: 0 };
        let magic = c.take(4.min(buf.len() as u64), &|| "magic".into())?;
        if magic != GGUF_MAGIC {
            return Err(GgufError::BadMagic { found: magic.to_vec() });
        }
        let version = c.u32(&|| "version".into())?;
        if version & 0xFFFF == 0 && matches!(version.swap_bytes(), 1..=3) {
            return Err(GgufError::BigEndian { raw: version });
        }
        if !(2..=3).contains(&version) {
            return Err(GgufError::UnsupportedVersion { version });
        }
        let n_tensors = c.u64(&|| "tensor count".into())?;
        let n_kv = c.u64(&|| "metadata key/value count".into())?;
        // Each key/value needs at least 8 (key length) + 4 (type) + 1 bytes,
        // each tensor info 8 + 4 + 4 + 8 bytes: reject absurd counts early.
        if n_kv.saturating_mul(13) > c.remaining() {
            return Err(GgufError::Corrupt {
                offset: 16,
                message: format!("metadata count {n_kv} cannot fit in a file of {} bytes", buf.len()),
            });
        }
        let mut metadata = Vec::with_capacity(n_kv as usize);
        let mut meta_index = HashMap::with_capacity(n_kv as usize);
        for i in 0..n_kv {
            let key = c.string(&|| format!("key of metadata entry {i}"))?;
            let ty = c.u32(&|| format!("value type of metadata key `{key}`"))?;
            let value = c.value(&key, ty, 0)?;
            if meta_index.insert(key.clone(), metadata.len()).is_some() {
                return Err(GgufError::DuplicateKey { key });
            }
            metadata.push((key, value));
        }
        if n_tensors.saturating_mul(24) > c.remaining() {
            return Err(GgufError::Corrupt {
                offset: 8,
                message: format!("tensor count {n_tensors} cannot fit in a file of {} bytes", buf.len()),
            });
        }
        let alignment = match meta_index.get("general.alignment").map(|&i| &metadata[i].1) {
            None => DEFAULT_ALIGNMENT,
            Some(MetaValue::U32(a)) if *a > 0 && a.is_power_of_two() => *a as u64,
            Some(v) => {
                return Err(GgufError::Corrupt {
                    offset: 0,
                    message: format!("general.alignment must be a power-of-two u32, found {v:?}"),
                });
            }
        };
        let mut tensors = Vec::with_capacity(n_tensors as usize);
        let mut tensor_index = HashMap::with_capacity(n_tensors as usize);
        for i in 0..n_tensors {
            let name = c.string(&|| format!("name of tensor {i}"))?;
            let at = c.pos as u64;
            let n_dims = c.u32(&|| format!("rank of tensor `{name}`"))?;
            if n_dims > MAX_DIMS {
                return Err(GgufError::Corrupt {
                    offset: at,
                    message: format!("tensor `{name}` has rank {n_dims}, more than ggml's {MAX_DIMS}"),
                });
            }
            let mut dims = Vec::with_capacity(n_dims as usize);
            for d in 0..n_dims {
                dims.push(c.u64(&|| format!("dimension {d} of tensor `{name}`"))?);
            }
            if dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d)).is_none_or(|n| n > i64::MAX as u64) {
                return Err(GgufError::Corrupt {
                    offset: at,
                    message: format!("tensor `{name}` has dimensions {dims:?} whose product overflows"),
                });
            }
            let ty = GgmlType::from_id(c.u32(&|| format!("type of tensor `{name}`"))?);
            let offset = c.u64(&|| format!("data offset of tensor `{name}`"))?;
            if offset % alignment != 0 {
                return Err(GgufError::Corrupt {
                    offset: at,
                    message: format!("tensor `{name}` data offset {offset} is not a multiple of the alignment {alignment}"),
                });
            }
            if tensor_index.insert(name.clone(), tensors.len()).is_some() {
                return Err(GgufError::DuplicateTensor { name });
            }
            tensors.push(TensorInfo { name, dims, ty, offset });
        }
        let data_offset = (c.pos as u64).div_ceil(alignment) * alignment;
        let file = GgufFile { bytes, version, metadata, meta_index, tensors, tensor_index, alignment, data_offset };
        // Bounds-check every tensor whose encoded size is known, so that a
        // truncated file is reported when opened.
        for t in &file.tensors {
            if t.ty.block_layout().is_some() {
                file.tensor_range(t)?;
            }
        }
        Ok(file)
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Offset of the tensor data section from the start of the file.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// All metadata, in file order.
    pub fn metadata(&self) -> &[(String, MetaValue)] {
        &self.metadata
    }

    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.meta_index.get(key).map(|&i| &self.metadata[i].1)
    }

    fn require(&self, key: &str) -> Result<&MetaValue> {
        self.get(key).ok_or_else(|| GgufError::MissingKey { key: key.to_string() })
    }

    /// A required non-negative integer key (any integer type).
    pub fn get_u64(&self, key: &str) -> Result<u64> {
        let v = self.require(key)?;
        v.as_u64().ok_or_else(|| GgufError::WrongKeyType { key: key.to_string(), expected: "non-negative integer", found: v.type_name() })
    }

    /// A required number (any float or integer type).
    pub fn get_f64(&self, key: &str) -> Result<f64> {
        let v = self.require(key)?;
        v.as_f64().ok_or_else(|| GgufError::WrongKeyType { key: key.to_string(), expected: "number", found: v.type_name() })
    }

    pub fn get_str(&self, key: &str) -> Result<&str> {
        let v = self.require(key)?;
        v.as_str().ok_or_else(|| GgufError::WrongKeyType { key: key.to_string(), expected: "string", found: v.type_name() })
    }

    /// A required array of strings.
    pub fn get_str_array(&self, key: &str) -> Result<Vec<String>> {
        let v = self.require(key)?;
        let wrong = || GgufError::WrongKeyType { key: key.to_string(), expected: "array of strings", found: v.type_name() };
        v.as_array().ok_or_else(wrong)?.iter().map(|e| e.as_str().map(str::to_string).ok_or_else(wrong)).collect()
    }

    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    pub fn tensor_info(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    fn tensor_range(&self, t: &TensorInfo) -> Result<std::ops::Range<usize>> {
        let len = dequant::byte_len(&t.name, t.ty, t.n_elements())?;
        let data_len = (self.bytes.len() as u64).saturating_sub(self.data_offset);
        let start = t.offset;
        let end = start.checked_add(len);
        match end {
            Some(end) if end <= data_len => {
                let base = self.data_offset as usize;
                Ok(base + start as usize..base + end as usize)
            }
            _ => Err(GgufError::TensorOutOfBounds { tensor: t.name.clone(), start, end: end.unwrap_or(u64::MAX), data_len }),
        }
    }

    /// The encoded bytes of a tensor.
    pub fn tensor_bytes(&self, t: &TensorInfo) -> Result<&[u8]> {
        let r = self.tensor_range(t)?;
        Ok(&self.bytes[r])
    }

    /// Dequantize one tensor to f32, shape outermost first.
    pub fn dequantize(&self, name: &str) -> Result<TensorData> {
        let t = self.tensor_info(name).ok_or_else(|| GgufError::MissingTensor { name: name.to_string() })?;
        let data = dequant::dequantize(&t.name, t.ty, self.tensor_bytes(t)?, t.n_elements() as usize)?;
        Ok(TensorData { shape: t.shape(), data })
    }

    /// Dequantize every tensor, in parallel on `threads` threads.
    pub fn dequantize_all(&self, threads: usize) -> Result<Vec<(String, TensorData)>> {
        let mut out: Vec<(String, TensorData)> = Vec::with_capacity(self.tensors.len());
        for t in &self.tensors {
            if !t.ty.is_supported() {
                return Err(GgufError::UnsupportedTensorType { tensor: t.name.clone(), ty: t.ty.id(), name: t.ty.name() });
            }
            out.push((t.name.clone(), TensorData { shape: t.shape(), data: vec![0.0; t.n_elements() as usize] }));
        }
        let mut jobs = Vec::with_capacity(self.tensors.len());
        for (t, (_, td)) in self.tensors.iter().zip(out.iter_mut()) {
            jobs.push(dequant::DequantJob { tensor: &t.name, ty: t.ty, src: self.tensor_bytes(t)?, dst: &mut td.data });
        }
        dequant::dequantize_parallel(jobs, threads)?;
        Ok(out)
    }
}
