//! Every scheme of `specs/schemes.peft`, checked by the language for the tiny
//! test model's shapes and lowered: its stored parameters match the checker's
//! exact count, it starts as the identity change, and (when mergeable) the
//! merged weights reproduce the adapted logits within 1e-4.

use crate::support::lower as lower_common;

use burn::backend::NdArray;
use lower_common::*;
use peftc::lang::ir::ModelShapes;
use peftc::lower::{Adapter, from_lang};
use peftc::model::causal_lm::CausalLm;
use peftc::model::hook::NoAdapter;

type F32 = NdArray<f32>;

fn shapes() -> ModelShapes {
    // TinyLm: hidden 8, inter 12, 3 layers, one head of width 8, vocab 23.
    ModelShapes {
        name: "tiny".into(),
        num_layers: 3,
        hidden_size: 8,
        intermediate_size: 12,
        num_heads: 1,
        num_kv_heads: 1,
        head_dim: 8,
        vocab_size: 23,
    }
}

#[test]
fn every_scheme_in_specs_lowers_starts_at_identity_and_merges() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/schemes.peft");
    let opts = peftc::lang::Options { model: Some(shapes()) };
    let (program, diags) = peftc::lang::check(&[dir], &opts);
    let program = program.unwrap_or_else(|| panic!("specs/schemes.peft does not check:\n{}", diags.render(false)));
    assert!(program.schemes.len() >= 12, "only {} schemes", program.schemes.len());
    let dev = Default::default();
    let model = tiny::<F32>(&dev);
    let base = model.logits(tokens(&dev), &NoAdapter);
    let mut merged_count = 0;
    for inst in &program.schemes {
        let p = from_lang::program(inst).unwrap_or_else(|e| panic!("{}: {e}", inst.name));
        let sites = from_lang::sites(inst);
        assert_eq!(sites.len(), 21, "{}: all 7 targets × 3 layers", inst.name);
        let mut a =
            Adapter::<F32>::build(&p, &sites, &|l, t| model.base_weight(l, t), 0, &dev).unwrap_or_else(|e| panic!("{}: {e}", inst.name));
        assert_eq!(a.num_trainable(), inst.trainable_params, "{}: stored vs counted parameters", inst.name);

        let start = model.logits(tokens(&dev), &a);
        let d0 = (start - base.clone()).abs().max().into_scalar();
        assert!(d0 < 1e-4, "{}: logits moved by {d0} at initialisation", inst.name);

        if !p.mergeable {
            assert!(a.merged_weight(0, peftc::lang::target::Target::Q, &model.base_weight(0, peftc::lang::target::Target::Q)).is_err());
            continue;
        }
        // Random factors large enough to move the logits visibly.
        let gamma = inst.params.iter().find(|a| a.name == "gamma").map(|a| a.value).unwrap_or(1.0);
        let mut std = 0.3 / gamma;
        let mut adapted = base.clone();
        for _ in 0..12 {
            randomize(&mut a, std, 4, &dev);
            adapted = model.logits(tokens(&dev), &a);
            if (adapted.clone() - base.clone()).abs().max().into_scalar() > 1e-2 {
                break;
            }
            std *= 3.0;
        }
        let moved = (adapted.clone() - base.clone()).abs().max().into_scalar();
        assert!(moved > 1e-2, "{}: random adapter moves logits by only {moved}", inst.name);
        let merged = model.with_weights(|l, t, w| a.merged_weight(l, t, w).expect("merge"));
        let out = merged.logits(tokens(&dev), &NoAdapter);
        let diff = (out - adapted).abs().max().into_scalar();
        assert!(diff < 1e-4, "{}: merged logits differ by {diff} (adapter moved them by {moved})", inst.name);
        merged_count += 1;
    }
    assert!(merged_count >= 10, "only {merged_count} mergeable schemes checked");
}
