//! Fast unit tests of the Burn Llama on tiny random-weight models created here:
//! shapes, masks, RoPE, the adapter hook, and agreement with an independent
//! scalar (f64) reference forward.

use crate::support::tiny_lm::tiny_llama;
use std::cell::RefCell;

use burn::backend::{Autodiff, NdArray};
use burn::prelude::*;
use burn::tensor::TensorData as BurnData;
use peftc::lang::target::Target;
use peftc::model::hook::{LinearHook, NoAdapter};
use peftc::model::rope::Rope;
use peftc::model::{Llama, ModelError};
use peftc::pretrained::weights::{ModelConfig, TensorStore};

type B = NdArray<f32>;

fn dev() -> burn::tensor::Device<B> {
    Default::default()
}

fn tokens(rows: &[Vec<i64>]) -> (Tensor<B, 2, Int>, Tensor<B, 2, Bool>) {
    let seq = rows.iter().map(|r| r.len()).max().unwrap();
    let mut ids = vec![0i64; rows.len() * seq];
    let mut pad = vec![false; rows.len() * seq];
    for (b, r) in rows.iter().enumerate() {
        for (t, &id) in r.iter().enumerate() {
            ids[b * seq + t] = id;
            pad[b * seq + t] = true;
        }
    }
    (Tensor::from_data(BurnData::new(ids, [rows.len(), seq]), &dev()), Tensor::from_data(BurnData::new(pad, [rows.len(), seq]), &dev()))
}

fn to_vec<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().into_vec::<f32>().unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn logits_have_batch_seq_vocab_shape() {
    let model: Llama<B> = tiny_llama().init(&dev());
    let (ids, pad) = tokens(&[vec![1, 2, 3, 4, 5], vec![6, 7, 8, 9, 10]]);
    let logits = model.forward(ids, pad, &NoAdapter);
    assert_eq!(logits.dims(), [2, 5, 64]);
    assert!(to_vec(logits).iter().all(|x| x.is_finite()));
}

#[test]
fn padding_does_not_change_a_sequences_logits() {
    let model: Llama<B> = tiny_llama().init(&dev());
    let short = vec![3, 14, 15, 9];
    let (ids, pad) = tokens(std::slice::from_ref(&short));
    let alone = to_vec(model.forward(ids, pad, &NoAdapter));
    let (ids, pad) = tokens(&[vec![2, 7, 18, 28, 18, 28, 45, 9], short.clone()]);
    let batched = model.forward(ids, pad, &NoAdapter);
    let row = to_vec(batched.slice([1..2, 0..4, 0..64]));
    assert!(max_abs_diff(&alone, &row) < 1e-5, "padding changed logits by {}", max_abs_diff(&alone, &row));
}

#[test]
fn attention_is_causal() {
    let model: Llama<B> = tiny_llama().init(&dev());
    let (a, pa) = tokens(&[vec![5, 6, 7, 8, 9, 10]]);
    let (b, pb) = tokens(&[vec![5, 6, 7, 40, 41, 42]]);
    let la = model.forward(a, pa, &NoAdapter);
    let lb = model.forward(b, pb, &NoAdapter);
    let (pa, pb) = (to_vec(la.clone().slice([0..1, 0..3, 0..64])), to_vec(lb.clone().slice([0..1, 0..3, 0..64])));
    assert!(max_abs_diff(&pa, &pb) < 1e-6);
    // ...while later positions do see the changed tokens.
    let (qa, qb) = (to_vec(la.slice([0..1, 3..6, 0..64])), to_vec(lb.slice([0..1, 3..6, 0..64])));
    assert!(max_abs_diff(&qa, &qb) > 1e-3);
}

