//! The scheme body in source order: its items enter (tensors, lets, the
//! output); what they declare leaves: every tensor with its dims, tying,
//! init and sharing groups, the typed lets, the typed output, and the names
//! the formulas use. Each item is checked against the items before it; a
//! declaration with an error is poisoned, so that its uses stay silent.

use std::collections::{BTreeMap, BTreeSet};

use super::arguments::GivenArg;
use super::init::{init_fits, starts_at_zero, tensor_init};
use super::names::{RESERVED, declare_name, dimension_names, parameter_names};
use super::scope::{Scope, TensorInfo};
use super::shapes::tensor_dims;
use super::target_slot::TargetSlot;
use super::tying::{across_groups, tensor_tying};
use crate::lang::ast::*;
use crate::lang::diagnostic::{Diagnostic, ErrorKind};
use crate::lang::ir::*;

/// What a scheme body declares, filled item by item by [`Declarations::declare_items`].
pub(super) struct Declarations<'s> {
    params: &'s BTreeMap<String, f64>,
    given: &'s BTreeMap<String, GivenArg>,
    targets: &'s [TargetSlot],
    /// Every name declared so far (parameters, tensors, lets).
    declared: BTreeMap<String, Span>,
    /// Names a dim list may use: `in`, `out` and the parameters.
    dim_names: BTreeSet<String>,
    /// Names whose declaration had an error: uses are silent (no cascade).
    poisoned: BTreeSet<String>,
    /// The tensors as formulas see them.
    pub(super) tensors: BTreeMap<String, TensorInfo>,
    /// The tensors in source order.
    pub(super) tensor_order: Vec<&'s AstTensor>,
    /// The typed lets by name, for formulas.
    pub(super) lets: BTreeMap<String, Expr>,
    /// The typed lets in source order.
    pub(super) let_list: Vec<LetBinding>,
    pub(super) let_spans: BTreeMap<String, Span>,
    /// The first output, typed (`None` inside when typing it failed).
    pub(super) output: Option<(&'s AstOutput, Option<Expr>)>,
    /// The IR of every valid tensor declaration, in source order.
    pub(super) decls: Vec<TensorDecl>,
    pub(super) init_spans: BTreeMap<String, Span>,
    /// Tensors and lets some formula uses.
    pub(super) used: BTreeSet<String>,
}

impl<'s> Declarations<'s> {
    /// Nothing declared yet but the parameters of `s`, whose values are
    /// `params`.
    pub(super) fn new(
        s: &AstScheme,
        params: &'s BTreeMap<String, f64>,
        given: &'s BTreeMap<String, GivenArg>,
        targets: &'s [TargetSlot],
    ) -> Self {
        Declarations {
            params,
            given,
            targets,
            declared: parameter_names(s),
            dim_names: dimension_names(s),
            poisoned: BTreeSet::new(),
            tensors: BTreeMap::new(),
            tensor_order: Vec::new(),
            lets: BTreeMap::new(),
            let_list: Vec::new(),
            let_spans: BTreeMap::new(),
            output: None,
            decls: Vec::new(),
            init_spans: BTreeMap::new(),
            used: BTreeSet::new(),
        }
    }

    /// Declare every item of the body, in source order.
    pub(super) fn declare_items(&mut self, items: &'s [SchemeItem], d: &mut Vec<Diagnostic>) {
        for item in items {
            match item {
                SchemeItem::Tensor(t) => self.declare_tensor(t, d),
                SchemeItem::Let(l) => self.declare_let(l, d),
                SchemeItem::Output(o) => self.declare_output(o, d),
            }
        }
    }

    /// Declare the name of a tensor or let; a reserved name is poisoned.
    fn declare(&mut self, n: &Ident, what: &'static str, d: &mut Vec<Diagnostic>) -> bool {
        if !declare_name(n, what, &mut self.declared, d) {
            if RESERVED.contains(&n.name.as_str()) {
                self.poisoned.insert(n.name.clone());
            }
            return false;
        }
        true
    }

