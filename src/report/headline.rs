//! The study's headline: one row per run group (a run statement's `as`
//! name, or its scheme) at its selected configuration, and the table of
//! every configuration with its seeds pooled.
//!
//! - A **configuration** is a run without its seed: its replicates are the
//!   complete runs that share it. Every number is a mean over them, shown
//!   with its sample standard deviation and n.
//! - Each group's **selected** configuration has the lowest mean selection
//!   target (the experiment's `select`; by default the train loss after the
//!   final epoch, the seed's protocol); ties go to fewer parameters, then
//!   the name.
//! - Two means are **not distinguishable** when they differ by less than
//!   twice the standard error of their difference,
//!   2·√(s₁²/n₁ + s₂²/n₂) (about a 95 % interval for normal noise). With a
//!   single seed on either side there is no spread, and nothing is marked
//!   either way: the report says so instead.

use std::collections::BTreeMap;

use serde::Serialize;

use super::format;
use super::report_data::{ArgCell, swept_value};
use super::svg::{self, HLine, ScatterPoint};
use crate::runs::metrics::{RunMetrics, RunStatus};
use crate::runs::study::{Selection, Study};

/// Mean, sample standard deviation and count of some replicates' values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    pub n: usize,
    pub mean: f64,
    /// `None` with fewer than two values.
    pub sd: Option<f64>,
}

impl Stat {
    /// `None` when there are no values.
    pub fn of(values: &[f64]) -> Option<Stat> {
        let n = values.len();
        if n == 0 {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let sd = (n > 1).then(|| (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt());
        Some(Stat { n, mean, sd })
    }

    /// `1.234 ± 0.012`, or `1.234` for one value.
    pub fn text(&self) -> String {
        match self.sd {
            Some(sd) => format!("{} ± {:.3}", format::bits(self.mean), sd),
            None => format::bits(self.mean),
        }
    }
}

/// Whether two means differ by at least twice the standard error of their
/// difference; `None` when either has a single value (no spread to judge by).
pub fn distinguishable(a: &Stat, b: &Stat) -> Option<bool> {
    let (sa, sb) = (a.sd?, b.sd?);
    let se = (sa * sa / a.n as f64 + sb * sb / b.n as f64).sqrt();
    Some((a.mean - b.mean).abs() >= 2.0 * se)
}

/// One configuration of a group, over its complete replicates.
struct Config<'a> {
    group: String,
    name: String,
    /// Complete replicates (at least one).
    runs: Vec<&'a RunMetrics>,
    /// Replicates recorded or planned but not complete.
    unfinished: usize,
    target: Option<Stat>,
    best_test: Option<Stat>,
    final_train: Option<Stat>,
    gap: Option<Stat>,
}

/// A configuration row: a headline row, or a row of the full table.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigRow {
    pub group: String,
    pub config: String,
    /// Swept or drawn values (the configuration's identity within the group).
    pub args: Vec<ArgCell>,
    pub params: String,
    /// Complete replicates, e.g. `3`, or `2 of 3` when some did not complete.
    pub n: String,
    /// The selection target, mean ± sd.
    pub target: String,
    /// Best end-of-epoch test loss, mean ± sd.
    pub best_test: String,
    /// The epochs at which the replicates' test losses were best, e.g. `1` or `1, 2`.
    pub best_epoch: String,
    /// Test minus train loss at the final epoch, mean ± sd (overfitting).
    pub gap: String,
    pub delta_base: String,
    /// Mean best test minus the reference group's; `ref` on the reference.
    pub delta_ref: String,
    /// The difference to the reference is within the seeds' spread.
    pub ref_indistinct: bool,
    /// Within the seeds' spread of the best row's test loss (headline only).
    pub best_indistinct: bool,
    /// The lowest mean best test loss of the headline.
    pub is_best: bool,
    /// This configuration is its group's selected one.
    pub selected: bool,
}

