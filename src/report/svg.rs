//! Hand-written inline SVG plots: line plots (loss per epoch, sweeps) and the
//! parameters-vs-loss scatter with its Pareto front.
//!
//! Every string that reaches the SVG goes through [`escape`]; numbers are
//! written with fixed precision so the output is byte-for-byte deterministic.

use std::fmt::Write as _;

/// Colour-blind-safe palette (Okabe–Ito, then Tol's muted extras); a series
/// past its length reuses the colours with a different dash pattern.
pub const PALETTE: [&str; 12] =
    ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#882255", "#44AA99", "#999933", "#AA4499", "#661100"];

/// Dash patterns that distinguish series sharing a colour.
const DASHES: [&str; 3] = ["", "6 3", "2 3"];

const WIDTH: f64 = 600.0;
const PLOT_HEIGHT: f64 = 300.0;
const MARGIN_LEFT: f64 = 62.0;
const MARGIN_RIGHT: f64 = 18.0;
const MARGIN_TOP: f64 = 34.0;
const MARGIN_BOTTOM: f64 = 52.0;
const LEGEND_COLUMNS: usize = 2;
const LEGEND_ROW: f64 = 19.0;
const LEGEND_CHARS: usize = 34;

/// Escape text for SVG/XML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters are not allowed in XML 1.0.
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// One axis tick: its value and its label.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    pub value: f64,
    pub label: String,
}

/// "Nice" linear ticks covering `[lo, hi]` with about `target` intervals.
pub fn linear_ticks(lo: f64, hi: f64, target: usize) -> Vec<Tick> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        return vec![Tick { value: lo, label: trim_number(lo, 3) }];
    }
    let raw = (hi - lo) / target.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * magnitude).find(|s| *s >= raw * (1.0 - 1e-9)).unwrap_or(10.0 * magnitude);
    let decimals = (-step.log10().floor()).max(0.0) as usize + usize::from((step / magnitude - 2.5).abs() < 1e-9);
    let first = (lo / step - 1e-9).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    (first..=last)
        .map(|i| {
            let value = i as f64 * step;
            let value = if value.abs() < step * 1e-9 { 0.0 } else { value };
            Tick { value, label: format!("{value:.decimals$}") }
        })
        .collect()
}

/// Ticks for a log axis over `[lo, hi]` (both positive): the powers of ten
/// inside the range, plus their 2× and 5× multiples when `hi / lo` is at
/// most 100; the range ends themselves when fewer than two ticks fall
/// inside it.
pub fn log_ticks(lo: f64, hi: f64) -> Vec<Tick> {
    if !(lo > 0.0 && hi > 0.0 && lo.is_finite() && hi.is_finite()) {
        return Vec::new();
    }
    let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
    let d0 = lo.log10().floor() as i32;
    let d1 = hi.log10().ceil() as i32;
    let multiples: &[f64] = if (hi / lo).log10() <= 2.0 + 1e-9 { &[1.0, 2.0, 5.0] } else { &[1.0] };
    let stride = ((d1 - d0) / 8).max(1);
    let mut ticks = Vec::new();
    for d in d0..=d1 {
        if multiples.len() == 1 && (d - d0) % stride != 0 {
            continue;
        }
        for m in multiples {
            let v = m * 10f64.powi(d);
            if v >= lo * (1.0 - 1e-9) && v <= hi * (1.0 + 1e-9) {
                ticks.push(Tick { value: v, label: compact_number(v) });
            }
        }
    }
    if ticks.len() < 2 {
        ticks = vec![Tick { value: lo, label: compact_number(lo) }, Tick { value: hi, label: compact_number(hi) }];
        if ticks[0].label == ticks[1].label {
            ticks.truncate(1);
        }
    }
    ticks
}

/// Short label for a positive number: `1k`, `2.5M`, `0.01`, `1e-4`.
pub fn compact_number(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    let a = v.abs();
    let (scaled, suffix) = if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e3 {
        (v / 1e3, "k")
    } else if a >= 1e-2 || a == 0.0 {
        (v, "")
    } else {
        let s = format!("{:.1e}", v);
        // `1.0e-4` → `1e-4`
        return s.replace(".0e", "e");
    };
    format!("{}{suffix}", trim_number(scaled, 2))
}

