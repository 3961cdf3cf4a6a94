//! The HTML report: one self-contained page (inline CSS and SVG, no
//! scripts, nothing fetched) with an outcome chart, TTFB percentile curves
//! per derivative, size reduction per derivative, cache states per
//! derivative and the timeline of the run (`charts`), and the tables of the
//! Markdown report.

use std::fmt::Write;

use super::Summary;
use super::markdown::hint;
use crate::stats::Stats;
use crate::util::size::human;

const COLORS: [&str; 8] = ["#2563eb", "#16a34a", "#ea580c", "#9333ea", "#dc2626", "#0891b2", "#ca8a04", "#db2777"];

pub(super) fn esc(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn outcome_color(o: &str) -> &'static str {
    match o {
        "warm" => "#16a34a",
        "pending" => "#ca8a04",
        "passthrough" => "#0891b2",
        "failed" => "#dc2626",
        _ => "#6b7280",
    }
}

/// A horizontal bar chart: (label, value, color, value text).
fn bar_chart(id: &str, title: &str, bars: &[(String, f64, &str, String)]) -> String {
    let (w, row, left) = (640.0, 28.0, 140.0);
    let h = row * bars.len().max(1) as f64 + 40.0;
    let max = bars.iter().map(|b| b.1).fold(0.0, f64::max).max(1e-9);
    let mut svg = format!(
        r#"<figure><figcaption>{}</figcaption><svg id="{id}" class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{}">"#,
        esc(title),
        esc(title)
    );
    for (i, (label, value, color, text)) in bars.iter().enumerate() {
        let y = 10.0 + i as f64 * row;
        let bw = ((w - left - 90.0) * value / max).max(if *value > 0.0 { 1.0 } else { 0.0 });
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end" class="label">{}</text><rect class="bar" x="{left}" y="{y}" width="{bw:.1}" height="{}" fill="{color}"><title>{}: {}</title></rect><text x="{}" y="{}" class="value">{}</text>"#,
            left - 8.0,
            y + row * 0.6,
            esc(label),
            row - 8.0,
            esc(label),
            esc(text),
            left + bw + 6.0,
            y + row * 0.6,
            esc(text)
        );
    }
    svg.push_str("</svg></figure>");
    svg
}

/// TTFB percentile curves, one polyline per derivative.
fn ttfb_chart(stats: &Stats) -> String {
    let (w, h, left, bottom, top, right) = (640.0, 300.0, 60.0, 40.0, 10.0, 130.0);
    let quantiles = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999, 1.0];
    let by_d = stats.by_derivative();
    let max_ms = by_d.values().map(|g| g.ttfb.quantile_ms(1.0)).fold(0.0, f64::max).max(0.001);
    let x = |q: f64| left + q * (w - left - right);
    let y = |ms: f64| top + (h - top - bottom) * (1.0 - ms / max_ms);
    let mut svg = format!(
        r#"<figure><figcaption>TTFB by percentile, per derivative (ms)</figcaption><svg id="chart-ttfb" class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="TTFB percentiles">"#
    );
    let _ = write!(
        svg,
        r##"<line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="#9ca3af"/><line x1="{left}" y1="{top}" x2="{left}" y2="{}" stroke="#9ca3af"/>"##,
        h - bottom,
        w - right,
        h - bottom,
        h - bottom
    );
    for q in [0.0, 0.5, 0.9, 1.0] {
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{}" text-anchor="middle" class="label">p{}</text>"#,
            x(q),
            h - bottom + 16.0,
            (q * 100.0) as u32
        );
    }
    for frac in [0.0, 0.5, 1.0] {
        let _ = write!(
            svg,
            r#"<text x="{}" y="{:.1}" text-anchor="end" class="label">{:.1}</text>"#,
            left - 6.0,
            y(max_ms * frac) + 4.0,
            max_ms * frac
        );
    }
    for (i, (name, g)) in by_d.iter().enumerate() {
        if g.ttfb.count() == 0 {
            continue;
        }
        let color = COLORS[i % COLORS.len()];
        let points: Vec<String> =
            quantiles.iter().map(|q| format!("{:.1},{:.1}", x(*q), y(g.ttfb.quantile_ms(*q)))).collect();
        let _ = write!(
            svg,
            r#"<polyline class="series" data-derivative="{}" fill="none" stroke="{color}" stroke-width="2" points="{}"/><text x="{}" y="{}" class="legend" fill="{color}">{}</text>"#,
            esc(name),
            points.join(" "),
            w - right + 10.0,
            top + 14.0 + i as f64 * 16.0,
            esc(name)
        );
    }
    svg.push_str("</svg></figure>");
    svg
}

