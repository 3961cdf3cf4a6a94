//! The HTML report's charts of the run's [`Overview`]: cache states per
//! derivative (stacked bars) and the timeline (pairs and failures per
//! second, 429 pauses), as inline SVG.

use std::fmt::Write;

use super::html::esc;
use crate::overview::{Overview, Timeline};

/// Cache states in the order they are stacked, with their colours.
const CACHE_STATES: [(&str, &str); 4] =
    [("hit", "#16a34a"), ("miss", "#ea580c"), ("bypass", "#9333ea"), ("unknown", "#9ca3af")];

const RATE_COLOR: &str = "#2563eb";
const FAILED_COLOR: &str = "#dc2626";
const PAUSE_COLOR: &str = "#ca8a04";

fn open_svg(id: &str, title: &str, w: f64, h: f64) -> String {
    format!(
        r#"<figure><figcaption>{t}</figcaption><svg id="{id}" class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{t}">"#,
        t = esc(title)
    )
}

fn legend(svg: &mut String, x: f64, y: f64, items: &[(&str, &str)]) {
    let mut at = x;
    for (label, color) in items {
        let _ = write!(
            svg,
            r#"<rect x="{at}" y="{}" width="10" height="10" fill="{color}"/><text x="{}" y="{y}" class="legend" fill="{color}">{}</text>"#,
            y - 9.0,
            at + 14.0,
            esc(label)
        );
        at += 24.0 + 7.0 * label.len() as f64;
    }
}

/// One stacked bar per derivative: pairs per cache state.
pub(super) fn cache_chart(overview: &Overview) -> String {
    let rows = &overview.cache_by_derivative;
    let (w, row, left, top) = (640.0, 28.0, 140.0, 30.0);
    let h = top + row * rows.len().max(1) as f64 + 10.0;
    let mut svg = open_svg("chart-cache", "Cache state per derivative (pairs)", w, h);
    legend(&mut svg, left, 18.0, &CACHE_STATES);
    let max = rows.values().map(|s| s.values().sum::<u64>()).max().unwrap_or(0).max(1) as f64;
    if rows.is_empty() {
        let _ = write!(svg, r#"<text x="{left}" y="{}" class="label">no cache states read</text>"#, top + 18.0);
    }
    for (i, (derivative, states)) in rows.iter().enumerate() {
        let y = top + i as f64 * row;
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end" class="label">{}</text>"#,
            left - 8.0,
            y + row * 0.6,
            esc(derivative)
        );
        let mut x = left;
        for (state, color) in CACHE_STATES {
            let n = states.get(state).copied().unwrap_or(0);
            if n == 0 {
                continue;
            }
            let bw = ((w - left - 60.0) * n as f64 / max).max(1.0);
            let _ = write!(
                svg,
                r#"<rect class="segment" data-state="{state}" x="{x:.1}" y="{y}" width="{bw:.1}" height="{}" fill="{color}"><title>{}: {n} {state}</title></rect>"#,
                row - 8.0,
                esc(derivative)
            );
            x += bw;
        }
        let total: u64 = states.values().sum();
        let _ = write!(svg, r#"<text x="{:.1}" y="{}" class="value">{total}</text>"#, x + 6.0, y + row * 0.6);
    }
    svg.push_str("</svg></figure>");
    svg
}

/// Pairs and failures per second as steps over the run, and a tick for
/// every stretch with 429 pauses.
pub(super) fn timeline_chart(timeline: &Timeline) -> String {
    let (w, h, left, right, top, bottom) = (640.0, 260.0, 60.0, 20.0, 30.0, 40.0);
    let mut svg = open_svg("chart-timeline", "The run over time (per second)", w, h);
    legend(&mut svg, left, 18.0, &[("pairs/s", RATE_COLOR), ("failed/s", FAILED_COLOR), ("429 pauses", PAUSE_COLOR)]);
    let buckets = &timeline.buckets;
    let seconds = timeline.bucket_ms as f64 / 1000.0;
    let span = (buckets.len() as f64 * seconds).max(seconds);
    let per_second = |n: u64| n as f64 / seconds;
    let max = buckets.iter().map(|b| per_second(b.pairs)).fold(0.0, f64::max).max(1e-9);
    let x = |s: f64| left + (w - left - right) * s / span;
    let y = |v: f64| top + (h - top - bottom) * (1.0 - v / max);
    let _ = write!(
        svg,
        r##"<line x1="{left}" y1="{b}" x2="{}" y2="{b}" stroke="#9ca3af"/><line x1="{left}" y1="{top}" x2="{left}" y2="{b}" stroke="#9ca3af"/>"##,
        w - right,
        b = h - bottom
    );
    for frac in [0.0, 0.5, 1.0] {
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{}" text-anchor="middle" class="label">{:.0} s</text><text x="{}" y="{:.1}" text-anchor="end" class="label">{:.1}</text>"#,
            x(span * frac),
            h - bottom + 16.0,
            span * frac,
            left - 6.0,
            y(max * frac) + 4.0,
            max * frac
        );
    }
    if buckets.is_empty() {
        let _ = write!(svg, r#"<text x="{}" y="{}" class="label">no pairs recorded</text>"#, left + 10.0, top + 20.0);
    }
    let mut steps = Vec::with_capacity(buckets.len() * 2);
    for (i, b) in buckets.iter().enumerate() {
        let (x0, x1) = (x(i as f64 * seconds), x((i + 1) as f64 * seconds));
        let rate = y(per_second(b.pairs));
        steps.push(format!("{x0:.1},{rate:.1} {x1:.1},{rate:.1}"));
        if b.failed > 0 {
            let top_y = y(per_second(b.failed));
            let _ = write!(
                svg,
                r#"<rect class="failed" x="{x0:.1}" y="{top_y:.1}" width="{:.1}" height="{:.1}" fill="{FAILED_COLOR}" fill-opacity="0.7"><title>{:.0}–{:.0} s: {} failed</title></rect>"#,
                (x1 - x0).max(1.0),
                (h - bottom - top_y).max(1.0),
                i as f64 * seconds,
                (i + 1) as f64 * seconds,
                b.failed
            );
        }
        if b.rate_limit_pauses > 0 {
            let _ = write!(
                svg,
                r#"<line class="pause" x1="{xm:.1}" y1="{top}" x2="{xm:.1}" y2="{}" stroke="{PAUSE_COLOR}" stroke-width="2" stroke-dasharray="4 3"><title>{:.0}–{:.0} s: {} 429 pause(s)</title></line>"#,
                h - bottom,
                i as f64 * seconds,
                (i + 1) as f64 * seconds,
                b.rate_limit_pauses,
                xm = (x0 + x1) / 2.0
            );
        }
    }
    if !steps.is_empty() {
        let _ = write!(
            svg,
            r#"<polyline class="rate" fill="none" stroke="{RATE_COLOR}" stroke-width="2" points="{}"/>"#,
            steps.join(" ")
        );
    }
    svg.push_str("</svg></figure>");
    svg
}
