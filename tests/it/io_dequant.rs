//! Dequantization of every supported ggml block type against blocks whose
//! bytes and expected values were worked out by hand from ggml's format
//! definitions (`ggml-quants.c`, `dequantize_row_*`).

use peftc::pretrained::gguf::GgmlType;
use peftc::pretrained::gguf::dequant::{DequantJob, dequantize, dequantize_parallel};
use peftc::pretrained::gguf::writer::{quantize_q4_1, quantize_q8_0};

fn deq(ty: GgmlType, bytes: &[u8], n: usize) -> Vec<f32> {
    dequantize("test", ty, bytes, n).expect("dequantize")
}

#[test]
fn f32_f16_bf16_scalars() {
    // f32 1.5 = 0x3FC00000, -0.25 = 0xBE800000.
    assert_eq!(deq(GgmlType::F32, &[0x00, 0x00, 0xC0, 0x3F, 0x00, 0x00, 0x80, 0xBE], 2), vec![1.5, -0.25]);
    // f16: 1.0 = 0x3C00, -2.0 = 0xC000, 0.5 = 0x3800, max 65504 = 0x7BFF,
    // smallest subnormal 0x0001 = 2^-24.
    assert_eq!(
        deq(GgmlType::F16, &[0x00, 0x3C, 0x00, 0xC0, 0x00, 0x38, 0xFF, 0x7B, 0x01, 0x00], 5),
        vec![1.0, -2.0, 0.5, 65504.0, 5.960_464_5e-8]
    );
    // bf16: 1.0 = 0x3F80, -2.0 = 0xC000, 0x4049 = 2 * (1 + 73/128) = 3.140625.
    assert_eq!(deq(GgmlType::BF16, &[0x80, 0x3F, 0x00, 0xC0, 0x49, 0x40], 3), vec![1.0, -2.0, 3.140625]);
}

#[test]
fn q4_0_block() {
    // d = 0.5 (f16 0x3800); qs[j] = j | (15 - j) << 4.
    let mut block = vec![0x00, 0x38];
    for j in 0u8..16 {
        block.push(j | ((15 - j) << 4));
    }
    // y[j] = d * (low nibble - 8) for j < 16; y[16 + j] = d * (high nibble - 8).
    let want = [
        -4.0, -3.5, -3.0, -2.5, -2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, //
        3.5, 3.0, 2.5, 2.0, 1.5, 1.0, 0.5, 0.0, -0.5, -1.0, -1.5, -2.0, -2.5, -3.0, -3.5, -4.0,
    ];
    assert_eq!(deq(GgmlType::Q4_0, &block, 32), want);
}

#[test]
fn q4_1_block() {
    // d = 0.25 (0x3400), m = -1.0 (0xBC00); qs[j] = j | (15 - j) << 4.
    let mut block = vec![0x00, 0x34, 0x00, 0xBC];
    for j in 0u8..16 {
        block.push(j | ((15 - j) << 4));
    }
    // y = d * q + m; low nibbles are the first 16 values.
    let want = [
        -1.0, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5, 2.75, //
        2.75, 2.5, 2.25, 2.0, 1.75, 1.5, 1.25, 1.0, 0.75, 0.5, 0.25, 0.0, -0.25, -0.5, -0.75, -1.0,
    ];
    assert_eq!(deq(GgmlType::Q4_1, &block, 32), want);
}

/// qh = 0x8001_0003: bits 0, 1, 16 and 31 set, so values 0, 1, 16 and 31
/// get a fifth bit; qs[j] = j | (15 - j) << 4.
fn q5_tail() -> Vec<u8> {
    let mut b = vec![0x03, 0x00, 0x01, 0x80];
    for j in 0u8..16 {
        b.push(j | ((15 - j) << 4));
    }
    b
}

#[test]
fn q5_0_block() {
    // d = 0.5 (0x3800); y = d * ((nibble | fifth bit << 4) - 16).
    let mut block = vec![0x00, 0x38];
    block.extend(q5_tail());
    let want = [
        0.0, 0.5, -7.0, -6.5, -6.0, -5.5, -5.0, -4.5, -4.0, -3.5, -3.0, -2.5, -2.0, -1.5, -1.0, -0.5, //
        7.5, -1.0, -1.5, -2.0, -2.5, -3.0, -3.5, -4.0, -4.5, -5.0, -5.5, -6.0, -6.5, -7.0, -7.5, 0.0,
    ];
    assert_eq!(deq(GgmlType::Q5_0, &block, 32), want);
}

