//! Checking experiments: model, data, targets, train settings, and the
//! expansion of runs (sweeps) into instantiated schemes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::ast::*;
use super::checker::{self, GivenArg, InstantiateCtx, TargetSlot, eval_const};
use super::diagnostic::{Diagnostic, ErrorKind};
use super::ir::*;
use super::number;
use super::preset;
use super::search::Distribution;
use super::source::normalize;
use crate::lang::target::Target;

/// A scheme available to experiments: its AST and the text of its file.
pub struct SchemeRef<'a> {
    pub ast: &'a AstScheme,
    pub text: &'a str,
}

/// Push an error with a primary label.
fn push_error(d: &mut Vec<Diagnostic>, kind: ErrorKind, span: Span, label: &str) {
    d.push(Diagnostic::error(kind, span).label(label));
}

/// A constant, finite number (no parameters in scope).
fn constant_number(e: &AstExpr, d: &mut Vec<Diagnostic>) -> Option<f64> {
    match eval_const(e, &BTreeMap::new()) {
        Ok(v) if v.is_finite() => Some(v),
        Ok(_) => {
            push_error(d, ErrorKind::NotANumber("not finite".into()), e.span, "here");
            None
        }
        Err((sp, m)) => {
            push_error(d, ErrorKind::NotANumber(m), sp, "expected a number");
            None
        }
    }
}

/// A constant integer ≥ `min` (and at most 10¹⁵), for setting `what`.
fn integer_at_least(e: &AstExpr, what: &str, min: u64, d: &mut Vec<Diagnostic>) -> Option<u64> {
    let v = constant_number(e, d)?;
    if v.fract() != 0.0 || v < min as f64 || v > 1e15 {
        push_error(d, ErrorKind::BadValue(format!("{what} must be an integer ≥ {min}, found {}", number::plain(v))), e.span, "here");
        return None;
    }
    Some(v as u64)
}

/// A constant number > 0, or ≥ 0 when `allow_zero`, for setting `what`.
fn positive_number(e: &AstExpr, what: &str, allow_zero: bool, d: &mut Vec<Diagnostic>) -> Option<f64> {
    let v = constant_number(e, d)?;
    if v < 0.0 || (!allow_zero && v == 0.0) {
        let bound = if allow_zero { "≥ 0" } else { "> 0" };
        push_error(d, ErrorKind::BadValue(format!("{what} must be {bound}, found {}", number::plain(v))), e.span, "here");
        return None;
    }
    Some(v)
}

/// The name when `e` is a bare word (`all`, `none`, `bf16`, …).
fn bare_word(e: &AstExpr) -> Option<&str> {
    match &e.kind {
        AstExprKind::Ident(n) => Some(n),
        _ => None,
    }
}

/// The function and arguments when `e` is a call.
fn call_parts(e: &AstExpr) -> Option<(&Ident, &[AstArg])> {
    match &e.kind {
        AstExprKind::Call { func, args } => Some((func, args)),
        _ => None,
    }
}

/// The first argument when it is a positional string, with its span.
fn string_arg(args: &[AstArg]) -> Option<(&str, Span)> {
    match args.first().map(|a| (&a.name, &a.value)) {
        Some((None, AstExpr { kind: AstExprKind::Str(s), span, .. })) => Some((s, *span)),
        _ => None,
    }
}

/// Every named argument is one of `allowed` and given once (reported otherwise).
fn check_keys(args: &[AstArg], allowed: &[&str], ctx: &str, d: &mut Vec<Diagnostic>) -> bool {
    let mut ok = true;
    let mut seen: BTreeMap<&str, Span> = BTreeMap::new();
    for a in args {
        if let Some(n) = &a.name {
            if !allowed.contains(&n.name.as_str()) {
                d.push(
                    Diagnostic::error(ErrorKind::UnknownSetting(format!("`{}` in {ctx}", n.name)), n.span)
                        .label("unknown")
                        .note(format!("expected one of: {}", allowed.join(", "))),
                );
                ok = false;
            } else if let Some(prev) = seen.insert(&n.name, n.span) {
                d.push(
                    Diagnostic::error(ErrorKind::Duplicate { what: "setting", name: n.name.clone() }, n.span)
                        .label("given again")
                        .with(prev, "first given here"),
                );
                ok = false;
            }
        }
    }
    ok
}

/// The value of the argument named `k`.
fn named_arg<'a>(args: &'a [AstArg], k: &str) -> Option<&'a AstExpr> {
    args.iter().find(|a| a.name.as_ref().is_some_and(|n| n.name == k)).map(|a| &a.value)
}

fn resolve_path(dir: &Path, p: &str) -> PathBuf {
    normalize(&dir.join(p))
}

