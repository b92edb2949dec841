//! Random search: the distributions a run argument may be drawn from
//! (`loguniform(a, b)`, `uniform(a, b)`, `choice(v, …)`) and the draw itself.
//!
//! A draw depends only on the search seed, the run statement's name, the
//! argument's name and the trial number, through a 64-bit hash and
//! SplitMix64 — no platform RNG, no floating point before the final
//! mapping. Each argument has its own stream, so adding an argument to a
//! search does not change the values drawn for the others. Drawn values are
//! rounded to three significant digits (and kept inside the bounds): run
//! names stay short (`lr=0.000317`) and a last-bit difference in a
//! platform's `exp` cannot change a run's name or id.

use super::ast::Span;

/// A distribution for one argument of a random search.
#[derive(Debug, Clone, PartialEq)]
pub enum Distribution {
    /// Log-uniform on `[lo, hi]`, `0 < lo < hi`.
    LogUniform { lo: f64, hi: f64 },
    /// Uniform on `[lo, hi]`, `lo < hi`.
    Uniform { lo: f64, hi: f64 },
    /// One of the values, each equally likely.
    Choice(Vec<f64>),
}

/// The names of the distribution functions, for messages.
pub const FUNCTIONS: &str = "loguniform(lo, hi), uniform(lo, hi) or choice(v, …)";

impl Distribution {
    /// Build a distribution from its function name and arguments, checking
    /// the bounds. `Err` is the message for the call's span.
    pub fn new(func: &str, args: &[f64]) -> Result<Distribution, String> {
        match func {
            "loguniform" | "uniform" => {
                let [lo, hi] = args else {
                    return Err(format!("{func} takes two numbers, lo and hi, found {}", args.len()));
                };
                let (lo, hi) = (*lo, *hi);
                if lo >= hi {
                    return Err(format!("{func} needs lo < hi, found {} and {}", super::number::plain(lo), super::number::plain(hi)));
                }
                if func == "loguniform" {
                    if lo <= 0.0 {
                        return Err(format!("loguniform needs 0 < lo, found {}", super::number::plain(lo)));
                    }
                    Ok(Distribution::LogUniform { lo, hi })
                } else {
                    Ok(Distribution::Uniform { lo, hi })
                }
            }
            "choice" => {
                if args.is_empty() {
                    return Err("choice needs at least one value".into());
                }
                Ok(Distribution::Choice(args.to_vec()))
            }
            other => Err(format!("unknown distribution `{other}`: expected {FUNCTIONS}")),
        }
    }

    /// The value of trial `trial` for argument `arg` of run statement `run`.
    pub fn draw(&self, seed: u64, run: &str, arg: &str, trial: usize) -> f64 {
        let u = unit(seed, run, arg, trial);
        match self {
            Distribution::LogUniform { lo, hi } => {
                let v = (lo.ln() + u * (hi.ln() - lo.ln())).exp();
                round3(v).clamp(*lo, *hi)
            }
            Distribution::Uniform { lo, hi } => round3(lo + u * (hi - lo)).clamp(*lo, *hi),
            Distribution::Choice(values) => values[((u * values.len() as f64) as usize).min(values.len() - 1)],
        }
    }
}

/// One argument of a random search: its name, distribution and the span of
/// the call that gave it.
#[derive(Debug, Clone)]
pub struct RandomAxis {
    pub name: String,
    pub dist: Distribution,
    pub span: Span,
}

/// A number in `[0, 1)` from the four keys.
fn unit(seed: u64, run: &str, arg: &str, trial: usize) -> f64 {
    let mut h = Fnv::new();
    h.write(&seed.to_le_bytes());
    h.write(run.as_bytes());
    h.write(&[0]);
    h.write(arg.as_bytes());
    h.write(&[0]);
    h.write(&(trial as u64).to_le_bytes());
    (splitmix64(h.0) >> 11) as f64 / (1u64 << 53) as f64
}

/// `v` rounded to three significant digits (decimal, through its text, so
/// the result is the same on every platform).
fn round3(v: f64) -> f64 {
    format!("{v:.2e}").parse().unwrap_or(v)
}

/// FNV-1a, 64-bit.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= *b as u64;
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_pinned_and_in_bounds() {
        let lu = Distribution::new("loguniform", &[1e-5, 1e-2]).unwrap();
        let draws: Vec<f64> = (0..6).map(|t| lu.draw(0, "lora", "lr", t)).collect();
        // Pinned: a change here renames every run of every random search.
        assert_eq!(draws, vec![0.000151, 1.02e-5, 0.00145, 0.000668, 6.77e-5, 0.000553], "{draws:?}");
        for t in 0..2000 {
            let v = lu.draw(7, "x", "lr", t);
            assert!((1e-5..=1e-2).contains(&v), "{v}");
        }
        let c = Distribution::new("choice", &[1.0, 32.0, 750.0]).unwrap();
        let mut seen = [0usize; 3];
        for t in 0..3000 {
            let v = c.draw(1, "lora", "gamma", t);
            seen[[1.0, 32.0, 750.0].iter().position(|x| *x == v).unwrap()] += 1;
        }
        assert!(seen.iter().all(|n| (850..1150).contains(n)), "{seen:?}");
        // Streams are per argument and per seed.
        assert_ne!(lu.draw(0, "lora", "lr", 0), lu.draw(0, "lora", "alpha", 0));
        assert_ne!(lu.draw(0, "lora", "lr", 0), lu.draw(1, "lora", "lr", 0));
    }

    #[test]
    fn bounds_are_checked() {
        assert_eq!(Distribution::new("loguniform", &[0.0, 1.0]).unwrap_err(), "loguniform needs 0 < lo, found 0");
        assert_eq!(Distribution::new("uniform", &[2.0, 1.0]).unwrap_err(), "uniform needs lo < hi, found 2 and 1");
        assert_eq!(Distribution::new("uniform", &[1.0]).unwrap_err(), "uniform takes two numbers, lo and hi, found 1");
        assert_eq!(Distribution::new("choice", &[]).unwrap_err(), "choice needs at least one value");
        assert!(Distribution::new("normal", &[0.0, 1.0]).unwrap_err().starts_with("unknown distribution `normal`"));
    }
}
