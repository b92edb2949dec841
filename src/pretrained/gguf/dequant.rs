//! Dequantization of ggml block formats to f32, following the reference
//! `dequantize_row_*` functions of ggml (`ggml-quants.c`).
//!
//! Block layouts (all little-endian; `f16` is IEEE half):
//! - `Q4_0` (32 values, 18 bytes): `d: f16, qs: [u8; 16]`;
//!   `y[j] = d * ((qs[j] & 0xF) - 8)`, `y[j + 16] = d * ((qs[j] >> 4) - 8)`.
//! - `Q4_1` (32 values, 20 bytes): `d: f16, m: f16, qs: [u8; 16]`;
//!   `y[j] = d * (qs[j] & 0xF) + m`, `y[j + 16] = d * (qs[j] >> 4) + m`.
//! - `Q5_0` (32 values, 22 bytes): `d: f16, qh: u32, qs: [u8; 16]`; value `j`
//!   takes bit `j` of `qh` as its fifth bit: `y = d * ((nibble | bit << 4) - 16)`.
//! - `Q5_1` (32 values, 24 bytes): `d: f16, m: f16, qh: u32, qs: [u8; 16]`;
//!   `y = d * (nibble | bit << 4) + m`.
//! - `Q8_0` (32 values, 34 bytes): `d: f16, qs: [i8; 32]`; `y[j] = d * qs[j]`.
//! - `Q4_K` (256 values, 144 bytes): `d: f16, dmin: f16, scales: [u8; 12], qs: [u8; 128]`;
//!   eight sub-blocks of 32 with 6-bit scales and mins packed in `scales`.
//! - `Q5_K` (256 values, 176 bytes): `d: f16, dmin: f16, scales: [u8; 12], qh: [u8; 32], qs: [u8; 128]`;
//!   as `Q4_K` with a fifth bit per value from `qh` (bit `2c` for the low
//!   nibbles of chunk `c`, bit `2c + 1` for its high nibbles).
//! - `Q6_K` (256 values, 210 bytes): `ql: [u8; 128], qh: [u8; 64], scales: [i8; 16], d: f16`;
//!   sixteen sub-blocks of 16, 6-bit quants `(low 4 bits | high 2 bits << 4) - 32`.

use half::{bf16, f16};

use super::error::{GgufError, Result};
use super::ggml_type::{GgmlType, QK_K};

#[inline]
fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

fn dequant_q4_0(src: &[u8], dst: &mut [f32]) {
    for (block, y) in src.chunks_exact(18).zip(dst.chunks_exact_mut(32)) {
        let d = f16_at(block, 0);
        let qs = &block[2..18];
        let (lo, hi) = y.split_at_mut(16);
        for j in 0..16 {
            lo[j] = ((qs[j] & 0x0F) as i32 - 8) as f32 * d;
            hi[j] = ((qs[j] >> 4) as i32 - 8) as f32 * d;
        }
    }
}

fn dequant_q4_1(src: &[u8], dst: &mut [f32]) {
    for (block, y) in src.chunks_exact(20).zip(dst.chunks_exact_mut(32)) {
        let d = f16_at(block, 0);
        let m = f16_at(block, 2);
        let qs = &block[4..20];
        let (lo, hi) = y.split_at_mut(16);
        for j in 0..16 {
            lo[j] = (qs[j] & 0x0F) as f32 * d + m;
            hi[j] = (qs[j] >> 4) as f32 * d + m;
        }
    }
}

fn dequant_q5(src: &[u8], dst: &mut [f32], with_min: bool) {
    let header = if with_min { 8 } else { 6 };
    for (block, y) in src.chunks_exact(header + 16).zip(dst.chunks_exact_mut(32)) {
        let d = f16_at(block, 0);
        let m = if with_min { f16_at(block, 2) } else { 0.0 };
        let offset = if with_min { 0 } else { 16 };
        let qh = u32::from_le_bytes([block[header - 4], block[header - 3], block[header - 2], block[header - 1]]);
        let qs = &block[header..header + 16];
        let (lo, hi) = y.split_at_mut(16);
        for j in 0..16 {
            let b0 = ((qh >> j) & 1) as u8;
            let b1 = ((qh >> (j + 16)) & 1) as u8;
            lo[j] = (((qs[j] & 0x0F) | (b0 << 4)) as i32 - offset) as f32 * d + m;
            hi[j] = (((qs[j] >> 4) | (b1 << 4)) as i32 - offset) as f32 * d + m;
        }
    }
}

