//! The pest parser and the conversion of pest pairs into the [`ast`](super::ast).

use pest::Parser;
use pest::iterators::Pair;
use pest::pratt_parser::{Assoc, Op, PrattParser};
use pest_derive::Parser;

use super::ast::*;
use super::diagnostic::{Diagnostic, ErrorKind};

#[derive(Parser)]
#[grammar = "grammar/peft.pest"]
struct PeftParser;

/// Spec files larger than this are rejected (they are hand-written and small).
pub const MAX_FILE_BYTES: usize = 256 * 1024;
/// Maximum nesting of brackets, and depth of an expression tree.
pub const MAX_DEPTH: usize = 96;

/// Parse one file. `file` is the file id used in spans.
/// A failure is one diagnostic (parsing stops at the first syntax error),
/// boxed: it is large next to the tree.
pub fn parse_file(file: usize, src: &str) -> Result<AstFile, Box<Diagnostic>> {
    if src.len() > MAX_FILE_BYTES {
        return Err(Box::new(Diagnostic::error(
            ErrorKind::TooComplex(format!("file is {} bytes; the limit is {MAX_FILE_BYTES}", src.len())),
            Span::new(file, 0, 0),
        )));
    }
    let mut depth = 0usize;
    for (i, c) in src.char_indices() {
        match c {
            '(' | '[' | '{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(Box::new(Diagnostic::error(
                        ErrorKind::TooComplex(format!("brackets nested deeper than {MAX_DEPTH}")),
                        Span::new(file, i, i + 1),
                    )));
                }
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    let pairs = PeftParser::parse(Rule::file, src).map_err(|e| Box::new(syntax_error(file, src, e)))?;
    let mut b = Builder { file, error: None };
    let mut items = Vec::new();
    for pair in pairs.flatten().take(1) {
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::import => items.push(Item::Import(b.import(p))),
                Rule::scheme => items.push(Item::Scheme(b.scheme(p))),
                Rule::experiment => items.push(Item::Experiment(b.experiment(p))),
                _ => {}
            }
        }
    }
    match b.error {
        Some(d) => Err(Box::new(d)),
        None => Ok(AstFile { items }),
    }
}

fn rule_name(r: &Rule) -> String {
    match r {
        Rule::EOI => "end of file".into(),
        Rule::ident => "a name".into(),
        Rule::number | Rule::int => "a number".into(),
        Rule::string => "a string".into(),
        Rule::expr => "an expression".into(),
        Rule::import => "`import`".into(),
        Rule::scheme => "`scheme`".into(),
        Rule::experiment => "`experiment`".into(),
        Rule::tying | Rule::kw_per_layer | Rule::kw_tied | Rule::partial | Rule::kw_partial => {
            "a tying mode (`per_layer`, `tied`, `partial(k)`)".into()
        }
        Rule::dim_list => "a dimension list like `[in, r]`".into(),
        Rule::let_decl => "`let`".into(),
        Rule::output => "`delta =` or `y =`".into(),
        Rule::tensor_decl => "a tensor declaration `name : [dims] tying`".into(),
        Rule::across => "`across`".into(),
        Rule::init => "`init`".into(),
        Rule::frozen | Rule::kw_frozen => "`frozen`".into(),
        Rule::param | Rule::param_list => "a parameter".into(),
        Rule::add | Rule::sub | Rule::mul | Rule::div | Rule::matmul | Rule::pow => "an operator".into(),
        Rule::neg => "`-`".into(),
        Rule::call => "a call".into(),
        Rule::list => "a list".into(),
        Rule::arg => "an argument".into(),
        Rule::kv => "a setting `key: value`".into(),
        Rule::setting => "a setting `name = value`".into(),
        Rule::targets_stmt => "`targets =`".into(),
        Rule::train_block => "`train { … }`".into(),
        Rule::run_stmt => "`run`".into(),
        Rule::layer_range => "a layer range `a..b`".into(),
        other => format!("{other:?}").trim_start_matches("kw_").to_string(),
    }
}

