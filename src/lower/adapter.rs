//! The lowered adapter: stored tensors per tying mode, folded constants, and
//! the formula's evaluation as a [`LinearHook`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;

use super::named::Named;
use super::program::{BinOp, Expr, Init, Output, Program, TOK, Tying};
use super::{LowerError, init};
use crate::lang::target::Target;
use crate::model::hook::LinearHook;
use crate::model::precision;

/// One adapted linear: a layer and a target, with its `(in, out)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Site {
    pub layer: usize,
    pub target: Target,
    pub d_in: usize,
    pub d_out: usize,
}

/// A stored tensor's name (also its safetensors key) and shape.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamInfo {
    /// e.g. `A.q.3` (per layer), `A.q` (tied), `A.q+k+v` (tied across),
    /// `A.q.basis` and `A.q.3.mix` (partial).
    pub name: String,
    pub shape: Vec<usize>,
    /// The declared tensor it stores.
    pub decl: String,
}

impl ParamInfo {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

#[derive(Debug, Clone, Copy)]
enum Ref {
    Param(usize),
    Frozen(usize),
    Partial { basis: usize, mix: usize },
}

/// The program after constant folding, shared by every site.
#[derive(Debug)]
struct Compiled {
    program: Program,
    lets: Vec<Expr>,
    output: Expr,
    is_delta: bool,
    folds: Vec<Expr>,
}

#[derive(Debug, Clone)]
struct SiteData<B: Backend> {
    site: Site,
    refs: Vec<Ref>,
    folds: Vec<Named<B>>,
}

/// A scheme lowered for one model and target set. Implements [`LinearHook`].
///
/// Trainable tensors are stored flat (`Tensor<B, 1>`) and reshaped to their
/// named dims on use; a tied tensor is one entry, referenced by every layer.
#[derive(Debug, Clone)]
pub struct Adapter<B: Backend> {
    compiled: Arc<Compiled>,
    params: Vec<Tensor<B, 1>>,
    infos: Vec<ParamInfo>,
    frozen: Vec<Tensor<B, 1>>,
    frozen_infos: Vec<ParamInfo>,
    sites: HashMap<(usize, Target), SiteData<B>>,
}

fn is_const(e: &Expr, p: &Program, const_lets: &[bool]) -> bool {
    match e {
        Expr::X => false,
        Expr::W | Expr::Num(_) | Expr::Folded(_) => true,
        Expr::Tensor(n) => p.decl(n).is_some_and(|d| d.frozen),
        Expr::Let(n) => p.lets.iter().position(|(m, _)| m == n).is_some_and(|i| const_lets.get(i).copied().unwrap_or(false)),
        Expr::Neg(a) | Expr::Pow(a, _) | Expr::Sqrt(a) | Expr::Detach(a) | Expr::Abs(a) | Expr::Exp(a) | Expr::Log(a) => {
            is_const(a, p, const_lets)
        }
        Expr::Rms { arg, .. } | Expr::Norm { arg, .. } => is_const(arg, p, const_lets),
        Expr::Bin(_, a, b) | Expr::Matmul(a, b, _) | Expr::Min(a, b) | Expr::Max(a, b) => {
            is_const(a, p, const_lets) && is_const(b, p, const_lets)
        }
        Expr::Einsum { args, .. } => args.iter().all(|a| is_const(a, p, const_lets)),
    }
}

fn is_leaf(e: &Expr) -> bool {
    matches!(e, Expr::X | Expr::W | Expr::Num(_) | Expr::Tensor(_) | Expr::Let(_) | Expr::Folded(_))
}

/// Replace maximal constant, non-leaf subtrees by `Folded(i)`.
fn fold(e: &Expr, p: &Program, const_lets: &[bool], folds: &mut Vec<Expr>) -> Expr {
    if !is_leaf(e) && is_const(e, p, const_lets) {
        folds.push(e.clone());
        return Expr::Folded(folds.len() - 1);
    }
    let mut f = |a: &Expr| Box::new(fold(a, p, const_lets, folds));
    match e {
        Expr::Neg(a) => Expr::Neg(f(a)),
        Expr::Pow(a, k) => Expr::Pow(f(a), *k),
        Expr::Sqrt(a) => Expr::Sqrt(f(a)),
        Expr::Detach(a) => Expr::Detach(f(a)),
        Expr::Abs(a) => Expr::Abs(f(a)),
        Expr::Exp(a) => Expr::Exp(f(a)),
        Expr::Log(a) => Expr::Log(f(a)),
        Expr::Rms { arg, over, eps } => Expr::Rms { arg: f(arg), over: over.clone(), eps: *eps },
        Expr::Norm { arg, over, eps } => Expr::Norm { arg: f(arg), over: over.clone(), eps: *eps },
        Expr::Bin(op, a, b) => {
            let a = f(a);
            Expr::Bin(*op, a, f(b))
        }
        Expr::Matmul(a, b, d) => {
            let a = f(a);
            Expr::Matmul(a, f(b), d.clone())
        }
        Expr::Min(a, b) => {
            let a = f(a);
            Expr::Min(a, f(b))
        }
        Expr::Max(a, b) => {
            let a = f(a);
            Expr::Max(a, f(b))
        }
        Expr::Einsum { args, out } => Expr::Einsum { args: args.iter().map(|a| *f(a)).collect(), out: out.clone() },
        leaf => leaf.clone(),
    }
}

/// Values available while evaluating a formula at one site.
struct Env<'a, B: Backend> {
    compiled: &'a Compiled,
    x: Option<Named<B>>,
    w: &'a Tensor<B, 2>,
    tensor: &'a dyn Fn(usize) -> Result<Named<B>, LowerError>,
    folds: Vec<Option<Named<B>>>,
    lets: Vec<Option<Named<B>>>,
    device: B::Device,
}