fn dequant_q5_k(src: &[u8], dst: &mut [f32]) {
    for (block, y) in src.chunks_exact(176).zip(dst.chunks_exact_mut(QK_K)) {
        let d = f16_at(block, 0);
        let dmin = f16_at(block, 2);
        let scales = &block[4..16];
        let qh = &block[16..48];
        let qs = &block[48..176];
        for (chunk, (q, y)) in qs.chunks_exact(32).zip(y.chunks_exact_mut(64)).enumerate() {
            let (sc1, m1) = scale_min_k4(2 * chunk, scales);
            let (sc2, m2) = scale_min_k4(2 * chunk + 1, scales);
            let (d1, m1) = (d * sc1 as f32, dmin * m1 as f32);
            let (d2, m2) = (d * sc2 as f32, dmin * m2 as f32);
            let (u1, u2) = (1u8 << (2 * chunk), 2u8 << (2 * chunk));
            let (lo, hi) = y.split_at_mut(32);
            for l in 0..32 {
                let h1 = if qh[l] & u1 != 0 { 16 } else { 0 };
                let h2 = if qh[l] & u2 != 0 { 16 } else { 0 };
                lo[l] = d1 * ((q[l] & 0x0F) + h1) as f32 - m1;
                hi[l] = d2 * ((q[l] >> 4) + h2) as f32 - m2;
            }
        }
    }
}

fn dequant_q8_0(src: &[u8], dst: &mut [f32]) {
    for (block, y) in src.chunks_exact(34).zip(dst.chunks_exact_mut(32)) {
        let d = f16_at(block, 0);
        for (out, &q) in y.iter_mut().zip(&block[2..34]) {
            *out = (q as i8) as f32 * d;
        }
    }
}

/// The `j`-th (0..8) 6-bit scale and min of a Q4_K super-block
/// (ggml's `get_scale_min_k4`).
#[inline]
fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 { (q[j] & 63, q[j + 4] & 63) } else { ((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4)) }
}

fn dequant_q4_k(src: &[u8], dst: &mut [f32]) {
    for (block, y) in src.chunks_exact(144).zip(dst.chunks_exact_mut(QK_K)) {
        let d = f16_at(block, 0);
        let dmin = f16_at(block, 2);
        let scales = &block[4..16];
        let qs = &block[16..144];
        for (chunk, (q, y)) in qs.chunks_exact(32).zip(y.chunks_exact_mut(64)).enumerate() {
            let (sc1, m1) = scale_min_k4(2 * chunk, scales);
            let (sc2, m2) = scale_min_k4(2 * chunk + 1, scales);
            let (d1, m1) = (d * sc1 as f32, dmin * m1 as f32);
            let (d2, m2) = (d * sc2 as f32, dmin * m2 as f32);
            let (lo, hi) = y.split_at_mut(32);
            for l in 0..32 {
                lo[l] = d1 * (q[l] & 0x0F) as f32 - m1;
                hi[l] = d2 * (q[l] >> 4) as f32 - m2;
            }
        }
    }
}

fn dequant_q6_k(src: &[u8], dst: &mut [f32]) {
    for (block, y) in src.chunks_exact(210).zip(dst.chunks_exact_mut(QK_K)) {
        let d = f16_at(block, 208);
        for half in 0..2 {
            let ql = &block[64 * half..64 * half + 64];
            let qh = &block[128 + 32 * half..128 + 32 * half + 32];
            let sc = &block[192 + 8 * half..192 + 8 * half + 8];
            let y = &mut y[128 * half..128 * half + 128];
            for l in 0..32 {
                let is = l / 16;
                let q1 = ((ql[l] & 0x0F) | ((qh[l] & 3) << 4)) as i32 - 32;
                let q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
                let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
                let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
                y[l] = d * (sc[is] as i8) as f32 * q1 as f32;
                y[l + 32] = d * (sc[is + 2] as i8) as f32 * q2 as f32;
                y[l + 64] = d * (sc[is + 4] as i8) as f32 * q3 as f32;
                y[l + 96] = d * (sc[is + 6] as i8) as f32 * q4 as f32;
            }
        }
    }
}

fn dequant_f32(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(4).zip(dst.iter_mut()) {
        *y = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    }
}

fn dequant_f16(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(2).zip(dst.iter_mut()) {
        *y = f16::from_le_bytes([b[0], b[1]]).to_f32();
    }
}

fn dequant_bf16(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(2).zip(dst.iter_mut()) {
        *y = bf16::from_le_bytes([b[0], b[1]]).to_f32();
    }
}

