//! Stable, human-readable number formatting for reports.
//!
//! Fixed precision everywhere, so the same metrics always render to the same
//! bytes (snapshot tests depend on it).

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A loss in bits, three decimals; `NaN`, `inf` spelled out.
pub fn bits(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 { "inf".into() } else { "-inf".into() }
    } else {
        format!("{x:.3}")
    }
}

/// Signed difference in bits, e.g. `-0.412` or `+0.031`.
pub fn delta_bits(x: f64) -> String {
    if !x.is_finite() {
        return bits(x);
    }
    let s = format!("{x:+.3}");
    if s == "-0.000" { "+0.000".into() } else { s }
}

/// Perplexity `2^bits`, four significant digits, or `overflow`.
pub fn perplexity(bits_value: f64) -> String {
    let p = bits_value.exp2();
    if !p.is_finite() {
        return if bits_value.is_nan() { "NaN".into() } else { "overflow".into() };
    }
    if p >= 1e6 {
        format!("{p:.3e}")
    } else if p >= 1000.0 {
        thousands(p.round() as u64)
    } else if p >= 100.0 {
        format!("{p:.1}")
    } else {
        format!("{p:.2}")
    }
}

/// Wall time: `42.0 s`, `3 min 07 s`, `2 h 05 min`.
pub fn duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "—".into();
    }
    if seconds < 60.0 {
        return format!("{seconds:.1} s");
    }
    let total = seconds.round() as u64;
    let (h, m, s) = (total / 3600, (total % 3600) / 60, total % 60);
    if h == 0 { format!("{m} min {s:02} s") } else { format!("{h} h {m:02} min") }
}

/// Throughput: thousands separators above 100/s, one decimal below.
pub fn rate(per_s: f64) -> String {
    if !per_s.is_finite() || per_s < 0.0 {
        "—".into()
    } else if per_s >= 100.0 {
        thousands(per_s.round() as u64)
    } else {
        format!("{per_s:.1}")
    }
}

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
        // Integral floats (`32.0`, as a spec's numbers are stored) print as integers.
        serde_json::Value::Number(n) => match n.as_f64() {
            Some(x) if n.is_f64() && x.fract() == 0.0 && x.abs() < 1e15 => format!("{}", x as i64),
            _ => n.to_string(),
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
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn bits_and_perplexity() {
        assert_eq!(bits(2.69641), "2.696");
        assert_eq!(bits(f64::NAN), "NaN");
        assert_eq!(bits(f64::INFINITY), "inf");
        assert_eq!(perplexity(1.0), "2.00");
        assert_eq!(perplexity(10.0), "1,024");
        assert_eq!(perplexity(2000.0), "overflow");
        assert_eq!(perplexity(f64::NAN), "NaN");
        assert_eq!(delta_bits(-0.4123), "-0.412");
        assert_eq!(delta_bits(0.0001), "+0.000");
        assert_eq!(delta_bits(-0.0001), "+0.000");
    }

    #[test]
    fn durations_and_rates() {
        assert_eq!(duration(42.04), "42.0 s");
        assert_eq!(duration(187.0), "3 min 07 s");
        assert_eq!(duration(7500.0), "2 h 05 min");
        assert_eq!(rate(181.6), "182");
        assert_eq!(rate(12345.0), "12,345");
        assert_eq!(rate(9.94), "9.9");
    }

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