/// Model shapes of a source, with the `shapes:` hint as fallback.
fn model(e: &AstExpr, dir: &Path, override_shapes: Option<&ModelShapes>, d: &mut Vec<Diagnostic>) -> Option<(ModelSource, ModelShapes)> {
    let Some((func, args)) = call_parts(e) else {
        push_error(d, ErrorKind::BadValue("`model` is gguf(\"file\"), hf(\"dir\") or preset(\"name\")".into()), e.span, "here");
        return None;
    };
    if !check_keys(args, &["shapes"], "model", d) {
        return None;
    }
    let Some((s, sspan)) = string_arg(args) else {
        push_error(d, ErrorKind::BadValue(format!("`{}` takes a string first", func.name)), e.span, "here");
        return None;
    };
    let hint = match named_arg(args, "shapes") {
        None => None,
        Some(h) => match &h.kind {
            AstExprKind::Str(n) => match preset::preset(n) {
                Some(p) => Some(p),
                None => {
                    push_error(
                        d,
                        ErrorKind::ModelShapes(format!("unknown preset `{n}` (known: {})", preset::PRESETS.join(", "))),
                        h.span,
                        "unknown preset",
                    );
                    return None;
                }
            },
            _ => {
                push_error(d, ErrorKind::BadValue("`shapes:` takes a preset name string".into()), h.span, "here");
                return None;
            }
        },
    };
    // Messages name the path as written, not the absolute one.
    let (src, read): (ModelSource, Result<ModelShapes, String>) = match func.name.as_str() {
        "gguf" => {
            let p = resolve_path(dir, s);
            let r = preset::read_gguf_shapes(&p).map_err(|m| m.replace(&p.display().to_string(), s));
            (ModelSource::Gguf(p), r)
        }
        "hf" => {
            let p = resolve_path(dir, s);
            let r = preset::read_hf_config(&p).map_err(|m| m.replace(&p.display().to_string(), s));
            (ModelSource::Hf(p), r)
        }
        "preset" => match preset::preset(s) {
            Some(p) => (ModelSource::Preset(s.to_string()), Ok(p)),
            None => {
                push_error(
                    d,
                    ErrorKind::ModelShapes(format!("unknown preset `{s}` (known: {})", preset::PRESETS.join(", "))),
                    sspan,
                    "unknown preset",
                );
                return None;
            }
        },
        other => {
            push_error(d, ErrorKind::BadValue(format!("unknown model source `{other}` (gguf, hf, preset)")), func.span, "here");
            return None;
        }
    };
    if let Some(o) = override_shapes {
        return Some((src, o.clone()));
    }
    match (read, hint) {
        (Ok(s), _) => Some((src, s)),
        (Err(_), Some(h)) => Some((src, h)),
        (Err(m), None) => {
            d.push(
                Diagnostic::error(ErrorKind::ModelShapes(m), e.span)
                    .label("cannot read this model")
                    .note("run scripts/setup.sh, or add `shapes: \"smollm2-135m\"` to use a preset's shapes"),
            );
            None
        }
    }
}

fn data(e: &AstExpr, dir: &Path, d: &mut Vec<Diagnostic>) -> Option<DataSpec> {
    let Some((func, args)) = call_parts(e).filter(|(f, _)| f.name == "gsm8k") else {
        push_error(
            d,
            ErrorKind::BadValue("`data` is gsm8k(\"dir\", train: N|all, test: N|all, max_len: N, loss: all|completion)".into()),
            e.span,
            "here",
        );
        return None;
    };
    let _ = func;
    if !check_keys(args, &["train", "test", "max_len", "loss"], "gsm8k", d) {
        return None;
    }
    let Some((s, _)) = string_arg(args) else {
        push_error(d, ErrorKind::BadValue("gsm8k takes the data directory first".into()), e.span, "here");
        return None;
    };
    let subset = |k: &str, d: &mut Vec<Diagnostic>| -> Option<Subset> {
        match named_arg(args, k) {
            None => Some(Subset::All),
            Some(v) if bare_word(v) == Some("all") => Some(Subset::All),
            Some(v) => integer_at_least(v, k, 1, d).map(|n| Subset::First(n as usize)),
        }
    };
    let train = subset("train", d);
    let test = subset("test", d);
    let max_len = match named_arg(args, "max_len") {
        None => Some(512),
        Some(v) => integer_at_least(v, "max_len", 2, d).map(|v| v as usize),
    };
    let loss = match named_arg(args, "loss") {
        None => Some(LossOn::All),
        Some(v) => match bare_word(v) {
            Some("all") => Some(LossOn::All),
            Some("completion") => Some(LossOn::Completion),
            _ => {
                push_error(d, ErrorKind::BadValue("loss is `all` or `completion`".into()), v.span, "here");
                None
            }
        },
    };
    Some(DataSpec { dir: resolve_path(dir, s), train: train?, test: test?, max_len: max_len?, loss: loss? })
}

fn default_train() -> TrainSpec {
    TrainSpec {
        optimizer: Optimizer::pytorch(OptimizerKind::AdamW, 1e-3),
        schedule: Schedule { kind: ScheduleKind::Constant, warmup: Warmup::None },
        grad_clip: None,
        epochs: 1,
        batch: 8,
        seed: 0,
        precision: Precision::Checkpoint,
        merge: MergePolicy::Optional,
        micro_tokens: None,
        seeds: Vec::new(),
        checkpoint: CheckpointEvery::default(),
    }
}