/// The headline table, the configurations table and their plots.
#[derive(Debug, Clone, Serialize)]
pub struct Headline {
    /// The selection rule as the spec writes it.
    pub select: String,
    /// The selection target in words, for the column header.
    pub target_name: String,
    pub reference: Option<String>,
    /// One row per group, by mean best test loss.
    pub rows: Vec<ConfigRow>,
    /// Every configuration, by group then target.
    pub configs: Vec<ConfigRow>,
    /// Some configuration has two or more complete seeds.
    pub has_spread: bool,
    /// Some group has more than one configuration (something was selected).
    pub has_choice: bool,
    #[serde(skip)]
    train_points: Vec<ScatterPoint>,
    #[serde(skip)]
    test_points: Vec<ScatterPoint>,
}

/// The replicate's value of the selection target.
fn target_of(m: &RunMetrics, select: Selection, test_bits: impl Fn(&RunMetrics) -> Option<f64>) -> Option<f64> {
    match select {
        Selection::TrainLoss { epoch: None } => m.epochs.iter().max_by_key(|e| e.epoch).map(|e| e.train_bits),
        Selection::TrainLoss { epoch: Some(n) } => m.epochs.iter().find(|e| e.epoch == n).map(|e| e.train_bits),
        Selection::TestLossBest => test_bits(m),
    }
    .filter(|v| v.is_finite())
}

fn target_name(select: Selection) -> String {
    match select {
        Selection::TrainLoss { epoch: None } => "train loss, final epoch".into(),
        Selection::TrainLoss { epoch: Some(n) } => format!("train loss, epoch {n}"),
        Selection::TestLossBest => "best test loss".into(),
    }
}

/// The group and configuration a recorded run belongs to: recorded, else
/// planned, else its scheme and run name.
pub fn group_and_config(m: &RunMetrics, study: &Study) -> (String, String) {
    let planned = study.runs.iter().find(|p| p.name == m.run_name);
    let group = m.group.clone().or_else(|| planned.map(|p| p.group.clone())).unwrap_or_else(|| m.scheme.clone());
    let config = m.config.clone().or_else(|| planned.map(|p| p.config.clone())).unwrap_or_else(|| m.run_name.clone());
    (group, config)
}