impl<B: Backend> Env<'_, B> {
    fn eval(&mut self, e: &Expr) -> Result<Named<B>, LowerError> {
        Ok(match e {
            Expr::X => self.x.clone().ok_or(LowerError::XInConstant { context: "this value".into() })?,
            // Adapter arithmetic runs in full precision even on a bf16 base.
            Expr::W => Named::from_2d(precision::to_full(self.w.clone()), "in", "out"),
            Expr::Num(v) => Named::scalar(*v, &self.device),
            Expr::Tensor(n) => {
                let i = self.compiled.program.tensors.iter().position(|d| &d.name == n);
                let i = i.ok_or_else(|| LowerError::UnknownTensor { name: n.clone() })?;
                (self.tensor)(i)?
            }
            Expr::Let(n) => {
                let i = self.compiled.program.lets.iter().position(|(m, _)| m == n);
                let i = i.ok_or_else(|| LowerError::UnknownLet { name: n.clone() })?;
                if let Some(v) = &self.lets[i] {
                    return Ok(v.clone());
                }
                let body = self.compiled.lets[i].clone();
                let v = self.eval(&body)?;
                self.lets[i] = Some(v.clone());
                v
            }
            Expr::Folded(i) => {
                if let Some(v) = &self.folds[*i] {
                    return Ok(v.clone());
                }
                let body = self.compiled.folds[*i].clone();
                let v = self.eval(&body)?;
                self.folds[*i] = Some(v.clone());
                v
            }
            Expr::Neg(a) => self.eval(a)?.map(|t| t.neg()),
            Expr::Bin(op, a, b) => {
                // A literal number on either side is a scalar op, no broadcast tensor.
                match (op, a.as_ref(), b.as_ref()) {
                    (BinOp::Mul, Expr::Num(v), o) | (BinOp::Mul, o, Expr::Num(v)) => {
                        let v = *v;
                        return Ok(self.eval(o)?.map(|t| t.mul_scalar(v)));
                    }
                    (BinOp::Div, o, Expr::Num(v)) => {
                        let v = *v;
                        return Ok(self.eval(o)?.map(|t| t.div_scalar(v)));
                    }
                    (BinOp::Add, o, Expr::Num(v)) => {
                        let v = *v;
                        return Ok(self.eval(o)?.map(|t| t.add_scalar(v)));
                    }
                    (BinOp::Sub, o, Expr::Num(v)) => {
                        let v = *v;
                        return Ok(self.eval(o)?.map(|t| t.sub_scalar(v)));
                    }
                    _ => {}
                }
                let a = self.eval(a)?;
                let b = self.eval(b)?;
                match op {
                    BinOp::Add => a.zip(b, |a, b| a + b)?,
                    BinOp::Sub => a.zip(b, |a, b| a - b)?,
                    BinOp::Mul => a.zip(b, |a, b| a * b)?,
                    BinOp::Div => a.zip(b, |a, b| a / b)?,
                }
            }
            Expr::Matmul(a, b, d) => {
                let a = self.eval(a)?;
                let b = self.eval(b)?;
                a.contract(b, d.as_deref())?
            }
            Expr::Pow(a, k) => {
                let k = *k;
                let v = self.eval(a)?;
                if k == 2.0 { v.map(|t| t.square()) } else { v.map(|t| t.powf_scalar(k)) }
            }
            Expr::Sqrt(a) => self.eval(a)?.map(|t| t.sqrt()),
            Expr::Rms { arg, over, eps } => {
                let eps = *eps;
                let sq = self.eval(arg)?.map(|t| t.square());
                let m = match over {
                    Some(d) => sq.mean_over(d)?,
                    None => sq.mean_all(),
                };
                m.map(|t| if eps != 0.0 { t.add_scalar(eps).sqrt() } else { t.sqrt() })
            }
            Expr::Norm { arg, over, eps } => {
                let eps = *eps;
                let sq = self.eval(arg)?.map(|t| t.square());
                let s = match over {
                    Some(d) => sq.sum_over(d)?,
                    None => Named { t: sq.t.sum().reshape([1, 1, 1, 1]), dims: vec![] },
                };
                s.map(|t| if eps != 0.0 { t.add_scalar(eps).sqrt() } else { t.sqrt() })
            }
            Expr::Detach(a) => self.eval(a)?.map(|t| t.detach()),
            Expr::Abs(a) => self.eval(a)?.map(|t| t.abs()),
            Expr::Exp(a) => self.eval(a)?.map(|t| t.exp()),
            Expr::Log(a) => self.eval(a)?.map(|t| t.log()),
            Expr::Min(a, b) => {
                let a = self.eval(a)?;
                let b = self.eval(b)?;
                a.zip(b, |a, b| a.min_pair(b))?
            }
            Expr::Max(a, b) => {
                let a = self.eval(a)?;
                let b = self.eval(b)?;
                a.zip(b, |a, b| a.max_pair(b))?
            }
            Expr::Einsum { args, out } => {
                let mut acc: Option<Named<B>> = None;
                for a in args {
                    let v = self.eval(a)?;
                    acc = Some(match acc {
                        None => v,
                        Some(p) => p.zip(v, |a, b| a * b)?,
                    });
                }
                let mut acc = acc.unwrap_or_else(|| Named::scalar(1.0, &self.device));
                let drop: Vec<String> = acc.dims.iter().filter(|d| !out.contains(d)).cloned().collect();
                for d in drop {
                    acc = acc.sum_over(&d)?;
                }
                let order: Vec<String> = out.iter().filter(|d| acc.dims.contains(d)).cloned().collect();
                Named { t: acc.align(&order), dims: order }
            }
        })
    }
}

