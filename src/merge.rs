//! `peftc merge <run> -o <dir>`: bake a trained adapter into the base
//! weights (`W' = f(I)`, evaluated numerically per layer and target) and write
//! an HF-style model directory; `peftc export-peft <run>`: write HF PEFT's
//! `adapter_config.json` + `adapter_model.safetensors`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use burn::backend::NdArray;
use burn::prelude::*;
use clap::Args;

use crate::atomic::write_atomic;
use crate::lang::ir;
use crate::lower::{Adapter, Site, Tying, from_lang};
use crate::metrics::{RunMetrics, RunStatus};
use crate::model::Llama;
use crate::train::fit::load_adapter;
use crate::train::st::{self, F32Tensor};
use crate::weights::{LoadedModel, TensorData as StoreTensor};

type Cpu = NdArray<f32>;

#[derive(Debug, Clone, Args)]
pub struct MergeArgs {
    /// Run directory (runs/<experiment>/<run>).
    pub run: PathBuf,
    /// Output directory for the merged HF-style model.
    #[arg(short, long)]
    pub out: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// Run directory (runs/<experiment>/<run>).
    pub run: PathBuf,
    /// Output directory (default: <run>/peft).
    #[arg(short, long)]
    pub out: Option<PathBuf>,
}

/// A finished run, its base model and its adapter, ready to merge or export.
pub struct TrainedRun {
    pub run: ir::Run,
    pub metrics: RunMetrics,
    pub loaded: LoadedModel,
    pub model: Llama<Cpu>,
    pub adapter: Adapter<Cpu>,
    pub sites: Vec<Site>,
}

/// Load a complete run from its directory.
pub fn load_run(dir: &Path) -> Result<TrainedRun> {
    let metrics: RunMetrics = serde_json::from_str(
        &std::fs::read_to_string(dir.join("metrics.json")).with_context(|| format!("{} is not a run directory (no metrics.json)", dir.display()))?,
    )?;
    if metrics.status != RunStatus::Complete {
        bail!("run {} is not complete ({:?})", dir.display(), metrics.status);
    }
    let run: ir::Run = serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).context("reading run.json")?)?;
    let loaded = crate::model_source::load_model(Path::new(&metrics.model))?;
    let device = Default::default();
    let model = Llama::<Cpu>::from_loaded(&loaded, &device)?;
    let program = from_lang::program(&run.instance)?;
    let sites = from_lang::sites(&run.instance);
    let mut adapter = Adapter::<Cpu>::build(&program, &sites, &|l, t| model.base_weight(l, t), metrics.seed, &device)?;
    load_adapter(&mut adapter, &dir.join("adapter.safetensors"), &device)?;
    Ok(TrainedRun { run, metrics, loaded, model, adapter, sites })
}

fn to_vec(t: Tensor<Cpu, 2>) -> Vec<f32> {
    t.into_data().to_vec::<f32>().unwrap_or_default()
}

/// The merged weights `[in, out]` of every adapted site.
pub fn merged_weights(r: &TrainedRun) -> Result<Vec<(Site, Tensor<Cpu, 2>)>> {
    r.sites
        .iter()
        .map(|s| Ok((*s, r.adapter.merged_weight(s.layer, s.target, &r.model.base_weight(s.layer, s.target))?)))
        .collect()
}

pub fn cmd_merge(args: &MergeArgs) -> Result<()> {
    let r = load_run(&args.run)?;
    let mut loaded = r.loaded.clone();
    for (s, w) in merged_weights(&r)? {
        // HF layout: [out, in] = W'ᵀ.
        let wt = w.transpose();
        let [o, i] = wt.dims();
        let name = format!("model.layers.{}.{}.weight", s.layer, s.target.hf_module());
        loaded.tensors.insert(name, StoreTensor { shape: vec![o, i], data: to_vec(wt) });
    }
    crate::hf_dir::save_hf_dir(&loaded, &args.out)?;
    println!("merged {} ({} adapted linears) into {}", args.run.display(), r.sites.len(), args.out.display());
    Ok(())
}