impl Headline {
    /// Build from the recorded runs' metrics. `best_test` gives a run's best
    /// end-of-epoch test loss over the report's tokens; `base` is the base
    /// model's loss over them.
    pub fn build(
        recorded: &[&RunMetrics],
        study: &Study,
        best_test: impl Fn(&RunMetrics) -> Option<f64> + Copy,
        base: Option<f64>,
    ) -> Headline {
        let test_at = |m: &RunMetrics, e: &crate::runs::metrics::EpochMetrics| {
            if m.loss_on == "completion" { e.test_bits_completion } else { e.test_bits_all }
        };
        // Configurations in order of first appearance.
        let mut configs: Vec<Config> = Vec::new();
        let mut index: BTreeMap<(String, String), usize> = BTreeMap::new();
        for m in recorded {
            let (group, name) = group_and_config(m, study);
            let i = *index.entry((group.clone(), name.clone())).or_insert_with(|| {
                configs.push(Config {
                    group,
                    name,
                    runs: Vec::new(),
                    unfinished: 0,
                    target: None,
                    best_test: None,
                    final_train: None,
                    gap: None,
                });
                configs.len() - 1
            });
            if m.status == RunStatus::Complete {
                configs[i].runs.push(m);
            } else {
                configs[i].unfinished += 1;
            }
        }
        // Planned replicates that never recorded anything count as unfinished.
        for p in &study.runs {
            if !recorded.iter().any(|m| m.run_name == p.name)
                && let Some(&i) = index.get(&(p.group.clone(), p.config.clone()))
            {
                configs[i].unfinished += 1;
            }
        }
        configs.retain(|c| !c.runs.is_empty());
        for c in &mut configs {
            let collect = |f: &dyn Fn(&RunMetrics) -> Option<f64>| -> Option<Stat> {
                let v: Option<Vec<f64>> = c.runs.iter().map(|m| f(m)).collect();
                v.and_then(|v| Stat::of(&v))
            };
            c.target = collect(&|m| target_of(m, study.select, best_test));
            c.best_test = collect(&|m| best_test(m).filter(|v| v.is_finite()));
            let last = |m: &RunMetrics| m.epochs.iter().max_by_key(|e| e.epoch).cloned();
            c.final_train = collect(&|m| last(m).map(|e| e.train_bits).filter(|v| v.is_finite()));
            c.gap = collect(&|m| last(m).map(|e| test_at(m, &e) - e.train_bits).filter(|v| v.is_finite()));
        }
        // The selected configuration of each group.
        // Lower mean target first; ties to fewer parameters, then the name.
        let by_target = |a: &Config, b: &Config| {
            let target = |c: &Config| c.target.map_or(f64::INFINITY, |s| s.mean);
            target(a).total_cmp(&target(b)).then(a.runs[0].trainable_params.cmp(&b.runs[0].trainable_params)).then(a.name.cmp(&b.name))
        };
        let mut selected: BTreeMap<String, usize> = BTreeMap::new();
        for (i, c) in configs.iter().enumerate() {
            let better = match selected.get(&c.group) {
                None => true,
                Some(&j) => by_target(c, &configs[j]).is_lt(),
            };
            if better {
                selected.insert(c.group.clone(), i);
            }
        }
        let reference = study.reference.as_ref().and_then(|g| selected.get(g)).and_then(|&i| configs[i].best_test);
        let is_selected = |i: usize| selected.get(&configs[i].group) == Some(&i);

        let row = |i: usize| -> ConfigRow {
            let c = &configs[i];
            let m0 = c.runs[0];
            let mut args: Vec<ArgCell> = Vec::new();
            for k in &m0.swept {
                if let Some(v) = swept_value(m0, k) {
                    args.push(ArgCell { name: format::arg_name(k), value: format::arg_value(&v), swept: true });
                }
            }
            let mut epochs: Vec<usize> =
                c.runs.iter().filter_map(|m| m.best.as_ref().map(|b| b.epoch).or_else(|| m.compute_best().map(|b| b.epoch))).collect();
            epochs.sort();
            epochs.dedup();
            let is_ref = study.reference.as_ref() == Some(&c.group) && is_selected(i);
            let (delta_ref, ref_indistinct) = match (c.best_test, reference) {
                _ if is_ref => ("ref".to_string(), false),
                (Some(a), Some(r)) => (format::delta_bits(a.mean - r.mean), distinguishable(&a, &r) == Some(false)),
                _ => ("—".to_string(), false),
            };
            let total = c.runs.len() + c.unfinished;
            ConfigRow {
                group: c.group.clone(),
                config: c.name.clone(),
                args,
                params: format::thousands(m0.trainable_params),
                n: if c.unfinished > 0 { format!("{} of {total}", c.runs.len()) } else { c.runs.len().to_string() },
                target: c.target.map_or("—".into(), |s| s.text()),
                best_test: c.best_test.map_or("—".into(), |s| s.text()),
                best_epoch: if epochs.is_empty() {
                    "—".into()
                } else {
                    epochs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(", ")
                },
                gap: c.gap.map_or("—".into(), |s| s.text()),
                delta_base: match (c.best_test, base) {
                    (Some(s), Some(b)) => format::delta_bits(s.mean - b),
                    _ => "—".into(),
                },
                delta_ref,
                ref_indistinct,
                best_indistinct: false,
                is_best: false,
                selected: is_selected(i),
            }
        };

        // Headline: selected configurations by mean best test loss.
        let mut heads: Vec<usize> = selected.values().copied().collect();
        let test_mean = |i: usize| configs[i].best_test.map_or(f64::INFINITY, |s| s.mean);
        heads.sort_by(|a, b| test_mean(*a).total_cmp(&test_mean(*b)).then(configs[*a].group.cmp(&configs[*b].group)));
        let best = heads.first().and_then(|&i| configs[i].best_test);
        let rows: Vec<ConfigRow> = heads
            .iter()
            .enumerate()
            .map(|(pos, &i)| {
                let mut r = row(i);
                r.is_best = pos == 0 && best.is_some();
                r.best_indistinct =
                    pos > 0 && matches!((configs[i].best_test, best), (Some(a), Some(b)) if distinguishable(&a, &b) == Some(false));
                r
            })
            .collect();

        // Every configuration: groups in headline order, then by target.
        let mut order: Vec<usize> = (0..configs.len()).collect();
        let group_rank = |i: usize| heads.iter().position(|&h| configs[h].group == configs[i].group).unwrap_or(usize::MAX);
        order.sort_by(|a, b| group_rank(*a).cmp(&group_rank(*b)).then_with(|| by_target(&configs[*a], &configs[*b])));
        let has_choice = selected.len() < configs.len();
        // Pareto panels: the selected configurations' means.
        let point = |&i: &usize, y: Option<Stat>| {
            let c = &configs[i];
            y.map(|y| ScatterPoint { label: c.group.clone(), group: c.group.clone(), x: c.runs[0].trainable_params as f64, y: y.mean })
        };
        let train_y = |i: usize| match study.select {
            Selection::TrainLoss { .. } => configs[i].target,
            Selection::TestLossBest => configs[i].final_train,
        };
        let train_points = heads.iter().filter_map(|i| point(i, train_y(*i))).collect();
        let test_points = heads.iter().filter_map(|i| point(i, configs[*i].best_test)).collect();
        Headline {
            select: study.select.to_string(),
            target_name: target_name(study.select),
            reference: study.reference.clone(),
            rows,
            configs: order.into_iter().map(row).collect(),
            has_spread: configs.iter().any(|c| c.runs.len() > 1),
            has_choice,
            train_points,
            test_points,
        }
    }

