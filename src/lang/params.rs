//! The `peftc params` report: a checked program's exact parameter counts,
//! per run and per stored tensor (the storage the checker computed under
//! each tensor's tying).

use std::fmt::Write;

use super::ir::*;
use super::number::{self, thousands};

fn part_name(p: StoragePart) -> &'static str {
    match p {
        StoragePart::Full => "",
        StoragePart::Basis => ".basis",
        StoragePart::Mix => ".mix",
    }
}

/// A tying as a spec writes it: `per_layer`, `tied`, `partial(4)`.
pub fn tying_name(t: Tying) -> String {
    match t {
        Tying::PerLayer => "per_layer".into(),
        Tying::Tied => "tied".into(),
        Tying::Partial { k } => format!("partial({k})"),
    }
}

/// Per-tensor table of one instance: tensor, tying, per-target storage shape, count.
pub fn instance_table(inst: &SchemeInstance) -> String {
    let mut rows: Vec<[String; 5]> = Vec::new();
    for t in &inst.tensors {
        let mut total = 0u64;
        let mut first = true;
        for s in inst.storage.iter().filter(|s| s.tensor == t.name) {
            total += s.numel;
            let targets: Vec<&str> = s.targets.iter().map(|t| t.name()).collect();
            rows.push([
                if first { t.name.clone() } else { String::new() },
                if first { tying_name(t.tying) + if t.trainable { "" } else { " frozen" } } else { String::new() },
                format!("{}{}", targets.join("+"), part_name(s.part)),
                format!("{:?}", s.shape),
                thousands(s.numel),
            ]);
            first = false;
        }
        rows.push([String::new(), String::new(), format!("total {}", t.name), String::new(), thousands(total)]);
    }
    let header = ["tensor", "tying", "targets", "storage shape", "params"];
    let mut w = [0usize; 5];
    for r in rows.iter().map(|r| r.each_ref().map(|s| s.chars().count())).chain([header.map(|s| s.len())]) {
        for i in 0..5 {
            w[i] = w[i].max(r[i]);
        }
    }
    let mut s = String::new();
    let line = |s: &mut String, r: [&str; 5]| {
        let _ = writeln!(
            s,
            "  {:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {:>w4$}",
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            w0 = w[0],
            w1 = w[1],
            w2 = w[2],
            w3 = w[3],
            w4 = w[4]
        );
    };
    line(&mut s, header);
    for r in &rows {
        line(&mut s, r.each_ref().map(|x| x.as_str()));
    }
    let _ = writeln!(s, "  trainable parameters: {}", thousands(inst.trainable_params));
    s
}

/// The `peftc params` report for a program.
pub fn report(p: &Program) -> String {
    let mut s = String::new();
    if p.experiments.is_empty() {
        let _ = writeln!(
            s,
            "schemes with their defaults on {} (all 7 targets, {} layers)\n",
            p.default_shapes.name, p.default_shapes.num_layers
        );
        let w = p.schemes.iter().map(|x| x.name.len()).max().unwrap_or(0);
        for inst in &p.schemes {
            let _ = writeln!(s, "{:<w$}  {:>12}", inst.name, thousands(inst.trainable_params));
        }
        for inst in &p.schemes {
            let _ = writeln!(s, "\nscheme {}({})", inst.name, arg_list(&inst.params));
            s.push_str(&instance_table(inst));
        }
        return s;
    }
    for e in &p.experiments {
        let _ = writeln!(s, "experiment {} on {} ({} layers)\n", e.name, e.shapes.name, e.shapes.num_layers);
        let w = e.runs.iter().map(|r| r.name.len()).max().unwrap_or(0);
        for r in &e.runs {
            let _ = writeln!(s, "{:<w$}  {:>12}", r.name, thousands(r.instance.trainable_params));
        }
        for r in &e.runs {
            let _ = writeln!(s, "\nrun {} = {}({})", r.name, r.scheme, arg_list(&r.args));
            s.push_str(&instance_table(&r.instance));
        }
        s.push('\n');
    }
    s
}

/// A run's arguments as a spec writes them: `r: 8, alpha: 16`.
pub fn arg_list(a: &[Arg]) -> String {
    a.iter().map(|a| format!("{}: {}", a.name, number::plain(a.value))).collect::<Vec<_>>().join(", ")
}
