//! The local patches to burn-ndarray 0.21.0 (`vendor/burn-ndarray`, listed
//! in its `PEFTC-PATCHES.md`) against plain reference arithmetic: the
//! vectorized f32 `exp` and sigmoid, f32 matmul through the `gemm` crate on
//! strided (transposed, axis-swapped) operands without copying them, and
//! copy-free reshapes. All f32: burn keeps
//! one float dtype per device type per process.

use burn::backend::NdArray;
use burn::prelude::*;

type B = NdArray<f32>;

fn tensor<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> Tensor<B, D> {
    Tensor::from_data(TensorData::new(values, shape), &Default::default())
}

fn values<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().to_vec::<f32>().unwrap()
}

/// Deterministic values in [-1, 1).
fn pseudo(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s as f64 / u32::MAX as f64 * 2.0 - 1.0) as f32
        })
        .collect()
}

#[test]
fn exp_is_within_two_ulp_of_the_exact_value_over_the_normal_range() {
    let xs: Vec<f32> = (0..200_001).map(|i| -87.0 + 175.5 * i as f32 / 200_000.0).collect();
    let got = values(tensor(xs.clone(), [xs.len()]).exp());
    let mut worst = 0.0f64;
    for (&x, &y) in xs.iter().zip(&got) {
        let exact = (x as f64).exp();
        // One ulp of the exact result, as an f32 spacing.
        let ulp = (exact as f32).next_up() as f64 - exact as f32 as f64;
        worst = worst.max((y as f64 - exact).abs() / ulp);
    }
    assert!(worst <= 2.0, "worst error {worst:.2} ulp");
}

#[test]
fn exp_keeps_its_edges_and_propagates_nan() {
    let xs = vec![f32::NEG_INFINITY, -1.0e9, -100.0, 0.0, 88.0, 89.0, f32::INFINITY, f32::NAN];
    let got = values(tensor(xs, [8]).exp());
    assert_eq!(&got[..4], &[0.0, 0.0, 0.0, 1.0]);
    assert!((got[4] as f64 / 88f64.exp() - 1.0).abs() < 3e-7);
    assert_eq!(&got[5..7], &[f32::INFINITY, f32::INFINITY]);
    assert!(got[7].is_nan(), "a NaN must survive exp so that divergence is detected");
}

#[test]
fn exp_of_a_strided_view_equals_exp_of_its_contiguous_copy() {
    let v = pseudo(6 * 7, 3).into_iter().map(|x| x * 20.0).collect::<Vec<_>>();
    let t = tensor(v, [6, 7]);
    let strided = values(t.clone().transpose().exp());
    let contiguous = values(tensor(values(t.transpose()), [7, 6]).exp());
    assert_eq!(strided, contiguous);
}

#[test]
fn sigmoid_matches_the_exact_value_and_keeps_its_edges() {
    let xs: Vec<f32> = (0..100_001).map(|i| -90.0 + 180.0 * i as f32 / 100_000.0).collect();
    let got = values(burn::tensor::activation::sigmoid(tensor(xs.clone(), [xs.len()])));
    for (&x, &y) in xs.iter().zip(&got) {
        let exact = 1.0 / (1.0 + (-(x as f64)).exp());
        // Relative to the value, plus the f32 spacing near 1.
        assert!((y as f64 - exact).abs() <= 4e-7 * exact + 1.2e-7, "sigmoid({x}) = {y}, exact {exact}");
    }
    let edges = values(burn::tensor::activation::sigmoid(tensor(vec![f32::NEG_INFINITY, 0.0, f32::INFINITY, f32::NAN], [4])));
    assert_eq!(&edges[..3], &[0.0, 0.5, 1.0]);
    assert!(edges[3].is_nan());
}

/// `a · b` in f64 for row-major `a: [m, k]`, `b: [k, n]`.
fn reference_matmul(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f64> {
    let mut out = vec![0.0f64; m * n];
    for i in 0..m {
        for j in 0..n {
            out[i * n + j] = (0..k).map(|p| a[i * k + p] as f64 * b[p * n + j] as f64).sum();
        }
    }
    out
}

/// Row-major transpose of a `[rows, cols]` matrix.
fn transposed(a: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    (0..cols).flat_map(|c| (0..rows).map(move |r| a[r * cols + c])).collect()
}

fn assert_close(got: &[f32], want: &[f64]) {
    assert_eq!(got.len(), want.len());
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!((g as f64 - w).abs() <= 1e-5 * (1.0 + w.abs()), "element {i}: {g} vs {w}");
    }
}

