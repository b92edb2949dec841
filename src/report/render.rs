//! Template rendering: the minijinja environment with the report templates
//! from `templates/` compiled into the binary (the report renders the same
//! wherever peftc runs).

use anyhow::{Context, Result};
use minijinja::{AutoEscape, Environment, Value};

use super::report_data::ReportData;

const TEMPLATES: [(&str, &str); 7] = [
    ("report.md.j2", include_str!("../../templates/report.md.j2")),
    ("report.html.j2", include_str!("../../templates/report.html.j2")),
    ("partials/run_table.md.j2", include_str!("../../templates/partials/run_table.md.j2")),
    ("partials/run_table.html.j2", include_str!("../../templates/partials/run_table.html.j2")),
    ("partials/headline.md.j2", include_str!("../../templates/partials/headline.md.j2")),
    ("partials/headline.html.j2", include_str!("../../templates/partials/headline.html.j2")),
    ("partials/style.css.j2", include_str!("../../templates/partials/style.css.j2")),
];

/// Escape text for a Markdown table cell: pipes, newlines, and characters
/// that would start markup.
pub fn md_cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '|' => out.push_str("\\|"),
            '\n' | '\r' => out.push(' '),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '*' | '_' | '`' | '[' | ']' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

fn environment() -> Result<Environment<'static>> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(
        |name| {
            if name.ends_with(".html.j2") || name.ends_with(".css.j2") { AutoEscape::Html } else { AutoEscape::None }
        },
    );
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_keep_trailing_newline(true);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.add_filter("md", |s: String| md_cell(&s));
    env.add_filter("md_code", |s: String| s.replace('`', "'").replace('|', "\\|").replace(['\n', '\r'], " "));
    env.add_filter("short", |s: String, n: Option<usize>| s.chars().take(n.unwrap_or(12)).collect::<String>());
    for (name, source) in TEMPLATES {
        env.add_template(name, source).with_context(|| format!("compiling template {name}"))?;
    }
    Ok(env)
}

/// Render the Markdown report. `plot_dir` is the folder (relative to the
/// Markdown file) holding the plots' SVG files.
pub fn render_markdown(data: &ReportData, plot_dir: &str) -> Result<String> {
    let env = environment()?;
    let tmpl = env.get_template("report.md.j2")?;
    tmpl.render(minijinja::context! { r => Value::from_serialize(data), plot_dir => plot_dir }).context("rendering report.md.j2")
}

/// Render the self-contained HTML report (inline CSS and SVG, no scripts).
pub fn render_html(data: &ReportData) -> Result<String> {
    let env = environment()?;
    let tmpl = env.get_template("report.html.j2")?;
    tmpl.render(minijinja::context! { r => Value::from_serialize(data) }).context("rendering report.html.j2")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md_cells_escape_table_syntax() {
        assert_eq!(md_cell("a|b\nc"), "a\\|b c");
        assert_eq!(md_cell("lora_gamma <x> *y*"), "lora\\_gamma &lt;x&gt; \\*y\\*");
    }
}
