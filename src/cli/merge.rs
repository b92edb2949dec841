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

use crate::runs::atomic::write_atomic;
use crate::lang::ir;
use crate::lower::{Adapter, Site, Tying, from_lang};
use crate::runs::metrics::{RunMetrics, RunStatus};
use crate::model::Llama;
use crate::train::fit::load_adapter;
use crate::runs::tensor_file::{self, F32Tensor};
use crate::pretrained::weights::{LoadedModel, TensorData as StoreTensor};

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
    let loaded = crate::pretrained::source::load_model(Path::new(&metrics.model))?;
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
    crate::pretrained::hf_dir::save_hf_dir(&loaded, &args.out)?;
    println!("merged {} ({} adapted linears) into {}", args.run.display(), r.sites.len(), args.out.display());
    Ok(())
}

/// How a scheme maps onto HF PEFT's LoRA module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PeftForm {
    /// `delta = c · x @ A @ B`, `c` constant per layer: LoRA, rsLoRA, LoRA+,
    /// γ-LoRA, normed LoRA.
    Lora,
    /// A per-layer magnitude `[out]` and a direction `W + μ·A@B` per output
    /// column: DoRA, simple DoRA (`use_dora`).
    Dora,
}

fn peft_form(p: &crate::lower::program::Program) -> Option<PeftForm> {
    let per_layer = |t: &crate::lower::program::TensorDecl| t.tying == Tying::PerLayer && t.across.is_empty();
    let trainable: Vec<_> = p.tensors.iter().filter(|t| !t.frozen).collect();
    let has = |d: &[&str]| trainable.iter().filter(|t| t.dims.iter().map(String::as_str).eq(d.iter().copied())).count() == 1;
    let all_per_layer = p.tensors.iter().all(per_layer);
    if matches!(p.output, crate::lower::Output::Delta(_))
        && p.lets.is_empty()
        && p.tensors.len() == 2
        && trainable.len() == 2
        && all_per_layer
        && has(&["in", "r"])
        && has(&["r", "out"])
    {
        return Some(PeftForm::Lora);
    }
    // Frozen tensors (e.g. simple DoRA's normalised W⁰) are allowed: the fit
    // against the merged weight decides.
    if p.mergeable && trainable.len() == 3 && all_per_layer && has(&["in", "r"]) && has(&["r", "out"]) && has(&["out"]) {
        return Some(PeftForm::Dora);
    }
    None
}

/// Column-wise dot products of two `[in, out]` matrices, `[out]`.
fn col_dot(a: &Tensor<Cpu, 2>, b: &Tensor<Cpu, 2>) -> Vec<f64> {
    (a.clone() * b.clone()).sum_dim(0).into_data().to_vec::<f32>().unwrap_or_default().into_iter().map(f64::from).collect()
}

