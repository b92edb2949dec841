//! peftc patch: `exp` (and sigmoid) of f32 tensors as a vectorizable polynomial instead of
//! one libm `expf` call per element (softmax, SiLU and their backward passes
//! spent ~13 % of a LoRA training step in `expf`, a third of it in its
//! underflow path for masked attention scores).
//!
//! Cephes' `expf`: `x = n·ln 2 + r`, `|r| ≤ ln 2 / 2`, ln 2 split in two for an
//! exact reduction, a degree-5 polynomial for `eʳ`, and `2ⁿ` built in the
//! exponent bits; within 2 ulp of the correctly rounded result over the normal
//! range. `x < -87.33` (results below the smallest normal f32, and `-inf`)
//! gives 0, `x > 88.72` gives `+inf`, NaN stays NaN. Plain multiplies and
//! adds only (no FMA), so the SIMD and scalar paths agree bit for bit.

use crate::SharedArray;
use core::any::TypeId;

const LOG2E: f32 = core::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
const MAX: f32 = 88.722_83;
const MIN: f32 = -87.336_55;
/// 1.5 · 2²³: adding and subtracting it rounds an f32 of magnitude < 2²² to
/// the nearest integer without a rounding instruction.
const ROUND: f32 = 12_582_912.0;

#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    let xc = if x > MAX { MAX } else if x < MIN { MIN } else { x };
    let n = (xc * LOG2E + ROUND) - ROUND;
    let r = xc - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 5.000_000_1e-1;
    let e = p * r * r + r + 1.0;
    // 2ⁿ for n in [-126, 128] as 2^⌊n/2⌋ · 2^(n-⌊n/2⌋): both factors have a
    // normal exponent field.
    let ni = n as i32;
    let (n1, n2) = (ni >> 1, ni - (ni >> 1));
    let y = e * f32::from_bits(((n1 + 127) as u32) << 23) * f32::from_bits(((n2 + 127) as u32) << 23);
    if x > MAX {
        f32::INFINITY
    } else if x < MIN {
        0.0
    } else if x != x {
        x
    } else {
        y
    }
}

/// `1 / (1 + eˣ)` on [`exp_f32`]: 0 for x < -88.7 and 1 for large x, exactly;
/// NaN stays NaN.
#[inline(always)]
pub(crate) fn sigmoid_f32(x: f32) -> f32 {
    1.0 / (1.0 + exp_f32(-x))
}

/// `f` over a slice, compiled twice: with AVX2 enabled (8 lanes, chosen at
/// run time when the CPU has it) and for the baseline target.
macro_rules! slice_map {
    ($name:ident, $generic:ident, $avx2:ident, $f:ident) => {
        fn $generic(s: &mut [f32]) {
            for v in s.iter_mut() {
                *v = $f(*v);
            }
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2")]
        unsafe fn $avx2(s: &mut [f32]) {
            for v in s.iter_mut() {
                *v = $f(*v);
            }
        }

        pub(crate) fn $name(s: &mut [f32]) {
            #[cfg(all(target_arch = "x86_64", feature = "std"))]
            if std::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2, checked just above.
                unsafe { $avx2(s) };
                return;
            }
            $generic(s)
        }
    };
}

slice_map!(exp_slice, exp_slice_generic, exp_slice_avx2, exp_f32);
slice_map!(sigmoid_slice, sigmoid_slice_generic, sigmoid_slice_avx2, sigmoid_f32);

/// `f32` view of `array`'s memory when `E` is `f32` and the array is
/// contiguous (made unique first, as `mapv_into` would).
fn f32_slice<E: crate::NdArrayElement>(array: &mut SharedArray<E>) -> Option<&mut [f32]> {
    if TypeId::of::<E>() != TypeId::of::<f32>() {
        return None;
    }
    let slice = array.as_slice_memory_order_mut()?;
    // SAFETY: `E` is `f32` (same TypeId), so the slice is a `[f32]`.
    Some(unsafe { core::slice::from_raw_parts_mut(slice.as_mut_ptr() as *mut f32, slice.len()) })
}

/// Sigmoid of every element: [`sigmoid_f32`] for contiguous f32 arrays,
/// `1 / (1 + exp(-x))` in f64 otherwise.
pub(crate) fn sigmoid<E: crate::NdArrayElement>(mut array: SharedArray<E>) -> SharedArray<E> {
    use burn_backend::ElementConversion;
    if let Some(s) = f32_slice(&mut array) {
        sigmoid_slice(s);
        return array;
    }
    array
        .mapv_into(|a: E| {
            let x: f64 = a.elem();
            (1.0 / (1.0 + (-x).exp())).elem::<E>()
        })
        .into_shared()
}

/// `exp` of every element: the polynomial above for contiguous f32 arrays,
/// the element type's own `exp` otherwise.
pub(crate) fn exp<E: crate::NdArrayElement>(mut array: SharedArray<E>) -> SharedArray<E> {
    if let Some(s) = f32_slice(&mut array) {
        exp_slice(s);
        return array;
    }
    array.mapv_into(|a: E| crate::ExpElement::exp_elem(a)).into_shared()
}