#[test]
fn rope_rotates_halves_as_hand_computed() {
    // head_dim 4, theta 10000 (inverse frequencies 1 and 0.01): pair i=0
    // (x[0], x[2]) turns by p·1, pair i=1 (x[1], x[3]) by p·0.01.
    let rope = Rope::<B>::new(&[1.0, 0.01], 8, &dev());
    let x: Tensor<B, 4> = Tensor::from_data(BurnData::new(vec![1.0f32, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0], [1, 1, 2, 4]), &dev());
    let out = to_vec(rope.forward(x));
    let (c0, s0, c1, s1) = (1f32.cos(), 1f32.sin(), 0.01f32.cos(), 0.01f32.sin());
    let want = [
        1.0,
        2.0,
        3.0,
        4.0, // position 0: identity
        1.0 * c0 - 3.0 * s0,
        2.0 * c1 - 4.0 * s1,
        3.0 * c0 + 1.0 * s0,
        4.0 * c1 + 2.0 * s1,
    ];
    assert!(max_abs_diff(&out, &want) < 1e-6, "{out:?} vs {want:?}");
}

/// Records every (layer, target) call and can scale one target's output.
struct SpyHook {
    calls: RefCell<Vec<(usize, Target)>>,
    scale: Option<(usize, Target, f32)>,
}

impl LinearHook<B> for SpyHook {
    fn linear(&self, layer: usize, target: Target, x: Tensor<B, 3>, w: &Tensor<B, 2>) -> Tensor<B, 3> {
        self.calls.borrow_mut().push((layer, target));
        let y = x.matmul(w.clone().unsqueeze::<3>());
        match self.scale {
            Some((l, t, s)) if l == layer && t == target => y.mul_scalar(s),
            _ => y,
        }
    }
}

#[test]
fn every_target_linear_goes_through_the_hook() {
    let model: Llama<B> = tiny_llama().init(&dev());
    let (ids, pad) = tokens(&[vec![1, 2, 3]]);
    let spy = SpyHook { calls: RefCell::new(vec![]), scale: None };
    let with_spy = to_vec(model.forward(ids.clone(), pad.clone(), &spy));
    let mut calls = spy.calls.into_inner();
    calls.sort();
    let mut want: Vec<(usize, Target)> = (0..2).flat_map(|l| Target::ALL.map(|t| (l, t))).collect();
    want.sort();
    assert_eq!(calls, want);
    // The spy computes x W exactly like NoAdapter; changing one call's output changes the logits.
    let base = to_vec(model.forward(ids.clone(), pad.clone(), &NoAdapter));
    assert!(max_abs_diff(&base, &with_spy) < 1e-6);
    let scaled = SpyHook { calls: RefCell::new(vec![]), scale: Some((1, Target::V, 0.0)) };
    let changed = to_vec(model.forward(ids, pad, &scaled));
    assert!(max_abs_diff(&base, &changed) > 1e-3);
}

#[test]
fn base_weight_is_the_hf_weight_transposed() {
    let cfg = tiny_llama().with_seed(3);
    let store = cfg.random_store();
    let model: Llama<B> = Llama::from_store(&cfg.model, &store, &dev()).unwrap();
    for t in [Target::K, Target::Down] {
        let hf = &store[&format!("model.layers.1.{}.weight", t.hf_module())];
        let (out, inp) = (hf.shape[0], hf.shape[1]);
        let w = model.base_weight(1, t);
        assert_eq!(w.dims(), [inp, out]);
        let w = to_vec(w);
        for o in 0..out {
            for i in 0..inp {
                assert_eq!(w[i * out + o], hf.data[o * inp + i]);
            }
        }
    }
}

#[test]
fn missing_or_misshapen_tensors_are_reported() {
    let cfg = tiny_llama();
    let mut store = cfg.random_store();
    store.remove("model.layers.1.mlp.up_proj.weight");
    let err = Llama::<B>::from_store(&cfg.model, &store, &dev()).unwrap_err();
    assert_eq!(err, ModelError::MissingTensor { name: "model.layers.1.mlp.up_proj.weight".into() });
    assert!(err.to_string().contains("model.layers.1.mlp.up_proj.weight"));

    let mut store = cfg.random_store();
    store.get_mut("model.norm.weight").unwrap().shape = vec![16, 2];
    let err = Llama::<B>::from_store(&cfg.model, &store, &dev()).unwrap_err();
    assert!(matches!(err, ModelError::ShapeMismatch { ref name, .. } if name == "model.norm.weight"), "{err}");

    let mut bad = cfg.model.clone();
    bad.num_kv_heads = 3;
    let err = Llama::<B>::from_store(&bad, &cfg.random_store(), &dev()).unwrap_err();
    assert!(matches!(err, ModelError::BadConfig { .. }), "{err}");
}

