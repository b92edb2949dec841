//! A real model's logits and losses against transformers' reference numbers
//! for a few examples (SmolLM2, Gemma 3): each file's own JSON layout is
//! read by its test into [`ReferenceExample`]s, checked here.
#![allow(dead_code)]

use burn::backend::NdArray;
use peftc::data::{Batch, Example};
use peftc::model::Llama;
use peftc::model::causal_lm::CausalLm;
use peftc::model::hook::NoAdapter;

use super::loss::token_nll;

type B = NdArray<f32>;

/// Token ids of a JSON array.
pub fn ids_of(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

/// One reference example: its tokens, the top-5 `(id, logit)` at some
/// positions, and its losses in bits over all predicted tokens and over
/// the completion.
pub struct ReferenceExample {
    pub example: Example,
    pub top5: Vec<(usize, Vec<(usize, f64)>)>,
    pub bits_all: f64,
    pub bits_completion: f64,
}

impl ReferenceExample {
    /// The `examples` of a reference file: `token_ids`, `prompt_tokens`,
    /// `loss_bits_all`, `loss_bits_completion`, and `positions`, each entry
    /// of which `top5` turns into `(position, [(id, logit); 5])` (the two
    /// reference files spell the top 5 differently).
    pub fn all_from_json(reference: &serde_json::Value, top5: impl Fn(&serde_json::Value) -> Vec<(usize, f64)>) -> Vec<ReferenceExample> {
        let num = |v: &serde_json::Value| v.as_f64().unwrap();
        reference["examples"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| ReferenceExample {
                example: Example { tokens: ids_of(&e["token_ids"]), prompt_len: e["prompt_tokens"].as_u64().unwrap() as usize },
                top5: e["positions"].as_array().unwrap().iter().map(|p| (p["position"].as_u64().unwrap() as usize, top5(p))).collect(),
                bits_all: num(&e["loss_bits_all"]),
                bits_completion: num(&e["loss_bits_completion"]),
            })
            .collect()
    }
}

/// All examples in one padded batch: the top-5 ids in order and their
/// logits within `logit_tol`, the losses within `bits_tol`.
pub fn check_reference(model: &Llama<B>, refs: &[ReferenceExample], logit_tol: f64, bits_tol: f64) {
    let dev = Default::default();
    let examples: Vec<&Example> = refs.iter().map(|r| &r.example).collect();
    let batch = Batch::<B>::new(&examples, 512, &dev);
    let logits = CausalLm::logits(model, batch.inputs.clone(), &NoAdapter);
    let [_, seq, vocab] = logits.dims();
    let nll = token_nll(logits.clone(), batch.targets.clone());
    let flat = logits.into_data().into_vec::<f32>().unwrap();
    for (b, r) in refs.iter().enumerate() {
        for (pos, top5) in &r.top5 {
            let row = &flat[(b * seq + pos) * vocab..(b * seq + pos + 1) * vocab];
            let mut order: Vec<usize> = (0..vocab).collect();
            order.sort_by(|&x, &y| row[y].total_cmp(&row[x]));
            assert_eq!(&order[..5], &top5.iter().map(|t| t.0).collect::<Vec<_>>()[..], "top-5 ids, example {b} position {pos}");
            for &(id, want) in top5 {
                let got = row[id] as f64;
                assert!((got - want).abs() < logit_tol, "logit of {id} at example {b} position {pos}: {got} vs {want}");
            }
        }
        let ln2 = std::f64::consts::LN_2;
        let mall = batch.mask_all.clone().slice([b..b + 1, 0..seq]);
        let mcomp = batch.mask_completion.clone().slice([b..b + 1, 0..seq]);
        let row = nll.clone().slice([b..b + 1, 0..seq]);
        let all = row.clone().mul(mall).sum().into_scalar() as f64 / r.example.num_predicted() as f64 / ln2;
        let comp = row.mul(mcomp).sum().into_scalar() as f64 / r.example.num_completion() as f64 / ln2;
        assert!((all - r.bits_all).abs() < bits_tol, "example {b} all-token loss {all} vs {}", r.bits_all);
        assert!((comp - r.bits_completion).abs() < bits_tol, "example {b} completion loss {comp} vs {}", r.bits_completion);
    }
}
