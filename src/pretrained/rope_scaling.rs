//! The rotary inverse frequencies a checkpoint asks for: HF's `default`
//! (`theta^(-2i/d)`), HF's `llama3` rescaling, or the per-pair divisors a
//! GGUF stores in `rope_freqs.weight`. Resolved once at load into
//! [`RopeScaling`]; the model only ever sees the resulting vector.

use serde::{Deserialize, Serialize};

/// How the inverse frequencies are derived from `rope_theta`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rope_type", rename_all = "snake_case")]
pub enum RopeScaling {
    /// HF `rope_type: default`: `inv_freq_i = theta^(-2i/d)`.
    #[default]
    Default,
    /// HF `rope_type: llama3` (`_compute_llama3_parameters`): low frequencies
    /// divided by `factor`, high ones kept, a smooth blend in between.
    Llama3 { factor: f64, low_freq_factor: f64, high_freq_factor: f64, original_max_position_embeddings: usize },
    /// Per-pair divisors of the default inverse frequencies, as llama.cpp's
    /// converter stores them in a GGUF's `rope_freqs.weight`
    /// (ggml: `theta_i = base^(-2i/d) / freq_factors[i]`).
    FreqFactors { factors: Vec<f32> },
}

/// HF's default inverse frequencies, in f32 as `LlamaRotaryEmbedding`
/// computes them: `1 / theta^(2i/d)` for `i < d/2`.
pub fn default_inv_freq(theta: f64, head_dim: usize) -> Vec<f32> {
    (0..head_dim / 2).map(|i| 1.0f32 / (theta as f32).powf((2 * i) as f32 / head_dim as f32)).collect()
}

impl RopeScaling {
    /// Whether this scaling is usable with heads of `head_dim`: the GGUF
    /// divisors are one finite positive value per pair; `llama3`'s factors
    /// are finite and positive with `low_freq_factor < high_freq_factor`
    /// (its blend divides by their difference).
    pub fn check(&self, head_dim: usize) -> Result<(), String> {
        match self {
            RopeScaling::Default => Ok(()),
            RopeScaling::FreqFactors { factors } => {
                if factors.len() != head_dim / 2 {
                    return Err(format!("{} RoPE frequency factors for head_dim {head_dim} (expected {})", factors.len(), head_dim / 2));
                }
                match factors.iter().find(|f| !(f.is_finite() && **f > 0.0)) {
                    Some(f) => Err(format!("RoPE frequency factor {f} is not a positive number")),
                    None => Ok(()),
                }
            }
            RopeScaling::Llama3 { factor, low_freq_factor, high_freq_factor, original_max_position_embeddings } => {
                for (key, v) in [("factor", *factor), ("low_freq_factor", *low_freq_factor), ("high_freq_factor", *high_freq_factor)] {
                    if !(v.is_finite() && v > 0.0) {
                        return Err(format!("llama3 RoPE `{key}` = {v} must be a positive number"));
                    }
                }
                if low_freq_factor >= high_freq_factor {
                    return Err(format!(
                        "llama3 RoPE needs low_freq_factor < high_freq_factor, found {low_freq_factor} and {high_freq_factor}"
                    ));
                }
                if *original_max_position_embeddings == 0 {
                    return Err("llama3 RoPE `original_max_position_embeddings` must be positive".into());
                }
                Ok(())
            }
        }
    }

    /// The `head_dim / 2` inverse frequencies for base `theta`.
    ///
    /// `Llama3` follows transformers' `_compute_llama3_parameters` step by
    /// step in f32 (as torch does); `FreqFactors` divides each default
    /// frequency by its factor (the loaders check there are `head_dim / 2`).
    pub fn inv_freq(&self, theta: f64, head_dim: usize) -> Vec<f32> {
        let base = default_inv_freq(theta, head_dim);
        match self {
            RopeScaling::Default => base,
            RopeScaling::FreqFactors { factors } => base.iter().zip(factors).map(|(f, d)| f / d).collect(),
            RopeScaling::Llama3 { factor, low_freq_factor, high_freq_factor, original_max_position_embeddings } => {
                let (factor, low, high, old) =
                    (*factor as f32, *low_freq_factor as f32, *high_freq_factor as f32, *original_max_position_embeddings as f32);
                let (low_wavelen, high_wavelen) = (old / low, old / high);
                base.iter()
                    .map(|&f| {
                        let wavelen = 2.0 * std::f32::consts::PI / f;
                        let scaled = if wavelen > low_wavelen { f / factor } else { f };
                        if wavelen < high_wavelen || wavelen > low_wavelen {
                            scaled
                        } else {
                            let smooth = (old / wavelen - low) / (high - low);
                            (1.0 - smooth) * scaled / factor + smooth * scaled
                        }
                    })
                    .collect()
            }
        }
    }

    /// The divisors llama.cpp's converter writes to `rope_freqs.weight` for
    /// this scaling (one per pair), or `None` for `Default`. For `Llama3` it
    /// is the converter's rule, in f64 then stored as f32: `1` where the
    /// wavelength is below `original / high_freq_factor`, `factor` above
    /// `original / low_freq_factor`, `1 / ((1 - s) / factor + s)` between.
    pub fn freq_factors(&self, theta: f64, head_dim: usize) -> Option<Vec<f32>> {
        match self {
            RopeScaling::Default => None,
            RopeScaling::FreqFactors { factors } => Some(factors.clone()),
            RopeScaling::Llama3 { factor, low_freq_factor, high_freq_factor, original_max_position_embeddings } => {
                let old = *original_max_position_embeddings as f64;
                let (low_wavelen, high_wavelen) = (old / low_freq_factor, old / high_freq_factor);
                let factors = (0..head_dim / 2)
                    .map(|i| {
                        let freq = 1.0 / theta.powf((2 * i) as f64 / head_dim as f64);
                        let wavelen = 2.0 * std::f64::consts::PI / freq;
                        if wavelen < high_wavelen {
                            1.0
                        } else if wavelen > low_wavelen {
                            *factor as f32
                        } else {
                            let smooth = (old / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
                            (1.0 / ((1.0 - smooth) / factor + smooth)) as f32
                        }
                    })
                    .collect();
                Some(factors)
            }
        }
    }
}
