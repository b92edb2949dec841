//! Exact trainable-parameter counts on the SmolLM2-135M preset, against
//! hand counts and independent formulas; IR properties the trainer relies on.

use std::path::PathBuf;

use peftc::lang::target::Target;
use peftc::lang::{self, Options, ir::*};

fn program() -> Program {
    lang::load(&[PathBuf::from("specs/schemes.peft")]).unwrap_or_else(|d| panic!("{}", d.render(false)))
}

fn count(p: &Program, name: &str) -> u64 {
    p.schemes.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no scheme {name}")).trainable_params
}

/// Σ over the 7 targets of f(in, out).
fn per_target(f: impl Fn(u64, u64) -> u64) -> u64 {
    let s = lang::preset::preset("smollm2-135m").unwrap();
    Target::ALL
        .iter()
        .map(|&t| {
            let (i, o) = s.target_shape(t);
            f(i as u64, o as u64)
        })
        .sum()
}

#[test]
fn hand_counts_from_the_issue() {
    let p = program();
    // LoRA r 8 on q,k,v,o,gate,up,down of 30 layers.
    assert_eq!(count(&p, "lora_gamma"), 2_442_240);
    assert_eq!(count(&p, "peft_lora"), 2_442_240);
    // Tied-LoRA r 16: A, B tied; v [r] and u [out] per layer.
    assert_eq!(count(&p, "tied_lora"), 321_696);
}

#[test]
fn counts_match_independent_formulas() {
    let p = program();
    let l = 30;
    assert_eq!(count(&p, "normed_lora"), per_target(|i, o| l * 8 * (i + o)));
    assert_eq!(count(&p, "tied_lora_p"), per_target(|i, o| 16 * (i + o) + l * (i + 16 + o)));
    assert_eq!(count(&p, "tied_lora_extra"), per_target(|i, o| 16 * i + 16 * o + l * 16 * 16));
    // T [a, b, l] tied + m [l] per layer, as the seed stores them.
    assert_eq!(count(&p, "tensor_embedding"), per_target(|i, o| 16 * i + 16 * o + 8 * 16 * 16 + l * 8));
    // L_A [in, r, k_a], L_B [r, out, k_b] tied; w_A, w_B per layer.
    assert_eq!(count(&p, "partially_tied_lora"), per_target(|i, o| i * 8 * 4 + 8 * o * 4 + l * (4 + 4)));
    // DoRA: LoRA + magnitude [out] per layer; Simple DoRA's W0 is frozen.
    assert_eq!(count(&p, "dora"), per_target(|i, o| l * (8 * (i + o) + o)));
    assert_eq!(count(&p, "simple_dora"), count(&p, "dora"));
}

