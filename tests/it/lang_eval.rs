//! The merged weight the checker derives is exact: for every scheme in
//! specs/, on small random tensors, `x @ W'` equals the adapted layer's output
//! (evaluated through the IR with its chosen contraction order).

use std::collections::BTreeMap;
use std::path::PathBuf;

use peftc::lang::interpret::{self, Env, NamedArray};
use peftc::lang::ir::{ModelShapes, TOKENS};
use peftc::lang::{self, Options};

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }
}

fn tiny() -> ModelShapes {
    ModelShapes {
        name: "tiny".into(),
        num_layers: 30,
        hidden_size: 6,
        intermediate_size: 10,
        num_heads: 2,
        num_kv_heads: 1,
        head_dim: 3,
        vocab_size: 10,
    }
}

#[test]
fn merged_weight_reproduces_the_output_for_every_scheme() {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/specs/schemes.peft"));
    let (p, d) = lang::check(&[path], &Options { model: Some(tiny()) });
    let p = p.unwrap_or_else(|| panic!("{}", d.render(false)));
    let mut rng = Lcg(42);
    let mut checked = 0;
    for inst in &p.schemes {
        assert!(inst.mergeability.linear, "{} should be mergeable", inst.name);
        for t in &inst.targets {
            let mut sizes = t.sizes.clone();
            sizes.insert(TOKENS.into(), 3);
            let tensors: BTreeMap<String, NamedArray> =
                inst.tensors.iter().map(|d| (d.name.clone(), NamedArray::from_fn(&d.dims, &sizes, |_| rng.next()))).collect();
            let w = NamedArray::from_fn(&["in".into(), "out".into()], &sizes, |_| rng.next());
            let x = NamedArray::from_fn(&[TOKENS.into(), "in".into()], &sizes, |_| rng.next());

            let mut env = Env { sizes: &sizes, x: &x, w: &w, tensors: &tensors, lets: BTreeMap::new() };
            interpret::eval_lets(inst, &mut env);
            let y = interpret::forward(inst, &env);

            // The merged weight: x := I, so `tokens` has size `in`.
            let mut msizes = sizes.clone();
            msizes.insert(TOKENS.into(), sizes["in"]);
            let mut menv = Env { sizes: &msizes, x: &x, w: &w, tensors: &tensors, lets: BTreeMap::new() };
            interpret::eval_lets(inst, &mut menv);
            let wm = interpret::merged_weight(inst, &menv).expect("merged weight");
            let wm = NamedArray { dims: vec!["in".into(), "out".into()], ..wm };
            let y2 = interpret::matmul(&x, &wm, "in", &sizes).permuted(&y.dims);

            let scale = y.data.iter().fold(1.0f64, |a, v| a.max(v.abs()));
            for (a, b) in y.data.iter().zip(&y2.data) {
                assert!((a - b).abs() <= 1e-9 * scale, "{} on {}: {a} vs {b}", inst.name, t.target);
            }
            checked += 1;
        }
    }
    assert_eq!(checked, p.schemes.len() * 7);
}

#[test]
fn lora_output_matches_a_hand_computation() {
    let src = "scheme l(r = 2, s = 0.5) { A : [in, r] per_layer init zeros  B : [r, out] per_layer init zeros  delta = s * x @ A @ B }";
    let (p, d) = lang::check_text("l.peft", src, &Options { model: Some(tiny()) });
    let p = p.unwrap_or_else(|| panic!("{}", d.render(false)));
    let inst = &p.schemes[0];
    let t = inst.targets.iter().find(|t| t.target == peftc::lang::target::Target::K).unwrap(); // 6 → 3
    let mut sizes = t.sizes.clone();
    sizes.insert(TOKENS.into(), 1);
    let x = NamedArray::from_fn(&[TOKENS.into(), "in".into()], &sizes, |i| i as f64); // [0..6]
    let w = NamedArray::from_fn(&["in".into(), "out".into()], &sizes, |_| 0.0);
    let a = NamedArray::from_fn(&["in".into(), "r".into()], &sizes, |i| if i % 2 == 0 { 1.0 } else { 0.0 }); // column 0 ones
    let b = NamedArray::from_fn(&["r".into(), "out".into()], &sizes, |i| (i + 1) as f64); // [[1,2,3],[4,5,6]]
    let tensors = BTreeMap::from([("A".to_string(), a), ("B".to_string(), b)]);
    let env = Env { sizes: &sizes, x: &x, w: &w, tensors: &tensors, lets: BTreeMap::new() };
    let y = interpret::forward(inst, &env);
    // x A = [15, 0]; (x A) B = [15, 30, 45]; times 0.5.
    assert_eq!(y.data, vec![7.5, 15.0, 22.5]);
}

#[test]
fn the_checkpoint_setting_reaches_the_runs_and_does_not_change_their_ids() {
    let spec = |setting: &str| {
        format!(
            r#"scheme lora(r = 8) {{
  A : [in, r]  per_layer init normal(0, 1)
  B : [r, out] per_layer init zeros
  delta = x @ A @ B
}}
experiment e {{
  model = preset("smollm2-135m")
  data = gsm8k("data", train: 8, test: 8)
  targets = [q]
  train {{ {setting} }}
  run lora
}}
"#
        )
    };
    let run = |setting: &str| {
        let (p, d) = peftc::lang::check_text("t.peft", &spec(setting), &Default::default());
        assert!(!d.has_errors(), "{}", d.render(false));
        p.unwrap().experiments[0].runs[0].clone()
    };
    let default = run("seed: 0");
    assert_eq!(default.train.checkpoint, peftc::lang::ir::CheckpointEvery { steps: Some(500), minutes: Some(10.0) });
    let set = run("checkpoint: every(steps: 5)");
    assert_eq!(set.train.checkpoint, peftc::lang::ir::CheckpointEvery { steps: Some(5), minutes: None });
    assert_eq!(run("checkpoint: every(minutes: 2.5)").train.checkpoint.minutes, Some(2.5));
    // The trainer's settings, which the run id hashes, are the same.
    let (p, _) = peftc::lang::check_text("t.peft", &spec("seed: 0"), &Default::default());
    let data = p.unwrap().experiments[0].data.clone();
    let cfg = |r: &peftc::lang::ir::Run| serde_json::to_string(&peftc::train::session::train_config(r, &data, 8)).unwrap();
    assert_eq!(cfg(&default), cfg(&set));
}