/// Bytes needed to hold `n_elements` values of type `ty`, checking that
/// `n_elements` is a whole number of blocks.
pub fn byte_len(tensor: &str, ty: GgmlType, n_elements: u64) -> Result<u64> {
    let (block, bytes) = ty.block_layout().ok_or_else(|| unsupported(tensor, ty))?;
    if !n_elements.is_multiple_of(block as u64) {
        return Err(GgufError::BadTensor {
            tensor: tensor.to_string(),
            message: format!("{n_elements} elements is not a whole number of {ty} blocks of {block}"),
        });
    }
    (n_elements / block as u64).checked_mul(bytes as u64).ok_or_else(|| GgufError::BadTensor {
        tensor: tensor.to_string(),
        message: format!("byte size of {n_elements} {ty} elements overflows"),
    })
}

fn unsupported(tensor: &str, ty: GgmlType) -> GgufError {
    GgufError::UnsupportedTensorType { tensor: tensor.to_string(), ty: ty.id(), name: ty.name() }
}

/// Dequantize `src` (whole blocks of `ty`) into `dst`, whose length must be
/// the matching number of values.
pub fn dequantize_into(tensor: &str, ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<()> {
    let want = byte_len(tensor, ty, dst.len() as u64)?;
    if src.len() as u64 != want {
        return Err(GgufError::BadTensor {
            tensor: tensor.to_string(),
            message: format!("{} values of {ty} need {want} bytes, got {}", dst.len(), src.len()),
        });
    }
    match ty {
        GgmlType::F32 => dequant_f32(src, dst),
        GgmlType::F16 => dequant_f16(src, dst),
        GgmlType::BF16 => dequant_bf16(src, dst),
        GgmlType::Q4_0 => dequant_q4_0(src, dst),
        GgmlType::Q4_1 => dequant_q4_1(src, dst),
        GgmlType::Q5_0 => dequant_q5(src, dst, false),
        GgmlType::Q5_1 => dequant_q5(src, dst, true),
        GgmlType::Q8_0 => dequant_q8_0(src, dst),
        GgmlType::Q5_K => dequant_q5_k(src, dst),
        GgmlType::Q4_K => dequant_q4_k(src, dst),
        GgmlType::Q6_K => dequant_q6_k(src, dst),
        GgmlType::Other(_) => return Err(unsupported(tensor, ty)),
    }
    Ok(())
}

/// Dequantize a whole tensor of `n_elements` values.
pub fn dequantize(tensor: &str, ty: GgmlType, src: &[u8], n_elements: usize) -> Result<Vec<f32>> {
    let mut out = vec![0.0f32; n_elements];
    dequantize_into(tensor, ty, src, &mut out)?;
    Ok(out)
}

/// One unit of parallel dequantization work.
pub struct DequantJob<'a> {
    pub tensor: &'a str,
    pub ty: GgmlType,
    pub src: &'a [u8],
    pub dst: &'a mut [f32],
}

/// Values per parallel work item (a multiple of every block size).
const CHUNK_VALUES: usize = 1 << 16;

/// Run dequantization jobs on `threads` worker threads, splitting each job
/// into block-aligned chunks so that large tensors are shared out too.
pub fn dequantize_parallel(jobs: Vec<DequantJob<'_>>, threads: usize) -> Result<()> {
    let mut chunks: Vec<DequantJob<'_>> = Vec::new();
    for job in jobs {
        let (block, bytes) = job.ty.block_layout().ok_or_else(|| unsupported(job.tensor, job.ty))?;
        let want = byte_len(job.tensor, job.ty, job.dst.len() as u64)?;
        if job.src.len() as u64 != want {
            return Err(GgufError::BadTensor {
                tensor: job.tensor.to_string(),
                message: format!("{} values of {} need {want} bytes, got {}", job.dst.len(), job.ty, job.src.len()),
            });
        }
        let values_per_chunk = CHUNK_VALUES / block * block;
        let bytes_per_chunk = values_per_chunk / block * bytes;
        for (src, dst) in job.src.chunks(bytes_per_chunk).zip(job.dst.chunks_mut(values_per_chunk)) {
            chunks.push(DequantJob { tensor: job.tensor, ty: job.ty, src, dst });
        }
    }
    let threads = threads.max(1).min(chunks.len().max(1));
    if threads == 1 {
        for c in chunks {
            dequantize_into(c.tensor, c.ty, c.src, c.dst)?;
        }
        return Ok(());
    }
    let queue = std::sync::Mutex::new(chunks.into_iter());
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    loop {
                        let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                        let Some(c) = next else { return Ok(()) };
                        dequantize_into(c.tensor, c.ty, c.src, c.dst)?;
                    }
                })
            })
            .collect();
        let mut result = Ok(());
        for h in handles {
            let r = h.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            if result.is_ok() {
                result = r;
            }
        }
        result
    })
}
