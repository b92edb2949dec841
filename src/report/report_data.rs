//! The report's data model: everything the templates show, built from the
//! runs of one experiment, with numbers already formatted (stable output).
//!
//! Ordering (stated in the report too):
//! - the overall table ranks complete runs by best test loss (ties: fewer
//!   trainable parameters first, then run name), then unfinished runs
//!   (incomplete, diverged) by their best loss so far, then failed, unreadable
//!   and missing runs by name;
//! - scheme sections follow the rank of each scheme's best run; inside a
//!   section runs are sorted by their swept arguments' values (numerically),
//!   then by name.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use serde::Serialize;

use super::format;
use super::headline::{Headline, group_and_config};
use super::run_entry::RunEntry;
use super::svg::{self, Draw, HLine, LinePlot, Mark, Series, XAxis};
use crate::runs::metrics::{RunMetrics, RunStatus};
use crate::runs::step_log::StepRecord;
use crate::runs::study::Study;

/// One scheme argument cell.
#[derive(Debug, Clone, Serialize)]
pub struct ArgCell {
    /// Display name (`γ` for `gamma`).
    pub name: String,
    pub value: String,
    /// Swept in this experiment (shown emphasised).
    pub swept: bool,
}

/// One epoch of one run, formatted.
#[derive(Debug, Clone, Serialize)]
pub struct EpochRow {
    pub epoch: usize,
    pub train_bits: String,
    pub test_bits_all: String,
    pub test_bits_completion: String,
    pub train_seconds: String,
    pub train_tokens: String,
    /// This is the run's best epoch.
    pub best: bool,
}

/// One run as a table row.
#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    /// 1-based position in the overall table.
    pub rank: usize,
    pub run_name: String,
    pub scheme: String,
    pub args: Vec<ArgCell>,
    pub status: RowStatus,
    /// Short status label, e.g. `diverged (epoch 2, step 17)`.
    pub status_text: String,
    /// Error message or other detail; empty when none.
    pub status_detail: String,
    pub params: String,
    /// Train bits per epoch, one per report epoch column (`—` where not run).
    pub train_bits: Vec<String>,
    pub best_bits: String,
    pub best_epoch: String,
    pub perplexity: String,
    pub completion_bits: String,
    /// Best test bits minus the base model's, e.g. `-0.412`.
    pub delta_base: String,
    pub epochs_done: String,
    pub wall: String,
    pub tokens_per_s: String,
    pub backend: String,
    pub device: String,
    pub precision: String,
    pub epochs: Vec<EpochRow>,
    /// Lowest best test loss of all complete runs.
    pub is_best: bool,
    /// On the parameters-vs-loss Pareto front (complete runs only).
    pub pareto: bool,
    /// Index into the plot palette for this run's curves.
    pub style: usize,
    /// Colour of this run's curves (hex), for the legend swatch in tables.
    pub color: String,
}

/// The base model's loss, the reference row.
#[derive(Debug, Clone, Serialize)]
pub struct BaseRow {
    pub best_bits: String,
    pub completion_bits: String,
    pub all_bits: String,
    pub perplexity: String,
}

/// One plot: inline SVG for HTML, a file name for Markdown.
#[derive(Debug, Clone, Serialize)]
pub struct Plot {
    /// File name under the report's plot folder, e.g. `test_loss.svg`.
    pub file: String,
    pub title: String,
    pub svg: String,
}

/// One run group's section (a run statement: its `as` name, or its scheme).
#[derive(Debug, Clone, Serialize)]
pub struct SchemeGroup {
    /// The run group's name.
    pub scheme: String,
    /// The scheme, when the group has an `as` name of its own.
    pub base_scheme: Option<String>,
    /// The formula as written in the spec (tying modes included); empty when
    /// no run of the scheme recorded metrics.
    pub formula: String,
    /// The formula as HTML with tying modes highlighted (already escaped).
    pub formula_html: String,
    /// Runs of this scheme recorded differing formulas (only the first is shown).
    pub formula_varies: bool,
    /// Swept argument names (display names).
    pub swept: Vec<String>,
    pub rows: Vec<RunRow>,
    pub sweep_plots: Vec<Plot>,
}

/// Per-run provenance line.
#[derive(Debug, Clone, Serialize)]
pub struct ProvenanceRow {
    pub run_name: String,
    pub run_id: String,
    pub spec_hash: String,
    pub seed: String,
    pub dataset_hash: String,
    pub git_commit: String,
    pub peftc_version: String,
}

/// The footer: where the numbers come from.
#[derive(Debug, Clone, Serialize)]
pub struct Provenance {
    /// Version of the peftc that rendered this report.
    pub renderer_version: String,
    pub peftc_versions: Vec<String>,
    pub git_commits: Vec<String>,
    pub models: Vec<String>,
    pub dataset_hashes: Vec<String>,
    pub seeds: Vec<String>,
    /// Distinct `backend / device / precision` triples.
    pub backends: Vec<String>,
    pub runs: Vec<ProvenanceRow>,
}

/// Counts by status.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    pub total: usize,
    pub complete: usize,
    pub incomplete: usize,
    pub diverged: usize,
    pub failed: usize,
    pub missing: usize,
    pub unreadable: usize,
}

/// Everything a report template needs.
#[derive(Debug, Clone, Serialize)]
pub struct ReportData {
    pub experiment: String,
    /// File-name-safe experiment name (plot folder, output files).
    pub slug: String,
    /// `all` or `completion`, from the runs (`all` when none recorded it).
    pub loss_on: String,
    /// Differing `loss_on` among runs: the best-loss column mixes definitions.
    pub loss_on_varies: bool,
    pub counts: Counts,
    /// `1`, `2`, … up to the most epochs planned or run.
    pub epoch_columns: Vec<usize>,
    pub base: Option<BaseRow>,
    /// Runs disagree on the base loss (e.g. different test sets); the first is shown.
    pub base_varies: bool,
    /// One row per run group at its selected configuration, and every
    /// configuration with its seeds pooled.
    pub headline: Headline,
    /// All runs in overall order.
    pub rows: Vec<RunRow>,
    /// Runs that are not complete (subset of `rows`, same order).
    pub problems: Vec<RunRow>,
    pub groups: Vec<SchemeGroup>,
    pub plots: Vec<Plot>,
    pub provenance: Provenance,
    /// How the overall table is sorted, in words.
    pub sort_note: String,
}