/// `peftc export-peft`: LoRA-form schemes (per-layer `A : [in, r]`,
/// `B : [r, out]`, `delta = c · x @ A @ B` with `c` constant per layer, which
/// covers LoRA, rsLoRA, LoRA+, γ-LoRA and normed LoRA) become HF PEFT LoRA
/// adapters, with `lora_alpha = c·r` (per module via `alpha_pattern` when `c`
/// differs between layers). The scale is measured from the merged weight and
/// the export is refused unless `W' − W = c·A·B` holds to 1e-4.
pub fn cmd_export_peft(args: &ExportArgs) -> Result<()> {
    let r = load_run(&args.run)?;
    let p = r.adapter.program();
    let lora_form = matches!(p.output, crate::lower::Output::Delta(_))
        && p.lets.is_empty()
        && p.tensors.len() == 2
        && p.tensors.iter().all(|t| t.tying == Tying::PerLayer && t.across.is_empty() && !t.frozen)
        && p.tensors[0].dims == ["in", "r"]
        && p.tensors[1].dims == ["r", "out"];
    if !lora_form {
        bail!(
            "scheme `{}` is not of LoRA form (per-layer A [in, r], B [r, out], delta = c · x @ A @ B); HF PEFT cannot represent it",
            p.scheme
        );
    }
    let rank = *p.dims.get("r").ok_or_else(|| anyhow!("no rank r"))?;
    let (an, bn) = (p.tensors[0].name.clone(), p.tensors[1].name.clone());
    let infos = r.adapter.param_infos();
    let find = |decl: &str, s: &Site| -> Result<Tensor<Cpu, 2>> {
        let name = format!("{decl}.{}.{}", s.target, s.layer);
        let i = infos.iter().position(|i| i.name == name).ok_or_else(|| anyhow!("missing {name}"))?;
        let sh = &infos[i].shape;
        Ok(r.adapter.params()[i].clone().reshape([sh[0], sh[1]]))
    };
    let mut tensors = BTreeMap::new();
    let mut alphas = BTreeMap::new();
    let mut modules = std::collections::BTreeSet::new();
    for (s, merged) in merged_weights(&r)? {
        let a = find(&an, &s)?;
        let b = find(&bn, &s)?;
        let ab = a.clone().matmul(b.clone());
        let delta = merged - r.model.base_weight(s.layer, s.target);
        let num: f32 = (delta.clone() * ab.clone()).sum().into_scalar();
        let den: f32 = (ab.clone() * ab.clone()).sum().into_scalar();
        let c = if den > 0.0 { num / den } else { 0.0 };
        let resid: f32 = (delta.clone() - ab.mul_scalar(c)).abs().max().into_scalar();
        let scale: f32 = delta.abs().max().into_scalar();
        if resid > 1e-4 * scale.max(1e-6) && den > 0.0 {
            bail!("layer {} {}: the adapter's delta is not a constant multiple of A·B (residual {resid:e})", s.layer, s.target);
        }
        let module = format!("model.layers.{}.{}", s.layer, s.target.hf_module());
        let (ra, rb) = (a.transpose(), b.transpose());
        tensors.insert(format!("base_model.model.{module}.lora_A.weight"), F32Tensor { shape: ra.dims().to_vec(), data: to_vec(ra) });
        tensors.insert(format!("base_model.model.{module}.lora_B.weight"), F32Tensor { shape: rb.dims().to_vec(), data: to_vec(rb) });
        alphas.insert(module, c as f64 * rank as f64);
        modules.insert(s.target.hf_module().rsplit('.').next().unwrap_or("").to_string());
    }
    // The scale is measured in f32: equal scales agree to ~1e-5 relative.
    let first = alphas.values().sum::<f64>() / alphas.len().max(1) as f64;
    let uniform = alphas.values().all(|v| (v - first).abs() <= 1e-4 * first.abs().max(1e-12));
    let alpha_pattern: serde_json::Map<String, serde_json::Value> =
        if uniform { Default::default() } else { alphas.iter().map(|(k, v)| (format!("^{}$", k.replace('.', "\\.")), serde_json::json!(v))).collect() };
    let config = serde_json::json!({
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": r.metrics.model,
        "r": rank,
        "lora_alpha": first,
        "alpha_pattern": alpha_pattern,
        "rank_pattern": {},
        "target_modules": modules.into_iter().collect::<Vec<_>>(),
        "lora_dropout": 0.0,
        "bias": "none",
        "fan_in_fan_out": false,
        "use_rslora": false,
        "use_dora": false,
        "init_lora_weights": true,
        "inference_mode": true,
        "modules_to_save": null,
    });
    let out = args.out.clone().unwrap_or_else(|| args.run.join("peft"));
    write_atomic(&out.join("adapter_config.json"), serde_json::to_string_pretty(&config)?.as_bytes())?;
    st::save(&out.join("adapter_model.safetensors"), &tensors, None)?;
    println!("wrote HF PEFT adapter ({} modules, lora_alpha {first}) to {}", alphas.len(), out.display());
    Ok(())
}
