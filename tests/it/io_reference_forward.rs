//! An independent check of the loader's output (names, `[out, in]` layout,
//! the q/k un-permutation, tied embeddings, config): a plain-Rust f32 Llama
//! forward written from the HF transformers definition (rotate-half RoPE,
//! GQA, SwiGLU, RMSNorm) over the loaded tensors reproduces the reference
//! top-5 logits of HF transformers within 1e-2. With the GGUF q/k rows left
//! permuted, position 30 would not match (position 0 cannot tell: attention
//! over one token ignores q and k).

use crate::support::io as io_support;

use io_support::{gsm8k_dir, reference_file, smollm2_path};
use peftc::pretrained::source::load_model;
use peftc::pretrained::tokenizer::Tokenizer;
use peftc::pretrained::weights::{LoadedModel, ModelConfig};
use serde_json::Value;

/// `y = W x` for `W: [out, in]` row-major.
fn matvec(w: &[f32], x: &[f32]) -> Vec<f32> {
    w.chunks_exact(x.len()).map(|row| row.iter().zip(x).map(|(a, b)| a * b).sum()).collect()
}

fn rms_norm(x: &[f32], w: &[f32], eps: f64) -> Vec<f32> {
    let ms = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    let inv = 1.0 / (ms + eps as f32).sqrt();
    x.iter().zip(w).map(|(v, g)| v * inv * g).collect()
}

/// HF `apply_rotary_pos_emb` on one head: rotate-half pairs `(i, i + hd/2)`.
fn rope(x: &mut [f32], pos: usize, theta: f64) {
    let half = x.len() / 2;
    for i in 0..half {
        let inv_freq = (1.0 / theta.powf(2.0 * i as f64 / x.len() as f64)) as f32;
        let angle = pos as f32 * inv_freq;
        let (sin, cos) = angle.sin_cos();
        let (a, b) = (x[i], x[i + half]);
        x[i] = a * cos - b * sin;
        x[i + half] = b * cos + a * sin;
    }
}

/// Logits at `positions` for the token sequence `ids`.
fn forward(m: &LoadedModel, ids: &[u32], positions: &[usize]) -> Vec<Vec<f32>> {
    let c: &ModelConfig = &m.config;
    let t = |n: String| &m.tensors[&n].data;
    let (d, hd) = (c.hidden_size, c.head_dim);
    let group = c.num_heads / c.num_kv_heads;
    let embed = t("model.embed_tokens.weight".into());
    let mut h: Vec<Vec<f32>> = ids.iter().map(|&i| embed[i as usize * d..(i as usize + 1) * d].to_vec()).collect();
    for l in 0..c.num_layers {
        let p = |s: &str| format!("model.layers.{l}.{s}.weight");
        let (mut qs, mut ks, mut vs) = (Vec::new(), Vec::new(), Vec::new());
        for (pos, x) in h.iter().enumerate() {
            let xn = rms_norm(x, t(p("input_layernorm")), c.rms_norm_eps);
            let mut q = matvec(t(p("self_attn.q_proj")), &xn);
            let mut k = matvec(t(p("self_attn.k_proj")), &xn);
            q.chunks_exact_mut(hd).for_each(|head| rope(head, pos, c.rope_theta));
            k.chunks_exact_mut(hd).for_each(|head| rope(head, pos, c.rope_theta));
            qs.push(q);
            ks.push(k);
            vs.push(matvec(t(p("self_attn.v_proj")), &xn));
        }
        for pos in 0..h.len() {
            let mut attn = vec![0f32; c.num_heads * hd];
            for head in 0..c.num_heads {
                let kv = head / group;
                let q = &qs[pos][head * hd..(head + 1) * hd];
                let scores: Vec<f32> = (0..=pos)
                    .map(|j| q.iter().zip(&ks[j][kv * hd..(kv + 1) * hd]).map(|(a, b)| a * b).sum::<f32>() / (hd as f32).sqrt())
                    .collect();
                let max = scores.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                let exps: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
                let sum: f32 = exps.iter().sum();
                for (j, e) in exps.iter().enumerate() {
                    for (o, v) in attn[head * hd..(head + 1) * hd].iter_mut().zip(&vs[j][kv * hd..(kv + 1) * hd]) {
                        *o += e / sum * v;
                    }
                }
            }
            let o = matvec(t(p("self_attn.o_proj")), &attn);
            h[pos].iter_mut().zip(&o).for_each(|(x, y)| *x += y);
            let xn = rms_norm(&h[pos], t(p("post_attention_layernorm")), c.rms_norm_eps);
            let gate = matvec(t(p("mlp.gate_proj")), &xn);
            let up = matvec(t(p("mlp.up_proj")), &xn);
            let act: Vec<f32> = gate.iter().zip(&up).map(|(g, u)| g / (1.0 + (-g).exp()) * u).collect();
            let down = matvec(t(p("mlp.down_proj")), &act);
            h[pos].iter_mut().zip(&down).for_each(|(x, y)| *x += y);
        }
    }
    let head = if c.tie_word_embeddings { embed } else { t("lm_head.weight".into()) };
    positions.iter().map(|&pos| matvec(head, &rms_norm(&h[pos], t("model.norm.weight".into()), c.rms_norm_eps))).collect()
}

#[test]
fn loaded_smollm2_reproduces_reference_top5_logits() {
    let reference: Value = serde_json::from_str(&std::fs::read_to_string(reference_file("smollm2-135m-gsm8k-base.json")).unwrap()).unwrap();
    let m = load_model(&smollm2_path()).unwrap();
    let tok = Tokenizer::for_model(&m).unwrap();
    // Example 1 (GSM8K test line 1), positions 0 and 30: 31 tokens of forward.
    let ex = &reference["examples"][1];
    assert_eq!(ex["test_index"], 1);
    let line = std::fs::read_to_string(gsm8k_dir().join("test.jsonl")).unwrap().lines().nth(1).unwrap().to_string();
    let v: Value = serde_json::from_str(&line).unwrap();
    let text = format!("Question: {}\nAnswer: {}", v["question"].as_str().unwrap(), v["answer"].as_str().unwrap());
    let ids = tok.encode(&text).unwrap();
    let checks: Vec<&Value> = ex["positions"].as_array().unwrap().iter().filter(|p| p["position"].as_u64().unwrap() <= 30).collect();
    assert_eq!(checks.len(), 2);
    let positions: Vec<usize> = checks.iter().map(|p| p["position"].as_u64().unwrap() as usize).collect();
    let logits = forward(&m, &ids[..31], &positions);
    for (check, logits) in checks.iter().zip(&logits) {
        let mut order: Vec<usize> = (0..logits.len()).collect();
        order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
        let want_ids: Vec<usize> = check["top5_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        assert_eq!(&order[..5], &want_ids[..], "top-5 ids at position {}", check["position"]);
        for (id, want) in want_ids.iter().zip(check["top5_logits"].as_array().unwrap()) {
            let want = want.as_f64().unwrap() as f32;
            assert!((logits[*id] - want).abs() < 1e-2, "position {}: logit of {id} = {}, reference {want}", check["position"], logits[*id]);
        }
    }
}
