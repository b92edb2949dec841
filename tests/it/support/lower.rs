//! Hand-built lowering programs for the seed schemes (small sizes for the
//! tiny test model), written straight from `parametrizations.md`, and helpers.
#![allow(dead_code)]

use std::collections::BTreeMap;

use peftc::lang::target::Target;
use peftc::lower::program::*;
use peftc::lower::{Adapter, Site};
use peftc::model::causal_lm::CausalLm;

use super::TinyLm;

use burn::prelude::*;

fn decl(name: &str, dims: &[&str], tying: Tying, init: Init) -> TensorDecl {
    TensorDecl {
        name: name.into(),
        dims: dims.iter().map(|d| d.to_string()).collect(),
        tying,
        across: vec![],
        init,
        mix_init: None,
        frozen: false,
    }
}

fn normal(gamma: f64) -> Init {
    Init::Normal { mean: 0.0, std: 1.0 / gamma }
}

fn sc(v: f64, e: Expr) -> Expr {
    mul(num(v), e)
}

fn dims(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

fn prog(scheme: &str, d: &[(&str, usize)], tensors: Vec<TensorDecl>, lets: Vec<(&str, Expr)>, output: Output, mergeable: bool) -> Program {
    Program {
        scheme: scheme.into(),
        dims: dims(d),
        tensors,
        lets: lets.into_iter().map(|(n, e)| (n.to_string(), e)).collect(),
        output,
        mergeable,
    }
}

pub fn lora_gamma(r: usize, alpha: f64, gamma: f64) -> Program {
    prog(
        "lora_gamma",
        &[("r", r)],
        vec![decl("A", &["in", "r"], Tying::PerLayer, normal(gamma)), decl("B", &["r", "out"], Tying::PerLayer, Init::Zeros)],
        vec![],
        Output::Delta(sc(gamma * alpha / (r as f64).sqrt(), mm(mm(x(), t("A")), t("B")))),
        true,
    )
}

pub fn hf_lora(r: usize, alpha: f64) -> Program {
    prog(
        "hf_lora",
        &[("r", r)],
        vec![
            decl("A", &["in", "r"], Tying::PerLayer, Init::KaimingUniform { a: 5f64.sqrt() }),
            decl("B", &["r", "out"], Tying::PerLayer, Init::Zeros),
        ],
        vec![],
        Output::Delta(sc(alpha / r as f64, mm(mm(x(), t("A")), t("B")))),
        true,
    )
}

pub fn normed_lora(r: usize, alpha: f64, gamma: f64) -> Program {
    let mut p = lora_gamma(r, alpha, gamma);
    p.scheme = "normed_lora".into();
    p.output = Output::Delta(mul(div(mul(num(gamma * alpha), rms(w())), num((r as f64).sqrt())), mm(mm(x(), t("A")), t("B"))));
    p
}

pub fn strong_gamma(r: usize, alpha: f64, gamma: f64) -> Program {
    let mut p = lora_gamma(r, alpha, gamma);
    p.scheme = "strong_gamma_lora".into();
    let factor = Expr::Detach(Box::new(Expr::Min(Box::new(num(gamma)), Box::new(div(num(1.0), rms(t("B")))))));
    p.output = Output::Delta(mul(mul(factor, num(alpha / (r as f64).sqrt())), mm(mm(x(), t("A")), t("B"))));
    p
}

pub fn tied_lora(r: usize, alpha: f64, gamma: f64) -> Program {
    let scale = div(mul(num(gamma * gamma * alpha), rms(w())), num((r as f64).sqrt()));
    prog(
        "tied_lora",
        &[("r", r)],
        vec![
            decl("A", &["in", "r"], Tying::Tied, normal(gamma)),
            decl("B", &["r", "out"], Tying::Tied, Init::Zeros),
            decl("v", &["r"], Tying::PerLayer, normal(gamma)),
            decl("u", &["out"], Tying::PerLayer, Init::Ones),
        ],
        vec![],
        Output::Delta(mul(scale, mul(mm(mul(mm(x(), t("A")), t("v")), t("B")), t("u")))),
        true,
    )
}

pub fn tied_lora_extra(a: usize, b: usize, alpha: f64, gamma: f64) -> Program {
    let scale = div(mul(num(gamma * gamma * alpha), rms(w())), num(((a * b) as f64).sqrt()));
    prog(
        "tied_lora_extra",
        &[("a", a), ("b", b)],
        vec![
            decl("A", &["in", "a"], Tying::Tied, normal(gamma)),
            decl("M", &["a", "b"], Tying::PerLayer, normal(gamma)),
            decl("B", &["b", "out"], Tying::Tied, Init::Zeros),
        ],
        vec![],
        Output::Delta(mul(scale, mm(mm(mm(x(), t("A")), t("M")), t("B")))),
        true,
    )
}

pub fn tensor_embedding(a: usize, b: usize, l: usize, alpha: f64, gamma: f64) -> Program {
    let scale = div(mul(num(gamma.powi(3) * alpha), rms(w())), num(((a * b * l) as f64).sqrt()));
    let mut m = decl("M", &["a", "b"], Tying::Partial { k: l }, normal(gamma));
    m.mix_init = Some(normal(gamma));
    prog(
        "tensor_embedding",
        &[("a", a), ("b", b)],
        vec![decl("A", &["in", "a"], Tying::Tied, normal(gamma)), m, decl("B", &["b", "out"], Tying::Tied, Init::Zeros)],
        vec![],
        Output::Delta(mul(scale, mm(mm(mm(x(), t("A")), t("M")), t("B")))),
        true,
    )
}

pub fn partially_tied_lora(r: usize, ka: usize, kb: usize, alpha: f64, gamma: f64) -> Program {
    let scale = div(mul(num(gamma.powi(3) * alpha), rms(w())), num(((r * ka * kb) as f64).sqrt()));
    let mut a = decl("A", &["in", "r"], Tying::Partial { k: ka }, normal(gamma));
    a.mix_init = Some(normal(gamma));
    let mut b = decl("B", &["r", "out"], Tying::Partial { k: kb }, Init::Zeros);
    b.mix_init = Some(normal(gamma));
    prog("partially_tied_lora", &[("r", r)], vec![a, b], vec![], Output::Delta(mul(scale, mm(mm(x(), t("A")), t("B")))), true)
}

pub fn dora(r: usize, alpha: f64, gamma: f64, eps: f64) -> Program {
    let v = add(div(w(), rms(w())), sc(gamma * alpha / (r as f64).sqrt(), mm(t("A"), t("B"))));
    prog(
        "dora",
        &[("r", r)],
        vec![
            decl("m", &["out"], Tying::PerLayer, Init::Expr(rms_over(w(), "in", eps))),
            decl("A", &["in", "r"], Tying::PerLayer, normal(gamma)),
            decl("B", &["r", "out"], Tying::PerLayer, Init::Zeros),
        ],
        vec![("V", v)],
        Output::Y(div(mul(mm(x(), Expr::Let("V".into())), t("m")), rms_over(Expr::Let("V".into()), "in", eps))),
        true,
    )
}

pub fn simple_dora(r: usize, alpha: f64, beta: f64, gamma: f64, eps: f64) -> Program {
    prog(
        "simple_dora",
        &[("r", r)],
        vec![
            decl("m", &["out"], Tying::PerLayer, Init::Constant(1.0 / beta)),
            decl("A", &["in", "r"], Tying::PerLayer, normal(gamma)),
            decl("B", &["r", "out"], Tying::PerLayer, Init::Zeros),
        ],
        vec![("s", mul(num(beta), rms_over(w(), "in", eps))), ("W0", div(mul(w(), num(beta)), Expr::Let("s".into())))],
        Output::Y(mul(
            mul(
                add(mm(x(), Expr::Let("W0".into())), sc(gamma * alpha / (r as f64).sqrt(), mm(mm(x(), t("A")), t("B")))),
                Expr::Let("s".into()),
            ),
            t("m"),
        )),
        true,
    )
}

/// Every seed scheme (plus HF LoRA) at test sizes, with the seed's defaults
/// for α, γ, β.
pub fn all_schemes() -> Vec<Program> {
    vec![
        lora_gamma(4, 3.0, 1.0),
        hf_lora(4, 8.0),
        normed_lora(4, 100.0, 750.0),
        strong_gamma(4, 3.0, 750.0),
        tied_lora(4, 100.0, 750.0),
        tied_lora_extra(3, 4, 100.0, 750.0),
        tensor_embedding(3, 4, 2, 100.0, 750.0),
        partially_tied_lora(4, 2, 3, 100.0, 750.0),
        dora(4, 100.0, 1.0, 1e-6),
        simple_dora(4, 100.0, 1.0, 750.0, 1e-6),
    ]
}

/// Every layer and target of a model.
pub fn all_sites<B: Backend, M: CausalLm<B>>(m: &M) -> Vec<Site> {
    let mut v = Vec::new();
    for layer in 0..m.num_layers() {
        for target in Target::ALL {
            let (d_in, d_out) = m.target_shape(target);
            v.push(Site { layer, target, d_in, d_out });
        }
    }
    v
}

pub fn tiny<B: Backend>(device: &B::Device) -> TinyLm<B> {
    TinyLm::new(23, 8, 12, 3, 11, device)
}

pub fn build<B: Backend>(p: &Program, m: &TinyLm<B>, seed: u64, device: &B::Device) -> Adapter<B> {
    let sites = all_sites(m);
    Adapter::build(p, &sites, &|l, t| m.base_weight(l, t), seed, device).expect("lowering")
}

/// Replace every trainable tensor by N(0, std) draws so no factor is zero.
pub fn randomize<B: Backend>(a: &mut Adapter<B>, std: f64, seed: u64, device: &B::Device) {
    let params = a
        .param_infos()
        .iter()
        .map(|i| {
            let v = peftc::lower::init::values(&Init::Normal { mean: 0.0, std }, &i.shape, seed, &i.name).unwrap();
            let n = v.len();
            Tensor::<B, 1>::from_data(TensorData::new(v, [n]).convert::<B::FloatElem>(), device)
        })
        .collect();
    a.set_params(params);
}

pub fn tokens<B: Backend>(device: &B::Device) -> Tensor<B, 2, Int> {
    Tensor::from_data(TensorData::new(vec![1i64, 5, 7, 2, 9, 13, 4, 22, 0, 3, 8, 17], [2, 6]).convert::<B::IntElem>(), device)
}
