//! The end-of-run summary printed on the terminal.

use std::fmt::Write;

use super::Summary;
use crate::size::human;

pub fn render(s: &Summary) -> String {
    let st = &s.stats;
    let run = s.runs.first().cloned().unwrap_or_default();
    let mut out = String::new();
    let elapsed = s.elapsed_s();
    let rate = if elapsed > 0.0 { st.pairs as f64 / elapsed } else { 0.0 };
    let _ = writeln!(
        out,
        "\nprewarm: {} pairs in {:.1}s ({:.1} pairs/s){}",
        st.pairs,
        elapsed,
        rate,
        if run.interrupted { ", interrupted" } else { "" }
    );
    let outcomes: Vec<String> = crate::record::Outcome::ALL
        .iter()
        .map(|o| format!("{} {}", o.as_str(), st.outcomes.get(o.as_str()).copied().unwrap_or(0)))
        .collect();
    let _ = writeln!(out, "  {}", outcomes.join(" · "));
    if st.ttfb.count > 0 {
        let _ = writeln!(
            out,
            "  TTFB p50 {:.1} ms · p95 {:.1} ms · max {:.1} ms",
            st.ttfb.p50_ms, st.ttfb.p95_ms, st.ttfb.max_ms
        );
    }
    let _ = writeln!(
        out,
        "  requests {} · body bytes {} · size-check bytes {}",
        st.attempts,
        human(st.bytes_read),
        human(st.size_check_bytes)
    );
    let (sized, original, derived) = st.per_derivative.values().fold((0, 0, 0), |(c, o, d), g| {
        (c + g.reduction.count, o + g.reduction.original_bytes, d + g.reduction.derivative_bytes)
    });
    if sized > 0 && original > 0 {
        let _ = writeln!(
            out,
            "  sizes: {sized} derivatives total {} for {} of sources ({:.1} % smaller)",
            human(derived),
            human(original),
            100.0 * (1.0 - derived as f64 / original as f64)
        );
    }
    if !st.cache.is_empty() {
        let cache: Vec<String> = st.cache.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(out, "  cache: {}", cache.join(" · "));
    }
    out.push_str(&super::verify::text(&st.verify));
    if !st.failures_by_kind.is_empty() {
        let f: Vec<String> = st.failures_by_kind.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(out, "  not warm: {}", f.join(" · "));
    }
    if run.resumed_skips > 0 {
        let _ = writeln!(out, "  already warm (resume): {}", run.resumed_skips);
    }
    let _ = writeln!(
        out,
        "  objects: {} selected of {} listed · rclone processes: {}",
        run.objects_selected, run.objects_listed, run.rclone_processes
    );
    let _ = writeln!(out, "  results: {}", run.results_file);
    out
}
