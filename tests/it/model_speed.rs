//! Throughput benchmarks of the Burn Llama at SmolLM2-135M size (random
//! weights), not timed assertions. Run:
//! `cargo test --test model_speed -- --ignored --nocapture`

use std::time::Instant;

use burn::backend::{Autodiff, NdArray};
use burn::prelude::*;
use burn::tensor::TensorData as BurnData;
use peftc::lang::target::Target;
use peftc::model::hook::{LinearHook, NoAdapter};
use peftc::model::{Llama, LlamaConfig};
use peftc::pretrained::weights::ModelConfig;

type B = NdArray<f32>;

fn smollm2_config() -> LlamaConfig {
    let mut c = LlamaConfig::new(ModelConfig {
        architecture: "llama".into(),
        vocab_size: 49152,
        hidden_size: 576,
        intermediate_size: 1536,
        num_layers: 30,
        num_heads: 9,
        num_kv_heads: 3,
        head_dim: 64,
        rope_theta: 100_000.0,
        rope_scaling: Default::default(),
        rms_norm_eps: 1e-5,
        max_position_embeddings: 8192,
        tie_word_embeddings: true,
        bos_token_id: Some(1),
        eos_token_id: 2,
        arch: Default::default(),
        dtype: Default::default(),
    });
    c.init_std = 0.02;
    c
}

fn batch<BB: Backend>(b: usize, s: usize, dev: &BB::Device) -> (Tensor<BB, 2, Int>, Tensor<BB, 2, Bool>) {
    let ids: Vec<i64> = (0..b * s).map(|i| ((i * 7919) % 49152) as i64).collect();
    (Tensor::from_data(BurnData::new(ids, [b, s]), dev), Tensor::from_data(BurnData::new(vec![true; b * s], [b, s]), dev))
}

#[test]
#[ignore = "benchmark: SmolLM2-size forward throughput (slow)"]
fn slow_forward_throughput_smollm2_size() {
    let dev = Default::default();
    let t = Instant::now();
    let model: Llama<B> = smollm2_config().init(&dev);
    println!("init random 135M model: {:.1}s", t.elapsed().as_secs_f64());
    for (b, s) in [(8usize, 256usize), (4, 128)] {
        let (ids, pad) = batch::<B>(b, s, &dev);
        let _ = model.forward_hidden(ids.clone(), pad.clone(), &NoAdapter).into_data();
        let t = Instant::now();
        let reps = 2;
        for _ in 0..reps {
            let _ = model.forward(ids.clone(), pad.clone(), &NoAdapter).into_data();
        }
        let secs = t.elapsed().as_secs_f64() / reps as f64;
        println!("forward {b}x{s}: {secs:.2}s/batch, {:.0} tokens/s", (b * s) as f64 / secs);
    }
}

/// A LoRA-like hook (r = 8 on every target) to time training-style forward + backward.
struct Lora<BB: Backend> {
    a: Vec<Tensor<BB, 2>>,
    b: Vec<Tensor<BB, 2>>,
}

impl<BB: Backend> LinearHook<BB> for Lora<BB> {
    fn linear(&self, layer: usize, target: Target, x: Tensor<BB, 3>, w: &Tensor<BB, 2>) -> Tensor<BB, 3> {
        let i = layer * 7 + target as usize;
        let base = x.clone().matmul(w.clone().unsqueeze::<3>());
        base.add(x.matmul(self.a[i].clone().unsqueeze::<3>()).matmul(self.b[i].clone().unsqueeze::<3>()))
    }
}

#[test]
#[ignore = "benchmark: SmolLM2-size LoRA forward+backward throughput (slow)"]
fn slow_lora_train_step_throughput_smollm2_size() {
    type A = Autodiff<B>;
    let dev = Default::default();
    let cfg = smollm2_config();
    let model: Llama<A> = cfg.init(&dev);
    let c = &cfg.model;
    let (mut a, mut bb) = (vec![], vec![]);
    for _ in 0..c.num_layers {
        for t in Target::ALL {
            let (i, o) = t.shape(c.hidden_size, c.intermediate_size, c.num_heads, c.num_kv_heads, c.head_dim);
            a.push(Tensor::<A, 2>::random([i, 8], burn::tensor::Distribution::Normal(0.0, 0.02), &dev).require_grad());
            bb.push(Tensor::<A, 2>::zeros([8, o], &dev).require_grad());
        }
    }
    let hook = Lora { a, b: bb };
    for (b, s) in [(8usize, 256usize)] {
        let (ids, pad) = batch::<A>(b, s, &dev);
        let targets = ids.clone();
        let mask = Tensor::<A, 2>::ones([b, s], &dev);
        let t = Instant::now();
        let reps = 2;
        for _ in 0..reps {
            let logits = model.forward(ids.clone(), pad.clone(), &hook);
            let loss = crate::support::loss::mean_nll(logits, targets.clone(), mask.clone(), b * s);
            let grads = loss.backward();
            let _ = hook.b[0].grad(&grads).unwrap().into_data();
        }
        let secs = t.elapsed().as_secs_f64() / reps as f64;
        println!("LoRA fwd+bwd {b}x{s}: {secs:.2}s/step, {:.0} tokens/s", (b * s) as f64 / secs);
    }
}