const SORT_NOTE: &str = "Runs are ranked by best test loss: complete runs first, then unfinished runs (incomplete or diverged) by their best loss so far, then failed, unreadable and missing runs by name. Ties go to fewer trainable parameters.";

/// File-name-safe version of a name.
pub fn slug(name: &str) -> String {
    let s: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '=') { c } else { '_' }).collect();
    let s = s.trim_start_matches('.').to_string();
    if s.is_empty() { "_".into() } else { s }
}

/// What the report shows of a run's state: its recorded [`RunStatus`], or
/// why nothing could be read. Serialized in lowercase (`"complete"`), as the
/// templates' CSS classes name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RowStatus {
    Complete,
    Incomplete,
    Diverged,
    Failed,
    Missing,
    Unreadable,
}

impl RowStatus {
    pub fn of(e: &RunEntry) -> Self {
        match e {
            RunEntry::Recorded { metrics, .. } => match metrics.status {
                RunStatus::Complete => RowStatus::Complete,
                RunStatus::Incomplete => RowStatus::Incomplete,
                RunStatus::Diverged { .. } => RowStatus::Diverged,
                RunStatus::Failed { .. } => RowStatus::Failed,
            },
            RunEntry::Missing { .. } => RowStatus::Missing,
            RunEntry::Unreadable { .. } => RowStatus::Unreadable,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            RowStatus::Complete => "complete",
            RowStatus::Incomplete => "incomplete",
            RowStatus::Diverged => "diverged",
            RowStatus::Failed => "failed",
            RowStatus::Missing => "missing",
            RowStatus::Unreadable => "unreadable",
        }
    }

    /// Sort class: lower is listed first.
    fn class(self) -> u8 {
        match self {
            RowStatus::Complete => 0,
            RowStatus::Incomplete | RowStatus::Diverged => 1,
            RowStatus::Failed => 2,
            RowStatus::Unreadable => 3,
            RowStatus::Missing => 4,
        }
    }
}

impl std::fmt::Display for RowStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

fn best_of(m: &RunMetrics) -> Option<crate::runs::metrics::BestTest> {
    m.best.clone().filter(|b| b.bits.is_finite()).or_else(|| m.compute_best())
}

fn best_bits(e: &RunEntry) -> f64 {
    e.metrics().and_then(best_of).map(|b| b.bits).unwrap_or(f64::INFINITY)
}

/// The value of a swept name for a run: a scheme argument, or (for a swept
/// train setting such as `lr`, which is not a scheme argument) the value the
/// run name spells out as `-name=value`.
pub fn swept_value(m: &RunMetrics, name: &str) -> Option<serde_json::Value> {
    if let Some(v) = m.args.get(name) {
        return Some(v.clone());
    }
    value_in_run_name(&m.run_name, name).map(|text| match text.parse::<f64>() {
        Ok(x) if x.is_finite() => serde_json::json!(x),
        _ => serde_json::Value::String(text),
    })
}

/// `lora_gamma-gamma=32-lr=1e-4`, `lr` → `1e-4`: the text after `-name=` up
/// to the next `-ident=` (a `-` inside a number such as `1e-4` is kept).
fn value_in_run_name(run_name: &str, name: &str) -> Option<String> {
    let key = format!("-{name}=");
    let start = run_name.find(&key)? + key.len();
    let rest = &run_name[start..];
    let bytes = rest.as_bytes();
    let mut end = rest.len();
    for (i, _) in rest.match_indices('-') {
        let tail = &bytes[i + 1..];
        let ident = tail.iter().take_while(|c| c.is_ascii_alphanumeric() || **c == b'_').count();
        if ident > 0 && (tail[0].is_ascii_alphabetic() || tail[0] == b'_') && tail.get(ident) == Some(&b'=') {
            end = i;
            break;
        }
    }
    Some(rest[..end].to_string()).filter(|v| !v.is_empty())
}

/// Compare two argument values: numbers numerically, else as text.
fn cmp_values(a: Option<&serde_json::Value>, b: Option<&serde_json::Value>) -> Ordering {
    match (a.and_then(|v| v.as_f64()), b.and_then(|v| v.as_f64())) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => {
            let fa = a.map(format::arg_value).unwrap_or_default();
            let fb = b.map(format::arg_value).unwrap_or_default();
            fa.cmp(&fb)
        }
    }
}

/// Highlight tying modes (`per_layer`, `tied`, `partial(k)`, `across (…)`)
/// in an already HTML-escaped formula line.
fn highlight_tying(escaped: &str) -> String {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let chars: Vec<char> = escaped.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let boundary_before = i == 0 || !is_ident(chars[i - 1]);
        let mut matched = None;
        if boundary_before {
            for kw in ["per_layer", "tied", "partial", "across"] {
                let k: Vec<char> = kw.chars().collect();
                if chars[i..].starts_with(&k) && chars.get(i + k.len()).is_none_or(|c| !is_ident(*c)) {
                    let mut end = i + k.len();
                    // Include a parenthesised argument: `partial(k_a)`, `across (q, k)`.
                    let mut j = end;
                    while chars.get(j) == Some(&' ') {
                        j += 1;
                    }
                    if matches!(kw, "partial" | "across")
                        && chars.get(j) == Some(&'(')
                        && let Some(close) = chars[j..].iter().position(|c| *c == ')')
                    {
                        end = j + close + 1;
                    }
                    matched = Some(end);
                    break;
                }
            }
        }
        match matched {
            Some(end) => {
                out.push_str("<span class=\"tying\">");
                out.extend(&chars[i..end]);
                out.push_str("</span>");
                i = end;
            }
            None => {
                out.push(chars[i]);
                i += 1;
            }
        }
    }
    out
}

