//! A trained adapter in HF PEFT's LoRA terms.
//!
//! Schemes HF PEFT can represent become PEFT LoRA adapters
//! (`A : [in, r]` → `lora_A.weight [r, in]`, `B : [r, out]` →
//! `lora_B.weight [out, r]`), checked against the run's merged weights `W'`:
//!
//! - LoRA form (`delta = c · x @ A @ B`, `c` constant per layer): LoRA,
//!   rsLoRA, LoRA+, γ-LoRA, normed LoRA; `lora_alpha = c·r` (per module via
//!   `alpha_pattern` when `c` differs), measured from `W' − W`; refused
//!   unless `W' − W = c·A·B` holds to 1e-4 (plus W's f32 rounding).
//! - DoRA form (magnitude `[out]`, `A`, `B`, any formula whose merged
//!   columns are `W'ⱼ ∝ Wⱼ + μⱼ·(A@B)ⱼ`): PEFT's `use_dora` with
//!   `lora_alpha = r` (scale 1), `lora_B`'s rows scaled by `μⱼ`, and
//!   `lora_magnitude_vector = ‖W'ⱼ‖`, so that PEFT's
//!   `m ⊙ (W + A·B)/‖W + A·B‖` is `W'`. `μⱼ` is fitted per output column
//!   (least squares on `λⱼW'ⱼ = Wⱼ + μⱼ(AB)ⱼ`); refused unless the fit holds
//!   to 1e-4.
//!
//! Phi-3 keeps q‖k‖v and gate‖up fused (`qkv_proj`, `gate_up_proj`), which
//! peftc splits at load. Separate rank-r adapters on the parts are one
//! rank-(n·r) adapter on the fused module: `A' = [A_q; A_k; A_v]` and a
//! block-diagonal `B'` whose blocks carry each part's scale (so PEFT's own
//! scale is 1: `lora_alpha = r' = n·r`, in `rank_pattern`), a targeted
//! part's rows of `B'` zero when it has no adapter; DoRA's magnitudes are
//! per output row, so they concatenate (a part without adapter keeps its
//! rows' norms).
//!
//! The file layout is [`crate::pretrained::peft_adapter`]'s.

use anyhow::{Result, anyhow, bail};
use burn::prelude::*;

use super::merge::TrainedRun;
use super::{Output, Program, Site, TensorDecl, Tying};
use crate::pretrained::family::{Family, phi3_fused};
use crate::pretrained::peft_adapter::PeftAdapter;
use crate::runs::tensor_file::F32Tensor;

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