fn optimizer(e: &AstExpr, d: &mut Vec<Diagnostic>) -> Option<Optimizer> {
    let (name, args): (&str, &[AstArg]) = match &e.kind {
        AstExprKind::Ident(n) => (n, &[]),
        AstExprKind::Call { func, args } => (&func.name, args),
        _ => ("", &[]),
    };
    let kind = match name {
        "adamw" => OptimizerKind::AdamW,
        "adam" => OptimizerKind::Adam,
        "sgd" => OptimizerKind::Sgd,
        _ => {
            push_error(d, ErrorKind::BadValue("optimizer is adamw(…), adam(…) or sgd(…)".into()), e.span, "here");
            return None;
        }
    };
    if !check_keys(args, &["lr", "betas", "eps", "weight_decay", "momentum"], name, d) {
        return None;
    }
    if let Some(a) = args.iter().find(|a| a.name.is_none()) {
        push_error(d, ErrorKind::BadValue("optimizer arguments are named_arg (lr: …)".into()), a.value.span, "positional");
        return None;
    }
    let mut o = Optimizer::pytorch(kind, default_train().optimizer.lr);
    let mut ok = true;
    if let Some(v) = named_arg(args, "lr") {
        match positive_number(v, "lr", false, d) {
            Some(x) => o.lr = x,
            None => ok = false,
        }
    }
    if let Some(v) = named_arg(args, "eps") {
        match positive_number(v, "eps", false, d) {
            Some(x) => o.eps = x,
            None => ok = false,
        }
    }
    if let Some(v) = named_arg(args, "weight_decay") {
        match positive_number(v, "weight_decay", true, d) {
            Some(x) => o.weight_decay = x,
            None => ok = false,
        }
    }
    if let Some(v) = named_arg(args, "momentum") {
        match positive_number(v, "momentum", true, d) {
            Some(x) if x < 1.0 => o.momentum = x,
            Some(_) => {
                push_error(d, ErrorKind::BadValue("momentum must be < 1".into()), v.span, "here");
                ok = false;
            }
            None => ok = false,
        }
    }
    if let Some(v) = named_arg(args, "betas") {
        match &v.kind {
            AstExprKind::List(items) if items.len() == 2 => {
                let (a, b) = (constant_number(&items[0], d), constant_number(&items[1], d));
                match (a, b) {
                    (Some(a), Some(b)) if (0.0..1.0).contains(&a) && (0.0..1.0).contains(&b) => o.betas = (a, b),
                    (Some(_), Some(_)) => {
                        push_error(d, ErrorKind::BadValue("betas must lie in [0, 1)".into()), v.span, "here");
                        ok = false;
                    }
                    _ => ok = false,
                }
            }
            _ => {
                push_error(d, ErrorKind::BadValue("betas is a list of two numbers, e.g. [0.9, 0.999]".into()), v.span, "here");
                ok = false;
            }
        }
    }
    ok.then_some(o)
}

fn schedule(e: &AstExpr, d: &mut Vec<Diagnostic>) -> Option<Schedule> {
    let (name, args): (&str, &[AstArg]) = match &e.kind {
        AstExprKind::Ident(n) => (n, &[]),
        AstExprKind::Call { func, args } => (&func.name, args),
        _ => ("", &[]),
    };
    let kind = match name {
        "constant" => ScheduleKind::Constant,
        "cosine" => ScheduleKind::Cosine,
        "linear" => ScheduleKind::Linear,
        _ => {
            push_error(
                d,
                ErrorKind::BadValue("schedule is constant, cosine or linear (optionally with warmup: steps or warmup_ratio: r)".into()),
                e.span,
                "here",
            );
            return None;
        }
    };
    if !check_keys(args, &["warmup", "warmup_ratio"], name, d) {
        return None;
    }
    let warmup = match (named_arg(args, "warmup"), named_arg(args, "warmup_ratio")) {
        (Some(a), Some(b)) => {
            d.push(
                Diagnostic::error(ErrorKind::BadValue("give `warmup` or `warmup_ratio`, not both".into()), b.span)
                    .with(a.span, "warmup given here"),
            );
            return None;
        }
        (Some(a), None) => Warmup::Steps(integer_at_least(a, "warmup", 0, d)? as usize),
        (None, Some(b)) => {
            let r = positive_number(b, "warmup_ratio", true, d)?;
            if r >= 1.0 {
                push_error(d, ErrorKind::BadValue("warmup_ratio must be < 1".into()), b.span, "here");
                return None;
            }
            Warmup::Ratio(r)
        }
        (None, None) => Warmup::None,
    };
    Some(Schedule { kind, warmup })
}

/// `every(steps: N, minutes: M)`: step checkpoints (at least one of the two).
fn checkpoint_every(e: &AstExpr, d: &mut Vec<Diagnostic>) -> Option<CheckpointEvery> {
    let bad = |d: &mut Vec<Diagnostic>, span| {
        push_error(d, ErrorKind::BadValue("checkpoint is every(steps: N, minutes: M), with one or both".into()), span, "here");
    };
    let AstExprKind::Call { func, args } = &e.kind else {
        bad(d, e.span);
        return None;
    };
    if func.name != "every" {
        bad(d, e.span);
        return None;
    }
    if !check_keys(args, &["steps", "minutes"], "every", d) {
        return None;
    }
    let (steps, minutes) = (named_arg(args, "steps"), named_arg(args, "minutes"));
    if steps.is_none() && minutes.is_none() {
        bad(d, e.span);
        return None;
    }
    let steps = match steps {
        Some(v) => Some(integer_at_least(v, "steps", 1, d)?),
        None => None,
    };
    let minutes = match minutes {
        Some(v) => Some(positive_number(v, "minutes", false, d)?),
        None => None,
    };
    Some(CheckpointEvery { steps, minutes })
}