/// Fixed `decimals`, then trailing zeros (and a trailing point) removed.
pub fn trim_number(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
}

/// Indices of the Pareto-optimal points when both coordinates are minimised
/// (fewer parameters, lower loss), ordered by increasing x. A point is on the
/// front when no other point is at least as good in both coordinates and
/// strictly better in one; of identical points only the first is kept.
/// Points with a non-finite coordinate are never on the front.
pub fn pareto_front(points: &[(f64, f64)]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..points.len()).filter(|&i| points[i].0.is_finite() && points[i].1.is_finite()).collect();
    order.sort_by(|&a, &b| points[a].0.total_cmp(&points[b].0).then(points[a].1.total_cmp(&points[b].1)).then(a.cmp(&b)));
    let mut front = Vec::new();
    let mut best_y = f64::INFINITY;
    for i in order {
        if points[i].1 < best_y {
            best_y = points[i].1;
            front.push(i);
        }
    }
    front
}

/// One line of a line plot.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    /// Index into the palette (style slot); equal slots look identical.
    pub style: usize,
    /// `(x, y)`; non-finite y values break the line and are not drawn.
    pub points: Vec<(f64, f64)>,
    pub draw: Draw,
}

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Draw {
    /// A line with a marker at every point (few points: epochs, sweeps).
    #[default]
    LineAndMarkers,
    /// A line only (many points: a smoothed training curve).
    Line,
    /// A thin, light line under the others, not in the legend (raw per-step values).
    Raw,
    /// Markers only, larger, outlined (events on a curve: end-of-epoch test losses).
    Markers,
}

/// A horizontal reference line (e.g. the base model's loss).
#[derive(Debug, Clone)]
pub struct HLine {
    pub y: f64,
    pub label: String,
}

/// How the x axis maps values.
#[derive(Debug, Clone, PartialEq)]
pub enum XAxis {
    /// Linear, integer ticks only (epochs).
    Integer,
    /// Linear with nice ticks.
    Linear,
    /// Logarithmic (all x positive).
    Log,
    /// Categories at x = 0, 1, …, labelled by these names.
    Categories(Vec<String>),
}

/// A line plot with markers, a legend below the plot and optional reference lines.
#[derive(Debug, Clone)]
pub struct LinePlot {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub x_axis: XAxis,
    pub series: Vec<Series>,
    pub hlines: Vec<HLine>,
    /// Runs without a value to plot (diverged, unfinished), marked `×` with
    /// their label along the top edge at their x.
    pub marks: Vec<Mark>,
}

/// A point with no y value, shown as `×` at the top of the plot.
#[derive(Debug, Clone)]
pub struct Mark {
    pub x: f64,
    pub label: String,
}

/// A point of the parameters-vs-loss scatter.
#[derive(Debug, Clone)]
pub struct ScatterPoint {
    pub label: String,
    /// Legend group (the scheme); points of one group share a colour.
    pub group: String,
    pub x: f64,
    pub y: f64,
}

fn color(style: usize) -> &'static str {
    PALETTE[style % PALETTE.len()]
}

fn dash(style: usize) -> &'static str {
    DASHES[(style / PALETTE.len()) % DASHES.len()]
}

fn truncate_label(s: &str) -> String {
    if s.chars().count() <= LEGEND_CHARS {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(LEGEND_CHARS - 1).collect();
        t.push('…');
        t
    }
}

/// Map a data interval onto a pixel interval, linearly or in log10.
#[derive(Debug, Clone, Copy)]
struct Scale {
    d0: f64,
    d1: f64,
    p0: f64,
    p1: f64,
    log: bool,
}

impl Scale {
    fn map(&self, v: f64) -> f64 {
        let (v, d0, d1) = if self.log { (v.log10(), self.d0.log10(), self.d1.log10()) } else { (v, self.d0, self.d1) };
        let t = if d1 > d0 { (v - d0) / (d1 - d0) } else { 0.5 };
        self.p0 + t * (self.p1 - self.p0)
    }
}