fn dim_sizes(p: &Program, decl: usize, site: &Site) -> Result<Vec<usize>, LowerError> {
    let d = &p.tensors[decl];
    d.dims
        .iter()
        .map(|n| match n.as_str() {
            "in" => Ok(site.d_in),
            "out" => Ok(site.d_out),
            other => p.dims.get(other).copied().ok_or_else(|| LowerError::UnboundDim { tensor: d.name.clone(), dim: other.into() }),
        })
        .collect()
}

fn group_name(across: &[Vec<Target>], target: Target) -> String {
    match across.iter().find(|g| g.contains(&target)) {
        Some(g) => g.iter().map(|t| t.name()).collect::<Vec<_>>().join("+"),
        None => target.name().to_string(),
    }
}

impl<B: Backend> Adapter<B> {
    /// Lower `program` for `sites`, reading each site's frozen base weight
    /// `[in, out]` from `base` (used for folds and inits computed from W).
    /// Random inits draw from `seed`, one stream per stored tensor.
    pub fn build(
        program: &Program,
        sites: &[Site],
        base: &dyn Fn(usize, Target) -> Tensor<B, 2>,
        seed: u64,
        device: &B::Device,
    ) -> Result<Self, LowerError> {
        let p = program.clone();
        let mut const_lets = Vec::new();
        let mut lets = Vec::new();
        let mut folds = Vec::new();
        for (_, e) in &p.lets {
            let c = is_const(e, &p, &const_lets);
            lets.push(fold(e, &p, &const_lets, &mut folds));
            const_lets.push(c);
        }
        let (out_e, is_delta) = match &p.output {
            Output::Delta(e) => (e, true),
            Output::Y(e) => (e, false),
        };
        let output = fold(out_e, &p, &const_lets, &mut folds);
        let compiled = Arc::new(Compiled { program: p, lets, output, is_delta, folds });
        let p = &compiled.program;

        let mut params: Vec<Tensor<B, 1>> = Vec::new();
        let mut infos: Vec<ParamInfo> = Vec::new();
        let mut frozen: Vec<Tensor<B, 1>> = Vec::new();
        let mut frozen_infos: Vec<ParamInfo> = Vec::new();
        let mut by_key: BTreeMap<String, Ref> = BTreeMap::new();
        let mut index: HashMap<String, (bool, usize)> = HashMap::new();
        let mut out_sites = HashMap::new();

        for site in sites {
            let w = base(site.layer, site.target);
            // Constant values of this site (folds over W and numbers).
            let mut refs = Vec::with_capacity(p.tensors.len());
            for (di, d) in p.tensors.iter().enumerate() {
                let shape = dim_sizes(p, di, site)?;
                let group = group_name(&d.across, site.target);
                let mut store =
                    |key: String, shape: &[usize], init: &Init, trainable: bool, w: &Tensor<B, 2>| -> Result<(bool, usize), LowerError> {
                        if let Some(&(tr, i)) = index.get(&key) {
                            let have = if tr { &infos[i].shape } else { &frozen_infos[i].shape };
                            if have.as_slice() != shape {
                                return Err(LowerError::AcrossShapes { tensor: d.name.clone(), group: group.clone() });
                            }
                            return Ok((tr, i));
                        }
                        let n: usize = shape.iter().product();
                        let data: Tensor<B, 1> = match init::values(init, shape, seed, &key) {
                            Some(v) => Tensor::from_data(TensorData::new(v, [n]).convert::<B::FloatElem>(), device),
                            None => {
                                let Init::Expr(e) = init else { unreachable!() };
                                if !is_const(e, p, &[]) || matches!(d.tying, Tying::Partial { .. }) {
                                    return Err(LowerError::InitExpr {
                                        tensor: d.name.clone(),
                                        reason: "an init computed from W must use only W and numbers, on a per_layer or tied tensor".into(),
                                    });
                                }
                                let tensor_fn = |_i: usize| -> Result<Named<B>, LowerError> {
                                    Err(LowerError::XInConstant { context: format!("the init of `{}`", d.name) })
                                };
                                let mut env = Env {
                                    compiled: &compiled,
                                    x: None,
                                    w,
                                    tensor: &tensor_fn,
                                    folds: vec![None; compiled.folds.len()],
                                    lets: vec![None; compiled.lets.len()],
                                    device: device.clone(),
                                };
                                let v = env.eval(e)?;
                                let want: Vec<String> = d.dims.clone();
                                if !v.dims.iter().all(|x| want.contains(x)) {
                                    return Err(LowerError::InitExpr {
                                        tensor: d.name.clone(),
                                        reason: format!("has dims [{}], the tensor [{}]", v.dims.join(", "), want.join(", ")),
                                    });
                                }
                                // Broadcast a value over a subset of the dims to the full shape.
                                let mut full = [1usize; 4];
                                full[4 - shape.len()..].copy_from_slice(shape);
                                let ones = Tensor::<B, 4>::ones(full, device);
                                (v.align(&want) * ones).reshape([n])
                            }
                        };
                        let info = ParamInfo { name: key.clone(), shape: shape.to_vec(), decl: d.name.clone() };
                        let r = if trainable {
                            params.push(data.require_grad());
                            infos.push(info);
                            (true, params.len() - 1)
                        } else {
                            frozen.push(data);
                            frozen_infos.push(info);
                            (false, frozen.len() - 1)
                        };
                        index.insert(key, r);
                        Ok(r)
                    };
                let as_ref = |(tr, i): (bool, usize)| if tr { Ref::Param(i) } else { Ref::Frozen(i) };
                let r = match &d.tying {
                    Tying::PerLayer => as_ref(store(format!("{}.{}.{}", d.name, group, site.layer), &shape, &d.init, !d.frozen, &w)?),
                    Tying::Tied => as_ref(store(format!("{}.{}", d.name, group), &shape, &d.init, !d.frozen, &w)?),
                    Tying::Partial { k } => {
                        let mut bshape = vec![*k];
                        bshape.extend(&shape);
                        let mix_init = d.mix_init.clone().unwrap_or(Init::Ones);
                        let (_, b) = store(format!("{}.{}.basis", d.name, group), &bshape, &d.init, true, &w)?;
                        let (_, m) = store(format!("{}.{}.{}.mix", d.name, group, site.layer), &[*k], &mix_init, true, &w)?;
                        Ref::Partial { basis: b, mix: m }
                    }
                };
                by_key.insert(format!("{}@{}.{}", d.name, site.target, site.layer), r);
                refs.push(r);
            }
            out_sites.insert((site.layer, site.target), SiteData { site: *site, refs, folds: Vec::new() });
        }

        let mut adapter = Adapter { compiled: compiled.clone(), params, infos, frozen, frozen_infos, sites: out_sites };
        // Fold constants per site (frozen tensors are available, trainable ones not).
        let keys: Vec<(usize, Target)> = sites.iter().map(|s| (s.layer, s.target)).collect();
        for key in keys {
            let w = base(key.0, key.1);
            let sd = adapter.sites[&key].clone();
            let mut vals = Vec::with_capacity(compiled.folds.len());
            {
                let tensor_fn = |i: usize| adapter.tensor_at(&sd, i);
                let mut env = Env {
                    compiled: &compiled,
                    x: None,
                    w: &w,
                    tensor: &tensor_fn,
                    folds: vec![None; compiled.folds.len()],
                    lets: vec![None; compiled.lets.len()],
                    device: device.clone(),
                };
                for i in 0..compiled.folds.len() {
                    vals.push(env.eval(&Expr::Folded(i))?.map(|t| t.detach()));
                }
            }
            adapter.sites.get_mut(&key).expect("site").folds = vals;
        }
        Ok(adapter)
    }

