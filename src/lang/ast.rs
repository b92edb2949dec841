//! The parse tree of a `.peft` file, with source spans.

use serde::Serialize;

use super::number;

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
    /// Boxed: a tensor declaration is several times the size of the others.
    Tensor(Box<AstTensor>),
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

impl AstExpr {
    /// A compact S-expression, e.g. `(* (/ alpha r) (@ (@ x A) B))`.
    pub fn sexpr(&self) -> String {
        match &self.kind {
            AstExprKind::Num(v) => number::plain(*v),
            AstExprKind::Str(s) => format!("{s:?}"),
            AstExprKind::Ident(n) => n.clone(),
            AstExprKind::List(v) => format!("[{}]", v.iter().map(AstExpr::sexpr).collect::<Vec<_>>().join(" ")),
            AstExprKind::Call { func, args } => {
                let mut s = format!("({}", func.name);
                for a in args {
                    s.push(' ');
                    s.push_str(&a.sexpr());
                }
                s.push(')');
                s
            }
            AstExprKind::Neg(a) => format!("(neg {})", a.sexpr()),
            AstExprKind::Bin { op, lhs, rhs } => format!("({} {} {})", op.symbol(), lhs.sexpr(), rhs.sexpr()),
        }
    }
}

impl AstArg {
    pub fn sexpr(&self) -> String {
        match &self.name {
            Some(n) => format!("{}: {}", n.name, self.value.sexpr()),
            None => self.value.sexpr(),
        }
    }
}

impl AstFile {
    /// The parse tree as indented S-expressions (for snapshots and debugging).
    pub fn sexpr(&self) -> String {
        let mut out = String::new();
        for it in &self.items {
            match it {
                Item::Import(i) => out.push_str(&format!("(import {:?})\n", i.path)),
                Item::Scheme(s) => {
                    out.push_str(&format!("(scheme {}\n", s.name.name));
                    for p in &s.params {
                        match &p.default {
                            Some(d) => out.push_str(&format!("  (param {} {})\n", p.name.name, d.sexpr())),
                            None => out.push_str(&format!("  (param {})\n", p.name.name)),
                        }
                    }
                    for item in &s.items {
                        match item {
                            SchemeItem::Tensor(t) => {
                                let dims: Vec<&str> = t.dims.iter().map(|d| d.name.as_str()).collect();
                                let tying = match &t.tying {
                                    AstTying::PerLayer => "per_layer".to_string(),
                                    AstTying::Tied => "tied".to_string(),
                                    AstTying::Partial(k) => format!("(partial {})", k.sexpr()),
                                };
                                let mut s = format!("  (tensor {} [{}] {tying}", t.name.name, dims.join(" "));
                                if !t.across.is_empty() {
                                    let groups: Vec<String> = t
                                        .across
                                        .iter()
                                        .map(|g| format!("({})", g.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(" ")))
                                        .collect();
                                    s.push_str(&format!(" (across {})", groups.join(" ")));
                                }
                                match &t.init {
                                    Some(AstInit::Expr(e)) => s.push_str(&format!(" (init {})", e.sexpr())),
                                    Some(AstInit::BasisMix { basis, mix }) => {
                                        s.push_str(&format!(" (init (basis {}) (mix {}))", basis.sexpr(), mix.sexpr()))
                                    }
                                    None => {}
                                }
                                if t.frozen {
                                    s.push_str(" frozen");
                                }
                                out.push_str(&s);
                                out.push_str(")\n");
                            }
                            SchemeItem::Let(l) => out.push_str(&format!("  (let {} {})\n", l.name.name, l.value.sexpr())),
                            SchemeItem::Output(o) => {
                                let k = if o.kind == OutputKind::Delta { "delta" } else { "y" };
                                out.push_str(&format!("  ({k} {})\n", o.value.sexpr()));
                            }
                        }
                    }
                    out.push_str(")\n");
                }
                Item::Experiment(x) => {
                    out.push_str(&format!("(experiment {}\n", x.name.name));
                    for item in &x.items {
                        match item {
                            ExperimentItem::Setting(kv) => out.push_str(&format!("  (set {} {})\n", kv.key.name, kv.value.sexpr())),
                            ExperimentItem::Targets(groups, _) => {
                                let g: Vec<String> = groups
                                    .iter()
                                    .map(|g| {
                                        let m: Vec<&str> = g.modules.iter().map(|i| i.name.as_str()).collect();
                                        match g.layers {
                                            Some((a, b, _)) => format!("([{}] {a}..{b})", m.join(" ")),
                                            None => format!("([{}] all)", m.join(" ")),
                                        }
                                    })
                                    .collect();
                                out.push_str(&format!("  (targets {})\n", g.join(" ")));
                            }
                            ExperimentItem::Train(kvs, _) => {
                                out.push_str("  (train");
                                for kv in kvs {
                                    out.push_str(&format!("\n    ({} {})", kv.key.name, kv.value.sexpr()));
                                }
                                out.push_str(")\n");
                            }
                            ExperimentItem::Run(r) => {
                                let mut s = format!("  (run {}", r.scheme.name);
                                for a in &r.args {
                                    s.push_str(&format!(" ({})", a.sexpr()));
                                }
                                if let Some(al) = &r.alias {
                                    s.push_str(&format!(" (as {})", al.name));
                                }
                                for kv in &r.overrides {
                                    s.push_str(&format!(" (override {} {})", kv.key.name, kv.value.sexpr()));
                                }
                                out.push_str(&s);
                                out.push_str(")\n");
                            }
                        }
                    }
                    out.push_str(")\n");
                }
            }
        }
        out
    }
}
