//! Number formatting, all of it in one place: a number enters, its text
//! leaves. The functions differ on purpose, each for one kind of reader; the
//! doc comment of each says where its text appears and why it looks that way.
//! Their bytes are part of snapshots (diagnostics, `explain`, `params`, run
//! names, parse trees, reports), so none of them may change lightly.
//!
//! - [`plain`]: a spec's own numbers echoed back (diagnostics, run names,
//!   argument lists, parse trees);
//! - [`significant`]: computed numbers in `explain` (constants, FLOPs), at
//!   most six significant digits;
//! - [`thousands`]: exact counts (parameters, tokens);
//! - [`bits`], [`delta_bits`], [`perplexity`], [`duration`], [`rate`]: the
//!   experiment report's metrics, at a fixed precision.
//!
//! The report's formatters live here with the others so that every way the
//! crate writes a number is in one file; the language itself uses only the
//! first three. The report (`crate::report::format`) re-exports them.

/// `v` as an integer when it has no fraction and is exactly representable
/// (below 10¹⁵): `32.0` → `Some(32)`, `0.5` → `None`. The rule shared by
/// [`plain`] and the report's spelling of run arguments.
pub fn integral(v: f64) -> Option<i64> {
    (v.fract() == 0.0 && v.abs() < 1e15).then_some(v as i64)
}

/// A number as a spec writes it: integral values without a fraction (`32`,
/// not `32.0`), anything else in Rust's shortest round-trip form (`0.001`,
/// `2.5`). For a spec's numbers echoed back: diagnostics, run names
/// (`lora-r=16`), argument lists, parse trees.
pub fn plain(v: f64) -> String {
    match integral(v) {
        Some(i) => format!("{i}"),
        None => format!("{v}"),
    }
}

/// A computed number with at most 6 significant digits, for `explain`:
/// integers below 10⁹ as [`plain`] does, others fixed-point (`0.00133333`,
/// `1.06066`) or, outside `[1e-3, 1e9)`, in exponent form (`4.21875e10`);
/// trailing zeros dropped. Folded constants such as `1 / 750` and FLOP
/// counts stay short and stable across platforms.
pub fn significant(v: f64) -> String {
    if v == 0.0 || (v.fract() == 0.0 && v.abs() < 1e9) {
        return plain(v);
    }
    let a = v.abs();
    if !(1e-3..1e9).contains(&a) {
        let s = format!("{v:.5e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        return format!("{}e{e}", trim_fraction(m));
    }
    let digits = 6 - (a.log10().floor() as i32 + 1);
    trim_fraction(&format!("{v:.*}", digits.max(0) as usize)).to_string()
}

/// Trailing zeros of a fraction dropped, and the point if nothing follows
/// it: `1.500` → `1.5`, `2.000` → `2`. Text without a point is unchanged.
fn trim_fraction(s: &str) -> &str {
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.') } else { s }
}

/// An exact count with thousands separators: `2442240` → `2,442,240`. For
/// parameter counts (`params`, `explain`, reports) and token counts.
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

/// A loss in bits for the report, three decimals; `NaN`, `inf` spelled out.
/// Fixed precision, so the same metrics always render to the same bytes.
pub fn bits(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 { "inf".into() } else { "-inf".into() }
    } else {
        format!("{x:.3}")
    }
}

/// A signed difference in bits for the report, e.g. `-0.412` or `+0.031`
/// (never `-0.000`).
pub fn delta_bits(x: f64) -> String {
    if !x.is_finite() {
        return bits(x);
    }
    let s = format!("{x:+.3}");
    if s == "-0.000" { "+0.000".into() } else { s }
}

/// Perplexity `2^bits` for the report, four significant digits, or
/// `overflow`.
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

/// Wall time for the report: `42.0 s`, `3 min 07 s`, `2 h 05 min`.
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

/// Throughput for the report: thousands separators above 100/s, one decimal
/// below.
pub fn rate(per_s: f64) -> String {
    if !per_s.is_finite() || per_s < 0.0 {
        "—".into()
    } else if per_s >= 100.0 {
        thousands(per_s.round() as u64)
    } else {
        format!("{per_s:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_compactly() {
        assert_eq!(significant(1.0 / 750.0), "0.00133333");
        assert_eq!(significant(4.21875e10), "4.21875e10");
        assert_eq!(significant(3.0 / 8f64.sqrt()), "1.06066");
        assert_eq!(plain(32.0), "32");
        assert_eq!(plain(0.001), "0.001");
    }

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
}