    fn tensor_at(&self, sd: &SiteData<B>, decl: usize) -> Result<Named<B>, LowerError> {
        let d = &self.compiled.program.tensors[decl];
        let sizes = dim_sizes(&self.compiled.program, decl, &sd.site)?;
        let flat = match sd.refs[decl] {
            Ref::Param(i) => self.params[i].clone(),
            Ref::Frozen(i) => self.frozen[i].clone(),
            Ref::Partial { basis, mix } => {
                let k = self.infos[mix].shape[0];
                let n = self.infos[basis].numel() / k;
                let b: Tensor<B, 2> = self.params[basis].clone().reshape([k, n]);
                let m: Tensor<B, 2> = self.params[mix].clone().reshape([1, k]);
                m.matmul(b).reshape([n])
            }
        };
        Named::from_flat(flat, d.dims.clone(), &sizes)
    }

    /// The adapted output at one site; errors instead of panicking.
    ///
    /// # Shapes
    /// - `x`: `[batch, seq, in]`, `w`: `[in, out]` → `[batch, seq, out]`
    pub fn try_linear(&self, layer: usize, target: Target, x: Tensor<B, 3>, w: &Tensor<B, 2>) -> Result<Tensor<B, 3>, LowerError> {
        let [batch, seq, d_in] = x.dims();
        let x2: Tensor<B, 2> = x.reshape([batch * seq, d_in]);
        let Some(sd) = self.sites.get(&(layer, target)) else {
            return Ok(x2.matmul(w.clone()).reshape([batch, seq, w.dims()[1]]));
        };
        // Under mixed precision the base product stays in the base's dtype
        // and everything else (the adapter's tensors, the formula, the sum)
        // runs in full precision; the output goes back to the base's dtype.
        let low = precision::dtype_of(&x2);
        let c = &self.compiled;
        let tensor_fn = |i: usize| self.tensor_at(sd, i);
        let mut env = Env {
            compiled: c,
            x: Some(Named::from_2d(precision::to_full(x2.clone()), TOK, "in")),
            w,
            tensor: &tensor_fn,
            folds: sd.folds.iter().cloned().map(Some).collect(),
            lets: vec![None; c.lets.len()],
            device: x2.device(),
        };
        let v = env.eval(&c.output)?;
        let out = if c.is_delta {
            let base = Named::from_2d(precision::to_full(x2.matmul(w.clone())), TOK, "out");
            base.zip(v, |a, b| a + b)?
        } else {
            v
        };
        let y = precision::cast(out.to_2d(TOK, "out")?, low);
        let [_, d_out] = y.dims();
        Ok(y.reshape([batch, seq, d_out]))
    }