/// Padded data range of finite values; never empty.
fn padded_range(values: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite() && (!log || *v > 0.0)) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return if log { (1.0, 10.0) } else { (0.0, 1.0) };
    }
    if log {
        let f = if hi / lo < 1.5 { 1.25 } else { 10f64.powf((hi / lo).log10() * 0.06).max(1.05) };
        (lo / f, hi * f)
    } else if hi - lo < 1e-12 {
        let pad = if lo.abs() > 1e-12 { lo.abs() * 0.05 } else { 0.5 };
        (lo - pad, hi + pad)
    } else {
        let pad = (hi - lo) * 0.06;
        (lo - pad, hi + pad)
    }
}

fn f(v: f64) -> String {
    format!("{v:.1}")
}

/// The SVG header with a title for accessibility and a background.
fn open_svg(out: &mut String, height: f64, title: &str) {
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{t}" class="plot" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="13"><title>{t}</title><rect width="{w}" height="{h}" fill="#ffffff"/>"##,
        w = f(WIDTH),
        h = f(height),
        t = escape(title)
    );
    let _ = write!(out, r##"<text x="{}" y="20" font-size="15" font-weight="bold" fill="#222">{}</text>"##, f(MARGIN_LEFT), escape(title));
}

/// Axes frame, grid, ticks and axis labels.
#[allow(clippy::too_many_arguments)]
fn draw_axes(out: &mut String, xs: Scale, ys: Scale, x_ticks: &[Tick], y_ticks: &[Tick], x_label: &str, y_label: &str) {
    let (left, right, top, bottom) = (xs.p0, xs.p1, ys.p1, ys.p0);
    for t in y_ticks {
        let y = ys.map(t.value);
        let _ = write!(
            out,
            r##"<line x1="{l}" y1="{y}" x2="{r}" y2="{y}" stroke="#e3e3e3"/><text x="{tx}" y="{ty}" text-anchor="end" fill="#333">{lab}</text>"##,
            l = f(left),
            r = f(right),
            y = f(y),
            tx = f(left - 6.0),
            ty = f(y + 4.0),
            lab = escape(&t.label)
        );
    }
    for t in x_ticks {
        let x = xs.map(t.value);
        let _ = write!(
            out,
            r##"<line x1="{x}" y1="{top}" x2="{x}" y2="{b}" stroke="#efefef"/><line x1="{x}" y1="{b}" x2="{x}" y2="{b5}" stroke="#333"/><text x="{x}" y="{ty}" text-anchor="middle" fill="#333">{lab}</text>"##,
            x = f(x),
            top = f(top),
            b = f(bottom),
            b5 = f(bottom + 5.0),
            ty = f(bottom + 18.0),
            lab = escape(&t.label)
        );
    }
    let _ = write!(
        out,
        r##"<rect x="{l}" y="{t}" width="{w}" height="{h}" fill="none" stroke="#333"/><text x="{cx}" y="{xl}" text-anchor="middle" fill="#222">{xlab}</text><text transform="translate(16 {cy}) rotate(-90)" text-anchor="middle" fill="#222">{ylab}</text>"##,
        l = f(left),
        t = f(top),
        w = f(right - left),
        h = f(bottom - top),
        cx = f((left + right) / 2.0),
        xl = f(bottom + 38.0),
        xlab = escape(x_label),
        cy = f((top + bottom) / 2.0),
        ylab = escape(y_label)
    );
}