fn formula_html(formula: &str) -> String {
    formula.lines().map(|l| highlight_tying(&svg::escape(l))).collect::<Vec<_>>().join("\n")
}

fn distinct(values: impl Iterator<Item = String>) -> Vec<String> {
    values.collect::<BTreeSet<_>>().into_iter().collect()
}

/// Stable order: the overall ranking.
fn overall_cmp(a: &RunEntry, b: &RunEntry) -> Ordering {
    let (ka, kb) = (RowStatus::of(a).class(), RowStatus::of(b).class());
    let params = |e: &RunEntry| e.metrics().map(|m| m.trainable_params).unwrap_or(u64::MAX);
    ka.cmp(&kb)
        .then_with(|| if ka <= 1 { best_bits(a).total_cmp(&best_bits(b)) } else { Ordering::Equal })
        .then_with(|| params(a).cmp(&params(b)))
        .then_with(|| a.run_name().cmp(b.run_name()))
}

impl ReportData {
    /// Build the report of `experiment` from its runs (any order).
    pub fn build(experiment: &str, entries: &[RunEntry], study: &Study) -> ReportData {
        let mut sorted: Vec<&RunEntry> = entries.iter().collect();
        sorted.sort_by(|a, b| overall_cmp(a, b));

        let recorded: Vec<&RunMetrics> = sorted.iter().filter_map(|e| e.metrics()).collect();
        let loss_on = recorded.first().map(|m| m.loss_on.clone()).unwrap_or_else(|| "all".into());
        let loss_on_varies = recorded.iter().any(|m| m.loss_on != loss_on);
        let epochs_max =
            recorded.iter().map(|m| m.epochs_planned.max(m.epochs.iter().map(|e| e.epoch).max().unwrap_or(0))).max().unwrap_or(0);
        let epoch_columns: Vec<usize> = (1..=epochs_max).collect();

        let bases: Vec<&crate::runs::metrics::BaseLoss> = recorded.iter().filter_map(|m| m.base.as_ref()).collect();
        let base_loss = bases.first().copied();
        let base_varies = bases.iter().any(|b| Some(*b) != base_loss);
        let base_selected = base_loss.map(|b| if loss_on == "completion" { b.test_bits_completion } else { b.test_bits_all });
        let base = base_loss.map(|b| BaseRow {
            best_bits: format::bits(base_selected.unwrap_or(f64::NAN)),
            completion_bits: format::bits(b.test_bits_completion),
            all_bits: format::bits(b.test_bits_all),
            perplexity: format::perplexity(base_selected.unwrap_or(f64::NAN)),
        });

        // The run group of an entry: its run statement (`as` name or scheme).
        // (A run without metrics: its planned group, else its scheme.)
        let group_of = |e: &RunEntry| -> String {
            match e.metrics() {
                Some(m) => group_and_config(m, study).0,
                None => study.runs.iter().find(|p| e.is_named(&p.name)).map(|p| p.group.clone()).unwrap_or_else(|| e.scheme()),
            }
        };
        // Swept argument names per run group (union over its runs).
        let swept_of = |group: &str| -> Vec<String> {
            let mut names: Vec<String> = Vec::new();
            for m in sorted.iter().filter(|e| group_of(e) == group).filter_map(|e| e.metrics()) {
                for s in &m.swept {
                    if !names.contains(s) {
                        names.push(s.clone());
                    }
                }
            }
            names
        };

        // Pareto front over complete runs with a finite best loss.
        let complete: Vec<&RunMetrics> = recorded.iter().copied().filter(|m| m.status == RunStatus::Complete).collect();
        let complete_points: Vec<(f64, f64)> = complete
            .iter()
            .map(|m| {
                (if m.trainable_params > 0 { m.trainable_params as f64 } else { f64::NAN }, best_of(m).map(|b| b.bits).unwrap_or(f64::NAN))
            })
            .collect();
        let front: Vec<&str> = svg::pareto_front(&complete_points).into_iter().map(|i| complete[i].run_name.as_str()).collect();
        let overall_best = complete
            .iter()
            .filter_map(|m| best_of(m).map(|b| (b.bits, m.run_name.as_str())))
            .filter(|(b, _)| b.is_finite())
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .map(|x| x.1);

        let rows: Vec<RunRow> = sorted
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let swept = swept_of(&group_of(e));
                Self::row(i, e, &swept, &epoch_columns, base_selected, front.contains(&e.run_name()), overall_best == Some(e.run_name()))
            })
            .collect();

        let mut counts = Counts { total: rows.len(), ..Counts::default() };
        for r in &rows {
            match r.status {
                RowStatus::Complete => counts.complete += 1,
                RowStatus::Incomplete => counts.incomplete += 1,
                RowStatus::Diverged => counts.diverged += 1,
                RowStatus::Failed => counts.failed += 1,
                RowStatus::Missing => counts.missing += 1,
                RowStatus::Unreadable => counts.unreadable += 1,
            }
        }

        let base_hline: Vec<HLine> =
            base_selected.map(|y| vec![HLine { y, label: format!("base model {}", format::bits(y)) }]).unwrap_or_default();
        let slug_name = slug(experiment);

        // Sections, one per run group, in order of each group's first (best) row.
        let entry_groups: Vec<String> = sorted.iter().map(|e| group_of(e)).collect();
        let mut section_names: Vec<String> = Vec::new();
        for g in &entry_groups {
            if !section_names.contains(g) {
                section_names.push(g.clone());
            }
        }
        let groups = section_names
            .iter()
            .map(|group| {
                let swept = swept_of(group);
                let mut members: Vec<(&RunEntry, &RunRow)> =
                    sorted.iter().copied().zip(rows.iter()).zip(&entry_groups).filter(|(_, g)| *g == group).map(|(pair, _)| pair).collect();
                members.sort_by(|(a, ra), (b, rb)| {
                    let arg = |e: &RunEntry, name: &str| e.metrics().and_then(|m| swept_value(m, name));
                    swept
                        .iter()
                        .map(|s| cmp_values(arg(a, s).as_ref(), arg(b, s).as_ref()))
                        .find(|o| *o != Ordering::Equal)
                        .unwrap_or(Ordering::Equal)
                        .then_with(|| ra.run_name.cmp(&rb.run_name))
                });
                let formulas: Vec<&str> = members.iter().filter_map(|(e, _)| e.metrics().map(|m| m.formula.as_str())).collect();
                let formula = formulas.first().copied().unwrap_or("").to_string();
                let scheme = members.first().map(|(_, r)| r.scheme.clone()).unwrap_or_default();
                let sweep_plots =
                    swept.iter().filter_map(|arg| Self::sweep_plot(group, arg, &swept, &members, &loss_on, &base_hline)).collect();
                SchemeGroup {
                    scheme: group.clone(),
                    base_scheme: (scheme != *group).then_some(scheme),
                    formula_html: formula_html(&formula),
                    formula_varies: formulas.iter().any(|f| *f != formula),
                    formula,
                    swept: swept.iter().map(|s| format::arg_name(s)).collect(),
                    rows: members.into_iter().map(|(_, r)| r.clone()).collect(),
                    sweep_plots,
                }
            })
            .collect();

        let headline = Headline::build(&recorded, study, |m| best_of(m).map(|b| b.bits), base_selected);
        let mut plots = Self::plots(&sorted, &rows, &loss_on, &base_hline);
        plots.extend(headline.pareto_plots(&loss_on, &base_hline));

        let provenance = Provenance {
            renderer_version: env!("CARGO_PKG_VERSION").to_string(),
            peftc_versions: distinct(recorded.iter().map(|m| m.peftc_version.clone())),
            git_commits: distinct(recorded.iter().map(|m| m.git_commit.clone().unwrap_or_else(|| "unknown".into()))),
            models: distinct(recorded.iter().map(|m| m.model.clone())),
            dataset_hashes: distinct(recorded.iter().map(|m| m.dataset_hash.clone())),
            seeds: {
                let mut s: Vec<u64> = recorded.iter().map(|m| m.seed).collect::<BTreeSet<_>>().into_iter().collect();
                s.sort();
                s.into_iter().map(|x| x.to_string()).collect()
            },
            backends: distinct(recorded.iter().map(|m| format!("{} / {} / {}", m.backend, m.device, m.precision))),
            runs: sorted
                .iter()
                .filter_map(|e| e.metrics())
                .map(|m| ProvenanceRow {
                    run_name: m.run_name.clone(),
                    run_id: m.run_id.clone(),
                    spec_hash: m.spec_hash.clone(),
                    seed: m.seed.to_string(),
                    dataset_hash: m.dataset_hash.clone(),
                    git_commit: m.git_commit.clone().unwrap_or_else(|| "unknown".into()),
                    peftc_version: m.peftc_version.clone(),
                })
                .collect(),
        };

        ReportData {
            experiment: experiment.to_string(),
            slug: slug_name,
            loss_on,
            loss_on_varies,
            counts,
            epoch_columns,
            base,
            base_varies,
            headline,
            problems: rows.iter().filter(|r| r.status != RowStatus::Complete).cloned().collect(),
            rows,
            groups,
            plots,
            provenance,
            sort_note: SORT_NOTE.to_string(),
        }
    }

    fn row(
        index: usize,
        e: &RunEntry,
        swept: &[String],
        epoch_columns: &[usize],
        base: Option<f64>,
        pareto: bool,
        is_best: bool,
    ) -> RunRow {
        let dash = || "—".to_string();
        let kind = RowStatus::of(e);
        let mut row = RunRow {
            rank: index + 1,
            run_name: e.run_name().to_string(),
            scheme: e.scheme(),
            args: Vec::new(),
            status: kind,
            status_text: kind.to_string(),
            status_detail: String::new(),
            params: dash(),
            train_bits: epoch_columns.iter().map(|_| dash()).collect(),
            best_bits: dash(),
            best_epoch: dash(),
            perplexity: dash(),
            completion_bits: dash(),
            delta_base: dash(),
            epochs_done: dash(),
            wall: dash(),
            tokens_per_s: dash(),
            backend: dash(),
            device: dash(),
            precision: dash(),
            epochs: Vec::new(),
            is_best,
            pareto,
            style: index,
            color: svg::PALETTE[index % svg::PALETTE.len()].to_string(),
        };
        match e {
            RunEntry::Missing { .. } => {
                row.status_text = "missing".into();
                row.status_detail = "no metrics.json: planned but not run, or killed before its first epoch was recorded".into();
            }
            RunEntry::Unreadable { error, .. } => {
                row.status_text = "unreadable".into();
                row.status_detail = error.clone();
            }
            RunEntry::Recorded { metrics: m, .. } => {
                let done = m.epochs.len();
                row.status_text = match &m.status {
                    RunStatus::Complete => "complete".into(),
                    RunStatus::Incomplete => format!("incomplete ({done}/{} epochs)", m.epochs_planned),
                    RunStatus::Diverged { epoch, step, .. } => format!("diverged (epoch {epoch}, step {step})"),
                    RunStatus::Failed { .. } => "failed".into(),
                };
                row.status_detail = match &m.status {
                    RunStatus::Diverged { message, .. } | RunStatus::Failed { message } => message.clone(),
                    _ => String::new(),
                };
                row.args = m
                    .args
                    .iter()
                    .map(|(k, v)| ArgCell {
                        name: format::arg_name(k),
                        value: format::arg_value(v),
                        swept: swept.contains(k) || m.swept.contains(k),
                    })
                    .collect();
                // Swept train settings (e.g. `lr`) are not scheme arguments; show them too.
                for k in swept.iter().chain(&m.swept) {
                    if !m.args.contains_key(k)
                        && !row.args.iter().any(|a| a.name == format::arg_name(k))
                        && let Some(v) = swept_value(m, k)
                    {
                        row.args.push(ArgCell { name: format::arg_name(k), value: format::arg_value(&v), swept: true });
                    }
                }
                row.params = format::thousands(m.trainable_params);
                for ep in &m.epochs {
                    if let Some(pos) = epoch_columns.iter().position(|c| *c == ep.epoch) {
                        row.train_bits[pos] = format::bits(ep.train_bits);
                    }
                }
                let best = best_of(m);
                if let Some(b) = &best {
                    row.best_bits = format::bits(b.bits);
                    row.best_epoch = b.epoch.to_string();
                    row.perplexity = format::perplexity(b.bits);
                    row.completion_bits = format::bits(b.bits_completion);
                    if let Some(base) = base {
                        row.delta_base = format::delta_bits(b.bits - base);
                    }
                }
                row.epochs = m
                    .epochs
                    .iter()
                    .map(|ep| EpochRow {
                        epoch: ep.epoch,
                        train_bits: format::bits(ep.train_bits),
                        test_bits_all: format::bits(ep.test_bits_all),
                        test_bits_completion: format::bits(ep.test_bits_completion),
                        train_seconds: format::duration(ep.train_seconds),
                        train_tokens: format::thousands(ep.train_tokens),
                        best: best.as_ref().is_some_and(|b| b.epoch == ep.epoch),
                    })
                    .collect();
                row.epochs_done = format!("{done}/{}", m.epochs_planned);
                row.wall = format::duration(m.wall_seconds);
                if !m.epochs.is_empty() {
                    row.tokens_per_s = format::rate(m.train_tokens_per_s);
                }
                row.backend = m.backend.clone();
                row.device = m.device.clone();
                row.precision = m.precision.clone();
            }
        }
        row
    }

    /// Loss-per-epoch plots (train, test) and the Pareto scatter.
    fn plots(sorted: &[&RunEntry], rows: &[RunRow], loss_on: &str, base: &[HLine]) -> Vec<Plot> {
        let mut train = Vec::new();
        let mut test = Vec::new();
        for (e, r) in sorted.iter().zip(rows) {
            let Some(m) = e.metrics() else { continue };
            if !m.epochs.is_empty() {
                let selected = |ep: &crate::runs::metrics::EpochMetrics| {
                    if m.loss_on == "completion" { ep.test_bits_completion } else { ep.test_bits_all }
                };
                train.push(Series {
                    name: r.run_name.clone(),
                    style: r.style,
                    points: m.epochs.iter().map(|ep| (ep.epoch as f64, ep.train_bits)).collect(),
                    draw: Draw::LineAndMarkers,
                });
                test.push(Series {
                    name: r.run_name.clone(),
                    style: r.style,
                    points: m.epochs.iter().map(|ep| (ep.epoch as f64, selected(ep))).collect(),
                    draw: Draw::LineAndMarkers,
                });
            }
        }
        let mut plots = Vec::new();
        if !train.is_empty() {
            plots.push(Plot {
                file: "train_loss.svg".into(),
                title: "Train loss per epoch".into(),
                svg: LinePlot {
                    title: "Train loss per epoch".into(),
                    x_label: "epoch".into(),
                    y_label: format!("train bits per token ({loss_on})"),
                    x_axis: XAxis::Integer,
                    series: train,
                    hlines: Vec::new(),
                    marks: Vec::new(),
                }
                .to_svg(),
            });
            plots.push(Plot {
                file: "test_loss.svg".into(),
                title: "Test loss per epoch".into(),
                svg: LinePlot {
                    title: "Test loss per epoch".into(),
                    x_label: "epoch".into(),
                    y_label: format!("test bits per token ({loss_on})"),
                    x_axis: XAxis::Integer,
                    series: test,
                    hlines: base.to_vec(),
                    marks: Vec::new(),
                }
                .to_svg(),
            });
        }
        for (e, r) in sorted.iter().zip(rows) {
            if let (Some(m), steps) = (e.metrics(), e.steps())
                && !steps.is_empty()
            {
                plots.push(curve_plot(m, steps, r, loss_on, base));
            }
        }
        plots
    }

    /// Best test loss of the complete runs against one swept argument of one
    /// scheme; one line per combination of the scheme's other swept
    /// arguments. `None` when fewer than two distinct values have a loss.
    fn sweep_plot(
        scheme: &str,
        arg: &str,
        swept: &[String],
        members: &[(&RunEntry, &RunRow)],
        loss_on: &str,
        base: &[HLine],
    ) -> Option<Plot> {
        // (value, label of the other swept args, best bits)
        let mut pts: Vec<(serde_json::Value, String, f64)> = Vec::new();
        // Recorded runs that are not complete: (value, status label).
        let mut unfinished: Vec<(serde_json::Value, String)> = Vec::new();
        for (e, r) in members {
            if let Some(m) = e.metrics().filter(|m| m.status != RunStatus::Complete)
                && let Some(v) = swept_value(m, arg)
            {
                unfinished.push((v.clone(), format!("{}={}: {}", format::arg_name(arg), format::arg_value(&v), r.status)));
            }
            let Some(m) = e.metrics().filter(|m| m.status == RunStatus::Complete) else { continue };
            let (Some(v), Some(b)) = (swept_value(m, arg), best_of(m)) else { continue };
            let others: Vec<String> = swept
                .iter()
                .filter(|s| s.as_str() != arg)
                .filter_map(|s| swept_value(m, s).map(|ov| format!("{}={}", format::arg_name(s), format::arg_value(&ov))))
                .collect();
            pts.push((v, others.join(", "), b.bits));
        }
        let values: Vec<serde_json::Value> = {
            let mut vs: Vec<serde_json::Value> = Vec::new();
            for (v, _, _) in &pts {
                if !vs.contains(v) {
                    vs.push(v.clone());
                }
            }
            vs.sort_by(|a, b| cmp_values(Some(a), Some(b)));
            vs
        };
        if values.len() < 2 {
            return None;
        }
        let numeric: Option<Vec<f64>> = values.iter().chain(unfinished.iter().map(|(v, _)| v)).map(|v| v.as_f64()).collect();
        let x_axis = match &numeric {
            Some(xs) => {
                let (lo, hi) = xs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), x| (l.min(*x), h.max(*x)));
                if lo > 0.0 && hi / lo >= 10.0 { XAxis::Log } else { XAxis::Linear }
            }
            None => XAxis::Categories(values.iter().map(format::arg_value).collect()),
        };
        let x_of = |v: &serde_json::Value| match &numeric {
            Some(_) => v.as_f64().unwrap_or(f64::NAN),
            None => values.iter().position(|x| x == v).map(|i| i as f64).unwrap_or(f64::NAN),
        };
        let mut labels: Vec<String> = Vec::new();
        for (_, l, _) in &pts {
            if !labels.contains(l) {
                labels.push(l.clone());
            }
        }
        // Seed replicates of one configuration: their mean.
        let replicated = values.iter().any(|v| labels.iter().any(|l| pts.iter().filter(|(pv, pl, _)| pv == v && pl == l).count() > 1));
        let series = labels
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let mut p: Vec<(f64, f64)> = values
                    .iter()
                    .filter_map(|v| {
                        let bits: Vec<f64> = pts.iter().filter(|(pv, pl, _)| pv == v && pl == l).map(|(_, _, b)| *b).collect();
                        (!bits.is_empty()).then(|| (x_of(v), bits.iter().sum::<f64>() / bits.len() as f64))
                    })
                    .collect();
                p.sort_by(|a, b| a.0.total_cmp(&b.0));
                Series {
                    name: if l.is_empty() { scheme.to_string() } else { format!("{scheme} ({l})") },
                    style: i,
                    points: p,
                    draw: Draw::LineAndMarkers,
                }
            })
            .collect();
        let marks = match &numeric {
            Some(_) => unfinished.iter().map(|(v, label)| Mark { x: x_of(v), label: label.clone() }).collect(),
            None => Vec::new(),
        };
        let shown = format::arg_name(arg);
        let log_note = if x_axis == XAxis::Log { " (log scale)" } else { "" };
        let title = format!("{scheme}: best test loss vs {shown} (complete runs{})", if replicated { "; mean over seeds" } else { "" });
        Some(Plot {
            file: format!("sweep-{}-{}.svg", slug(scheme), slug(arg)),
            title: title.clone(),
            svg: LinePlot {
                title,
                x_label: format!("{shown}{log_note}"),
                y_label: format!("best test bits per token ({loss_on})"),
                x_axis,
                series,
                hlines: base.to_vec(),
                marks,
            }
            .to_svg(),
        })
    }
}

