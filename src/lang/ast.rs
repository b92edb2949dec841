//! The parse tree of a `.peft` file, with source spans.

use serde::Serialize;

/// A byte range inside one loaded file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Span {
    #[serde(skip)]
    pub file: usize,
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(file: usize, start: usize, end: usize) -> Self {
        Span { file, start, end }
    }
    /// The smallest span covering both (same file assumed).
    pub fn to(self, other: Span) -> Span {
        Span { file: self.file, start: self.start.min(other.start), end: self.end.max(other.end) }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum AstBinOp {
    Add,
    Sub,
    Mul,
    Div,
    MatMul,
    Pow,
}

impl AstBinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            AstBinOp::Add => "+",
            AstBinOp::Sub => "-",
            AstBinOp::Mul => "*",
            AstBinOp::Div => "/",
            AstBinOp::MatMul => "@",
            AstBinOp::Pow => "^",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum AstExprKind {
    Num(f64),
    Str(String),
    Ident(String),
    List(Vec<AstExpr>),
    Call { func: Ident, args: Vec<AstArg> },
    Neg(Box<AstExpr>),
    Bin { op: AstBinOp, lhs: Box<AstExpr>, rhs: Box<AstExpr> },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AstExpr {
    pub kind: AstExprKind,
    pub span: Span,
    /// Height of the tree below this node (bounded by the parser).
    #[serde(skip)]
    pub depth: usize,
}

/// A call or run argument: positional or `name: value`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AstArg {
    pub name: Option<Ident>,
    pub value: AstExpr,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Import {
    pub path: String,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Param {
    pub name: Ident,
    pub default: Option<AstExpr>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum AstTying {
    PerLayer,
    Tied,
    Partial(AstExpr),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum AstInit {
    Expr(AstExpr),
    BasisMix { basis: AstExpr, mix: AstExpr },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AstTensor {
    pub name: Ident,
    pub dims: Vec<Ident>,
    pub dims_span: Span,
    pub tying: AstTying,
    pub tying_span: Span,
    pub across: Vec<Vec<Ident>>,
    pub init: Option<AstInit>,
    pub init_span: Option<Span>,
    pub frozen: bool,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AstLet {
    pub name: Ident,
    pub value: AstExpr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum OutputKind {
    Delta,
    Y,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AstOutput {
    pub kind: OutputKind,
    pub value: AstExpr,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum SchemeItem {
    Tensor(AstTensor),
    Let(AstLet),
    Output(AstOutput),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AstScheme {
    pub name: Ident,
    pub params: Vec<Param>,
    pub items: Vec<SchemeItem>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyValue {
    pub key: Ident,
    pub value: AstExpr,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AstTargetGroup {
    pub modules: Vec<Ident>,
    /// `in layers a..b`; `None` means every layer.
    pub layers: Option<(usize, usize, Span)>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AstRun {
    pub scheme: Ident,
    pub args: Vec<AstArg>,
    pub alias: Option<Ident>,
    pub overrides: Vec<KeyValue>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum ExperimentItem {
    Setting(KeyValue),
    Targets(Vec<AstTargetGroup>, Span),
    Train(Vec<KeyValue>, Span),
    Run(AstRun),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AstExperiment {
    pub name: Ident,
    pub items: Vec<ExperimentItem>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Item {
    Import(Import),
    Scheme(AstScheme),
    Experiment(AstExperiment),
}

/// One parsed file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AstFile {
    pub items: Vec<Item>,
}