/// Apply one `key: value` train setting. Returns the span-able success.
fn apply_train(t: &mut TrainSpec, kv: &KeyValue, allow_run_only: bool, d: &mut Vec<Diagnostic>) -> bool {
    let v = &kv.value;
    macro_rules! set {
        ($e:expr) => {
            $e.is_some()
        };
    }
    match kv.key.name.as_str() {
        "optimizer" => set!(optimizer(v, d).map(|o| t.optimizer = o)),
        "lr" => set!(positive_number(v, "lr", false, d).map(|x| t.optimizer.lr = x)),
        "weight_decay" => set!(positive_number(v, "weight_decay", true, d).map(|x| t.optimizer.weight_decay = x)),
        "schedule" => set!(schedule(v, d).map(|s| t.schedule = s)),
        "grad_clip" => {
            if bare_word(v) == Some("none") {
                t.grad_clip = None;
                true
            } else {
                set!(positive_number(v, "grad_clip", false, d).map(|x| t.grad_clip = Some(x)))
            }
        }
        "epochs" => set!(integer_at_least(v, "epochs", 1, d).map(|x| t.epochs = x as usize)),
        "batch" => set!(integer_at_least(v, "batch", 1, d).map(|x| t.batch = x as usize)),
        "seed" => set!(integer_at_least(v, "seed", 0, d).map(|x| t.seed = x)),
        "precision" if !allow_run_only => match bare_word(v) {
            Some("f32") => {
                t.precision = Precision::F32;
                true
            }
            Some("bf16") => {
                t.precision = Precision::Bf16;
                true
            }
            Some("checkpoint") => {
                t.precision = Precision::Checkpoint;
                true
            }
            _ => {
                push_error(d, ErrorKind::BadValue("precision is f32, bf16 or checkpoint".into()), v.span, "here");
                false
            }
        },
        "micro_tokens" if !allow_run_only => match bare_word(v) {
            Some("auto") => {
                t.micro_tokens = None;
                true
            }
            Some(_) => {
                push_error(d, ErrorKind::BadValue("micro_tokens is `auto` or a number of padded tokens".into()), v.span, "here");
                false
            }
            None => {
                set!(integer_at_least(v, "micro_tokens", 2, d).map(|x| t.micro_tokens = Some(x as usize)))
            }
        },
        "seeds" if !allow_run_only => set!(seed_list(v, d).map(|x| t.seeds = x)),
        "checkpoint" if !allow_run_only => set!(checkpoint_every(v, d).map(|c| t.checkpoint = c)),
        "merge" if !allow_run_only => match bare_word(v) {
            Some("required") => {
                t.merge = MergePolicy::Required;
                true
            }
            Some("optional") => {
                t.merge = MergePolicy::Optional;
                true
            }
            _ => {
                push_error(d, ErrorKind::BadValue("merge is required or optional".into()), v.span, "here");
                false
            }
        },
        other => {
            let keys = if allow_run_only {
                "lr, weight_decay, optimizer, schedule, grad_clip, epochs, batch, seed"
            } else {
                "optimizer, lr, weight_decay, schedule, grad_clip, epochs, batch, seed, seeds, precision, merge, micro_tokens, checkpoint"
            };
            let mut diag =
                Diagnostic::error(ErrorKind::UnknownSetting(format!("`{other}` in train settings")), kv.key.span).label("unknown");
            if allow_run_only && other == "seeds" {
                diag = diag.note("`seeds` replicates every run and is set in the experiment's `train { … }` block; a run sweeps its own with `seed: [0, 1, 2]`");
            } else if allow_run_only && matches!(other, "precision" | "merge" | "micro_tokens" | "checkpoint") {
                diag = diag.note(format!("`{other}` is set for the whole experiment, in its `train {{ … }}` block"));
            } else if let Some(h) = super::diagnostic::did_you_mean(other, keys.split(", ")) {
                diag = diag.note(h);
            }
            d.push(diag.note(format!("expected one of: {keys}")));
            false
        }
    }
}

/// `seeds: [0, 1, 2]`: distinct integers ≥ 0, at least one.
fn seed_list(e: &AstExpr, d: &mut Vec<Diagnostic>) -> Option<Vec<u64>> {
    let AstExprKind::List(items) = &e.kind else {
        push_error(d, ErrorKind::BadValue("seeds is a list of integers, e.g. [0, 1, 2]".into()), e.span, "here");
        return None;
    };
    if items.is_empty() {
        push_error(d, ErrorKind::EmptySweep("seeds".into()), e.span, "no seeds");
        return None;
    }
    let mut out: Vec<u64> = Vec::new();
    for it in items {
        let v = integer_at_least(it, "a seed", 0, d)?;
        if out.contains(&v) {
            push_error(d, ErrorKind::BadValue(format!("seed {v} is listed twice")), it.span, "again here");
            return None;
        }
        out.push(v);
    }
    Some(out)
}

/// `select = train_loss(epoch: last | N)` or `test_loss(best)`.
fn selection(e: &AstExpr, d: &mut Vec<Diagnostic>) -> Option<(Selection, Span)> {
    let bad = |d: &mut Vec<Diagnostic>, span: Span, what: &str| {
        d.push(
            Diagnostic::error(ErrorKind::BadSelection(what.into()), span)
                .label("here")
                .note("select is train_loss(epoch: last), train_loss(epoch: N) or test_loss(best)"),
        );
        None
    };
    let Some((func, args)) = call_parts(e) else {
        return bad(d, e.span, "expected a call");
    };
    match func.name.as_str() {
        "train_loss" => {
            if !check_keys(args, &["epoch"], "train_loss", d) {
                return None;
            }
            match args {
                [] => Some((Selection::TrainLoss { epoch: None }, e.span)),
                [AstArg { name: Some(_), value }] if bare_word(value) == Some("last") => {
                    Some((Selection::TrainLoss { epoch: None }, e.span))
                }
                [AstArg { name: Some(_), value }] => {
                    let n = integer_at_least(value, "epoch", 1, d)?;
                    Some((Selection::TrainLoss { epoch: Some(n as usize) }, value.span))
                }
                _ => bad(d, e.span, "train_loss takes `epoch: last` or `epoch: N`"),
            }
        }
        "test_loss" => match args {
            [AstArg { name: None, value }] if bare_word(value) == Some("best") => Some((Selection::TestLossBest, e.span)),
            _ => bad(d, e.span, "test_loss selects by the best end-of-epoch test loss: `test_loss(best)`"),
        },
        other => bad(d, func.span, &format!("unknown selection `{other}`")),
    }
}