#[test]
fn q5_1_block() {
    // d = 0.25 (0x3400), m = -1.0 (0xBC00); y = d * (nibble | fifth bit << 4) + m.
    let mut block = vec![0x00, 0x34, 0x00, 0xBC];
    block.extend(q5_tail());
    let want = [
        3.0, 3.25, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5, 2.75, //
        6.75, 2.5, 2.25, 2.0, 1.75, 1.5, 1.25, 1.0, 0.75, 0.5, 0.25, 0.0, -0.25, -0.5, -0.75, 3.0,
    ];
    assert_eq!(deq(GgmlType::Q5_1, &block, 32), want);
}

#[test]
fn q8_0_two_blocks() {
    // Block 1: d = 0.125 (0x3000), qs = -128, -1, 0, 1, 127, then 5, 6, ... 31.
    // Block 2: d = -2.0 (0xC000), qs = 3 then zeros.
    let mut bytes = vec![0x00, 0x30, 0x80, 0xFF, 0x00, 0x01, 0x7F];
    bytes.extend(5u8..32);
    bytes.extend([0x00, 0xC0, 0x03]);
    bytes.extend([0u8; 31]);
    let got = deq(GgmlType::Q8_0, &bytes, 64);
    assert_eq!(&got[..5], &[-16.0, -0.125, 0.0, 0.125, 15.875]);
    for (k, v) in got[5..32].iter().enumerate() {
        assert_eq!(*v, (k + 5) as f32 * 0.125);
    }
    assert_eq!(got[32], -6.0);
    assert!(got[33..].iter().all(|&v| v == 0.0));
}

/// One Q4_K super-block: d = 1.0, dmin = 0.5, sub-block scales
/// sc = [1, 2, 3, 4, 17, 33, 50, 63] and mins m = [0, 1, 2, 3, 20, 36, 5, 48]
/// packed by hand into the 12 scale bytes:
/// - bytes 0..4: sc[0..4] | (sc[4..8] >> 4) << 6 = 0x41 0x82 0xC3 0xC4
/// - bytes 4..8: m[0..4] | (m[4..8] >> 4) << 6  = 0x40 0x81 0x02 0xC3
/// - bytes 8..12: (sc[4+i] & 15) | (m[4+i] & 15) << 4 = 0x41 0x41 0x52 0x0F
///
/// The quants are qs[i] = i (so the low nibble is i & 15, the high nibble i >> 4).
fn q4_k_block() -> Vec<u8> {
    let mut b = vec![0x00, 0x3C, 0x00, 0x38];
    b.extend([0x41, 0x82, 0xC3, 0xC4, 0x40, 0x81, 0x02, 0xC3, 0x41, 0x41, 0x52, 0x0F]);
    b.extend(0u8..128);
    assert_eq!(b.len(), 144);
    b
}

#[test]
fn q4_k_block_spot_values() {
    let y = deq(GgmlType::Q4_K, &q4_k_block(), 256);
    // Value e: chunk c = e / 64 uses qs[32c..32c+32]; the first 32 values
    // take low nibbles with (sc, m)[2c], the next 32 high nibbles with
    // (sc, m)[2c + 1]; y = d * sc * q - dmin * m.
    let cases = [
        (0, 0.0),     // q 0, sub 0: 1*0 - 0
        (5, 5.0),     // q 5, sub 0: 1*5 - 0
        (35, -0.5),   // qs[3] >> 4 = 0, sub 1: 2*0 - 0.5*1
        (84, 11.0),   // qs[52] = 0x34 low 4, sub 2: 3*4 - 0.5*2
        (135, 109.0), // qs[71] = 0x47 low 7, sub 4: 17*7 - 0.5*20
        (191, 147.0), // qs[95] = 0x5F high 5, sub 5: 33*5 - 0.5*36
        (202, 497.5), // qs[106] = 0x6A low 10, sub 6: 50*10 - 0.5*5
        (224, 354.0), // qs[96] = 0x60 high 6, sub 7: 63*6 - 0.5*48
    ];
    for (e, want) in cases {
        assert_eq!(y[e], want, "value {e}");
    }
}

#[test]
fn q4_k_block_all_values() {
    let y = deq(GgmlType::Q4_K, &q4_k_block(), 256);
    let sc = [1.0f32, 2.0, 3.0, 4.0, 17.0, 33.0, 50.0, 63.0];
    let m = [0.0f32, 1.0, 2.0, 3.0, 20.0, 36.0, 5.0, 48.0];
    for (e, &got) in y.iter().enumerate() {
        let sub = e / 32; // sub-blocks of 32 in order
        let byte = (e / 64) * 32 + e % 32;
        let q = if sub % 2 == 0 { byte & 15 } else { byte >> 4 } as f32;
        assert_eq!(got, sc[sub] * q - 0.5 * m[sub], "value {e}");
    }
}

