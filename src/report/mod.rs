//! Comparison reports: Markdown and self-contained HTML with inline SVG plots.
//!
//! Enters: `runs/<experiment>/<run>/metrics.json` ([`crate::runs`]) and the
//! experiment's planned run names. Leaves: the files below.
//!
//! Outputs, for an experiment `E` and output folder `reports/`:
//! - `reports/E.md` — tables, formulas, provenance; plots linked from `reports/E/`;
//! - `reports/E.html` — the same with CSS and SVG inline (no external assets,
//!   no scripts; works offline, on a phone and in print);
//! - `reports/E/*.svg` — the plots, for the Markdown.
//!
//! Every file is written atomically. Runs that are incomplete, diverged,
//! failed, planned without metrics, or whose `metrics.json` cannot be read are
//! listed as such, never dropped.

pub mod format;
pub mod headline;
pub mod render;
pub mod report_data;
pub mod run_entry;
pub mod svg;

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::runs::atomic::write_atomic;
use crate::runs::listing::{Entries, visible};
use crate::runs::study::Study;
pub use report_data::ReportData;
pub use run_entry::RunEntry;

/// Render the report of `runs_dir/<experiment>` into `out_dir`; returns the
/// files written (Markdown, HTML, then the plot SVGs).
pub fn render_experiment(runs_dir: &Path, experiment: &str, out_dir: &Path) -> Result<Vec<PathBuf>> {
    render_experiment_with_plan(runs_dir, experiment, &[], out_dir)
}

/// Like [`render_experiment`], and lists each run named in `planned` (by run
/// name or directory name) that has no directory as missing.
pub fn render_experiment_with_plan(runs_dir: &Path, experiment: &str, planned: &[String], out_dir: &Path) -> Result<Vec<PathBuf>> {
    let dir = runs_dir.join(experiment);
    let study = match Study::read(&dir) {
        Ok(s) => s.unwrap_or_default(),
        Err(e) => {
            eprintln!("warning: {e:#}; the report selects by the default rule and names no reference");
            Study::default()
        }
    };
    let mut planned = planned.to_vec();
    for r in &study.runs {
        if !planned.contains(&r.name) {
            planned.push(r.name.clone());
        }
    }
    let entries = load_runs(&dir, &planned)?;
    write_report(&ReportData::build(experiment, &entries, &study), out_dir)
}

/// The runs of one experiment directory (sorted by directory name), plus a
/// `Missing` entry for each planned run not found there. Hidden entries and
/// plain files are ignored. Errors only when the directory is unreadable, or
/// absent with nothing planned.
pub fn load_runs(experiment_dir: &Path, planned: &[String]) -> Result<Vec<RunEntry>> {
    let mut entries = Vec::new();
    if experiment_dir.exists() || planned.is_empty() {
        let dirs = subdirs(experiment_dir).with_context(|| format!("reading experiment {}", experiment_dir.display()))?;
        entries.extend(dirs.iter().map(|d| RunEntry::load(d)));
    }
    for name in planned {
        if !entries.iter().any(|e| e.is_named(name)) {
            entries.push(RunEntry::Missing { run_name: name.clone() });
        }
    }
    Ok(entries)
}

/// Write `<slug>.md`, `<slug>.html` and `<slug>/*.svg` under `out_dir`.
pub fn write_report(data: &ReportData, out_dir: &Path) -> Result<Vec<PathBuf>> {
    let md = render::render_markdown(data, &data.slug)?;
    let html = render::render_html(data)?;
    let md_path = out_dir.join(format!("{}.md", data.slug));
    let html_path = out_dir.join(format!("{}.html", data.slug));
    write_atomic(&md_path, md.as_bytes())?;
    write_atomic(&html_path, html.as_bytes())?;
    let mut written = vec![md_path, html_path];
    let plot_dir = out_dir.join(&data.slug);
    let plots = data.plots.iter().chain(data.groups.iter().flat_map(|g| g.sweep_plots.iter()));
    for p in plots {
        let path = plot_dir.join(&p.file);
        let doc = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}\n", p.svg);
        write_atomic(&path, doc.as_bytes())?;
        written.push(path);
    }
    // Plots of an earlier render that this one no longer has (e.g. a sweep
    // that lost its second value) would be stale: remove them.
    if let Ok(rd) = fs::read_dir(&plot_dir) {
        for e in rd.filter_map(|e| e.ok()) {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "svg") && !written.contains(&p) {
                fs::remove_file(&p).with_context(|| format!("removing stale plot {}", p.display()))?;
            }
        }
    }
    Ok(written)
}

/// Non-hidden subdirectories of `dir`, sorted.
fn subdirs(dir: &Path) -> Result<Vec<PathBuf>> {
    visible(dir, Entries::Dirs)
}

/// Whether `dir` has a run subdirectory holding `metrics.json`.
fn holds_runs(dir: &Path) -> bool {
    fs::read_dir(dir).map(|rd| rd.filter_map(|e| e.ok()).any(|e| crate::runs::RunDir::at(&e.path()).has_metrics())).unwrap_or(false)
}

/// `peftc report <path>`: `path` is an experiment directory (its
/// subdirectories hold `metrics.json`) or a runs directory (one report per
/// experiment subdirectory with run directories, once any run anywhere
/// recorded metrics).
pub fn render_path(path: &Path, out_dir: &Path) -> Result<Vec<PathBuf>> {
    if !path.is_dir() {
        bail!("{} is not a directory (expected runs/ or runs/<experiment>/)", path.display());
    }
    if holds_runs(path) {
        let path = path.canonicalize().with_context(|| format!("resolving {}", path.display()))?;
        let experiment = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let runs_dir = path.parent().unwrap_or(Path::new("/"));
        return render_experiment(runs_dir, &experiment, out_dir);
    }
    let children = subdirs(path)?;
    if !children.iter().any(|c| holds_runs(c)) {
        bail!(
            "no runs found under {}: expected <experiment>/<run>/metrics.json (or <run>/metrics.json for an experiment directory)",
            path.display()
        );
    }
    // Every experiment with run directories, even one whose runs all lack
    // metrics (they are listed as missing, not dropped).
    let experiments: Vec<PathBuf> = children.into_iter().filter(|c| subdirs(c).is_ok_and(|s| !s.is_empty())).collect();
    let mut written = Vec::new();
    for e in experiments {
        let name = e.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        written.extend(render_experiment(path, &name, out_dir).with_context(|| format!("rendering experiment {name}"))?);
    }
    Ok(written)
}