    /// The two Pareto panels of the selected configurations (means over
    /// seeds): trainable parameters against the train loss (the selection
    /// target, or the final epoch's when selecting by test loss) and against
    /// the best test loss. None when no configuration completed.
    pub fn pareto_plots(&self, loss_on: &str, base: &[HLine]) -> Vec<super::report_data::Plot> {
        let panels = [
            (
                "params_vs_train.svg",
                format!("Selected configurations: trainable parameters vs {}", self.train_axis()),
                &self.train_points,
                &[][..],
            ),
            ("params_vs_loss.svg", "Selected configurations: trainable parameters vs best test loss".to_string(), &self.test_points, base),
        ];
        panels
            .into_iter()
            .filter(|(_, _, points, _)| !points.is_empty())
            .map(|(file, title, points, hlines)| super::report_data::Plot {
                file: file.into(),
                svg: svg::pareto_plot(
                    &title,
                    "trainable parameters (log scale)",
                    &format!("{} bits per token ({loss_on})", if file == "params_vs_loss.svg" { "best test" } else { "train" }),
                    points,
                    hlines,
                ),
                title,
            })
            .collect()
    }

    fn train_axis(&self) -> String {
        if self.target_name.starts_with("train") { self.target_name.clone() } else { "train loss, final epoch".into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_is_mean_and_sample_sd() {
        let s = Stat::of(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).unwrap();
        assert_eq!((s.n, s.mean), (8, 5.0));
        assert!((s.sd.unwrap() - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        assert_eq!(Stat::of(&[1.5]).unwrap().sd, None);
        assert_eq!(Stat::of(&[]), None);
        assert_eq!(Stat::of(&[2.3, 2.31, 2.305]).unwrap().text(), "2.305 ± 0.005");
    }

    #[test]
    fn distinguishable_needs_twice_the_standard_error() {
        let s = |mean, sd, n| Stat { n, mean, sd: Some(sd) };
        // SE of the difference: √(0.01²/3 + 0.01²/3) = 0.00816; 2·SE = 0.0163.
        assert_eq!(distinguishable(&s(2.300, 0.01, 3), &s(2.315, 0.01, 3)), Some(false));
        assert_eq!(distinguishable(&s(2.300, 0.01, 3), &s(2.317, 0.01, 3)), Some(true));
        // One seed: no spread, no verdict.
        assert_eq!(distinguishable(&s(2.3, 0.01, 3), &Stat { n: 1, mean: 2.9, sd: None }), None);
    }
}