/// `peftc export-peft`: schemes HF PEFT can represent become PEFT LoRA
/// adapters (`A : [in, r]` → `lora_A.weight [r, in]`, `B : [r, out]` →
/// `lora_B.weight [out, r]`), checked against the run's merged weights `W'`:
///
/// - LoRA form (`delta = c · x @ A @ B`, `c` constant per layer): LoRA,
///   rsLoRA, LoRA+, γ-LoRA, normed LoRA; `lora_alpha = c·r` (per module via
///   `alpha_pattern` when `c` differs), measured from `W' − W`; refused
///   unless `W' − W = c·A·B` holds to 1e-4 (plus W's f32 rounding).
/// - DoRA form (magnitude `[out]`, `A`, `B`, any formula whose merged
///   columns are `W'ⱼ ∝ Wⱼ + μⱼ·(A@B)ⱼ`): PEFT's `use_dora` with
///   `lora_alpha = r` (scale 1), `lora_B`'s rows scaled by `μⱼ`, and
///   `lora_magnitude_vector = ‖W'ⱼ‖`, so that PEFT's
///   `m ⊙ (W + A·B)/‖W + A·B‖` is `W'`. `μⱼ` is fitted per output column
///   (least squares on `λⱼW'ⱼ = Wⱼ + μⱼ(AB)ⱼ`); refused unless the fit holds
///   to 1e-4.
pub fn cmd_export_peft(args: &ExportArgs) -> Result<()> {
    let r = load_run(&args.run)?;
    let p = r.adapter.program();
    let Some(form) = peft_form(p) else {
        bail!(
            "scheme `{}` has neither LoRA form (per-layer A [in, r], B [r, out], delta = c · x @ A @ B) nor DoRA form \
             (per-layer m [out], A [in, r], B [r, out]); HF PEFT cannot represent it",
            p.scheme
        );
    };
    let rank = *p.dims.get("r").ok_or_else(|| anyhow!("no rank r"))?;
    let name_of = |d: &[&str]| {
        p.tensors.iter().find(|t| t.dims.iter().map(String::as_str).collect::<Vec<_>>() == d).map(|t| t.name.clone()).unwrap_or_default()
    };
    let (an, bn) = (name_of(&["in", "r"]), name_of(&["r", "out"]));
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
        let w = r.model.base_weight(s.layer, s.target);
        let module = format!("model.layers.{}.{}", s.layer, s.target.hf_module());
        let key = |k: &str| format!("base_model.model.{module}.{k}");
        let b_out = match form {
            PeftForm::Lora => {
                let w_max: f32 = w.clone().abs().max().into_scalar();
                let delta = merged - w;
                let num: f32 = (delta.clone() * ab.clone()).sum().into_scalar();
                let den: f32 = (ab.clone() * ab.clone()).sum().into_scalar();
                let c = if den > 0.0 { num / den } else { 0.0 };
                let resid: f32 = (delta.clone() - ab.mul_scalar(c)).abs().max().into_scalar();
                let scale: f32 = delta.abs().max().into_scalar();
                // `W' − W` carries W's f32 rounding (~6e-8·|W|): allow 16× that.
                if resid > 1e-4 * scale.max(1e-6) + 1e-6 * w_max && den > 0.0 {
                    bail!("layer {} {}: the adapter's delta is not a constant multiple of A·B (residual {resid:e})", s.layer, s.target);
                }
                alphas.insert(module.clone(), c as f64 * rank as f64);
                b
            }
            PeftForm::Dora => {
                // Per column j: minimise ‖λ·W'ⱼ − Wⱼ − μ·(AB)ⱼ‖ over (λ, μ).
                let (uu, uv, vv) = (col_dot(&merged, &merged), col_dot(&merged, &ab), col_dot(&ab, &ab));
                let (ut, vt, tt) = (col_dot(&merged, &w), col_dot(&ab, &w), col_dot(&w, &w));
                let (mut lam, mut mu) = (Vec::with_capacity(uu.len()), Vec::with_capacity(uu.len()));
                for j in 0..uu.len() {
                    let det = uu[j] * vv[j] - uv[j] * uv[j];
                    let (l, m) = if vv[j] <= 1e-30 * uu[j].max(1e-30) || det.abs() <= 1e-12 * uu[j] * vv[j] {
                        (ut[j] / uu[j].max(1e-30), 0.0)
                    } else {
                        ((ut[j] * vv[j] - uv[j] * vt[j]) / det, (ut[j] * uv[j] - uu[j] * vt[j]) / det)
                    };
                    lam.push(l as f32);
                    mu.push(m as f32);
                }
                let n = mu.len();
                let row = |v: &[f32]| Tensor::<Cpu, 1>::from_data(TensorData::new(v.to_vec(), [n]), &Default::default()).reshape([1, n]);
                // The residual itself, not its expansion in dot products (which cancels in f32).
                let resid = merged.clone() * row(&lam) - w.clone() - ab.clone() * row(&mu);
                let worst = col_dot(&resid, &resid).iter().zip(&tt).map(|(r2, t2)| (r2 / t2.max(1e-30)).sqrt()).fold(0f64, f64::max);
                if worst > 1e-4 {
                    bail!("layer {} {}: the merged weight's columns are not W + μ·A·B renormalised (relative residual {worst:e})", s.layer, s.target);
                }
                let magnitude: Vec<f32> = uu.iter().map(|v| v.sqrt() as f32).collect();
                tensors.insert(key("lora_magnitude_vector"), F32Tensor { shape: vec![magnitude.len()], data: magnitude });
                alphas.insert(module.clone(), rank as f64);
                b * row(&mu)
            }
        };
        let (ra, rb) = (a.transpose(), b_out.transpose());
        tensors.insert(key("lora_A.weight"), F32Tensor { shape: ra.dims().to_vec(), data: to_vec(ra) });
        tensors.insert(key("lora_B.weight"), F32Tensor { shape: rb.dims().to_vec(), data: to_vec(rb) });
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
        "use_dora": form == PeftForm::Dora,
        "init_lora_weights": true,
        "inference_mode": true,
        "modules_to_save": null,
    });
    let out = args.out.clone().unwrap_or_else(|| args.run.join("peft"));
    write_atomic(&out.join("adapter_config.json"), serde_json::to_string_pretty(&config)?.as_bytes())?;
    st::save(&out.join("adapter_model.safetensors"), &tensors, None)?;
    println!(
        "wrote HF PEFT {} adapter ({} modules, lora_alpha {first}) to {}",
        if form == PeftForm::Dora { "DoRA" } else { "LoRA" },
        alphas.len(),
        out.display()
    );
    Ok(())
}