/// One Q5_K super-block: the Q4_K block's d, dmin, scales and mins, then
/// qh[l] = 1 << (l % 8), then qs[i] = i.
fn q5_k_block() -> Vec<u8> {
    let q4 = q4_k_block();
    let mut b = q4[..16].to_vec();
    b.extend((0..32).map(|l| 1u8 << (l % 8)));
    b.extend(0u8..128);
    assert_eq!(b.len(), 176);
    b
}

#[test]
fn q5_k_block_spot_values() {
    let y = deq(GgmlType::Q5_K, &q5_k_block(), 256);
    // Chunk c = e / 64; position l = e % 32; the low nibbles (first 32 of
    // the chunk) take qh bit 2c, the high nibbles qh bit 2c + 1.
    let cases = [
        (0, 16.0),     // qs[0] low 0, qh[0] = 1 has bit 0 → 16; sub 0: 1*16 - 0
        (5, 5.0),      // qs[5] low 5, qh[5] = 32 lacks bit 0 → 5
        (33, 31.5),    // qs[1] high 0, qh[1] = 2 has bit 1 → 16; sub 1: 2*16 - 0.5*1
        (66, 53.0),    // qs[34] = 0x22 low 2, qh[2] = 4 has bit 2 → 18; sub 2: 3*18 - 0.5*2
        (99, 70.5),    // qs[35] = 0x23 high 2, qh[3] = 8 has bit 3 → 18; sub 3: 4*18 - 0.5*3
        (132, 330.0),  // qs[68] = 0x44 low 4, qh[4] = 16 has bit 4 → 20; sub 4: 17*20 - 0.5*20
        (164, 114.0),  // qs[68] high 4, qh[4] lacks bit 5 → 4; sub 5: 33*4 - 0.5*36
        (198, 1097.5), // qs[102] = 0x66 low 6, qh[6] = 64 has bit 6 → 22; sub 6: 50*22 - 0.5*5
        (239, 1362.0), // qs[111] = 0x6F high 6, qh[15] = 128 has bit 7 → 22; sub 7: 63*22 - 0.5*48
    ];
    for (e, want) in cases {
        assert_eq!(y[e], want, "value {e}");
    }
}

#[test]
fn q5_k_block_all_values() {
    let y = deq(GgmlType::Q5_K, &q5_k_block(), 256);
    let sc = [1.0f32, 2.0, 3.0, 4.0, 17.0, 33.0, 50.0, 63.0];
    let m = [0.0f32, 1.0, 2.0, 3.0, 20.0, 36.0, 5.0, 48.0];
    for (e, &got) in y.iter().enumerate() {
        let sub = e / 32;
        let l = e % 32;
        let byte = (e / 64) * 32 + l;
        let low = if sub % 2 == 0 { byte & 15 } else { byte >> 4 };
        let fifth = if (1usize << (l % 8)) & (1 << sub) != 0 { 16 } else { 0 };
        assert_eq!(got, sc[sub] * (low + fifth) as f32 - 0.5 * m[sub], "value {e}");
    }
}

/// One Q6_K super-block: ql[i] = i, qh[i] = 37 * i mod 256,
/// scales = [1, -1, 2, -2, ..., 8, -8], d = 0.5 (0x3800).
fn q6_k_block() -> Vec<u8> {
    let mut b: Vec<u8> = (0u8..128).collect();
    b.extend((0u32..64).map(|i| (37 * i % 256) as u8));
    for k in 1i8..=8 {
        b.push(k as u8);
        b.push((-k) as u8);
    }
    b.extend([0x00, 0x38]);
    assert_eq!(b.len(), 210);
    b
}