/// Parse target groups into slots.
fn targets(groups: &[AstTargetGroup], shapes: &ModelShapes, d: &mut Vec<Diagnostic>) -> Option<(Vec<TargetGroup>, Vec<TargetSlot>)> {
    let mut out = Vec::new();
    let mut slots: Vec<TargetSlot> = Vec::new();
    let mut seen: BTreeMap<Target, Span> = BTreeMap::new();
    let mut ok = true;
    for g in groups {
        let mut mods = Vec::new();
        for m in &g.modules {
            let list: Vec<Target> = if m.name == "all" {
                Target::ALL.to_vec()
            } else {
                match m.name.parse::<Target>() {
                    Ok(t) => vec![t],
                    Err(_) => {
                        let mut diag = Diagnostic::error(ErrorKind::UnknownTarget(m.name.clone()), m.span).label("not a target module");
                        if let Some(h) = super::diagnostic::did_you_mean(&m.name, Target::ALL.iter().map(|t| t.name())) {
                            diag = diag.note(h);
                        }
                        d.push(diag);
                        ok = false;
                        continue;
                    }
                }
            };
            for t in list {
                if let Some(prev) = seen.insert(t, m.span) {
                    d.push(
                        Diagnostic::error(ErrorKind::BadLayerRange(format!("target `{t}` is listed twice")), m.span)
                            .label("again here")
                            .with(prev, "first listed here")
                            .note("a target module takes one layer range"),
                    );
                    ok = false;
                    continue;
                }
                mods.push(t);
            }
        }
        let layers = match g.layers {
            None => 0..shapes.num_layers,
            Some((a, b, sp)) => {
                if a >= b || b > shapes.num_layers {
                    push_error(
                        d,
                        ErrorKind::BadLayerRange(format!(
                            "{a}..{b} is {} (the model has layers 0..{})",
                            if a >= b { "empty" } else { "out of range" },
                            shapes.num_layers
                        )),
                        sp,
                        "this range",
                    );
                    ok = false;
                    continue;
                }
                a..b
            }
        };
        for &t in &mods {
            let (i, o) = shapes.target_shape(t);
            slots.push(TargetSlot { target: t, layers: layers.clone(), in_dim: i, out_dim: o });
        }
        if !mods.is_empty() {
            out.push(TargetGroup { modules: mods, layers });
        }
    }
    slots.sort_by_key(|s| s.target);
    (ok && !slots.is_empty()).then_some((out, slots))
}

/// The values of one run argument: one value or a list (a grid), or a
/// distribution of a random search.
#[derive(Debug, Clone)]
enum AxisValues {
    Grid(Vec<(f64, Span)>),
    Random(Distribution, Span),
}

/// One argument of a run: its name, its values, and whether it overrides a
/// train setting (rather than a scheme parameter).
struct Axis {
    name: String,
    values: AxisValues,
    is_override: bool,
}

impl Axis {
    /// Varies between the runs of its statement (a list of several values,
    /// or drawn).
    fn varies(&self) -> bool {
        match &self.values {
            AxisValues::Grid(v) => v.len() > 1,
            AxisValues::Random(..) => true,
        }
    }
}

/// One value, a list, or a distribution (`loguniform(…)`, `uniform(…)`,
/// `choice(…)`).
fn axis_values(e: &AstExpr, name: &str, d: &mut Vec<Diagnostic>) -> Option<AxisValues> {
    match &e.kind {
        AstExprKind::List(items) => {
            if items.is_empty() {
                push_error(d, ErrorKind::EmptySweep(name.into()), e.span, "no values");
                return None;
            }
            let mut v = Vec::new();
            for it in items {
                v.push((constant_number(it, d)?, it.span));
            }
            Some(AxisValues::Grid(v))
        }
        AstExprKind::Call { func, args } if matches!(func.name.as_str(), "loguniform" | "uniform" | "choice") => {
            let mut nums = Vec::new();
            for a in args {
                if let Some(n) = &a.name {
                    push_error(d, ErrorKind::BadSearch(format!("{} takes numbers, not named arguments", func.name)), n.span, "named");
                    return None;
                }
                nums.push(constant_number(&a.value, d)?);
            }
            match Distribution::new(&func.name, &nums) {
                Ok(dist) => Some(AxisValues::Random(dist, e.span)),
                Err(m) => {
                    push_error(d, ErrorKind::BadSearch(m), e.span, "this distribution");
                    None
                }
            }
        }
        _ => Some(AxisValues::Grid(vec![(constant_number(e, d)?, e.span)])),
    }
}

/// `trials: N` and `search_seed: S` of a run, with the span of `trials`.
struct Search {
    trials: Option<(usize, Span)>,
    seed: u64,
}

