//! Deterministic initial values.
//!
//! Every stored tensor draws from its own stream, seeded by the run's seed and
//! the tensor's storage key, so values do not depend on build order.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

use super::program::Init;

/// A random stream for one stored tensor.
pub fn stream(seed: u64, key: &str) -> StdRng {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(key.as_bytes());
    let d = h.finalize();
    let mut s = [0u8; 32];
    s.copy_from_slice(&d);
    StdRng::from_seed(s)
}

/// Standard normal draws (Box–Muller, f64 internally).
fn normal(rng: &mut StdRng, n: usize, mean: f64, std: f64) -> Vec<f32> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
        let u2: f64 = rng.random::<f64>();
        let r = (-2.0 * u1.ln()).sqrt();
        let th = 2.0 * std::f64::consts::PI * u2;
        out.push((mean + std * r * th.cos()) as f32);
        if out.len() < n {
            out.push((mean + std * r * th.sin()) as f32);
        }
    }
    out
}

fn uniform(rng: &mut StdRng, n: usize, low: f64, high: f64) -> Vec<f32> {
    (0..n).map(|_| (low + (high - low) * rng.random::<f64>()) as f32).collect()
}

/// Values of a non-expression init for a tensor of `shape` (row-major).
/// Returns `None` for [`Init::Expr`], which the adapter evaluates itself.
pub fn values(init: &Init, shape: &[usize], seed: u64, key: &str) -> Option<Vec<f32>> {
    let n: usize = shape.iter().product();
    let mut rng = stream(seed, key);
    Some(match init {
        Init::Zeros => vec![0.0; n],
        Init::Ones => vec![1.0; n],
        Init::Constant(c) => vec![*c as f32; n],
        Init::Normal { mean, std } => normal(&mut rng, n, *mean, *std),
        Init::Uniform { low, high } => uniform(&mut rng, n, *low, *high),
        Init::KaimingUniform { a } => {
            let fan_in: usize = if shape.len() >= 2 { shape[..shape.len() - 1].iter().product() } else { n };
            let gain = (2.0 / (1.0 + a * a)).sqrt();
            let bound = gain * (3.0 / fan_in.max(1) as f64).sqrt();
            uniform(&mut rng, n, -bound, bound)
        }
        Init::Identity => {
            let mut v = vec![0.0; n];
            if shape.len() >= 2 {
                let (r, c) = (shape[shape.len() - 2], shape[shape.len() - 1]);
                let blocks = n / (r * c).max(1);
                for b in 0..blocks {
                    for i in 0..r.min(c) {
                        v[b * r * c + i * c + i] = 1.0;
                    }
                }
            } else {
                v.iter_mut().for_each(|x| *x = 1.0);
            }
            v
        }
        Init::Expr(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_moments_and_determinism() {
        let a = values(&Init::Normal { mean: 0.5, std: 2.0 }, &[100, 100], 7, "A").unwrap();
        let b = values(&Init::Normal { mean: 0.5, std: 2.0 }, &[100, 100], 7, "A").unwrap();
        let c = values(&Init::Normal { mean: 0.5, std: 2.0 }, &[100, 100], 7, "B").unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let n = a.len() as f64;
        let mean = a.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = a.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        assert!((mean - 0.5).abs() < 0.05, "mean {mean}");
        assert!((var.sqrt() - 2.0).abs() < 0.05, "std {}", var.sqrt());
    }

    #[test]
    fn kaiming_uniform_bound_matches_pytorch() {
        // PyTorch: kaiming_uniform_(w[out=8, in=576], a=sqrt(5)) has bound 1/sqrt(576).
        let v = values(&Init::KaimingUniform { a: 5f64.sqrt() }, &[576, 8], 1, "A").unwrap();
        let bound = 1.0 / 576f64.sqrt();
        let max = v.iter().fold(0f64, |m, &x| m.max((x as f64).abs()));
        assert!(max <= bound + 1e-7 && max > 0.95 * bound, "max {max} bound {bound}");
    }

    #[test]
    fn identity_on_last_two_dims() {
        let v = values(&Init::Identity, &[2, 3], 0, "I").unwrap();
        assert_eq!(v, vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
    }
}