/// A run's training curve: per-step train loss (a light raw line under its
/// exponential moving average, α = min(1, 10 / steps), so it averages over
/// about a tenth of the run) against the run's training tokens, with the
/// end-of-epoch test losses (over the selected tokens) as markers at the
/// tokens where each epoch ended.
fn curve_plot(m: &RunMetrics, steps: &[StepRecord], r: &RunRow, loss_on: &str, base: &[HLine]) -> Plot {
    let raw: Vec<(f64, f64)> = steps.iter().map(|s| (s.tokens as f64, s.loss_bits)).collect();
    let alpha = (10.0 / steps.len() as f64).min(1.0);
    let mut ema = Vec::with_capacity(raw.len());
    let mut acc: Option<f64> = None;
    for &(x, y) in &raw {
        if y.is_finite() {
            acc = Some(acc.map_or(y, |a| a + alpha * (y - a)));
        }
        ema.push((x, acc.unwrap_or(f64::NAN)));
    }
    let test: Vec<(f64, f64)> = m
        .epochs
        .iter()
        .filter_map(|ep| {
            let end = steps.iter().filter(|s| s.epoch == ep.epoch).map(|s| s.tokens).max()?;
            let bits = if m.loss_on == "completion" { ep.test_bits_completion } else { ep.test_bits_all };
            Some((end as f64, bits))
        })
        .collect();
    let title = format!("Training curve: {}", r.run_name);
    Plot {
        file: format!("curve-{}.svg", slug(&r.run_name)),
        title: title.clone(),
        svg: LinePlot {
            title,
            x_label: "training tokens".into(),
            y_label: format!("bits per token ({loss_on})"),
            x_axis: XAxis::Linear,
            series: vec![
                Series { name: "train, per step".into(), style: r.style, points: raw, draw: Draw::Raw },
                Series { name: "train (moving average)".into(), style: r.style, points: ema, draw: Draw::Line },
                Series { name: "test, end of epoch".into(), style: r.style + 1, points: test, draw: Draw::Markers },
            ],
            hlines: base.to_vec(),
            marks: Vec::new(),
        }
        .to_svg(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runs::metrics::EpochMetrics;

    fn run(name: &str, args: serde_json::Value, swept: &[&str], status: RunStatus, bits: &[f64]) -> RunEntry {
        let epochs: Vec<EpochMetrics> = bits
            .iter()
            .enumerate()
            .map(|(i, b)| EpochMetrics {
                epoch: i + 1,
                train_bits: b + 0.1,
                test_bits_all: *b,
                test_bits_completion: b - 0.5,
                train_seconds: 10.0,
                train_tokens: 1000,
            })
            .collect();
        let mut m = RunMetrics {
            peftc_version: "0.1.0".into(),
            experiment: "e".into(),
            run_name: name.into(),
            run_id: format!("id-{name}"),
            scheme: "s".into(),
            args: serde_json::from_value(args).unwrap(),
            swept: swept.iter().map(|s| s.to_string()).collect(),
            formula: "A : [in, r] tied init zeros\ndelta = x @ A".into(),
            status,
            trainable_params: 1000,
            loss_on: "all".into(),
            epochs_planned: 2,
            epochs,
            best: None,
            base: None,
            wall_seconds: 20.0,
            train_tokens_per_s: 100.0,
            backend: "ndarray".into(),
            device: "cpu".into(),
            precision: "f32".into(),
            seed: 0,
            spec_hash: "h".into(),
            dataset_hash: "d".into(),
            model: "m".into(),
            git_commit: None,
            ..RunMetrics::blank("e", name, "")
        };
        m.best = m.compute_best();
        RunEntry::Recorded { dir_name: name.into(), metrics: Box::new(m), steps: vec![] }
    }

    #[test]
    fn two_swept_args_give_one_line_per_other_value() {
        let c = || RunStatus::Complete;
        let entries = vec![
            run("a", serde_json::json!({"k_a": 1, "k_b": 4}), &["k_a", "k_b"], c(), &[2.5, 2.4]),
            run("b", serde_json::json!({"k_a": 4, "k_b": 4}), &["k_a", "k_b"], c(), &[2.4, 2.3]),
            run("c", serde_json::json!({"k_a": 1, "k_b": 8}), &["k_a", "k_b"], c(), &[2.45, 2.35]),
            run("d", serde_json::json!({"k_a": 4, "k_b": 8}), &["k_a", "k_b"], c(), &[2.3, 2.2]),
            run("e", serde_json::json!({"k_a": 30, "k_b": 8}), &["k_a", "k_b"], RunStatus::Incomplete, &[2.6]),
        ];
        let r = ReportData::build("e", &entries, &Study::default());
        assert_eq!(r.groups.len(), 1);
        let g = &r.groups[0];
        assert_eq!(g.swept, ["k_a", "k_b"]);
        // Sorted by k_a, then k_b.
        let order: Vec<&str> = g.rows.iter().map(|r| r.run_name.as_str()).collect();
        assert_eq!(order, ["a", "c", "b", "d", "e"]);
        assert_eq!(g.sweep_plots.len(), 2);
        let ka = &g.sweep_plots[0].svg;
        assert!(ka.contains("s (k_b=4)") && ka.contains("s (k_b=8)"), "one line per k_b");
        // The incomplete run is marked, not dropped; k_a 1..30 spans a decade: log axis.
        assert!(ka.contains("k_a=30: incomplete"));
        assert!(ka.contains("k_a (log scale)"));
        let kb = &g.sweep_plots[1].svg;
        assert!(kb.contains("s (k_a=1)") && kb.contains("s (k_a=4)"));
        assert!(!kb.contains("log scale"));
        // Overall: complete by best loss, then the incomplete run.
        let overall: Vec<&str> = r.rows.iter().map(|r| r.run_name.as_str()).collect();
        assert_eq!(overall, ["d", "b", "c", "a", "e"]);
        assert!(r.rows[0].is_best);
    }

    #[test]
    fn sections_are_run_groups_and_sweeps_average_seeds() {
        let c = || RunStatus::Complete;
        // The swept lr is read from the run name (`-lr=…`), as for any swept train setting.
        let grouped = |name: &str, group: &str, bits: f64| {
            let mut e = run(name, serde_json::json!({"r": 8}), &["lr"], c(), &[bits]);
            if let RunEntry::Recorded { metrics, .. } = &mut e {
                metrics.group = Some(group.into());
                metrics.config = Some(name.rsplit_once("-seed=").map_or(name, |p| p.0).into());
            }
            e
        };
        // Two run statements of scheme `s`, `fast` and `slow`, each an lr sweep over two seeds.
        let entries = vec![
            grouped("fast-lr=0.001-seed=0", "fast", 2.0),
            grouped("fast-lr=0.001-seed=1", "fast", 2.2),
            grouped("fast-lr=0.01-seed=0", "fast", 2.5),
            grouped("fast-lr=0.01-seed=1", "fast", 2.5),
            grouped("slow-lr=0.001-seed=0", "slow", 2.9),
            grouped("slow-lr=0.01-seed=0", "slow", 2.8),
        ];
        let r = ReportData::build("e", &entries, &Study::default());
        let names: Vec<(&str, Option<&str>)> = r.groups.iter().map(|g| (g.scheme.as_str(), g.base_scheme.as_deref())).collect();
        assert_eq!(names, [("fast", Some("s")), ("slow", Some("s"))]);
        assert_eq!(r.groups[0].rows.len(), 4);
        // fast's sweep: one point per lr, the mean of its seeds (2.1 at 1e-3).
        let plot = &r.groups[0].sweep_plots[0];
        assert_eq!(plot.title, "fast: best test loss vs lr (complete runs; mean over seeds)");
        assert_eq!(plot.file, "sweep-fast-lr.svg");
        assert!(plot.svg.contains("2.100"), "the mean of 2.0 and 2.2 is plotted");
        assert_eq!(r.groups[1].sweep_plots[0].title, "slow: best test loss vs lr (complete runs)");
    }

    #[test]
    fn mixed_loss_selections_and_bases_are_flagged() {
        let mut a = run("a", serde_json::json!({}), &[], RunStatus::Complete, &[2.5]);
        let mut b = run("b", serde_json::json!({}), &[], RunStatus::Complete, &[2.4]);
        if let RunEntry::Recorded { metrics, .. } = &mut a {
            metrics.base = Some(crate::runs::metrics::BaseLoss { test_bits_all: 2.7, test_bits_completion: 2.1 });
        }
        if let RunEntry::Recorded { metrics, .. } = &mut b {
            metrics.loss_on = "completion".into();
            metrics.base = Some(crate::runs::metrics::BaseLoss { test_bits_all: 2.8, test_bits_completion: 2.2 });
            metrics.best = metrics.compute_best();
        }
        let r = ReportData::build("e", &[a, b], &Study::default());
        assert!(r.loss_on_varies && r.base_varies);
        // `b` scores completion tokens: its best is 1.9, so it ranks first.
        assert_eq!(r.rows[0].run_name, "b");
        assert_eq!(r.rows[0].best_bits, "1.900");
        // The first-ranked run's selection defines the base row (completion: 2.2).
        assert_eq!(r.loss_on, "completion");
        assert_eq!(r.base.as_ref().unwrap().best_bits, "2.200");
    }

    #[test]
    fn swept_train_settings_come_from_the_run_name() {
        assert_eq!(value_in_run_name("lora_gamma-gamma=32-lr=1e-4", "lr").as_deref(), Some("1e-4"));
        assert_eq!(value_in_run_name("lora_gamma-lr=1e-4-gamma=32", "lr").as_deref(), Some("1e-4"));
        assert_eq!(value_in_run_name("lora_gamma-gamma=32", "lr"), None);
        let c = || RunStatus::Complete;
        let entries = vec![
            run("lora-lr=1e-4", serde_json::json!({"r": 8}), &["lr"], c(), &[2.5]),
            run("lora-lr=1e-3", serde_json::json!({"r": 8}), &["lr"], c(), &[2.4]),
            run("lora-lr=1e-2", serde_json::json!({"r": 8}), &["lr"], c(), &[2.6]),
        ];
        let r = ReportData::build("e", &entries, &Study::default());
        let g = &r.groups[0];
        let order: Vec<&str> = g.rows.iter().map(|r| r.run_name.as_str()).collect();
        assert_eq!(order, ["lora-lr=1e-4", "lora-lr=1e-3", "lora-lr=1e-2"]);
        let lr = g.rows[0].args.iter().find(|a| a.name == "lr").unwrap();
        assert!(lr.swept);
        assert_eq!(lr.value, "0.0001");
        assert_eq!(g.sweep_plots.len(), 1);
        assert!(g.sweep_plots[0].svg.contains("lr (log scale)"));
    }

    #[test]
    fn non_numeric_sweeps_use_categories() {
        let c = || RunStatus::Complete;
        let entries = vec![
            run("x", serde_json::json!({"init": "zeros"}), &["init"], c(), &[2.5]),
            run("y", serde_json::json!({"init": "normal"}), &["init"], c(), &[2.4]),
        ];
        let r = ReportData::build("e", &entries, &Study::default());
        let svg = &r.groups[0].sweep_plots[0].svg;
        // Categories in sorted order, as tick labels.
        let (n, z) = (svg.find(">normal</text>").unwrap(), svg.find(">zeros</text>").unwrap());
        assert!(n < z);
    }

    #[test]
    fn a_single_value_is_no_sweep_and_nan_losses_are_not_best() {
        let entries = vec![
            run("x", serde_json::json!({"r": 8}), &["r"], RunStatus::Complete, &[2.5]),
            run("nan", serde_json::json!({"r": 8}), &["r"], RunStatus::Complete, &[f64::NAN]),
        ];
        let r = ReportData::build("e", &entries, &Study::default());
        assert!(r.groups[0].sweep_plots.is_empty());
        let nan = r.rows.iter().find(|r| r.run_name == "nan").unwrap();
        assert_eq!(nan.best_bits, "—");
        assert_eq!(nan.epochs[0].test_bits_all, "NaN");
        assert_eq!(r.rows[0].run_name, "x");
    }

    #[test]
    fn tying_modes_are_highlighted_on_word_boundaries() {
        let h = highlight_tying("A : [in, r] tied init normal(0, 1 / gamma)  // tied_lora is not a mode");
        assert_eq!(h.matches("class=\"tying\"").count(), 1, "{h}");
        let h = highlight_tying("M : [a, b] partial(l) init zeros; B across (q, k) per_layer");
        assert!(h.contains("<span class=\"tying\">partial(l)</span>"), "{h}");
        assert!(h.contains("<span class=\"tying\">across (q, k)</span>"), "{h}");
        assert!(h.contains("<span class=\"tying\">per_layer</span>"), "{h}");
    }

    #[test]
    fn slugs_are_file_safe() {
        assert_eq!(slug("gsm8k quick/../x"), "gsm8k_quick_.._x");
        assert_eq!(slug("..hidden"), "hidden");
        assert_eq!(slug("lora-gamma=32"), "lora-gamma=32");
        assert_eq!(slug(""), "_");
    }

    #[test]
    fn recorded_steps_give_a_training_curve_per_run() {
        let c = || RunStatus::Complete;
        let mut with_steps = run("lora", serde_json::json!({}), &[], c(), &[2.0, 1.8]);
        if let RunEntry::Recorded { steps, .. } = &mut with_steps {
            // Two epochs of 4 steps, 100 tokens each; one NaN step breaks nothing.
            *steps = (0..8)
                .map(|i| StepRecord {
                    epoch: 1 + i / 4,
                    step: 1 + i % 4,
                    tokens: 100 * (i as u64 + 1),
                    loss_bits: if i == 5 { f64::NAN } else { 3.0 - 0.1 * i as f64 },
                    lr: 1e-3,
                })
                .collect();
        }
        let without = run("dora", serde_json::json!({}), &[], c(), &[2.1]);
        let r = ReportData::build("e", &[with_steps, without], &Study::default());
        let curves: Vec<&Plot> = r.plots.iter().filter(|p| p.file.starts_with("curve-")).collect();
        assert_eq!(curves.len(), 1, "only the run with a recorded curve");
        assert_eq!(curves[0].file, "curve-lora.svg");
        let svg = &curves[0].svg;
        assert!(svg.contains("training tokens") && svg.contains("Training curve: lora"));
        // The raw line (light, split at the NaN step) under the moving average.
        assert_eq!(svg.matches(r#"stroke-opacity="0.3""#).count(), 2, "{svg}");
        // End-of-epoch test losses as markers at the epochs' last tokens (400, 800).
        assert_eq!(svg.matches(r##"r="5" stroke="#fff""##).count(), 2);
        assert!(svg.contains("test, end of epoch: 2.000") && svg.contains("test, end of epoch: 1.800"), "{svg}");
    }
}
