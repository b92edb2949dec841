//! The HTML report in a real headless browser (Debian's `chromium`): it loads,
//! and its tables and SVG plots are in the DOM; a screenshot is kept under
//! `target/tmp/report-browser/` for people to look at.
//!
//! Skips (loudly) only when no chromium is installed AND `CI` is unset; in CI
//! a missing browser fails the test. `PEFTC_CHROMIUM` names the binary.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/report/runs")
}

fn find_chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PEFTC_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"] {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// Run chromium headless with `extra` args on `url`; stdout, or a panic with
/// its stderr after a failure or 120 s. Output goes to files, not pipes: a
/// large DOM would fill a pipe nobody reads while we wait.
fn chromium(bin: &Path, extra: &[String], url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let stdout_path = profile.path().join("stdout");
    let stderr_path = profile.path().join("stderr");
    let mut child = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url)
        .stdout(Stdio::from(fs::File::create(&stdout_path).unwrap()))
        .stderr(Stdio::from(fs::File::create(&stderr_path).unwrap()))
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 120 s: {}", fs::read_to_string(&stderr_path).unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stderr = fs::read_to_string(&stderr_path).unwrap_or_default();
    assert!(status.success(), "chromium failed ({status}): {stderr}");
    fs::read_to_string(&stdout_path).unwrap()
}

/// The browser, or `None` (after a loud message) when there is none
/// outside CI; in CI its absence fails the test.
fn chromium_or_skip(test: &str) -> Option<PathBuf> {
    let bin = find_chromium();
    if bin.is_none() {
        if std::env::var_os("CI").is_some() {
            panic!("chromium not found but CI is set: install it (apt-get install -y chromium) or set PEFTC_CHROMIUM");
        }
        eprintln!("\n\n!!! SKIPPED {test}: no chromium on PATH (apt-get install -y chromium) !!!\n\n");
    }
    bin
}

#[test]
fn html_report_loads_in_headless_chromium() {
    let Some(bin) = chromium_or_skip("html_report_loads_in_headless_chromium") else { return };
    let out = tempfile::tempdir().unwrap();
    peftc::report::render_experiment(&fixtures(), "gsm8k_quick", out.path()).unwrap();
    let html = out.path().join("gsm8k_quick.html");
    let url = format!("file://{}", html.display());

    let dom = chromium(&bin, &["--dump-dom".to_string()], &url);
    // Parsed by the browser, the page keeps its structure.
    assert!(dom.contains("<title>peftc report: gsm8k_quick</title>"), "title missing from the DOM");
    // Headline and configurations tables, results table, one table per
    // scheme (6 schemes), epochs table, provenance table.
    let tables = dom.matches("<table").count();
    assert_eq!(tables, 2 + 1 + 6 + 1 + 1, "tables in the DOM");
    // Train, test, the two params-vs-loss panels, two sweeps.
    let svgs = dom.matches("<svg").count();
    assert_eq!(svgs, 6, "inline SVG plots in the DOM");
    assert!(dom.contains("class=\"pareto-front\""));
    assert_eq!(dom.matches("<tr class=\"base\">").count(), 1 + 6 + 1, "base row in every runs table and in the epochs table");
    for status in ["complete", "incomplete", "diverged", "failed", "unreadable", "missing"] {
        assert!(dom.contains(&format!("class=\"badge {status}\"")), "no {status} badge");
    }
    assert!(dom.contains("id=\"provenance\""));
    // Self-contained: nothing loaded from elsewhere.
    for external in ["<script", "<link", "src=\"http", "href=\"http", "url("] {
        assert!(!dom.contains(external), "external asset or script: {external}");
    }

    // Screenshots, desktop and phone width, for people to look at.
    let keep = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-browser");
    fs::create_dir_all(&keep).unwrap();
    for (name, size) in [("desktop", "1280,3000"), ("phone", "390,2400")] {
        let png = keep.join(format!("gsm8k_quick-{name}.png"));
        let _ = fs::remove_file(&png);
        chromium(&bin, &[format!("--screenshot={}", png.display()), format!("--window-size={size}")], &url);
        let bytes = fs::read(&png).unwrap_or_else(|e| panic!("no screenshot at {}: {e}", png.display()));
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "screenshot is not a PNG");
        assert!(bytes.len() > 20_000, "screenshot suspiciously small ({} bytes): blank page?", bytes.len());
        eprintln!("screenshot: {}", png.display());
    }
}

#[test]
fn study_report_loads_in_headless_chromium() {
    let Some(bin) = chromium_or_skip("study_report_loads_in_headless_chromium") else { return };
    let out = tempfile::tempdir().unwrap();
    peftc::report::render_experiment(&fixtures(), "study_seeds", out.path()).unwrap();
    let url = format!("file://{}", out.path().join("study_seeds.html").display());
    let dom = chromium(&bin, &["--dump-dom".to_string()], &url);
    assert!(dom.contains("<section id=\"headline\">"), "no headline section");
    assert_eq!(dom.matches("<table class=\"headline\">").count(), 1);
    assert_eq!(dom.matches("<table class=\"configs\">").count(), 1);
    // Two groups within the seeds' spread of the best or the reference.
    assert_eq!(dom.matches("title=\"not distinguishable from the best row\"").count(), 1);
    assert_eq!(dom.matches("title=\"not distinguishable from the reference\"").count(), 1);
    // Train, test, both Pareto panels of the selected configurations, the
    // γ sweep, and the one run that recorded its steps gets its curve.
    assert_eq!(dom.matches("<svg").count(), 6, "inline SVG plots in the DOM");
    assert!(dom.contains("Training curve"), "no per-step curve");
    assert!(dom.contains("Selected configurations: trainable parameters vs train loss, final epoch"));
    let keep = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-browser");
    fs::create_dir_all(&keep).unwrap();
    let png = keep.join("study_seeds-desktop.png");
    let _ = fs::remove_file(&png);
    chromium(&bin, &[format!("--screenshot={}", png.display()), "--window-size=1280,3000".to_string()], &url);
    let bytes = fs::read(&png).unwrap_or_else(|e| panic!("no screenshot at {}: {e}", png.display()));
    assert!(bytes.len() > 20_000, "screenshot suspiciously small ({} bytes): blank page?", bytes.len());
    eprintln!("screenshot: {}", png.display());
}