/// Legend entries (swatch + name) in columns below the plot area.
fn draw_legend(out: &mut String, entries: &[(String, usize, bool)], top: f64) {
    let col_w = (WIDTH - MARGIN_LEFT - MARGIN_RIGHT) / LEGEND_COLUMNS as f64;
    for (i, (name, style, line)) in entries.iter().enumerate() {
        let x = MARGIN_LEFT + (i % LEGEND_COLUMNS) as f64 * col_w;
        let y = top + (i / LEGEND_COLUMNS) as f64 * LEGEND_ROW;
        let c = color(*style);
        if *line {
            let _ = write!(
                out,
                r#"<line x1="{x0}" y1="{y}" x2="{x1}" y2="{y}" stroke="{c}" stroke-width="2.5" stroke-dasharray="{d}"/>"#,
                x0 = f(x),
                x1 = f(x + 22.0),
                y = f(y - 4.0),
                d = dash(*style)
            );
        }
        let _ = write!(
            out,
            r##"<circle cx="{cx}" cy="{cy}" r="3.5" fill="{c}"/><text x="{tx}" y="{y}" fill="#222"><title>{full}</title>{name}</text>"##,
            cx = f(x + 11.0),
            cy = f(y - 4.0),
            tx = f(x + 28.0),
            y = f(y),
            full = escape(name),
            name = escape(&truncate_label(name))
        );
    }
}

fn legend_height(n: usize) -> f64 {
    if n == 0 { 0.0 } else { n.div_ceil(LEGEND_COLUMNS) as f64 * LEGEND_ROW + 8.0 }
}

