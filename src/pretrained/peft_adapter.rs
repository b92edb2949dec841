//! HF PEFT's LoRA adapter format: `adapter_config.json` +
//! `adapter_model.safetensors` (tensors under
//! `base_model.model.<module>.lora_{A,B}.weight` and, for DoRA,
//! `lora_magnitude_vector`). What goes in it is computed by
//! [`crate::lower::peft_export`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::Result;

use crate::runs::atomic::write_atomic;
use crate::runs::tensor_file::{self, F32Tensor};

/// A LoRA (or DoRA) adapter in PEFT's terms.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PeftAdapter {
    /// PEFT's `use_dora`.
    pub dora: bool,
    pub rank: usize,
    /// `lora_alpha` per adapted module (`model.layers.3.self_attn.q_proj`).
    pub alphas: BTreeMap<String, f64>,
    /// Ranks of modules whose rank differs from `rank` (Phi-3's fused
    /// projections), by module: PEFT's `rank_pattern`.
    pub ranks: BTreeMap<String, usize>,
    /// Short module names (`q_proj`, …): PEFT's `target_modules`.
    pub modules: BTreeSet<String>,
    /// Tensors under PEFT's names.
    pub tensors: BTreeMap<String, F32Tensor>,
}

impl PeftAdapter {
    /// The common `lora_alpha`: the mean over modules. Scales measured in f32
    /// agree to ~1e-5 relative, so equal ones within 1e-4 count as uniform.
    pub fn lora_alpha(&self) -> f64 {
        self.alphas.values().sum::<f64>() / self.alphas.len().max(1) as f64
    }

    /// `adapter_config.json`; modules whose alpha differs from the common
    /// one are listed in `alpha_pattern`.
    pub fn config(&self, base_model: &str) -> serde_json::Value {
        let first = self.lora_alpha();
        let uniform = self.alphas.values().all(|v| (v - first).abs() <= 1e-4 * first.abs().max(1e-12));
        let alpha_pattern: serde_json::Map<String, serde_json::Value> = if uniform {
            Default::default()
        } else {
            self.alphas.iter().map(|(k, v)| (format!("^{}$", k.replace('.', "\\.")), serde_json::json!(v))).collect()
        };
        let rank_pattern: serde_json::Map<String, serde_json::Value> =
            self.ranks.iter().map(|(k, v)| (format!("^{}$", k.replace('.', "\\.")), serde_json::json!(v))).collect();
        serde_json::json!({
            "peft_type": "LORA",
            "task_type": "CAUSAL_LM",
            "base_model_name_or_path": base_model,
            "r": self.rank,
            "lora_alpha": first,
            "alpha_pattern": alpha_pattern,
            "rank_pattern": rank_pattern,
            "target_modules": self.modules.iter().collect::<Vec<_>>(),
            "lora_dropout": 0.0,
            "bias": "none",
            "fan_in_fan_out": false,
            "use_rslora": false,
            "use_dora": self.dora,
            "init_lora_weights": true,
            "inference_mode": true,
            "modules_to_save": null,
        })
    }

    /// Write both files into `out`.
    pub fn save(&self, out: &Path, base_model: &str) -> Result<()> {
        write_atomic(&out.join("adapter_config.json"), serde_json::to_string_pretty(&self.config(base_model))?.as_bytes())?;
        tensor_file::save(&out.join("adapter_model.safetensors"), &self.tensors, None)
    }
}
