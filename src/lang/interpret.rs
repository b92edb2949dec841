//! A reference interpreter of the IR over small dense f64 arrays with named
//! dims: the test oracle for the checker's algebra (merged weights,
//! contraction orders) and for the trainer's Burn lowering. Not fast.

use std::collections::BTreeMap;

use super::ir::*;

/// A dense array whose axes are named; row-major in `dims` order.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedArray {
    pub dims: Vec<Dim>,
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

impl NamedArray {
    pub fn scalar(v: f64) -> Self {
        NamedArray { dims: vec![], shape: vec![], data: vec![v] }
    }

    /// Fill from a function of the flat index.
    pub fn from_fn(dims: &[Dim], sizes: &BTreeMap<Dim, usize>, mut f: impl FnMut(usize) -> f64) -> Self {
        let shape: Vec<usize> = dims.iter().map(|d| sizes[d]).collect();
        let n = shape.iter().product();
        NamedArray { dims: dims.to_vec(), shape, data: (0..n).map(&mut f).collect() }
    }

    fn len(&self) -> usize {
        self.data.len()
    }

    /// Multi-index (by name) of a flat index.
    fn index_of(&self, mut flat: usize) -> BTreeMap<&str, usize> {
        let mut m = BTreeMap::new();
        for (d, &s) in self.dims.iter().zip(&self.shape).rev() {
            m.insert(d.as_str(), flat % s);
            flat /= s;
        }
        m
    }

    /// Value at a named multi-index (dims missing from `idx` are an error).
    fn value_at(&self, idx: &BTreeMap<&str, usize>) -> f64 {
        let mut flat = 0;
        for (d, &s) in self.dims.iter().zip(&self.shape) {
            flat = flat * s + idx[d.as_str()];
        }
        self.data[flat]
    }

    /// Same values laid out in another dim order.
    pub fn permuted(&self, dims: &[Dim]) -> NamedArray {
        let sizes: BTreeMap<Dim, usize> = self.dims.iter().cloned().zip(self.shape.iter().copied()).collect();
        let mut out = NamedArray::from_fn(dims, &sizes, |_| 0.0);
        for i in 0..out.len() {
            let idx = out.index_of(i);
            out.data[i] = self.value_at(&idx);
        }
        out
    }
}

/// Everything an evaluation needs for one (layer, target).
pub struct Env<'a> {
    /// Sizes of every dim, `tokens` included.
    pub sizes: &'a BTreeMap<Dim, usize>,
    pub x: &'a NamedArray,
    pub w: &'a NamedArray,
    /// Per-layer values of the declared tensors (partial ones already mixed).
    pub tensors: &'a BTreeMap<String, NamedArray>,
    /// Values of the `let`s (fill with [`eval_lets`]).
    pub lets: BTreeMap<String, NamedArray>,
}

/// `f` applied entry by entry to `a` and `b` broadcast to `dims`.
fn elementwise(a: &NamedArray, b: &NamedArray, dims: &[Dim], sizes: &BTreeMap<Dim, usize>, f: impl Fn(f64, f64) -> f64) -> NamedArray {
    let mut out = NamedArray::from_fn(dims, sizes, |_| 0.0);
    for i in 0..out.len() {
        let idx = out.index_of(i);
        out.data[i] = f(a.value_at(&idx), b.value_at(&idx));
    }
    out
}