    /// The merged weight `W' = f(I)` of a scheme linear in `x`: the adapted
    /// layer applied to the identity.
    ///
    /// # Shapes
    /// - `w`: `[in, out]` → `[in, out]`
    pub fn merged_weight(&self, layer: usize, target: Target, w: &Tensor<B, 2>) -> Result<Tensor<B, 2>, LowerError> {
        if !self.compiled.program.mergeable {
            return Err(LowerError::NotMergeable { scheme: self.compiled.program.scheme.clone() });
        }
        let [d_in, d_out] = w.dims();
        let eye = Tensor::<B, 2>::eye(d_in, &w.device()).reshape([1, d_in, d_in]);
        Ok(self.try_linear(layer, target, eye, w)?.reshape([d_in, d_out]))
    }

    pub fn program(&self) -> &Program {
        &self.compiled.program
    }
    pub fn sites(&self) -> impl Iterator<Item = &Site> {
        self.sites.values().map(|s| &s.site)
    }
    pub fn has_site(&self, layer: usize, target: Target) -> bool {
        self.sites.contains_key(&(layer, target))
    }

    /// Trainable tensors, flat, in storage order.
    pub fn params(&self) -> &[Tensor<B, 1>] {
        &self.params
    }
    pub fn param_infos(&self) -> &[ParamInfo] {
        &self.infos
    }
    pub fn frozen(&self) -> &[Tensor<B, 1>] {
        &self.frozen
    }
    pub fn frozen_infos(&self) -> &[ParamInfo] {
        &self.frozen_infos
    }
    pub fn num_trainable(&self) -> u64 {
        self.infos.iter().map(|i| i.numel() as u64).sum()
    }