// ---------------------------------------------------------------------------
// An independent scalar forward (f64, plain loops, HF semantics) to compare against.

fn reference_forward(c: &ModelConfig, s: &TensorStore, ids: &[usize]) -> Vec<f64> {
    let (d, n, hd) = (c.hidden_size, ids.len(), c.head_dim);
    let w = |name: &str| s[name].data.iter().map(|&x| x as f64).collect::<Vec<f64>>();
    // y[o] = sum_i W[o][i] x[i]  (HF [out, in])
    let linear = |wt: &[f64], x: &[f64], out: usize| -> Vec<f64> {
        let inp = x.len();
        (0..out).map(|o| (0..inp).map(|i| wt[o * inp + i] * x[i]).sum()).collect()
    };
    let rms = |x: &[f64], g: &[f64]| -> Vec<f64> {
        let ms = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
        let r = 1.0 / (ms + c.rms_norm_eps).sqrt();
        x.iter().zip(g).map(|(v, g)| v * r * g).collect()
    };
    let rope = |v: &mut [f64], p: usize| {
        let half = hd / 2;
        for i in 0..half {
            let a = p as f64 * c.rope_theta.powf(-(2.0 * i as f64) / hd as f64);
            let (x1, x2) = (v[i], v[i + half]);
            v[i] = x1 * a.cos() - x2 * a.sin();
            v[i + half] = x2 * a.cos() + x1 * a.sin();
        }
    };
    let emb = w("model.embed_tokens.weight");
    let mut xs: Vec<Vec<f64>> = ids.iter().map(|&t| emb[t * d..(t + 1) * d].to_vec()).collect();
    for l in 0..c.num_layers {
        let p = |m: &str| format!("model.layers.{l}.{m}.weight");
        let (wq, wk, wv, wo) = (w(&p("self_attn.q_proj")), w(&p("self_attn.k_proj")), w(&p("self_attn.v_proj")), w(&p("self_attn.o_proj")));
        let hs: Vec<Vec<f64>> = xs.iter().map(|x| rms(x, &w(&p("input_layernorm")))).collect();
        let mut q: Vec<Vec<f64>> = hs.iter().map(|h| linear(&wq, h, c.num_heads * hd)).collect();
        let mut k: Vec<Vec<f64>> = hs.iter().map(|h| linear(&wk, h, c.num_kv_heads * hd)).collect();
        let v: Vec<Vec<f64>> = hs.iter().map(|h| linear(&wv, h, c.num_kv_heads * hd)).collect();
        for t in 0..n {
            for h in 0..c.num_heads {
                rope(&mut q[t][h * hd..(h + 1) * hd], t);
            }
            for h in 0..c.num_kv_heads {
                rope(&mut k[t][h * hd..(h + 1) * hd], t);
            }
        }
        let group = c.num_heads / c.num_kv_heads;
        for t in 0..n {
            let mut ctx = vec![0.0; c.num_heads * hd];
            for h in 0..c.num_heads {
                let kv = h / group;
                let scores: Vec<f64> =
                    (0..=t).map(|j| (0..hd).map(|e| q[t][h * hd + e] * k[j][kv * hd + e]).sum::<f64>() / (hd as f64).sqrt()).collect();
                let m = scores.iter().cloned().fold(f64::MIN, f64::max);
                let z: f64 = scores.iter().map(|s| (s - m).exp()).sum();
                for (j, s) in scores.iter().enumerate() {
                    for e in 0..hd {
                        ctx[h * hd + e] += (s - m).exp() / z * v[j][kv * hd + e];
                    }
                }
            }
            let o = linear(&wo, &ctx, d);
            for e in 0..d {
                xs[t][e] += o[e];
            }
        }
        let (wg, wu, wd) = (w(&p("mlp.gate_proj")), w(&p("mlp.up_proj")), w(&p("mlp.down_proj")));
        for x in xs.iter_mut() {
            let h = rms(x, &w(&p("post_attention_layernorm")));
            let g = linear(&wg, &h, c.intermediate_size);
            let u = linear(&wu, &h, c.intermediate_size);
            let a: Vec<f64> = g.iter().zip(&u).map(|(g, u)| g / (1.0 + (-g).exp()) * u).collect();
            let dn = linear(&wd, &a, d);
            for e in 0..d {
                x[e] += dn[e];
            }
        }
    }
    let head = if c.tie_word_embeddings { emb } else { w("lm_head.weight") };
    xs.iter().flat_map(|x| linear(&head, &rms(x, &w("model.norm.weight")), c.vocab_size)).collect()
}

