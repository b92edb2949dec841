//! Progress of an epoch: an indicatif bar on a terminal; plain log lines
//! when output goes to a file or `--quiet` is given (a batch job's log shows
//! where the run is and when it will end); or nothing (tests).

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How a training session shows its progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProgressMode {
    #[default]
    Off,
    /// A progress bar (stderr is a terminal).
    Bar,
    /// One line on stderr every `every_steps` steps or `every` of wall time,
    /// whichever comes first.
    Lines { every_steps: u64, every: Duration },
}

impl ProgressMode {
    /// A bar on a terminal; otherwise, or when `quiet`, a log line every
    /// tenth of an epoch or minute.
    pub fn for_stderr(quiet: bool) -> Self {
        use std::io::IsTerminal;
        if !quiet && std::io::stderr().is_terminal() {
            ProgressMode::Bar
        } else {
            ProgressMode::Lines { every_steps: 0, every: Duration::from_secs(60) }
        }
    }
}

/// The progress of one epoch.
pub struct EpochProgress {
    mode: ProgressMode,
    bar: ProgressBar,
    label: String,
    epoch: usize,
    epochs: usize,
    steps: u64,
    start: Instant,
    last_line: Instant,
    /// Steps and loss (bits) since the last line.
    window: (u64, f64),
    tokens: u64,
}

impl EpochProgress {
    pub fn new(mode: ProgressMode, label: &str, epoch: usize, epochs: usize, steps: u64) -> Self {
        let bar = if mode == ProgressMode::Bar { ProgressBar::new(steps) } else { ProgressBar::hidden() };
        bar.set_style(
            ProgressStyle::with_template("{prefix} epoch {msg} [{bar:24}] step {pos}/{len} ETA {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_prefix(label.to_string());
        let now = Instant::now();
        EpochProgress { mode, bar, label: label.to_string(), epoch, epochs, steps, start: now, last_line: now, window: (0, 0.0), tokens: 0 }
    }

    /// Step `step` (from 1) is done: its loss in bits, its real tokens and learning rate.
    pub fn step(&mut self, step: u64, bits: f64, tokens: u64, lr: f64) {
        self.tokens += tokens;
        self.window.0 += 1;
        self.window.1 += bits;
        let elapsed = self.start.elapsed().as_secs_f64().max(1e-9);
        let tps = self.tokens as f64 / elapsed;
        match self.mode {
            ProgressMode::Off => {}
            ProgressMode::Bar => {
                self.bar.set_message(format!("{}/{} loss {bits:.4} bits, {tps:.0} tok/s", self.epoch, self.epochs));
                self.bar.inc(1);
            }
            ProgressMode::Lines { every_steps, every } => {
                let every_steps = if every_steps == 0 { self.steps.div_ceil(10).max(1) } else { every_steps };
                if !step.is_multiple_of(every_steps) && self.last_line.elapsed() < every && step != self.steps {
                    return;
                }
                let eta = elapsed / step as f64 * self.steps.saturating_sub(step) as f64;
                eprintln!(
                    "{} epoch {}/{} step {step}/{}: loss {:.4} bits (mean of {} step(s)), lr {lr:.3e}, {tps:.0} tok/s, epoch ETA {}",
                    self.label,
                    self.epoch,
                    self.epochs,
                    self.steps,
                    self.window.1 / self.window.0 as f64,
                    self.window.0,
                    clock(eta)
                );
                self.window = (0, 0.0);
                self.last_line = Instant::now();
            }
        }
    }

    /// The epoch ended (or stopped).
    pub fn finish(self) {
        self.bar.finish_and_clear();
    }

    /// Does this mode print anything?
    pub fn shown(mode: ProgressMode) -> bool {
        mode != ProgressMode::Off
    }
}

/// Seconds as `1h02m03s`, `2m03s` or `3s`.
pub fn clock(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, m, s) => format!("{h}h{m:02}m{s:02}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::clock;

    #[test]
    fn clock_reads_like_a_clock() {
        assert_eq!(clock(3.4), "3s");
        assert_eq!(clock(123.0), "2m03s");
        assert_eq!(clock(3723.0), "1h02m03s");
    }
}