fn syntax_error(file: usize, src: &str, e: pest::error::Error<Rule>) -> Diagnostic {
    let (start, end) = match e.location {
        pest::error::InputLocation::Pos(p) => (p, p),
        pest::error::InputLocation::Span((s, e)) => (s, e),
    };
    let msg = match &e.variant {
        pest::error::ErrorVariant::ParsingError { positives, negatives } => {
            let mut pos: Vec<String> = positives.iter().map(rule_name).collect();
            pos.sort();
            pos.dedup();
            let found = src[start.min(src.len())..]
                .chars()
                .next()
                .map(|c| format!("`{}`", c.escape_debug()))
                .unwrap_or_else(|| "end of file".into());
            if !pos.is_empty() {
                format!("expected {}, found {found}", join_or(&pos))
            } else if !negatives.is_empty() {
                let neg: Vec<String> = negatives.iter().map(rule_name).collect();
                format!("unexpected {}", join_or(&neg))
            } else {
                format!("unexpected {found}")
            }
        }
        pest::error::ErrorVariant::CustomError { message } => message.clone(),
    };
    // Point at one character so the label is readable.
    let end = if end > start { end } else { (start + 1).min(src.len()).max(start) };
    Diagnostic::error(ErrorKind::Syntax(msg), Span::new(file, start, end))
}

fn join_or(v: &[String]) -> String {
    match v.len() {
        0 => String::new(),
        1 => v[0].clone(),
        n => format!("{} or {}", v[..n - 1].join(", "), v[n - 1]),
    }
}

struct Builder {
    file: usize,
    error: Option<Diagnostic>,
}

/// Operator precedence and associativity of formulas.
fn pratt_parser() -> PrattParser<Rule> {
    PrattParser::new()
        .op(Op::infix(Rule::add, Assoc::Left) | Op::infix(Rule::sub, Assoc::Left))
        .op(Op::infix(Rule::mul, Assoc::Left) | Op::infix(Rule::div, Assoc::Left))
        .op(Op::infix(Rule::matmul, Assoc::Left))
        .op(Op::prefix(Rule::neg))
        .op(Op::infix(Rule::pow, Assoc::Right))
}

impl Builder {
    fn span(&self, p: &Pair<Rule>) -> Span {
        // Pairs may carry trailing whitespace/comments: cut them off.
        let s = p.as_span();
        let text = trim_trailing(p.as_str());
        Span::new(self.file, s.start(), s.start() + text.len())
    }

    fn ident(&self, p: Pair<Rule>) -> Ident {
        Ident { name: p.as_str().to_string(), span: self.span(&p) }
    }

    fn fail(&mut self, d: Diagnostic) {
        if self.error.is_none() {
            self.error = Some(d);
        }
    }

    fn import(&mut self, p: Pair<Rule>) -> Import {
        let span = self.span(&p);
        let s = p.into_inner().find(|q| q.as_rule() == Rule::string).map(|q| q.into_inner().as_str().to_string());
        Import { path: s.unwrap_or_default(), span }
    }

    fn scheme(&mut self, p: Pair<Rule>) -> AstScheme {
        let span = self.span(&p);
        let mut name = None;
        let mut params = Vec::new();
        let mut items = Vec::new();
        for q in p.into_inner() {
            match q.as_rule() {
                Rule::ident => name = Some(self.ident(q)),
                Rule::param_list => {
                    for par in q.into_inner() {
                        let mut it = par.into_inner();
                        let n = self.ident(it.next().expect("param name"));
                        let default = it.next().map(|e| self.expr(e));
                        params.push(Param { name: n, default });
                    }
                }
                Rule::let_decl => {
                    let mut it = q.into_inner().filter(|x| x.as_rule() != Rule::kw_let);
                    let n = self.ident(it.next().expect("let name"));
                    let value = self.expr(it.next().expect("let value"));
                    items.push(SchemeItem::Let(AstLet { name: n, value }));
                }
                Rule::output => {
                    let ospan = self.span(&q);
                    let mut kind = OutputKind::Delta;
                    let mut value = None;
                    for r in q.into_inner() {
                        match r.as_rule() {
                            Rule::kw_y => kind = OutputKind::Y,
                            Rule::kw_delta => kind = OutputKind::Delta,
                            Rule::expr => value = Some(self.expr(r)),
                            _ => {}
                        }
                    }
                    items.push(SchemeItem::Output(AstOutput { kind, value: value.expect("output value"), span: ospan }));
                }
                Rule::tensor_decl => items.push(SchemeItem::Tensor(Box::new(self.tensor(q)))),
                _ => {}
            }
        }
        AstScheme { name: name.expect("scheme name"), params, items, span }
    }