pub fn render(s: &Summary) -> String {
    let st = &s.stats;
    let stats = Stats::from_summary(st).unwrap_or_else(|_| Stats::new(st.size_classes));
    let mut body = String::new();
    let _ = write!(body, "<h1>prewarm report</h1><ul class=\"runs\">");
    for run in &s.runs {
        let _ = write!(
            body,
            "<li><b>{}</b> via <code>{}</code> with {} {} — derivatives {} — concurrency {} — {:.1} s{}</li>",
            esc(&run.source),
            esc(&run.base_url),
            esc(&run.plugin),
            esc(&run.plugin_version),
            esc(&run.derivatives.join(", ")),
            run.concurrency,
            run.elapsed_s,
            if run.interrupted { " — <b>interrupted</b>" } else { "" }
        );
    }
    body.push_str("</ul>");
    if !s.missing_shards.is_empty() {
        let _ = write!(
            body,
            "<p class=\"missing\"><b>Missing shards</b> (merged with --allow-missing): {}</p>",
            esc(&s.missing_shards.join(", "))
        );
    }
    let warm = st.outcomes.get("warm").copied().unwrap_or(0);
    let _ = write!(
        body,
        "<p class=\"headline\">{warm} of {} pairs warm · TTFB p50 {:.1} ms, p95 {:.1} ms · {} read</p>",
        st.pairs,
        st.ttfb.p50_ms,
        st.ttfb.p95_ms,
        human(st.bytes_read)
    );
    let outcome_bars: Vec<(String, f64, &str, String)> =
        st.outcomes.iter().map(|(k, v)| (k.clone(), *v as f64, outcome_color(k), v.to_string())).collect();
    body.push_str("<div class=\"charts\">");
    body.push_str(&bar_chart("chart-outcomes", "Outcomes (pairs)", &outcome_bars));
    body.push_str(&ttfb_chart(&stats));
    let reduction_bars: Vec<(String, f64, &str, String)> = st
        .per_derivative
        .iter()
        .enumerate()
        .map(|(i, (k, g))| {
            let saved = g.reduction.saved_percent().max(0.0);
            (
                k.clone(),
                saved,
                COLORS[i % COLORS.len()],
                if g.reduction.count > 0 { format!("{saved:.1} %") } else { "n/a".into() },
            )
        })
        .collect();
    body.push_str(&bar_chart("chart-reduction", "Size saved vs source, per derivative (%)", &reduction_bars));
    body.push_str(&super::charts::cache_chart(&st.overview));
    body.push_str(&super::charts::timeline_chart(&st.overview.timeline));
    body.push_str("</div>");

    body.push_str("<h2>Per derivative</h2><table id=\"table-derivatives\"><tr><th>derivative</th><th>pairs</th><th>warm</th><th>TTFB p50</th><th>p90</th><th>p95</th><th>p99</th><th>max</th><th>total p95</th><th>bytes</th><th>saved</th></tr>");
    for (name, g) in &st.per_derivative {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{}</td><td>{:.1} %</td></tr>",
            esc(name),
            g.count,
            g.outcomes.get("warm").copied().unwrap_or(0),
            g.ttfb.p50_ms,
            g.ttfb.p90_ms,
            g.ttfb.p95_ms,
            g.ttfb.p99_ms,
            g.ttfb.max_ms,
            g.total.p95_ms,
            human(g.bytes_read),
            g.reduction.saved_percent()
        );
    }
    body.push_str("</table>");
    body.push_str(&super::edges::html("Per edge", "edges", &st.per_edge, esc));
    body.push_str(&super::edges::html("Per variant", "variants", &st.per_variant, esc));
    body.push_str("<h2>Failures</h2>");
    if st.failures_by_kind.is_empty() {
        body.push_str("<p>None.</p>");
    } else {
        body.push_str("<table id=\"table-failures\"><tr><th>kind</th><th>pairs</th><th>what to do</th></tr>");
        for (k, v) in &st.failures_by_kind {
            let _ = write!(body, "<tr><td>{}</td><td>{v}</td><td>{}</td></tr>", esc(k), esc(hint(k)));
        }
        body.push_str("</table>");
    }
    body.push_str(&super::verify::html(&st.verify, esc));
    body.push_str("<h2>Slowest pairs</h2><table><tr><th>path</th><th>derivative</th><th>outcome</th><th>ms</th></tr>");
    for p in &st.slowest {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td></tr>",
            esc(&p.path),
            esc(&p.derivative),
            p.outcome.as_str(),
            p.elapsed_ms
        );
    }
    body.push_str("</table>");
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>prewarm report</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #111827; }}
h1 {{ font-size: 1.6em; }} .headline {{ font-size: 1.2em; font-weight: 600; }}
.charts {{ display: flex; flex-wrap: wrap; gap: 1.5em; }} figure {{ margin: 0; }} figcaption {{ font-weight: 600; margin-bottom: .3em; }}
.chart {{ background: #f9fafb; border: 1px solid #e5e7eb; }} .label, .value {{ font-size: 12px; fill: #374151; }} .legend {{ font-size: 12px; font-weight: 600; }}
table {{ border-collapse: collapse; margin: .5em 0 1.5em; }} th, td {{ border: 1px solid #e5e7eb; padding: 4px 8px; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
</style></head><body>
{body}
</body></html>
"#
    )
}