impl LinePlot {
    /// Render as a standalone `<svg>` element.
    pub fn to_svg(&self) -> String {
        let log = self.x_axis == XAxis::Log;
        let xs_data: Vec<f64> =
            self.series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).chain(self.marks.iter().map(|m| m.x)).collect();
        let (x0, x1) = match &self.x_axis {
            XAxis::Integer => {
                let lo = xs_data.iter().copied().filter(|v| v.is_finite()).fold(f64::INFINITY, f64::min);
                let hi = xs_data.iter().copied().filter(|v| v.is_finite()).fold(f64::NEG_INFINITY, f64::max);
                if lo.is_finite() { (lo - 0.25, hi + 0.25) } else { (0.5, 1.5) }
            }
            XAxis::Categories(c) => (-0.5, c.len().max(1) as f64 - 0.5),
            _ => padded_range(xs_data.iter().copied(), log),
        };
        let ys_data = self.series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).chain(self.hlines.iter().map(|h| h.y));
        let (y0, mut y1) = padded_range(ys_data, false);
        if !self.marks.is_empty() {
            // Room along the top edge for the × marks.
            y1 += (y1 - y0) * 0.15;
        }
        let legend: Vec<(String, usize, bool)> =
            self.series.iter().filter(|s| s.draw != Draw::Raw).map(|s| (s.name.clone(), s.style, s.draw != Draw::Markers)).collect();
        let height = MARGIN_TOP + PLOT_HEIGHT + MARGIN_BOTTOM + legend_height(legend.len());
        let xs = Scale { d0: x0, d1: x1, p0: MARGIN_LEFT, p1: WIDTH - MARGIN_RIGHT, log };
        let ys = Scale { d0: y0, d1: y1, p0: MARGIN_TOP + PLOT_HEIGHT, p1: MARGIN_TOP, log: false };
        let x_ticks = match &self.x_axis {
            XAxis::Integer => {
                let (a, b) = (x0.ceil() as i64, x1.floor() as i64);
                let stride = ((b - a) / 10 + 1).max(1);
                (a..=b).filter(|i| (i - a) % stride == 0).map(|i| Tick { value: i as f64, label: i.to_string() }).collect()
            }
            XAxis::Linear => linear_ticks(x0, x1, 6),
            XAxis::Log => log_ticks(x0, x1),
            XAxis::Categories(c) => c.iter().enumerate().map(|(i, l)| Tick { value: i as f64, label: l.clone() }).collect(),
        };
        let y_ticks = linear_ticks(y0, y1, 6);

        let mut out = String::new();
        open_svg(&mut out, height, &self.title);
        draw_axes(&mut out, xs, ys, &x_ticks, &y_ticks, &self.x_label, &self.y_label);
        for h in self.hlines.iter().filter(|h| h.y.is_finite()) {
            let y = ys.map(h.y);
            let _ = write!(
                out,
                r##"<line x1="{l}" y1="{y}" x2="{r}" y2="{y}" stroke="#666" stroke-width="1.5" stroke-dasharray="1 4" stroke-linecap="round"/><text x="{tx}" y="{ty}" text-anchor="start" fill="#555" font-size="11">{lab}</text>"##,
                l = f(xs.p0),
                r = f(xs.p1),
                y = f(y),
                tx = f(xs.p0 + 4.0),
                ty = f(y - 4.0),
                lab = escape(&h.label)
            );
        }
        let mut placed: Vec<[f64; 4]> = self
            .hlines
            .iter()
            .filter(|h| h.y.is_finite())
            .map(|h| {
                let (y, w) = (ys.map(h.y), h.label.chars().count() as f64 * 11.0 * 0.6);
                [xs.p0 + 4.0, y - 15.0, xs.p0 + 4.0 + w, y]
            })
            .collect();
        for m in self.marks.iter().filter(|m| m.x.is_finite() && (!log || m.x > 0.0)) {
            let (px, py) = (xs.map(m.x), ys.p1 + 12.0);
            let (anchor, lx, ly) = place_label(&mut placed, px, py + 10.0, &truncate_label(&m.label), xs.p0, xs.p1, ys.p1, ys.p0);
            let _ = write!(
                out,
                r##"<text x="{x}" y="{y}" text-anchor="middle" font-size="16" font-weight="bold" fill="#b00020" class="mark">×<title>{t}</title></text><text x="{lx}" y="{ly}" text-anchor="{anchor}" font-size="{fs}" fill="#b00020">{lab}</text>"##,
                x = f(px),
                y = f(py + 4.0),
                t = escape(&m.label),
                lx = f(lx),
                ly = f(ly),
                fs = LABEL_FONT,
                lab = escape(&truncate_label(&m.label))
            );
        }
        // Raw lines first, so everything else is drawn over them.
        let order = self.series.iter().filter(|s| s.draw == Draw::Raw).chain(self.series.iter().filter(|s| s.draw != Draw::Raw));
        for s in order {
            let c = color(s.style);
            let stroke = match s.draw {
                Draw::Raw => r#"stroke-width="1" stroke-opacity="0.3""#.to_string(),
                _ => format!(r#"stroke-width="2" stroke-dasharray="{}""#, dash(s.style)),
            };
            // Split the polyline at non-finite points.
            let mut segment: Vec<String> = Vec::new();
            let flush = |segment: &mut Vec<String>, out: &mut String| {
                if segment.len() > 1 && s.draw != Draw::Markers {
                    let _ = write!(
                        out,
                        r#"<polyline points="{}" fill="none" stroke="{c}" {stroke} stroke-linejoin="round"/>"#,
                        segment.join(" "),
                    );
                }
                segment.clear();
            };
            for &(x, y) in &s.points {
                if x.is_finite() && y.is_finite() && (!log || x > 0.0) {
                    segment.push(format!("{},{}", f(xs.map(x)), f(ys.map(y))));
                } else {
                    flush(&mut segment, &mut out);
                }
            }
            flush(&mut segment, &mut out);
            let radius = match s.draw {
                Draw::LineAndMarkers => "3.5",
                Draw::Markers => "5\" stroke=\"#fff\" stroke-width=\"1.5",
                Draw::Line | Draw::Raw => continue,
            };
            for &(x, y) in s.points.iter().filter(|(x, y)| x.is_finite() && y.is_finite() && (!log || *x > 0.0)) {
                let _ = write!(
                    out,
                    r#"<circle cx="{}" cy="{}" r="{radius}" fill="{c}"><title>{}: {}</title></circle>"#,
                    f(xs.map(x)),
                    f(ys.map(y)),
                    escape(&s.name),
                    format_args!("{:.3}", y)
                );
            }
        }
        draw_legend(&mut out, &legend, MARGIN_TOP + PLOT_HEIGHT + MARGIN_BOTTOM + 6.0);
        out.push_str("</svg>");
        out
    }
}

const LABEL_FONT: f64 = 11.0;

