//! Stable, human-readable formatting for reports.
//!
//! Fixed precision everywhere, so the same metrics always render to the same
//! bytes (snapshot tests depend on it). The number formatters themselves live
//! with every other one of the crate in [`crate::lang::number`] and are
//! re-exported here; this module adds the report's spelling of run arguments.

use crate::lang::number;

pub use crate::lang::number::{bits, delta_bits, duration, perplexity, rate, thousands};

/// Display name of a scheme argument: Greek letters for the usual ones.
pub fn arg_name(name: &str) -> String {
    match name {
        "alpha" => "α".into(),
        "beta" => "β".into(),
        "gamma" => "γ".into(),
        "eps" | "epsilon" => "ε".into(),
        "lambda" => "λ".into(),
        other => other.into(),
    }
}

/// An argument value as written in a spec: numbers as JSON shows them,
/// strings unquoted, anything else as compact JSON.
pub fn arg_value(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        // Integral floats (`32.0`, as a spec's numbers are stored) print as
        // integers, as `number::plain` prints them; other numbers keep JSON's
        // spelling (`1e-6`), as stored in `run.json`.
        serde_json::Value::Number(n) => match n.as_f64().filter(|_| n.is_f64()).and_then(number::integral) {
            Some(i) => i.to_string(),
            None => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// The first `n` characters of a hash (the whole string if shorter).
pub fn short_hash(h: &str, n: usize) -> String {
    h.chars().take(n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args() {
        assert_eq!(arg_name("gamma"), "γ");
        assert_eq!(arg_name("k_a"), "k_a");
        assert_eq!(arg_value(&serde_json::json!(750.0)), "750");
        assert_eq!(arg_value(&serde_json::json!(0.5)), "0.5");
        assert_eq!(arg_value(&serde_json::json!(1e-6)), "1e-6");
        assert_eq!(arg_value(&serde_json::json!(8)), "8");
        assert_eq!(arg_value(&serde_json::json!("x")), "x");
    }
}