/// Check one experiment.
pub fn check(
    x: &AstExperiment,
    file: &Path,
    schemes: &BTreeMap<String, SchemeRef>,
    override_shapes: Option<&ModelShapes>,
    d: &mut Vec<Diagnostic>,
) -> Option<Experiment> {
    let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut model_v = None;
    let mut data_v = None;
    let mut targets_ast: Option<(&Vec<AstTargetGroup>, Span)> = None;
    let mut train = default_train();
    let mut merge_span = None;
    let mut micro_span = None;
    let mut seeds_span = None;
    let mut select_v: Option<(Selection, Span)> = None;
    let mut reference_v: Option<(String, Span)> = None;
    let mut ok = true;
    let mut seen: BTreeMap<String, Span> = BTreeMap::new();
    let mut runs_ast = Vec::new();
    for it in &x.items {
        let (key, span) = match it {
            ExperimentItem::Setting(kv) => (kv.key.name.clone(), kv.key.span),
            ExperimentItem::Targets(_, sp) => ("targets".into(), *sp),
            ExperimentItem::Train(_, sp) => ("train".into(), *sp),
            ExperimentItem::Run(r) => {
                runs_ast.push(r);
                continue;
            }
        };
        if let Some(prev) = seen.insert(key.clone(), span) {
            d.push(
                Diagnostic::error(ErrorKind::Duplicate { what: "setting", name: key.clone() }, span)
                    .label("given again")
                    .with(prev, "first given here"),
            );
            ok = false;
            continue;
        }
        match it {
            ExperimentItem::Setting(kv) => match kv.key.name.as_str() {
                "model" => model_v = model(&kv.value, &dir, override_shapes, d),
                "data" => data_v = data(&kv.value, &dir, d),
                "select" => match selection(&kv.value, d) {
                    Some(sel) => select_v = Some(sel),
                    None => ok = false,
                },
                "reference" => match bare_word(&kv.value) {
                    Some(n) => reference_v = Some((n.to_string(), kv.value.span)),
                    None => {
                        push_error(
                            d,
                            ErrorKind::BadValue("reference names a run statement, e.g. `reference = peft_lora`".into()),
                            kv.value.span,
                            "here",
                        );
                        ok = false;
                    }
                },
                other => {
                    d.push(
                        Diagnostic::error(ErrorKind::UnknownSetting(format!("`{other}` in experiment")), kv.key.span)
                            .label("unknown")
                            .note("expected model, data, targets, select, reference, train { … } or run"),
                    );
                    ok = false;
                }
            },
            ExperimentItem::Targets(g, sp) => targets_ast = Some((g, *sp)),
            ExperimentItem::Train(kvs, _) => {
                let mut keys: BTreeMap<&str, Span> = BTreeMap::new();
                for kv in kvs {
                    if let Some(prev) = keys.insert(&kv.key.name, kv.key.span) {
                        d.push(
                            Diagnostic::error(ErrorKind::Duplicate { what: "setting", name: kv.key.name.clone() }, kv.key.span)
                                .label("given again")
                                .with(prev, "first given here"),
                        );
                        ok = false;
                        continue;
                    }
                    if kv.key.name == "merge" {
                        merge_span = Some(kv.value.span);
                    }
                    if kv.key.name == "micro_tokens" {
                        micro_span = Some(kv.value.span);
                    }
                    if kv.key.name == "seeds" {
                        seeds_span = Some(kv.value.span);
                    }
                    ok &= apply_train(&mut train, kv, false, d);
                }
            }
            ExperimentItem::Run(_) => {}
        }
    }
    for (k, present) in
        [("model", seen.contains_key("model")), ("data", seen.contains_key("data")), ("targets", seen.contains_key("targets"))]
    {
        if !present {
            d.push(Diagnostic::error(ErrorKind::MissingSetting(k.into()), x.name.span).label(format!("this experiment has no `{k}`")));
            ok = false;
        }
    }
    if runs_ast.is_empty() {
        d.push(Diagnostic::error(ErrorKind::MissingSetting("run".into()), x.name.span).label("this experiment has no runs"));
        ok = false;
    }
    let (source, shapes) = model_v?;
    let data = data_v?;
    if let (Some(m), Some(span)) = (train.micro_tokens, micro_span)
        && m < data.max_len
    {
        let mut diag = Diagnostic::error(
            ErrorKind::BadValue(format!(
                "micro_tokens ({m}) is less than max_len ({}): a micro-batch holds at least one whole example",
                data.max_len
            )),
            span,
        )
        .label("too small");
        if let Some(&data_span) = seen.get("data") {
            diag = diag.with(data_span, "max_len set here");
        }
        d.push(diag.note(format!("use micro_tokens: {} or more, or `auto`", data.max_len)));
        ok = false;
    }
    let (groups, slots) = targets(targets_ast?.0, &shapes, d)?;

    let mut runs: Vec<Run> = Vec::new();
    let mut names: BTreeMap<String, Span> = BTreeMap::new();
    for r in runs_ast {
        let Some(sref) = schemes.get(&r.scheme.name) else {
            let mut diag =
                Diagnostic::error(ErrorKind::UnknownScheme(r.scheme.name.clone()), r.scheme.span).label("no scheme of this name is loaded");
            if let Some(h) = super::diagnostic::did_you_mean(&r.scheme.name, schemes.keys().map(String::as_str)) {
                diag = diag.note(h);
            }
            d.push(diag);
            ok = false;
            continue;
        };
        let group = r.alias.as_ref().map(|a| a.name.clone()).unwrap_or_else(|| r.scheme.name.clone());
        // Arguments: scheme params and train overrides, each one value, a
        // list (grid) or a distribution (random search).
        let mut axes: Vec<Axis> = Vec::new();
        let mut search = Search { trials: None, seed: 0 };
        let mut bad = false;
        let mut seen_args: BTreeMap<&str, Span> = BTreeMap::new();
        for a in &r.args {
            let Some(n) = &a.name else {
                push_error(
                    d,
                    ErrorKind::BadValue("run arguments are named, e.g. `lora(r: 16)`".into()),
                    a.value.span,
                    "positional argument",
                );
                bad = true;
                continue;
            };
            if let Some(prev) = seen_args.insert(&n.name, n.span) {
                d.push(
                    Diagnostic::error(ErrorKind::Duplicate { what: "argument", name: n.name.clone() }, n.span)
                        .label("given again")
                        .with(prev, "first given here"),
                );
                bad = true;
                continue;
            }
            if !sref.ast.params.iter().any(|p| p.name.name == n.name) {
                let mut diag =
                    Diagnostic::error(ErrorKind::UnknownArgument { scheme: sref.ast.name.name.clone(), name: n.name.clone() }, n.span)
                        .label("unknown parameter")
                        .with(sref.ast.name.span, "scheme declared here");
                if let Some(h) = super::diagnostic::did_you_mean(&n.name, sref.ast.params.iter().map(|p| p.name.name.as_str())) {
                    diag = diag.note(h);
                }
                d.push(diag.note(format!(
                    "its parameters are: {}",
                    sref.ast.params.iter().map(|p| p.name.name.as_str()).collect::<Vec<_>>().join(", ")
                )));
                bad = true;
                continue;
            }
            match axis_values(&a.value, &n.name, d) {
                Some(v) => axes.push(Axis { name: n.name.clone(), values: v, is_override: false }),
                None => bad = true,
            }
        }
        for kv in &r.overrides {
            if let Some(prev) = seen_args.insert(&kv.key.name, kv.key.span) {
                d.push(
                    Diagnostic::error(ErrorKind::Duplicate { what: "argument", name: kv.key.name.clone() }, kv.key.span)
                        .label("given again")
                        .with(prev, "first given here"),
                );
                bad = true;
                continue;
            }
            match kv.key.name.as_str() {
                "trials" => match integer_at_least(&kv.value, "trials", 1, d) {
                    Some(n) if n <= 10_000 => search.trials = Some((n as usize, kv.value.span)),
                    Some(_) => {
                        push_error(d, ErrorKind::BadSearch("at most 10000 trials".into()), kv.value.span, "here");
                        bad = true;
                    }
                    None => bad = true,
                },
                "search_seed" => match integer_at_least(&kv.value, "search_seed", 0, d) {
                    Some(s) => search.seed = s,
                    None => bad = true,
                },
                "seed" if !train.seeds.is_empty() => {
                    d.push(
                        Diagnostic::error(
                            ErrorKind::BadValue("this run sets `seed`, but the experiment replicates every run".into()),
                            kv.key.span,
                        )
                        .label("seed given here")
                        .with(seeds_span.unwrap_or(x.name.span), "seeds given here")
                        .note("give seeds in one place: remove one of them"),
                    );
                    bad = true;
                }
                "lr" | "weight_decay" | "epochs" | "batch" | "seed" | "grad_clip" => match axis_values(&kv.value, &kv.key.name, d) {
                    Some(AxisValues::Random(..)) if kv.key.name == "seed" => {
                        push_error(d, ErrorKind::BadSearch("seeds are replicates, not a search axis".into()), kv.value.span, "drawn seed");
                        bad = true;
                    }
                    Some(v) => axes.push(Axis { name: kv.key.name.clone(), values: v, is_override: true }),
                    None => bad = true,
                },
                _ => {
                    // Non-sweepable overrides (optimizer, schedule) apply as-is.
                    let mut t = train.clone();
                    if !apply_train(&mut t, kv, true, d) {
                        bad = true;
                    }
                }
            }
        }
        // A drawn argument, even one whose distribution was rejected above.
        let drawn = r
            .args
            .iter()
            .filter_map(|a| a.name.as_ref().map(|n| (n, &a.value)))
            .chain(r.overrides.iter().map(|kv| (&kv.key, &kv.value)))
            .find(|(_, v)| call_parts(v).is_some_and(|(f, _)| matches!(f.name.as_str(), "loguniform" | "uniform" | "choice")));
        match (drawn, search.trials) {
            (Some((name, value)), None) => {
                d.push(
                    Diagnostic::error(ErrorKind::BadSearch(format!("`{}` is drawn, but the run has no `trials`", name.name)), value.span)
                        .label("drawn here")
                        .with(r.scheme.span, "in this run")
                        .note("add `trials: N` to the run's `{ … }` (and optionally `search_seed: S`)"),
                );
                bad = true;
            }
            (None, Some((_, span))) => {
                d.push(
                    Diagnostic::error(ErrorKind::BadSearch("`trials` without a drawn argument".into()), span)
                        .label("trials given here")
                        .note("draw an argument, e.g. `lr: loguniform(1e-5, 1e-2)` or `gamma: choice(1, 32, 750)`"),
                );
                bad = true;
            }
            _ => {}
        }
        if bad {
            ok = false;
            continue;
        }
        let mut base_train = train.clone();
        base_train.seeds = Vec::new();
        for kv in &r.overrides {
            if !matches!(kv.key.name.as_str(), "lr" | "weight_decay" | "epochs" | "batch" | "seed" | "grad_clip" | "trials" | "search_seed")
            {
                apply_train(&mut base_train, kv, true, d);
            }
        }
        // The experiment's seeds replicate the run, last in its name.
        if !train.seeds.is_empty() {
            let span = seeds_span.unwrap_or(x.name.span);
            axes.push(Axis {
                name: "seed".into(),
                values: AxisValues::Grid(train.seeds.iter().map(|s| (*s as f64, span)).collect()),
                is_override: true,
            });
        }
        let seed_varies = axes.iter().any(|a| a.name == "seed" && a.varies());
        let swept: Vec<String> = axes.iter().filter(|a| a.varies() && a.name != "seed").map(|a| a.name.clone()).collect();
        // Every value of every argument: the grid's cartesian product, once
        // per trial of a random search.
        let trials = search.trials.map_or(1, |t| t.0);
        let mut combos: Vec<(usize, Vec<(f64, Span)>)> = Vec::new();
        for trial in 0..trials {
            let mut partial: Vec<Vec<(f64, Span)>> = vec![vec![]];
            for a in &axes {
                let values = match &a.values {
                    AxisValues::Grid(v) => v.clone(),
                    AxisValues::Random(dist, span) => vec![(dist.draw(search.seed, &group, &a.name, trial), *span)],
                };
                if (combos.len() + partial.len()).saturating_mul(values.len()) > 10_000 {
                    push_error(d, ErrorKind::TooComplex("a run expands to more than 10000 combinations".into()), r.span, "this run");
                    return None;
                }
                partial = partial.iter().flat_map(|c| values.iter().map(move |v| [c.as_slice(), &[*v]].concat())).collect();
            }
            combos.extend(partial.into_iter().map(|c| (trial, c)));
        }
        let mut first_trial: BTreeMap<String, usize> = BTreeMap::new();
        let mut repeated: std::collections::BTreeSet<usize> = Default::default();
        for (trial, combo) in combos {
            let mut given = BTreeMap::new();
            let mut t = base_train.clone();
            let mut config = group.clone();
            let mut seed_suffix = String::new();
            let mut good = true;
            for (a, (v, sp)) in axes.iter().zip(&combo) {
                if a.name == "seed" {
                    if seed_varies {
                        seed_suffix = format!("-seed={}", number::plain(*v));
                    } else if r.alias.is_none() {
                        config.push_str(&format!("-seed={}", number::plain(*v)));
                    }
                } else if r.alias.is_none() || a.varies() {
                    config.push_str(&format!("-{}={}", a.name, number::plain(*v)));
                }
                if a.is_override {
                    let e = AstExpr { kind: AstExprKind::Num(*v), span: *sp, depth: 1 };
                    good &= apply_train(&mut t, &KeyValue { key: Ident { name: a.name.clone(), span: *sp }, value: e }, true, d);
                } else {
                    given.insert(a.name.clone(), GivenArg { value: *v, span: *sp });
                }
            }
            let name = format!("{config}{seed_suffix}");
            if !good {
                ok = false;
                continue;
            }
            // Two trials that draw the same configuration run it once.
            if search.trials.is_some() {
                match first_trial.get(&config) {
                    Some(first) if *first != trial => {
                        if repeated.insert(trial) {
                            d.push(
                                Diagnostic::error(
                                    ErrorKind::RepeatedTrial(format!(
                                        "trial {} draws the same values as trial {}; it is run once",
                                        trial + 1,
                                        first + 1
                                    )),
                                    search.trials.map_or(r.span, |t| t.1),
                                )
                                .label(format!("`{config}`")),
                            );
                        }
                        continue;
                    }
                    Some(_) => {}
                    None => {
                        first_trial.insert(config.clone(), trial);
                    }
                }
            }
            let cx = InstantiateCtx {
                scheme: sref.ast,
                source_text: sref.text,
                given: &given,
                call_span: Some(r.scheme.span),
                targets: &slots,
                // Schemes with a parameter lacking a default are only ever
                // checked here, so their warnings come from the runs.
                warn: sref.ast.params.iter().any(|p| p.default.is_none()),
            };
            let Some(inst) = checker::instantiate(&cx, d) else {
                ok = false;
                continue;
            };
            if t.merge == MergePolicy::Required && !inst.mergeability.linear {
                let mut diag = Diagnostic::error(ErrorKind::MergeRequired(inst.name.clone()), r.scheme.span)
                    .label(inst.mergeability.reason.clone().unwrap_or_default());
                if let Some(ms) = merge_span {
                    diag = diag.with(ms, "merge required here");
                }
                d.push(diag);
                ok = false;
                continue;
            }
            if let Some(prev) = names.insert(name.clone(), r.span) {
                d.push(
                    Diagnostic::error(ErrorKind::DuplicateRunName(name.clone()), r.span)
                        .label("this run")
                        .with(prev, "has the same name as this one")
                        .note("give one of them a name with `as NAME`"),
                );
                ok = false;
                continue;
            }
            runs.push(Run {
                name,
                scheme: r.scheme.name.clone(),
                args: inst.params.clone(),
                swept: swept.clone(),
                group: group.clone(),
                config,
                train: t,
                instance: inst,
            });
        }
    }
    let (select, reference) = (select_v, reference_v);
    if let Some((Selection::TrainLoss { epoch: Some(n) }, span)) = select
        && let Some(short) = runs.iter().find(|r| r.train.epochs < n)
    {
        d.push(
            Diagnostic::error(
                ErrorKind::BadSelection(format!("epoch {n} is after the last epoch of run `{}` ({})", short.name, short.train.epochs)),
                span,
            )
            .label("selects this epoch")
            .note("select an epoch every run trains, or `epoch: last`"),
        );
        ok = false;
    }
    if let Some((name, span)) = &reference
        && ok
        && !runs.iter().any(|r| &r.group == name)
    {
        let groups: Vec<&str> = {
            let mut g: Vec<&str> = runs.iter().map(|r| r.group.as_str()).collect();
            g.sort();
            g.dedup();
            g
        };
        let mut diag = Diagnostic::error(ErrorKind::UnknownReference(name.clone()), *span).label("no run statement of this name");
        if let Some(h) = super::diagnostic::did_you_mean(name, groups.iter().copied()) {
            diag = diag.note(h);
        }
        d.push(diag.note(format!("the reference names a run statement by its `as` name or scheme: {}", groups.join(", "))));
        ok = false;
    }
    if !ok {
        return None;
    }
    Some(Experiment {
        name: x.name.name.clone(),
        source_file: normalize(file),
        model: source,
        shapes,
        data,
        targets: groups,
        train,
        select: select.map(|s| s.0).unwrap_or_default(),
        reference: reference.map(|r| r.0),
        runs,
    })
}