#[test]
fn q6_k_block_spot_values() {
    let y = deq(GgmlType::Q6_K, &q6_k_block(), 256);
    // Hand-computed: y = d * scale * (q6 - 32).
    let cases = [
        // e 0: ql[0] low 0, qh[0] bits 0..2 = 0 → q 0; scale[0] = 1 → 0.5 * 1 * -32
        (0, -16.0),
        // e 33 (quarter 1, l 1): ql[33] = 0x21 low 1, qh[1] = 37 = 0b00100101 bits 2..4 = 1
        // → q 17; scale[0 + 2] = 2 → 0.5 * 2 * -15
        (33, -15.0),
        // e 81 (quarter 2, l 17): ql[17] = 0x11 high 1, qh[17] = 117 = 0b01110101 bits 4..6 = 3
        // → q 49; scale[1 + 4] = -3 → 0.5 * -3 * 17
        (81, -25.5),
        // e 133 (second half, quarter 0, l 5): ql[69] = 0x45 low 5, qh[37] = 89 = 0b01011001
        // bits 0..2 = 1 → q 21; scale[8] = 5 → 0.5 * 5 * -11
        (133, -27.5),
        // e 255 (second half, quarter 3, l 31): ql[127] = 0x7F high 7, qh[63] = 27 = 0b00011011
        // bits 6..8 = 0 → q 7; scale[8 + 1 + 6] = -8 → 0.5 * -8 * -25
        (255, 100.0),
    ];
    for (e, want) in cases {
        assert_eq!(y[e], want, "value {e}");
    }
}

#[test]
fn q6_k_block_all_values() {
    let b = q6_k_block();
    let (ql, qh, scales) = (&b[..128], &b[128..192], &b[192..208]);
    let y = deq(GgmlType::Q6_K, &b, 256);
    for (e, &got) in y.iter().enumerate() {
        // Value e: half n, quarter k (32 values each), position l.
        let (n, k, l) = (e / 128, (e % 128) / 32, e % 32);
        let low_byte = ql[64 * n + 32 * (k % 2) + l];
        let low = if k < 2 { low_byte & 15 } else { low_byte >> 4 };
        let high = (qh[32 * n + l] >> (2 * k)) & 3;
        let q = (low | (high << 4)) as i32 - 32;
        let scale = scales[8 * n + 2 * k + l / 16] as i8;
        assert_eq!(got, 0.5 * scale as f32 * q as f32, "value {e}");
    }
}

#[test]
fn wrong_byte_count_and_unsupported_type_are_errors() {
    let err = dequantize("w", GgmlType::Q4_0, &[0u8; 17], 32).unwrap_err().to_string();
    assert!(err.contains("`w`") && err.contains("18 bytes") && err.contains("got 17"), "{err}");
    let err = dequantize("w", GgmlType::Q8_0, &[0u8; 34], 31).unwrap_err().to_string();
    assert!(err.contains("not a whole number"), "{err}");
    let err = dequantize("blk.0.ffn_up.weight", GgmlType::from_id(11), &[0u8; 110], 256).unwrap_err().to_string();
    assert!(err.contains("blk.0.ffn_up.weight") && err.contains("Q3_K") && err.contains("cannot dequantize"), "{err}");
}

#[test]
fn parallel_equals_serial_across_chunk_boundaries() {
    // 3 * 65536 + 96 values: several parallel chunks and a ragged tail.
    let n = 3 * 65536 + 96;
    let values: Vec<f32> = (0..n).map(|i| ((i * 7919) % 1000) as f32 / 100.0 - 5.0).collect();
    for (ty, bytes) in [(GgmlType::Q8_0, quantize_q8_0(&values)), (GgmlType::Q4_1, quantize_q4_1(&values))] {
        let bytes: Vec<u8> = bytes;
        let serial = deq(ty, &bytes, n);
        let mut par = vec![0.0f32; n];
        dequantize_parallel(vec![DequantJob { tensor: "t", ty, src: &bytes, dst: &mut par }], 3).unwrap();
        assert_eq!(serial, par, "{ty}");
    }
}

#[test]
fn reference_quantizers_stay_within_half_a_step() {
    let values: Vec<f32> = (0..256).map(|i| ((i * 37) % 101) as f32 / 10.0 - 5.0).collect();
    let q8 = deq(GgmlType::Q8_0, &quantize_q8_0(&values), 256);
    let q4 = deq(GgmlType::Q4_1, &quantize_q4_1(&values), 256);
    for b in 0..8 {
        let block = &values[32 * b..32 * b + 32];
        let amax = block.iter().fold(0f32, |m, v| m.max(v.abs()));
        let (min, max) = block.iter().fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        for j in 32 * b..32 * b + 32 {
            // Half a quantization step, plus f16 rounding of the scale.
            assert!((q8[j] - values[j]).abs() <= amax / 127.0 * 0.51 + 1e-3, "q8 {j}");
            assert!((q4[j] - values[j]).abs() <= (max - min) / 15.0 * 0.51 + 1e-2, "q4 {j}");
        }
    }
}