#[test]
fn other_presets_scale() {
    let shapes = lang::preset::preset("llama-3.1-8b").unwrap();
    let (p, d) =
        lang::check(&[PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/specs/schemes.peft"))], &Options { model: Some(shapes) });
    let p = p.unwrap_or_else(|| panic!("{}", d.render(false)));
    // LoRA r 8 on all 7 modules of Llama-3.1-8B: 20,971,520 (the well-known PEFT count).
    assert_eq!(count(&p, "peft_lora"), 20_971_520);
}

#[test]
fn lora_contracts_x_first_and_merges() {
    let p = program();
    let s = p.schemes.iter().find(|s| s.name == "lora_gamma").unwrap();
    let Output::Delta(e) = &s.output else { panic!("delta scheme") };
    // scale * ((x @ A) @ B): never an [in, out] product per token.
    let ExprKind::Binary { op: BinOp::Mul, lhs, rhs } = &e.kind else { panic!("{e:?}") };
    assert!(matches!(lhs.kind, ExprKind::Num(v) if (v - 3.0 / 8f64.sqrt()).abs() < 1e-12));
    let ExprKind::MatMul { lhs: xa, rhs: b, contract } = &rhs.kind else { panic!() };
    assert_eq!(contract, "r");
    assert_eq!(b.kind, ExprKind::Tensor("B".into()));
    assert!(matches!(&xa.kind, ExprKind::MatMul { lhs, contract, .. } if lhs.kind == ExprKind::X && contract == "in"));
    assert_eq!(e.dims, vec!["tokens".to_string(), "out".to_string()]);
    assert!(s.mergeability.linear && s.mergeability.adds_base);
    // q: 2·576·8 + 2·8·576 (two contractions) + 576 (scale) per token.
    let q = s.targets.iter().find(|t| t.target == Target::Q).unwrap();
    assert_eq!(q.flops_per_token, (2 * 576 * 8 + 2 * 8 * 576 + 576) as f64);
}

#[test]
fn dora_is_mergeable_y_scheme_and_simple_dora_folds() {
    let p = program();
    let dora = p.schemes.iter().find(|s| s.name == "dora").unwrap();
    assert!(matches!(dora.output, Output::Y(_)));
    assert!(dora.mergeability.linear && !dora.mergeability.adds_base);
    assert!(!dora.lets[0].constant, "V depends on A and B");
    let sd = p.schemes.iter().find(|s| s.name == "simple_dora").unwrap();
    assert!(sd.lets.iter().all(|l| l.constant), "s depends only on W");
    let w0 = sd.tensors.iter().find(|t| t.name == "W0").unwrap();
    assert!(!w0.trainable);
    assert!(matches!(&w0.init, TensorInit::Plain(Init::Expr(_))));
}

#[test]
fn experiment_runs_sweep_with_stable_names() {
    let p = lang::load(&[PathBuf::from("specs/full/full.peft")]).unwrap_or_else(|d| panic!("{}", d.render(false)));
    let e = &p.experiments[0];
    let names: Vec<&str> = e.runs.iter().map(|r| r.name.as_str()).collect();
    for n in ["lora_gamma-gamma=1", "lora_gamma-gamma=32", "lora_gamma-gamma=750", "peft_lora", "rslora"] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    let r = e.runs.iter().find(|r| r.name == "lora_gamma-gamma=32").unwrap();
    assert_eq!(r.swept, vec!["gamma".to_string()]);
    assert_eq!(r.args.iter().find(|a| a.name == "gamma").unwrap().value, 32.0);
    assert!(matches!(&e.model, ModelSource::Gguf(p) if p.is_absolute() && p.ends_with("models/SmolLM2-135M-Instruct.Q4_1.gguf")));
    assert!(e.data.dir.is_absolute() && e.data.dir.ends_with("data/gsm8k"));
    assert_eq!(e.train.optimizer.weight_decay, 0.0);
    let peft = e.runs.iter().find(|r| r.name == "peft_lora").unwrap();
    assert_eq!((peft.train.optimizer.lr, peft.train.optimizer.kind), (1e-3, OptimizerKind::AdamW));
    assert_eq!(peft.instance.trainable_params, 2_442_240);
    assert_eq!((e.train.epochs, e.train.batch, e.data.max_len), (3, 16, 512));
}

#[test]
fn overrides_and_groups_resolve() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/lang/ok_experiment.peft");
    let p = lang::load(&[PathBuf::from(dir)]).unwrap_or_else(|d| panic!("{}", d.render(false)));
    let e = &p.experiments[0];
    let fast: Vec<&Run> = e.runs.iter().filter(|r| r.name.starts_with("lora_fast")).collect();
    assert_eq!(fast.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["lora_fast-lr=0.001", "lora_fast-lr=0.003"]);
    assert_eq!(fast[1].train.optimizer.lr, 3e-3);
    assert_eq!(fast[1].train.schedule, Schedule { kind: ScheduleKind::Linear, warmup: Warmup::Steps(5) });
    assert_eq!(e.train.optimizer.kind, OptimizerKind::Adam);
    // qkv_shared_lora: one A for q+k+v and one for gate+up (gate/up only on 10 layers).
    let shared = e.runs.iter().find(|r| r.scheme == "qkv_shared_lora").unwrap();
    let a = shared.instance.tensors.iter().find(|t| t.name == "A").unwrap();
    assert_eq!(a.groups, vec![vec![Target::Q, Target::K, Target::V], vec![Target::Gate, Target::Up]]);
    assert_eq!(shared.instance.trainable_params, 576 * 8 + 576 * 8 + 30 * 8 * (576 + 192 + 192) + 10 * 8 * (1536 + 1536));
}

#[test]
fn no_panic_on_truncated_or_mutated_fixtures() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/lang");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "peft") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for cut in (0..text.len()).step_by(5).filter(|&i| text.is_char_boundary(i)) {
            let _ = lang::check_text("t.peft", &text[..cut], &Options::default());
            let mutated = format!("{}){}", &text[..cut], &text[cut..]);
            let _ = lang::check_text("t.peft", &mutated, &Options::default());
            n += 2;
        }
    }
    assert!(n > 1000);
}

#[test]
fn gguf_shapes_agree_with_the_preset() {
    let path = std::env::var_os("PEFTC_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/models/SmolLM2-135M-Instruct.Q4_1.gguf")));
    assert!(path.exists(), "model file {} missing: run scripts/setup.sh (or set PEFTC_MODEL)", path.display());
    let read = lang::preset::read_gguf_shapes(&path).expect("reads the GGUF metadata");
    let preset = lang::preset::preset("smollm2-135m").unwrap();
    assert_eq!(ModelShapes { name: preset.name.clone(), ..read }, preset);
}

/// `peftc params` for HF-PEFT LoRA r 8 on all seven projections equals HF
/// PEFT's trainable count on the same model config, for every preset. The
/// numbers come from `scripts/peft-param-counts.py` (transformers 5.24 +
/// peft 0.21.2, the configs on the meta device), run once by hand.
#[test]
fn presets_count_like_hf_peft() {
    let hf_peft: [(&str, u64); 8] = [
        ("smollm2-135m", 2442240),
        ("llama-3.1-8b", 20971520),
        ("llama-3.2-1b", 5636096),
        ("gemma-2b", 9805824),
        ("gemma-2-2b", 10383360),
        ("gemma-3-270m", 1898496),
        ("qwen2.5-0.5b", 4399104),
        ("mistral-7b", 20971520),
    ];
    assert_eq!(hf_peft.map(|p| p.0), lang::preset::PRESETS, "every preset is checked");
    for (name, want) in hf_peft {
        let opts = Options { model: lang::preset::preset(name) };
        let (p, d) = lang::check(&[PathBuf::from("specs/schemes.peft")], &opts);
        let p = p.unwrap_or_else(|| panic!("{name}: {}", d.render(false)));
        assert_eq!(count(&p, "peft_lora"), want, "{name}");
    }
}