#[test]
fn matmul_with_transposed_operands_matches_the_reference() {
    // Small, and large enough to cross the gemm kernels' register and cache
    // blocks (odd sizes leave remainders on every side).
    for (m, k, n) in [(13, 29, 17), (131, 517, 67)] {
        matmul_case(m, k, n);
    }
}

fn matmul_case(m: usize, k: usize, n: usize) {
    let a = pseudo(m * k, 1);
    let b = pseudo(k * n, 2);
    let want = reference_matmul(&a, &b, m, k, n);
    // Every combination of contiguous and transposed-view operands.
    let a_c = tensor(a.clone(), [m, k]);
    let a_t = tensor(transposed(&a, m, k), [k, m]).transpose();
    let b_c = tensor(b.clone(), [k, n]);
    let b_t = tensor(transposed(&b, k, n), [n, k]).transpose();
    for (x, y) in [(&a_c, &b_c), (&a_t, &b_c), (&a_c, &b_t), (&a_t, &b_t)] {
        assert_close(&values(x.clone().matmul(y.clone())), &want);
    }
}

#[test]
fn batched_matmul_with_swapped_axes_and_broadcast_matches_the_reference() {
    // [batch 2, heads 3, s 5, d 4] built as [2, 5, 3, 4] with axes 1 and 2
    // swapped (a strided view, as attention builds it), times a transposed
    // [2, 3, 4, 6] and a broadcast [1, 1, 4, 6].
    let (bt, h, s, d, n) = (2, 3, 5, 4, 6);
    let q = pseudo(bt * s * h * d, 4);
    let q_view = tensor(q.clone(), [bt, s, h, d]).swap_dims(1, 2);
    let kmat = pseudo(bt * h * n * d, 5);
    let k_view = tensor(kmat.clone(), [bt, h, n, d]).swap_dims(2, 3);
    let w = pseudo(d * n, 6);
    let w_b = tensor(w.clone(), [1, 1, d, n]);
    let got_k = values(q_view.clone().matmul(k_view));
    let got_w = values(q_view.matmul(w_b));
    let (mut want_k, mut want_w) = (Vec::new(), Vec::new());
    for b in 0..bt {
        for hh in 0..h {
            let qm: Vec<f32> = (0..s).flat_map(|i| (0..d).map(move |j| (i, j))).map(|(i, j)| q[((b * s + i) * h + hh) * d + j]).collect();
            let km: Vec<f32> = kmat[(b * h + hh) * n * d..(b * h + hh + 1) * n * d].to_vec();
            want_k.extend(reference_matmul(&qm, &transposed(&km, n, d), s, d, n));
            want_w.extend(reference_matmul(&qm, &w, s, d, n));
        }
    }
    assert_close(&got_k, &want_k);
    assert_close(&got_w, &want_w);
}

#[test]
fn reshape_of_a_strided_view_reorders_and_reshapes_do_not_alias() {
    let t = tensor((0..24).map(|x| x as f32).collect(), [4, 6]);
    let flat = values(t.clone().transpose().reshape([24]));
    assert_eq!(flat, transposed(&(0..24).map(|x| x as f32).collect::<Vec<_>>(), 4, 6));
    // A reshape shares storage with its source until one is written:
    // writing the reshaped tensor must leave the original as it was.
    let r = t.clone().reshape([2, 12]);
    let r2 = r.clone().add_scalar(100.0);
    assert_eq!(values(t), (0..24).map(|x| x as f32).collect::<Vec<_>>());
    assert_eq!(values(r), (0..24).map(|x| x as f32).collect::<Vec<_>>());
    assert_eq!(values(r2)[0], 100.0);
}

#[test]
fn recip_is_exactly_rounded() {
    // Upstream's SIMD `recip` was the hardware approximation (12 bits):
    // relative errors up to 3e-5 on every full vector of 8.
    let x: Vec<f32> = pseudo(1000, 3).iter().map(|v| v.abs() * 3.0 + 0.01).collect();
    let got = values(tensor(x.clone(), [1000]).recip());
    for (g, v) in got.iter().zip(&x) {
        assert_eq!(*g, 1.0 / v, "recip({v})");
    }
}
