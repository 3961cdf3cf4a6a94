//! The end-of-run summary printed on the terminal.

use std::fmt::Write;

use super::Summary;
use crate::util::size::human;

pub fn render(s: &Summary) -> String {
    let st = &s.stats;
    let run = s.runs.first().cloned().unwrap_or_default();
    let mut out = String::new();
    let elapsed = s.elapsed_s();
    let rate = if elapsed > 0.0 { st.pairs as f64 / elapsed } else { 0.0 };
    let not_warm = s.not_warm();
    let verdict = if not_warm.is_empty() {
        if st.pairs == 0 { "nothing to warm".to_string() } else { "all warm".to_string() }
    } else {
        let parts: Vec<String> = not_warm.iter().map(|(o, n)| format!("{n} {o}")).collect();
        format!("not warm: {}", parts.join(", "))
    };
    let _ = writeln!(
        out,
        "\nprewarm: {} in {:.1}s ({:.1} pairs/s){} · {verdict}",
        plural(st.pairs, "pair"),
        elapsed,
        rate,
        if s.runs.iter().any(|r| r.interrupted) { ", interrupted" } else { "" }
    );
    if !s.missing_shards.is_empty() {
        let _ = writeln!(out, "  missing shards (merged with --allow-missing): {}", s.missing_shards.join(", "));
    }
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
            "  sizes: {} {} {} for {} of their sources, counted once per derivative ({})",
            plural(sized, "derivative"),
            if sized == 1 { "is" } else { "total" },
            human(derived),
            human(original),
            size_change(original, derived)
        );
    }
    if !st.cache.is_empty() {
        let cache: Vec<String> = st.cache.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(out, "  cache: {}", cache.join(" · "));
    }
    if s.runs.iter().any(|r| !r.edges.is_empty()) {
        out.push_str(&super::edges::text("edge", &st.per_edge));
    } else if !st.edges.is_empty() {
        let edges: Vec<String> = st.edges.iter().map(|(k, v)| format!("{k} {}", plural(*v, "pair"))).collect();
        let _ = writeln!(out, "  edges (--connect-to): {}", edges.join(" · "));
    }
    out.push_str(&super::edges::text("variant", &st.per_variant));
    out.push_str(&super::verify::text(&st.verify));
    if !st.failures_by_kind.is_empty() {
        let f: Vec<String> = st.failures_by_kind.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(out, "  not warm: {}", f.join(" · "));
    }
    if st.outcomes.get("passthrough").is_some_and(|n| *n > 0) {
        let _ = writeln!(out, "  passthrough: the CDN served the untransformed source, so those pairs are not warm");
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

/// `1 pair`, `2 pairs`: a count with its noun.
pub fn plural(n: u64, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

/// How a derivative's bytes compare with its source's: `75.0 % smaller`,
/// `10.0 % larger`, `the same size`. One decimal, but never `100.0 %
/// smaller` unless the derivative is empty, nor `0.0 %` unless equal.
pub fn size_change(original: u64, derived: u64) -> String {
    if original == derived {
        return "the same size".into();
    }
    if derived == 0 {
        return "100 % smaller".into();
    }
    let (percent, word) = if derived < original {
        (100.0 * (1.0 - derived as f64 / original as f64), "smaller")
    } else {
        (100.0 * (derived as f64 / original.max(1) as f64 - 1.0), "larger")
    };
    if percent < 0.05 {
        format!("under 0.1 % {word}")
    } else if word == "smaller" && percent >= 99.95 {
        format!("over 99.9 % {word}")
    } else {
        format!("{percent:.1} % {word}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_a_person_reads() {
        assert_eq!(plural(1, "derivative"), "1 derivative");
        assert_eq!(plural(0, "pair"), "0 pairs");
        assert_eq!(size_change(400, 100), "75.0 % smaller");
        assert_eq!(size_change(1000, 1100), "10.0 % larger");
        assert_eq!(size_change(100_000, 1), "over 99.9 % smaller");
        assert_eq!(size_change(100, 0), "100 % smaller");
        assert_eq!(size_change(100_000, 99_999), "under 0.1 % smaller");
        assert_eq!(size_change(7, 7), "the same size");
    }
}