#[test]
fn matches_an_independent_scalar_forward() {
    for (tied, seed) in [(true, 11u64), (false, 12)] {
        let mut cfg = tiny_llama().with_seed(seed);
        cfg.model.tie_word_embeddings = tied;
        let store = cfg.random_store();
        let model: Llama<B> = Llama::from_store(&cfg.model, &store, &dev()).unwrap();
        let ids = [1usize, 17, 33, 2, 60, 5, 5];
        let (t, p) = tokens(&[ids.iter().map(|&i| i as i64).collect()]);
        let got = to_vec(model.forward(t, p, &NoAdapter));
        let want: Vec<f32> = reference_forward(&cfg.model, &store, &ids).into_iter().map(|x| x as f32).collect();
        let scale = want.iter().fold(0f32, |m, x| m.max(x.abs()));
        let diff = max_abs_diff(&got, &want);
        assert!(diff < 1e-4 * scale.max(1.0), "tied={tied}: max diff {diff} (logit scale {scale})");
    }
}

// ---------------------------------------------------------------------------
// Training path: on Autodiff, gradients reach the hook's parameters, not the frozen base.

#[test]
fn gradients_flow_to_hook_parameters_on_autodiff() {
    type A = Autodiff<B>;
    struct ScaleHook {
        s: Tensor<A, 1>,
    }
    impl LinearHook<A> for ScaleHook {
        fn linear(&self, _l: usize, t: Target, x: Tensor<A, 3>, w: &Tensor<A, 2>) -> Tensor<A, 3> {
            let y = x.matmul(w.clone().unsqueeze::<3>());
            if t == Target::Up { y.mul(self.s.clone().unsqueeze::<3>()) } else { y }
        }
    }
    let model: Llama<A> = tiny_llama().init(&dev());
    let hook = ScaleHook { s: Tensor::<A, 1>::ones([1], &dev()).require_grad() };
    let ids: Tensor<A, 2, Int> = Tensor::from_data(BurnData::new(vec![1i64, 2, 3, 4], [1, 4]), &dev());
    let pad: Tensor<A, 2, Bool> = Tensor::from_data(BurnData::new(vec![true; 4], [1, 4]), &dev());
    let targets: Tensor<A, 2, Int> = Tensor::from_data(BurnData::new(vec![2i64, 3, 4, 5], [1, 4]), &dev());
    let logits = model.forward(ids, pad, &hook);
    let loss = crate::support::loss::mean_nll(logits, targets, Tensor::ones([1, 4], &dev()), 4);
    let grads = loss.backward();
    let g = hook.s.grad(&grads).expect("hook parameter has a gradient");
    assert!(g.into_scalar().abs() > 0.0);
    assert!(model.base_weight(0, Target::Up).grad(&grads).is_none(), "frozen base weights take no gradient");
    // Evaluation on the inner backend gives the same logits.
    let inner = burn::module::AutodiffModule::valid(&model);
    let (t, p) = tokens(&[vec![1, 2, 3, 4]]);
    assert_eq!(inner.forward(t, p, &NoAdapter).dims(), [1, 4, 64]);
}