    /// Type `e` over everything declared so far; also the names it uses.
    fn type_formula(&self, e: &AstExpr, d: &mut Vec<Diagnostic>) -> (Option<Expr>, BTreeSet<String>) {
        let scope = Scope {
            poisoned: &self.poisoned,
            params: self.params,
            tensors: &self.tensors,
            lets: &self.lets,
            dim_names: &self.dim_names,
            used: Default::default(),
        };
        let e = scope.type_expr(e, d);
        (e, scope.used.into_inner())
    }

    fn declare_tensor(&mut self, t: &'s AstTensor, d: &mut Vec<Diagnostic>) {
        if !self.declare(&t.name, "tensor", d) {
            return;
        }
        let (dims, dims_ok) = tensor_dims(t, &self.dim_names, self.params, self.given, d);
        let (tying, tying_ok) = tensor_tying(t, self.params, self.given, self.targets, d);
        // Invalid dims or tying: no init to check against them.
        if !(dims_ok && tying_ok) {
            self.poisoned.insert(t.name.name.clone());
            return;
        }
        // An init sees the parameters and `W`, not the other tensors or lets.
        let scope = Scope {
            poisoned: &self.poisoned,
            params: self.params,
            tensors: &BTreeMap::new(),
            lets: &BTreeMap::new(),
            dim_names: &self.dim_names,
            used: Default::default(),
        };
        let Some((init, ispan)) = tensor_init(t, tying, &scope, d) else {
            self.poisoned.insert(t.name.name.clone());
            return;
        };
        let mut ok = init_fits(t, &init, ispan, tying, &dims, self.params, self.targets, d);
        // Across-module groups.
        let groups = match across_groups(t, &dims, self.params, self.targets, d) {
            Some(g) => g,
            None => {
                ok = false;
                vec![]
            }
        };
        if !ok {
            self.poisoned.insert(t.name.name.clone());
            return;
        }
        let zero = starts_at_zero(&init);
        self.tensors.insert(t.name.name.clone(), TensorInfo { dims: dims.clone(), trainable: !t.frozen, zero });
        self.init_spans.insert(t.name.name.clone(), ispan);
        self.tensor_order.push(t);
        self.decls.push(TensorDecl { name: t.name.name.clone(), dims, tying, groups, init, trainable: !t.frozen });
    }

    fn declare_let(&mut self, l: &AstLet, d: &mut Vec<Diagnostic>) {
        if !self.declare(&l.name, "let binding", d) {
            return;
        }
        let (e, used) = self.type_formula(&l.value, d);
        self.used.extend(used);
        if e.is_none() {
            self.poisoned.insert(l.name.name.clone());
        }
        if let Some(e) = e {
            let constant = !e.depends_on_x && !e.depends_on_trainable;
            self.lets.insert(l.name.name.clone(), e.clone());
            self.let_spans.insert(l.name.name.clone(), l.name.span);
            self.let_list.push(LetBinding { name: l.name.name.clone(), expr: e, constant });
        }
    }

    fn declare_output(&mut self, o: &'s AstOutput, d: &mut Vec<Diagnostic>) {
        if let Some((prev, _)) = &self.output {
            d.push(Diagnostic::error(ErrorKind::DuplicateOutput, o.span).label("second output").with(prev.span, "first output here"));
            return;
        }
        let (e, used) = self.type_formula(&o.value, d);
        self.used.extend(used);
        self.output = Some((o, e));
    }

    /// Warn (W0104) about every tensor, then every let, that no formula uses.
    pub(super) fn warn_unused(&self, d: &mut Vec<Diagnostic>) {
        for t in &self.tensor_order {
            if !self.used.contains(&t.name.name) {
                d.push(
                    Diagnostic::error(ErrorKind::Unused(format!("tensor `{}` is never used", t.name.name)), t.name.span)
                        .label("declared here")
                        .note("it is still stored and counted"),
                );
            }
        }
        for (n, sp) in &self.let_spans {
            if !self.used.contains(n) {
                d.push(Diagnostic::error(ErrorKind::Unused(format!("`let {n}` is never used")), *sp).label("declared here"));
            }
        }
    }
}