fn peft_form(p: &Program) -> Option<PeftForm> {
    let per_layer = |t: &TensorDecl| t.tying == Tying::PerLayer && t.across.is_empty();
    let trainable: Vec<_> = p.tensors.iter().filter(|t| !t.frozen).collect();
    let has = |d: &[&str]| trainable.iter().filter(|t| t.dims.iter().map(String::as_str).eq(d.iter().copied())).count() == 1;
    let all_per_layer = p.tensors.iter().all(per_layer);
    if matches!(p.output, Output::Delta(_))
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

fn to_vec<B: Backend>(t: Tensor<B, 2>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec::<f32>().unwrap_or_default()
}

fn scalar<B: Backend>(t: Tensor<B, 1>) -> f32 {
    t.into_scalar().elem::<f32>()
}

/// Column-wise dot products of two `[in, out]` matrices, `[out]`.
fn col_dot<B: Backend>(a: &Tensor<B, 2>, b: &Tensor<B, 2>) -> Vec<f64> {
    (a.clone() * b.clone()).sum_dim(0).into_data().convert::<f32>().to_vec::<f32>().unwrap_or_default().into_iter().map(f64::from).collect()
}

/// The run's adapter as a PEFT LoRA adapter, or why PEFT cannot represent it.
pub fn to_peft<B: Backend>(r: &TrainedRun<B>) -> Result<PeftAdapter> {
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
    let find = |decl: &str, s: &Site| -> Result<Tensor<B, 2>> {
        let name = format!("{decl}.{}.{}", s.target, s.layer);
        let i = infos.iter().position(|i| i.name == name).ok_or_else(|| anyhow!("missing {name}"))?;
        let sh = &infos[i].shape;
        Ok(r.adapter.params()[i].clone().reshape([sh[0], sh[1]]))
    };
    let device = r.adapter.params().first().map(|t| t.device()).ok_or_else(|| anyhow!("the adapter has no tensors"))?;
    let mut out = PeftAdapter { dora: form == PeftForm::Dora, rank, ..Default::default() };
    for (s, merged) in r.merged_weights()? {
        let a = find(&an, &s)?;
        let b = find(&bn, &s)?;
        let ab = a.clone().matmul(b.clone());
        let w = r.model.base_weight(s.layer, s.target);
        let module = format!("model.layers.{}.{}", s.layer, s.target.hf_module());
        let key = |k: &str| format!("base_model.model.{module}.{k}");
        let b_out = match form {
            PeftForm::Lora => {
                let w_max = scalar(w.clone().abs().max());
                let delta = merged - w;
                let num = scalar((delta.clone() * ab.clone()).sum());
                let den = scalar((ab.clone() * ab.clone()).sum());
                let c = if den > 0.0 { num / den } else { 0.0 };
                let resid = scalar((delta.clone() - ab.mul_scalar(c)).abs().max());
                let scale = scalar(delta.abs().max());
                // `W' − W` carries W's f32 rounding (~6e-8·|W|): allow 16× that.
                if resid > 1e-4 * scale.max(1e-6) + 1e-6 * w_max && den > 0.0 {
                    bail!("layer {} {}: the adapter's delta is not a constant multiple of A·B (residual {resid:e})", s.layer, s.target);
                }
                out.alphas.insert(module.clone(), c as f64 * rank as f64);
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
                let row = |v: &[f32]| {
                    Tensor::<B, 1>::from_data(TensorData::new(v.to_vec(), [n]).convert::<B::FloatElem>(), &device).reshape([1, n])
                };
                // The residual itself, not its expansion in dot products (which cancels in f32).
                let resid = merged.clone() * row(&lam) - w.clone() - ab.clone() * row(&mu);
                let worst = col_dot(&resid, &resid).iter().zip(&tt).map(|(r2, t2)| (r2 / t2.max(1e-30)).sqrt()).fold(0f64, f64::max);
                if worst > 1e-4 {
                    bail!(
                        "layer {} {}: the merged weight's columns are not W + μ·A·B renormalised (relative residual {worst:e})",
                        s.layer,
                        s.target
                    );
                }
                let magnitude: Vec<f32> = uu.iter().map(|v| v.sqrt() as f32).collect();
                out.tensors.insert(key("lora_magnitude_vector"), F32Tensor { shape: vec![magnitude.len()], data: magnitude });
                out.alphas.insert(module.clone(), rank as f64);
                b * row(&mu)
            }
        };
        let (ra, rb) = (a.transpose(), b_out.transpose());
        out.tensors.insert(key("lora_A.weight"), F32Tensor { shape: ra.dims().to_vec(), data: to_vec(ra) });
        out.tensors.insert(key("lora_B.weight"), F32Tensor { shape: rb.dims().to_vec(), data: to_vec(rb) });
        out.modules.insert(s.target.hf_module().rsplit('.').next().unwrap_or("").to_string());
    }
    if r.model.config().arch.family == Family::Phi3 {
        fuse_for_phi3(r, &mut out)?;
    }
    Ok(out)
}

/// Rewrite per-projection adapters as adapters of Phi-3's fused modules.
fn fuse_for_phi3<B: Backend>(r: &TrainedRun<B>, out: &mut PeftAdapter) -> Result<()> {
    let c = r.model.config();
    let rank = out.rank;
    for l in 0..c.num_layers {
        for (fused, parts) in phi3_fused(c) {
            let module = |p: &str| format!("model.layers.{l}.{p}");
            let key = |p: &str, k: &str| format!("base_model.model.{}.{k}", module(p));
            let present: Vec<usize> = (0..parts.len()).filter(|&i| out.tensors.contains_key(&key(parts[i].0, "lora_A.weight"))).collect();
            if present.is_empty() {
                continue;
            }
            let rows: usize = parts.iter().map(|p| p.1).sum();
            let fused_rank = present.len() * rank;
            let mut a = Vec::new();
            let mut b = vec![0f32; rows * fused_rank];
            let mut magnitude = Vec::new();
            let mut offset = 0;
            let mut col = 0;
            for (i, &(part, n)) in parts.iter().enumerate() {
                let alpha = out.alphas.remove(&module(part));
                if present.contains(&i) {
                    let pa = out.tensors.remove(&key(part, "lora_A.weight")).ok_or_else(|| anyhow!("missing lora_A of {part}"))?;
                    let pb = out.tensors.remove(&key(part, "lora_B.weight")).ok_or_else(|| anyhow!("missing lora_B of {part}"))?;
                    let scale = alpha.unwrap_or(rank as f64) as f32 / rank as f32;
                    a.extend_from_slice(&pa.data);
                    // pb: [n, rank] → rows offset.., columns col..col+rank.
                    for row in 0..n {
                        for k in 0..rank {
                            b[(offset + row) * fused_rank + col + k] = pb.data[row * rank + k] * scale;
                        }
                    }
                    col += rank;
                    if let Some(m) = out.tensors.remove(&key(part, "lora_magnitude_vector")) {
                        magnitude.extend(m.data);
                    }
                } else if out.dora {
                    // No adapter on this part: its rows keep their own norms.
                    let target = crate::lang::target::Target::ALL
                        .into_iter()
                        .find(|t| t.hf_module() == part)
                        .ok_or_else(|| anyhow!("unknown projection {part}"))?;
                    let w = r.model.base_weight(l, target);
                    magnitude.extend(col_dot(&w, &w).into_iter().map(|v| v.sqrt() as f32));
                }
                out.modules.remove(part.rsplit('.').next().unwrap_or(""));
                offset += n;
            }
            let inputs = a.len() / fused_rank;
            out.tensors.insert(key(fused, "lora_A.weight"), F32Tensor { shape: vec![fused_rank, inputs], data: a });
            out.tensors.insert(key(fused, "lora_B.weight"), F32Tensor { shape: vec![rows, fused_rank], data: b });
            if out.dora {
                out.tensors.insert(key(fused, "lora_magnitude_vector"), F32Tensor { shape: vec![rows], data: magnitude });
            }
            out.alphas.insert(module(fused), fused_rank as f64);
            out.ranks.insert(module(fused), fused_rank);
            out.modules.insert(fused.rsplit('.').next().unwrap_or("").to_string());
        }
    }
    Ok(())
}