    fn tensor(&mut self, p: Pair<Rule>) -> AstTensor {
        let span = self.span(&p);
        let mut t = AstTensor {
            name: Ident { name: String::new(), span },
            dims: Vec::new(),
            dims_span: span,
            tying: AstTying::PerLayer,
            tying_span: span,
            across: Vec::new(),
            init: None,
            init_span: None,
            frozen: false,
            span,
        };
        for q in p.into_inner() {
            match q.as_rule() {
                Rule::ident => t.name = self.ident(q),
                Rule::dim_list => {
                    t.dims_span = self.span(&q);
                    t.dims = q.into_inner().map(|d| self.ident(d)).collect();
                }
                Rule::tying => {
                    t.tying_span = self.span(&q);
                    let inner = q.into_inner().next().expect("tying");
                    t.tying = match inner.as_rule() {
                        Rule::kw_tied => AstTying::Tied,
                        Rule::partial => {
                            let e = inner.into_inner().find(|x| x.as_rule() == Rule::expr).expect("partial k");
                            AstTying::Partial(self.expr(e))
                        }
                        _ => AstTying::PerLayer,
                    };
                }
                Rule::across => {
                    for set in q.into_inner().filter(|x| x.as_rule() == Rule::target_set) {
                        t.across.push(set.into_inner().map(|i| self.ident(i)).collect());
                    }
                }
                Rule::init => {
                    t.init_span = Some(self.span(&q));
                    let inner = q.into_inner().find(|x| x.as_rule() != Rule::kw_init).expect("init body");
                    t.init = Some(match inner.as_rule() {
                        Rule::basis_mix => {
                            let mut es = inner.into_inner().filter(|x| x.as_rule() == Rule::expr);
                            let basis = self.expr(es.next().expect("basis"));
                            let mix = self.expr(es.next().expect("mix"));
                            AstInit::BasisMix { basis, mix }
                        }
                        _ => AstInit::Expr(self.expr(inner)),
                    });
                }
                Rule::frozen => t.frozen = true,
                _ => {}
            }
        }
        t
    }

    fn key_value(&mut self, p: Pair<Rule>) -> KeyValue {
        let mut it = p.into_inner();
        let key = self.ident(it.next().expect("key"));
        let value = self.expr(it.next().expect("value"));
        KeyValue { key, value }
    }

    fn experiment(&mut self, p: Pair<Rule>) -> AstExperiment {
        let span = self.span(&p);
        let mut name = None;
        let mut items = Vec::new();
        for q in p.into_inner() {
            match q.as_rule() {
                Rule::ident => name = Some(self.ident(q)),
                Rule::setting => {
                    let kv = self.key_value(q);
                    items.push(ExperimentItem::Setting(kv));
                }
                Rule::targets_stmt => {
                    let sspan = self.span(&q);
                    let mut groups = Vec::new();
                    for g in q.into_inner().filter(|x| x.as_rule() == Rule::target_group) {
                        let gspan = self.span(&g);
                        let mut modules = Vec::new();
                        let mut layers = None;
                        for r in g.into_inner() {
                            match r.as_rule() {
                                Rule::ident => modules.push(self.ident(r)),
                                Rule::layer_range => {
                                    let rspan = self.span(&r);
                                    let mut nums = r.into_inner().map(|n| n.as_str().parse::<usize>());
                                    match (nums.next(), nums.next()) {
                                        (Some(Ok(a)), Some(Ok(b))) => layers = Some((a, b, rspan)),
                                        _ => self.fail(Diagnostic::error(ErrorKind::BadValue("layer index is too large".into()), rspan)),
                                    }
                                }
                                _ => {}
                            }
                        }
                        groups.push(AstTargetGroup { modules, layers, span: gspan });
                    }
                    items.push(ExperimentItem::Targets(groups, sspan));
                }
                Rule::train_block => {
                    let tspan = self.span(&q);
                    let kvs = q.into_inner().filter(|x| x.as_rule() == Rule::kv).map(|k| self.key_value(k)).collect();
                    items.push(ExperimentItem::Train(kvs, tspan));
                }
                Rule::run_stmt => {
                    let rspan = self.span(&q);
                    let mut run = AstRun {
                        scheme: Ident { name: String::new(), span: rspan },
                        args: Vec::new(),
                        alias: None,
                        overrides: Vec::new(),
                        span: rspan,
                    };
                    for r in q.into_inner() {
                        match r.as_rule() {
                            Rule::ident => run.scheme = self.ident(r),
                            Rule::run_args => run.args = r.into_inner().map(|a| self.arg(a)).collect(),
                            Rule::run_alias => run.alias = r.into_inner().find(|x| x.as_rule() == Rule::ident).map(|i| self.ident(i)),
                            Rule::run_overrides => {
                                run.overrides = r.into_inner().map(|k| self.key_value(k)).collect();
                            }
                            _ => {}
                        }
                    }
                    items.push(ExperimentItem::Run(run));
                }
                _ => {}
            }
        }
        AstExperiment { name: name.expect("experiment name"), items, span }
    }

