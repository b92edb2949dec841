//! The lowering's input: one scheme, resolved for one run.
//!
//! This is the small, self-contained form the lowering consumes: the scheme's
//! tensors with their named dimensions, tying and init, its `let` bindings and
//! its output formula, with every scheme parameter already a number. The
//! language's IR (`crate::lang::ir`) converts into it (see `from_lang`), so
//! the numeric side does not depend on the surface syntax.

use std::collections::BTreeMap;

use crate::lang::target::Target;

/// Reserved name of the token dimension: `x` is `[tok, in]` inside a formula
/// (the batch and sequence axes flattened).
pub const TOK: &str = "tokens";

/// How a declared tensor is stored across layers: the language's own.
pub use crate::lang::ir::Tying;

/// Initial values of a tensor: the language's rule over the lowering's
/// expressions (`Expr` is computed from the base weight and constants, per
/// layer and target, at build time).
pub type Init = crate::lang::ir::Init<Expr>;

/// One declared tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorDecl {
    pub name: String,
    /// Named dims: `in`, `out` or a scheme size parameter.
    pub dims: Vec<String>,
    pub tying: Tying,
    /// Targets sharing one tensor (equal shapes); empty = each target its own.
    pub across: Vec<Vec<Target>>,
    /// Init of the tensor (for `partial`, of the basis).
    pub init: Init,
    /// Init of the per-layer mixing vector (`partial` only).
    pub mix_init: Option<Init>,
    pub frozen: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
}

/// A formula node. Dims are named; `@` contracts one shared dim.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// The layer input, `[tok, in]`.
    X,
    /// The frozen base weight, `[in, out]`.
    W,
    /// A declared tensor, by name.
    Tensor(String),
    /// A `let` binding, by name.
    Let(String),
    Num(f64),
    Neg(Box<Expr>),
    /// Elementwise, broadcasting by dim name.
    Bin(BinOp, Box<Expr>, Box<Expr>),
    /// Contract the named dim (or, when `None`, the one dim both share).
    Matmul(Box<Expr>, Box<Expr>, Option<String>),
    Pow(Box<Expr>, f64),
    Sqrt(Box<Expr>),
    /// Root mean square over all entries, or over one dim; `sqrt(mean(t²) + eps)`.
    Rms {
        arg: Box<Expr>,
        over: Option<String>,
        eps: f64,
    },
    /// Euclidean norm over all entries or one dim; `sqrt(sum(t²) + eps)`.
    Norm {
        arg: Box<Expr>,
        over: Option<String>,
        eps: f64,
    },
    Detach(Box<Expr>),
    Abs(Box<Expr>),
    Exp(Box<Expr>),
    Log(Box<Expr>),
    Min(Box<Expr>, Box<Expr>),
    Max(Box<Expr>, Box<Expr>),
    /// Multiply all operands (broadcast by name), then sum every dim not in `out`.
    Einsum {
        args: Vec<Expr>,
        out: Vec<String>,
    },
    /// Internal to the lowering: a constant subexpression computed once at
    /// build time per layer and target (index into the adapter's folds).
    Folded(usize),
}

/// What the formula's value means.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Added to `x W`.
    Delta(Expr),
    /// Replaces the layer output.
    Y(Expr),
}

/// A scheme resolved for one run: every parameter a number.
#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    pub scheme: String,
    /// Sizes of the scheme's own dims (`r`, `a`, `k_a`, …).
    pub dims: BTreeMap<String, usize>,
    pub tensors: Vec<TensorDecl>,
    pub lets: Vec<(String, Expr)>,
    pub output: Output,
    /// Linear in `x`: the merged weight is `f(I)`.
    pub mergeable: bool,
}

impl Program {
    pub fn decl(&self, name: &str) -> Option<&TensorDecl> {
        self.tensors.iter().find(|t| t.name == name)
    }
}

// Small constructors that keep hand-written programs (tests, presets) legible.
pub fn x() -> Expr {
    Expr::X
}
pub fn w() -> Expr {
    Expr::W
}
pub fn t(name: &str) -> Expr {
    Expr::Tensor(name.to_string())
}
pub fn num(v: f64) -> Expr {
    Expr::Num(v)
}
pub fn mm(a: Expr, b: Expr) -> Expr {
    Expr::Matmul(Box::new(a), Box::new(b), None)
}
pub fn mul(a: Expr, b: Expr) -> Expr {
    Expr::Bin(BinOp::Mul, Box::new(a), Box::new(b))
}
pub fn div(a: Expr, b: Expr) -> Expr {
    Expr::Bin(BinOp::Div, Box::new(a), Box::new(b))
}
pub fn add(a: Expr, b: Expr) -> Expr {
    Expr::Bin(BinOp::Add, Box::new(a), Box::new(b))
}
pub fn rms(a: Expr) -> Expr {
    Expr::Rms { arg: Box::new(a), over: None, eps: 0.0 }
}
pub fn rms_over(a: Expr, over: &str, eps: f64) -> Expr {
    Expr::Rms { arg: Box::new(a), over: Some(over.to_string()), eps }
}