/// Pick a spot for a point label that overlaps no label placed before and
/// stays inside the plot: right/left of the point, above/below it. Returns
/// `(text-anchor, x, baseline y)` and records the label's box.
#[allow(clippy::too_many_arguments)]
fn place_label(
    placed: &mut Vec<[f64; 4]>,
    px: f64,
    py: f64,
    label: &str,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
) -> (&'static str, f64, f64) {
    let w = label.chars().count() as f64 * LABEL_FONT * 0.6;
    let h = LABEL_FONT;
    let right_first = px + 9.0 + w <= right;
    let mut candidates = vec![
        ("start", px + 9.0, py - 5.0),
        ("start", px + 9.0, py + 5.0 + h),
        ("end", px - 9.0, py - 5.0),
        ("end", px - 9.0, py + 5.0 + h),
    ];
    if !right_first {
        candidates.rotate_left(2);
    }
    // Further out above and below, for crowded spots.
    for k in 1..=3 {
        let dy = k as f64 * (h + 2.0);
        for (a, x, y) in [candidates[0], candidates[1]] {
            candidates.push((a, x, y - dy));
            candidates.push((a, x, y + dy));
        }
    }
    let bbox = |(a, x, y): (&str, f64, f64)| {
        let x0 = if a == "start" { x } else { x - w };
        [x0, y - h, x0 + w, y + 2.0]
    };
    let inside = |b: &[f64; 4]| b[0] >= left && b[2] <= right && b[1] >= top && b[3] <= bottom;
    let overlaps = |b: &[f64; 4], o: &[f64; 4]| b[0] < o[2] && o[0] < b[2] && b[1] < o[3] && o[1] < b[3];
    let chosen = candidates
        .iter()
        .copied()
        .find(|c| {
            let b = bbox(*c);
            inside(&b) && !placed.iter().any(|o| overlaps(&b, o))
        })
        .unwrap_or(candidates[0]);
    placed.push(bbox(chosen));
    chosen
}