    fn arg(&mut self, p: Pair<Rule>) -> AstArg {
        let mut name = None;
        let mut value = None;
        for q in p.into_inner() {
            match q.as_rule() {
                Rule::ident => name = Some(self.ident(q)),
                Rule::expr => value = Some(self.expr(q)),
                _ => {}
            }
        }
        AstArg { name, value: value.expect("argument value") }
    }

    fn expr(&mut self, p: Pair<Rule>) -> AstExpr {
        let file = self.file;
        let pr = pratt_parser();
        let this = std::cell::RefCell::new(&mut *self);
        let e = pr
            .map_primary(|q| this.borrow_mut().primary(q))
            .map_prefix(|op, rhs| {
                let span = Span::new(file, op.as_span().start(), rhs.span.end);
                ast_expr(AstExprKind::Neg(Box::new(rhs)), span)
            })
            .map_infix(|lhs, op, rhs| {
                let op = match op.as_rule() {
                    Rule::add => AstBinOp::Add,
                    Rule::sub => AstBinOp::Sub,
                    Rule::mul => AstBinOp::Mul,
                    Rule::div => AstBinOp::Div,
                    Rule::matmul => AstBinOp::MatMul,
                    _ => AstBinOp::Pow,
                };
                let span = lhs.span.to(rhs.span);
                ast_expr(AstExprKind::Bin { op, lhs: Box::new(lhs), rhs: Box::new(rhs) }, span)
            })
            .parse(p.into_inner());
        if e.depth > MAX_DEPTH {
            self.fail(Diagnostic::error(ErrorKind::TooComplex(format!("expression nested deeper than {MAX_DEPTH}")), e.span));
        }
        e
    }

    fn primary(&mut self, p: Pair<Rule>) -> AstExpr {
        let span = self.span(&p);
        match p.as_rule() {
            Rule::number => match p.as_str().parse::<f64>() {
                Ok(v) if v.is_finite() => ast_expr(AstExprKind::Num(v), span),
                _ => {
                    self.fail(Diagnostic::error(ErrorKind::BadValue("number out of range".into()), span));
                    ast_expr(AstExprKind::Num(0.0), span)
                }
            },
            Rule::string => ast_expr(AstExprKind::Str(p.into_inner().as_str().to_string()), span),
            Rule::ident => ast_expr(AstExprKind::Ident(p.as_str().to_string()), span),
            Rule::list => ast_expr(AstExprKind::List(p.into_inner().map(|q| self.expr(q)).collect()), span),
            Rule::call => {
                let mut it = p.into_inner();
                let func = self.ident(it.next().expect("callee"));
                let args = it.map(|a| self.arg(a)).collect();
                ast_expr(AstExprKind::Call { func, args }, span)
            }
            Rule::expr => {
                // Parenthesised: keep the inner expression, widen nothing.
                self.expr(p)
            }
            _ => ast_expr(AstExprKind::Num(0.0), span),
        }
    }
}

/// Strip trailing whitespace and `//` comments.
fn trim_trailing(mut s: &str) -> &str {
    loop {
        let t = s.trim_end();
        // A trailing line comment: drop from its `//` if the last line has one
        // outside a string (spec strings never contain `//` at line end here).
        if let Some(nl) = t.rfind('\n') {
            let last = &t[nl + 1..];
            if last.trim_start().starts_with("//") {
                s = &t[..nl];
                continue;
            }
        }
        return t;
    }
}

/// An AST node with the height of its tree; deeper than [`MAX_DEPTH`], a
/// shallow placeholder instead (the caller reports `TooComplex`).
fn ast_expr(kind: AstExprKind, span: Span) -> AstExpr {
    let depth = match &kind {
        AstExprKind::Bin { lhs, rhs, .. } => 1 + lhs.depth.max(rhs.depth),
        AstExprKind::Neg(a) => 1 + a.depth,
        AstExprKind::List(v) => 1 + v.iter().map(|e| e.depth).max().unwrap_or(0),
        AstExprKind::Call { args, .. } => 1 + args.iter().map(|a| a.value.depth).max().unwrap_or(0),
        _ => 1,
    };
    if depth > MAX_DEPTH {
        // Truncate: the caller reports `TooComplex`; the tree stays shallow so
        // nothing later (checking, dropping) can recurse deeply.
        return AstExpr { kind: AstExprKind::Num(0.0), span, depth: MAX_DEPTH + 1 };
    }
    AstExpr { kind, span, depth }
}