    /// Replace the trainable tensors (same count and sizes), e.g. after an
    /// optimizer step or when loading a checkpoint.
    pub fn set_params(&mut self, params: Vec<Tensor<B, 1>>) {
        assert_eq!(params.len(), self.params.len(), "parameter count");
        self.params = params.into_iter().map(|p| p.require_grad()).collect();
    }

    /// Move every tensor through `f` onto another backend.
    fn map_backend<B2: Backend>(
        &self,
        f1: impl Fn(Tensor<B, 1>) -> Tensor<B2, 1>,
        f4: impl Fn(Tensor<B, 4>) -> Tensor<B2, 4>,
    ) -> Adapter<B2> {
        Adapter {
            compiled: self.compiled.clone(),
            params: self.params.iter().cloned().map(&f1).collect(),
            infos: self.infos.clone(),
            frozen: self.frozen.iter().cloned().map(&f1).collect(),
            frozen_infos: self.frozen_infos.clone(),
            sites: self
                .sites
                .iter()
                .map(|(k, s)| {
                    let folds = s.folds.iter().map(|n| Named { t: f4(n.t.clone()), dims: n.dims.clone() }).collect();
                    (*k, SiteData { site: s.site, refs: s.refs.clone(), folds })
                })
                .collect(),
        }
    }
}

impl<B: AutodiffBackend> Adapter<B> {
    /// The same adapter on the inner backend, for evaluation without autodiff.
    pub fn valid(&self) -> Adapter<B::InnerBackend> {
        self.map_backend(|t| t.inner(), |t| t.inner())
    }

    /// An adapter on the inner backend, lifted to the autodiff backend (its
    /// trainable tensors require grad again).
    pub fn from_inner(inner: &Adapter<B::InnerBackend>) -> Self {
        let mut a = inner.map_backend(Tensor::from_inner, Tensor::from_inner);
        a.params = a.params.into_iter().map(|p| p.require_grad()).collect();
        a
    }
}

impl<B: Backend> LinearHook<B> for Adapter<B> {
    /// # Shapes
    /// - `x`: `[batch, seq, in]`, `w`: `[in, out]` → `[batch, seq, out]`
    fn linear(&self, layer: usize, target: Target, x: Tensor<B, 3>, w: &Tensor<B, 2>) -> Tensor<B, 3> {
        // Every shape was checked at build time; an error here is a bug.
        self.try_linear(layer, target, x, w).unwrap_or_else(|e| panic!("adapter at layer {layer}, {target}: {e}"))
    }
}