/// Evaluate an expression.
pub fn eval(e: &Expr, env: &Env) -> NamedArray {
    let sizes = env.sizes;
    match &e.kind {
        ExprKind::X => env.x.clone(),
        ExprKind::W => env.w.clone(),
        ExprKind::Eye => {
            let n = sizes["in"];
            NamedArray::from_fn(&[TOKENS.into(), "in".into()], sizes, |i| if i / n == i % n { 1.0 } else { 0.0 })
        }
        ExprKind::Tensor(n) => env.tensors[n].clone(),
        ExprKind::Let(n) => env.lets[n].clone(),
        ExprKind::Num(v) => NamedArray::scalar(*v),
        ExprKind::Unary { func, arg } => {
            let mut a = eval(arg, env);
            for v in &mut a.data {
                *v = match func {
                    UnaryFn::Neg => -*v,
                    UnaryFn::Sqrt => v.sqrt(),
                    UnaryFn::Abs => v.abs(),
                    UnaryFn::Exp => v.exp(),
                    UnaryFn::Log => v.ln(),
                    UnaryFn::Detach => *v,
                };
            }
            a
        }
        ExprKind::Binary { op, lhs, rhs } => {
            let (a, b) = (eval(lhs, env), eval(rhs, env));
            let f: fn(f64, f64) -> f64 = match op {
                BinOp::Add => |a, b| a + b,
                BinOp::Sub => |a, b| a - b,
                BinOp::Mul => |a, b| a * b,
                BinOp::Div => |a, b| a / b,
                BinOp::Pow => f64::powf,
                BinOp::Min => f64::min,
                BinOp::Max => f64::max,
            };
            elementwise(&a, &b, &e.dims, sizes, f)
        }
        ExprKind::MatMul { lhs, rhs, contract } => {
            let (a, b) = (eval(lhs, env), eval(rhs, env));
            let mut out = NamedArray::from_fn(&e.dims, sizes, |_| 0.0);
            for i in 0..out.len() {
                let mut idx = out.index_of(i);
                let mut s = 0.0;
                for c in 0..sizes[contract] {
                    idx.insert(contract.as_str(), c);
                    s += a.value_at(&idx) * b.value_at(&idx);
                }
                out.data[i] = s;
            }
            out
        }
        // The result's dims (`e.dims`) already omit the reduced one.
        ExprKind::Reduce { func, arg, eps, .. } => {
            let a = eval(arg, env);
            let mut sum = NamedArray::from_fn(&e.dims, sizes, |_| 0.0);
            let mut count = NamedArray::from_fn(&e.dims, sizes, |_| 0.0);
            for i in 0..a.len() {
                let idx = a.index_of(i);
                let mut flat = 0;
                for (d, &s) in sum.dims.iter().zip(&sum.shape) {
                    flat = flat * s + idx[d.as_str()];
                }
                sum.data[flat] += a.data[i] * a.data[i];
                count.data[flat] += 1.0;
            }
            for (s, c) in sum.data.iter_mut().zip(&count.data) {
                *s = match func {
                    ReduceFn::Rms => (*s / c + eps).sqrt(),
                    ReduceFn::Norm => (*s + eps).sqrt(),
                };
            }
            sum
        }
        ExprKind::Einsum { inputs, output, args } => {
            let vals: Vec<NamedArray> = args.iter().zip(inputs).map(|(a, i)| eval(a, env).permuted(i)).collect();
            let mut all: Vec<Dim> = output.clone();
            for i in inputs {
                for d in i {
                    if !all.contains(d) {
                        all.push(d.clone());
                    }
                }
            }
            let space = NamedArray::from_fn(&all, sizes, |_| 0.0);
            let mut out = NamedArray::from_fn(output, sizes, |_| 0.0);
            for i in 0..space.len() {
                let idx = space.index_of(i);
                let p: f64 = vals.iter().map(|v| v.value_at(&idx)).product();
                let mut flat = 0;
                for (d, &s) in out.dims.iter().zip(&out.shape) {
                    flat = flat * s + idx[d.as_str()];
                }
                out.data[flat] += p;
            }
            out
        }
    }
}

/// Evaluate the lets of an instance in order into `env.lets`.
pub fn eval_lets(inst: &SchemeInstance, env: &mut Env) {
    for l in &inst.lets {
        let v = eval(&l.expr, env);
        env.lets.insert(l.name.clone(), v);
    }
}

/// The adapted layer's output `[tokens, out]` for the input in `env.x`.
pub fn forward(inst: &SchemeInstance, env: &Env) -> NamedArray {
    match &inst.output {
        Output::Delta(e) => {
            let base = matmul(env.x, env.w, "in", env.sizes);
            let d = eval(e, env).permuted(&base.dims);
            elementwise(&base, &d, &base.dims.clone(), env.sizes, |a, b| a + b)
        }
        Output::Y(e) => eval(e, env).permuted(&[TOKENS.into(), "out".into()]),
    }
}

/// The merged weight `[tokens(=rows, size in), out]`, if the scheme is linear.
pub fn merged_weight(inst: &SchemeInstance, env: &Env) -> Option<NamedArray> {
    let m = inst.mergeability.merged.as_ref()?;
    let f = eval(m, env).permuted(&[TOKENS.into(), "out".into()]);
    if inst.mergeability.adds_base {
        let w = NamedArray { dims: vec![TOKENS.into(), "out".into()], ..env.w.clone() };
        Some(elementwise(&w, &f, &f.dims.clone(), env.sizes, |a, b| a + b))
    } else {
        Some(f)
    }
}

/// `a @ b` contracting `c` (result: a's other dims then b's).
pub fn matmul(a: &NamedArray, b: &NamedArray, c: &str, sizes: &BTreeMap<Dim, usize>) -> NamedArray {
    let dims = super::dims::matmul_dims(&a.dims, &b.dims, c);
    let mut out = NamedArray::from_fn(&dims, sizes, |_| 0.0);
    for i in 0..out.len() {
        let mut idx = out.index_of(i);
        let mut s = 0.0;
        for k in 0..sizes[c] {
            idx.insert(c, k);
            s += a.value_at(&idx) * b.value_at(&idx);
        }
        out.data[i] = s;
    }
    out
}