/// Trainable parameters (log x) against loss, one colour per group, the
/// Pareto front ringed and joined by a step line, every point labelled.
pub fn pareto_plot(title: &str, x_label: &str, y_label: &str, points: &[ScatterPoint], hlines: &[HLine]) -> String {
    let mut groups: Vec<&str> = Vec::new();
    for p in points {
        if !groups.contains(&p.group.as_str()) {
            groups.push(&p.group);
        }
    }
    let style_of = |g: &str| groups.iter().position(|x| *x == g).unwrap_or(0);
    let (x0, x1) = padded_range(points.iter().map(|p| p.x), true);
    let (y0, y1) = padded_range(points.iter().map(|p| p.y).chain(hlines.iter().map(|h| h.y)), false);
    let mut legend: Vec<(String, usize, bool)> = groups.iter().map(|g| (g.to_string(), style_of(g), false)).collect();
    legend.push(("Pareto front (ringed)".to_string(), 6, true));
    let height = MARGIN_TOP + PLOT_HEIGHT + MARGIN_BOTTOM + legend_height(legend.len());
    let xs = Scale { d0: x0, d1: x1, p0: MARGIN_LEFT, p1: WIDTH - MARGIN_RIGHT, log: true };
    let ys = Scale { d0: y0, d1: y1, p0: MARGIN_TOP + PLOT_HEIGHT, p1: MARGIN_TOP, log: false };
    let mut out = String::new();
    open_svg(&mut out, height, title);
    draw_axes(&mut out, xs, ys, &log_ticks(x0, x1), &linear_ticks(y0, y1, 6), x_label, y_label);
    for h in hlines.iter().filter(|h| h.y.is_finite()) {
        let y = ys.map(h.y);
        let _ = write!(
            out,
            r##"<line x1="{l}" y1="{y}" x2="{r}" y2="{y}" stroke="#666" stroke-width="1.5" stroke-dasharray="1 4" stroke-linecap="round"/><text x="{tx}" y="{ty}" text-anchor="end" fill="#555" font-size="11">{lab}</text>"##,
            l = f(xs.p0),
            r = f(xs.p1),
            y = f(y),
            tx = f(xs.p1 - 4.0),
            ty = f(y - 4.0),
            lab = escape(&h.label)
        );
    }
    let coords: Vec<(f64, f64)> = points.iter().map(|p| if p.x > 0.0 { (p.x, p.y) } else { (f64::NAN, p.y) }).collect();
    let front = pareto_front(&coords);
    if !front.is_empty() {
        // Step line: a later front point has more parameters and lower loss.
        let mut pts = Vec::new();
        for (n, &i) in front.iter().enumerate() {
            let (x, y) = (xs.map(coords[i].0), ys.map(coords[i].1));
            if n > 0 {
                let prev_y = ys.map(coords[front[n - 1]].1);
                pts.push(format!("{},{}", f(x), f(prev_y)));
            }
            pts.push(format!("{},{}", f(x), f(y)));
        }
        let _ = write!(
            out,
            r##"<polyline points="{}" fill="none" stroke="#000" stroke-width="1.5" stroke-dasharray="6 3" class="pareto-front"/>"##,
            pts.join(" ")
        );
    }
    let mut placed: Vec<[f64; 4]> = Vec::new();
    for (i, p) in points.iter().enumerate() {
        let (x, y) = coords[i];
        if !(x.is_finite() && y.is_finite()) {
            continue;
        }
        let (px, py) = (xs.map(x), ys.map(y));
        let c = color(style_of(&p.group));
        let on_front = front.contains(&i);
        if on_front {
            let _ = write!(out, r##"<circle cx="{}" cy="{}" r="8" fill="none" stroke="#000" stroke-width="1.5"/>"##, f(px), f(py));
        }
        let label = truncate_label(&p.label);
        let (anchor, lx, ly) = place_label(&mut placed, px, py, &label, xs.p0, xs.p1, ys.p1, ys.p0);
        let _ = write!(
            out,
            r##"<circle cx="{px}" cy="{py}" r="4.5" fill="{c}"><title>{t}</title></circle><text x="{lx}" y="{ly}" text-anchor="{anchor}" font-size="{fs}" fill="#333">{lab}</text>"##,
            px = f(px),
            py = f(py),
            t = escape(&format!("{}: {} params, {:.3} bits{}", p.label, p.x, p.y, if on_front { " (Pareto)" } else { "" })),
            lx = f(lx),
            ly = f(ly),
            fs = LABEL_FONT,
            lab = escape(&label)
        );
    }
    draw_legend(&mut out, &legend, MARGIN_TOP + PLOT_HEIGHT + MARGIN_BOTTOM + 6.0);
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(t: &[Tick]) -> Vec<&str> {
        t.iter().map(|t| t.label.as_str()).collect()
    }

    #[test]
    fn log_ticks_whole_decades() {
        let t = log_ticks(1e3, 1e6);
        assert_eq!(labels(&t), ["1k", "10k", "100k", "1M"]);
        assert_eq!(t[2].value, 1e5);
    }

    #[test]
    fn log_ticks_short_range_adds_2_and_5() {
        assert_eq!(labels(&log_ticks(3.0, 70.0)), ["5", "10", "20", "50"]);
        assert_eq!(labels(&log_ticks(1e-4, 1e-3)), ["1e-4", "2e-4", "5e-4", "1e-3"]);
    }

    #[test]
    fn log_ticks_inside_one_octave_falls_back_to_ends() {
        assert_eq!(labels(&log_ticks(120_000.0, 180_000.0)), ["120k", "180k"]);
        assert!(log_ticks(0.0, 10.0).is_empty());
        assert!(log_ticks(-1.0, 10.0).is_empty());
    }

    #[test]
    fn log_ticks_many_decades_are_thinned() {
        let t = log_ticks(1.0, 1e20);
        assert!(t.len() <= 11, "{:?}", labels(&t));
        assert_eq!(t[0].label, "1");
    }

    #[test]
    fn linear_ticks_are_nice() {
        assert_eq!(labels(&linear_ticks(1.93, 3.12, 6)), ["2.0", "2.2", "2.4", "2.6", "2.8", "3.0"]);
        assert_eq!(labels(&linear_ticks(0.0, 10.0, 4)), ["0.0", "2.5", "5.0", "7.5", "10.0"]);
        assert_eq!(labels(&linear_ticks(-1.0, 1.0, 4)), ["-1.0", "-0.5", "0.0", "0.5", "1.0"]);
    }

    #[test]
    fn pareto_front_of_a_hand_example() {
        // (params, loss)
        let pts = [
            (1000.0, 2.5),              // 0: front (fewest params)
            (5000.0, 2.6),              // 1: dominated by 0
            (10_000.0, 2.2),            // 2: front
            (10_000.0, 2.3),            // 3: same params, worse loss
            (50_000.0, 2.2),            // 4: same loss as 2, more params: dominated
            (100_000.0, 2.0),           // 5: front
            (f64::NAN, 1.0),            // 6: not finite: never on the front
            (200_000.0, f64::INFINITY), // 7: diverged
            (1000.0, 2.5),              // 8: duplicate of 0: only the first is kept
        ];
        assert_eq!(pareto_front(&pts), vec![0, 2, 5]);
        assert!(pareto_front(&[]).is_empty());
    }

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(escape(r#"a<b>&"c"'d'"#), "a&lt;b&gt;&amp;&quot;c&quot;&#39;d&#39;");
        assert_eq!(escape("γ=750\u{7}"), "γ=750 ");
    }

    #[test]
    fn svg_escapes_run_names() {
        let plot = LinePlot {
            title: "loss <test>".into(),
            x_label: "epoch".into(),
            y_label: "bits".into(),
            x_axis: XAxis::Integer,
            series: vec![Series { name: "run<&>\"x\"".into(), style: 0, points: vec![(1.0, 2.0), (2.0, 1.5)], draw: Draw::LineAndMarkers }],
            hlines: vec![HLine { y: 2.7, label: "base & ref".into() }],
            marks: vec![Mark { x: 3.0, label: "diverged <x>".into() }],
        };
        let svg = plot.to_svg();
        assert!(svg.contains("run&lt;&amp;&gt;&quot;x&quot;"));
        assert!(svg.contains("base &amp; ref"));
        assert!(svg.contains("diverged &lt;x&gt;"));
        assert!(svg.contains("loss &lt;test&gt;"));
        assert!(!svg.contains("run<&"));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }

    #[test]
    fn labels_are_placed_without_overlap() {
        let mut placed = Vec::new();
        let mut boxes = Vec::new();
        // Three points almost on top of each other.
        for i in 0..3 {
            let (a, x, y) = place_label(&mut placed, 200.0, 150.0 + i as f64, "partially_tied_lora", 60.0, 580.0, 30.0, 330.0);
            let w = 19.0 * LABEL_FONT * 0.6;
            let x0 = if a == "start" { x } else { x - w };
            boxes.push([x0, y - LABEL_FONT, x0 + w, y + 2.0]);
        }
        for i in 0..3 {
            for j in 0..i {
                let (b, o) = (boxes[i], boxes[j]);
                assert!(!(b[0] < o[2] && o[0] < b[2] && b[1] < o[3] && o[1] < b[3]), "labels {i} and {j} overlap");
            }
        }
        // Near the right edge the label goes left of the point.
        let (a, _, _) = place_label(&mut Vec::new(), 570.0, 150.0, "lora", 60.0, 580.0, 30.0, 330.0);
        assert_eq!(a, "end");
    }

    #[test]
    fn compact_numbers() {
        assert_eq!(compact_number(1_500_000.0), "1.5M");
        assert_eq!(compact_number(750.0), "750");
        assert_eq!(compact_number(0.5), "0.5");
        assert_eq!(compact_number(2e-5), "2e-5");
    }

    #[test]
    fn pareto_plot_rings_front_points() {
        let pts = vec![
            ScatterPoint { label: "a".into(), group: "lora".into(), x: 1e4, y: 2.5 },
            ScatterPoint { label: "b".into(), group: "lora".into(), x: 1e5, y: 2.6 },
            ScatterPoint { label: "c".into(), group: "dora".into(), x: 1e6, y: 2.0 },
        ];
        let svg = pareto_plot("p", "params", "bits", &pts, &[]);
        assert_eq!(svg.matches(r#"r="8""#).count(), 2);
        assert!(svg.contains("class=\"pareto-front\""));
    }
}
