//! Bodies of the `check`, `params` and `explain` subcommands.

use std::io::IsTerminal;
use std::path::PathBuf;

use crate::lang::{Options, check, explain, params, preset};

fn color() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

fn options(model: Option<&str>) -> Result<Options, i32> {
    match model {
        None => Ok(Options::default()),
        Some(m) => match preset::resolve_model_arg(m) {
            Ok(s) => Ok(Options { model: Some(s) }),
            Err(e) => {
                eprintln!("error: --model: {e}");
                Err(2)
            }
        },
    }
}

/// `peftc check <files|dirs>...`: print every diagnostic; exit 1 on error.
pub fn cmd_check(paths: &[PathBuf]) -> i32 {
    let (p, d) = check(paths, &Options::default());
    eprint!("{}", d.render(color()));
    match p {
        Some(p) => {
            let runs: usize = p.experiments.iter().map(|e| e.runs.len()).sum();
            eprintln!(
                "ok: {} scheme(s), {} experiment(s), {runs} run(s); {}",
                p.schemes.len(),
                p.experiments.len(),
                d.summary()
            );
            0
        }
        None => {
            eprintln!("failed: {}", d.summary());
            1
        }
    }
}

fn with_program(paths: &[PathBuf], model: Option<&str>, f: impl Fn(&crate::lang::Program) -> String) -> i32 {
    let opts = match options(model) {
        Ok(o) => o,
        Err(c) => return c,
    };
    let (p, d) = check(paths, &opts);
    if d.has_errors() || !d.items.is_empty() {
        eprint!("{}", d.render(color()));
    }
    match p {
        Some(p) => {
            print!("{}", f(&p));
            0
        }
        None => {
            eprintln!("failed: {}", d.summary());
            1
        }
    }
}

/// `peftc params <spec> [--model M]`.
pub fn cmd_params(paths: &[PathBuf], model: Option<&str>) -> i32 {
    with_program(paths, model, params::report)
}

/// `peftc explain <spec> [--model M] [--json]`; `--json` prints the whole
/// checked IR ([`crate::lang::Program`]) as JSON.
pub fn cmd_explain(paths: &[PathBuf], model: Option<&str>, json: bool) -> i32 {
    if json {
        with_program(paths, model, |p| serde_json::to_string_pretty(p).unwrap_or_default() + "\n")
    } else {
        with_program(paths, model, explain::report)
    }
}
