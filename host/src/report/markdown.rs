//! The Markdown report: what is warm, how fast, how much smaller, what
//! failed and what to do about it.

use std::fmt::Write;

use super::Summary;
use super::text::{plural, size_change};
use crate::stats::GroupSummary;
use crate::util::size::human;

/// A plain-language hint for a failure kind (or outcome).
pub fn hint(kind: &str) -> &'static str {
    match kind {
        "not_found" => {
            "The CDN or origin answered 404/410: check --base-url, the plugin's path or prefix settings, and that the object exists at the origin."
        }
        "forbidden" => {
            "401/403: check the zone allows transformations (Cloudflare: Media Transformations enabled, origin allowed), tokens and WAF rules."
        }
        "rate_limited" => "Still 429 after many waits: lower --concurrency or cap the request rate with --rate.",
        "timeout" => {
            "No answer in time: large sources take long to transform; raise --timeout/--header-timeout or lower --concurrency."
        }
        "connection_error" => {
            "The connection failed or was reset: check the base URL, DNS, TLS and firewalls; run again with --resume."
        }
        "server_error" => {
            "5xx after every retry: the CDN or the origin is failing; check the origin's health and the CDN's status page."
        }
        "too_large" => {
            "The source is over the CDN's size limit: it is refused or served untransformed; re-encode it below the limit (or pass --ignore-limits)."
        }
        "transform_error" => "The CDN could not transform the source: check its codec and container are supported.",
        "still_pending" => {
            "Still transforming after the last poll: raise --max-polls, or run again later with --resume."
        }
        "truncated" => "The body ended before its Content-Length: the transfer was cut; run again with --resume.",
        "protocol_error" => {
            "The answer broke HTTP/1.1's framing (RFC 9112: an invalid Content-Length, a bad chunk, a malformed head) the same way twice: fix the server or proxy that sends it."
        }
        "plugin" => {
            "The plugin failed (trap, limit or bad output): run with -v for details and report it to the plugin's author."
        }
        "plan" => {
            "The plugin refused to build a URL for this pair: check --derivatives and --set against `prewarm plugins inspect`."
        }
        "client_error" => "Another 4xx: the CDN refused the request; check the URLs with `prewarm warm --dry-run`.",
        "unaddressable" => {
            "The object's key holds a dot segment (`.`, `..`), a backslash or a line break that URL rules rewrite, so no URL can name it: rename the object."
        }
        "interrupted" => "The run was stopped before these pairs finished: run again with --resume.",
        "stopped" => {
            "--max-failures stopped the run before these pairs started: fix the most common failure, then run again with --resume."
        }
        "follow_ups" => "The plugin asked for too many follow-up requests: report it to the plugin's author.",
        "passthrough" => {
            "The CDN served the untransformed source (over its limit, or the transform was skipped). The video-resizer Worker stores a passthrough (X-R2-Stored: true) and serves it again until its cache for the path is busted (POST /admin/cache/bust): --resume cannot fix it."
        }
        _ => "See the `error` field of these pairs in the results file.",
    }
}

fn timing_row(name: &str, g: &GroupSummary) -> String {
    let warm = g.outcomes.get("warm").copied().unwrap_or(0);
    let r = &g.reduction;
    let saved = if r.count > 0 { size_change(r.original_bytes, r.derivative_bytes) } else { "–".into() };
    format!(
        "| {name} | {} | {warm} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} ± {:.1} | {:.1} | {} | {saved} |",
        g.count,
        g.ttfb.p50_ms,
        g.ttfb.p90_ms,
        g.ttfb.p95_ms,
        g.ttfb.p99_ms,
        g.ttfb.max_ms,
        g.ttfb.mean_ms,
        g.ttfb.stddev_ms,
        g.total.p95_ms,
        human(g.bytes_read),
    )
}

const TIMING_HEADER: &str = "| | pairs | warm | TTFB p50 ms | p90 | p95 | p99 | max | mean ± sd | total p95 ms | bytes read | size saved |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|";

fn escape(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

pub fn render(s: &Summary) -> String {
    let st = &s.stats;
    let mut out = String::new();
    let _ = writeln!(out, "# prewarm report\n");
    for run in &s.runs {
        let _ = writeln!(
            out,
            "- **{}** {} via `{}` {} — {} ({}) — concurrency {} — {:.1} s{}{}",
            escape(&run.source),
            run.shard.as_deref().map(|sh| format!("(shard {sh})")).unwrap_or_default(),
            escape(&run.base_url),
            escape(&format!("{} {}", run.plugin, run.plugin_version)),
            plural(run.derivatives.len() as u64, "derivative"),
            run.derivatives.join(", "),
            run.concurrency,
            run.elapsed_s,
            if run.interrupted { " — **interrupted**" } else { "" },
            if run.resumed_skips > 0 {
                format!(" — {} already warm (resume)", plural(run.resumed_skips, "pair"))
            } else {
                String::new()
            },
        );
        if let Some(reason) = &run.stopped {
            let _ = writeln!(
                out,
                "  - **{}**: --max-failures stopped the run; pairs it had not started are recorded skipped \
                 (`stopped`) or, if not yet listed, not at all. Fix the most common failure, then run again \
                 with --resume, which takes them all up.",
                escape(reason)
            );
        }
    }
    if !s.missing_shards.is_empty() {
        let _ = writeln!(out, "\n**Missing shards** (merged with `--allow-missing`): {}", s.missing_shards.join(", "));
    }
    let total = st.pairs.max(1) as f64;
    let _ = writeln!(out, "\n## Outcomes\n\n| outcome | pairs | share |\n|---|---:|---:|");
    for (k, v) in &st.outcomes {
        let _ = writeln!(out, "| {k} | {v} | {:.1} % |", 100.0 * *v as f64 / total);
    }
    let _ = writeln!(out, "| **all** | **{}** | |", st.pairs);
    if !st.cache.is_empty() {
        let c: Vec<String> = st.cache.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(out, "\nCache status of warmed pairs: {}.", c.join(", "));
    }
    if s.runs.iter().any(|r| !r.edges.is_empty()) {
        out.push_str(&super::edges::markdown("Per edge", "edge", &st.per_edge));
    } else if !st.edges.is_empty() {
        let e: Vec<String> = st.edges.iter().map(|(k, v)| format!("`{k}` {v}")).collect();
        let _ = writeln!(out, "\nEdges reached through `--connect-to` (pairs): {}.", e.join(", "));
    }
    out.push_str(&super::edges::markdown("Per variant", "variant", &st.per_variant));

    let _ = writeln!(out, "\n## Per derivative\n\n{TIMING_HEADER}");
    for (name, g) in &st.per_derivative {
        let _ = writeln!(out, "{}", timing_row(&escape(name), g));
    }
    let _ = writeln!(
        out,
        "\n## Per size class\n\nSmall is below {}, medium below {}.\n\n{TIMING_HEADER}",
        human(st.size_classes.small_below),
        human(st.size_classes.medium_below)
    );
    for (name, g) in &st.per_size_class {
        let _ = writeln!(out, "{}", timing_row(name, g));
    }
    let _ = writeln!(out, "\n## Per derivative and size class\n\n{TIMING_HEADER}");
    for e in &st.groups {
        let _ = writeln!(
            out,
            "{}",
            timing_row(&format!("{} / {}", escape(&e.derivative), e.size_class.as_str()), &e.stats)
        );
    }

    let _ = writeln!(
        out,
        "\n## Size reduction\n\n| derivative | pairs sized | sources | derivatives | saved | mean saved per pair |\n|---|---:|---:|---:|---:|---:|"
    );
    for (name, g) in &st.per_derivative {
        let r = &g.reduction;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {:.1} % ± {:.1} |",
            escape(name),
            r.count,
            human(r.original_bytes),
            human(r.derivative_bytes),
            if r.count > 0 { size_change(r.original_bytes, r.derivative_bytes) } else { "–".into() },
            r.percent.mean,
            r.percent.stddev()
        );
    }

    let _ = writeln!(out, "\n## Failures\n");
    let passthrough = st.outcomes.get("passthrough").copied().unwrap_or(0);
    if st.failures_by_kind.is_empty() && passthrough == 0 {
        let _ = writeln!(out, "None.");
    } else {
        let _ = writeln!(out, "| kind | pairs | what to do |\n|---|---:|---|");
        for (kind, n) in &st.failures_by_kind {
            let _ = writeln!(out, "| {} | {n} | {} |", escape(kind), hint(kind));
        }
        if passthrough > 0 {
            let _ = writeln!(out, "| passthrough | {passthrough} | {} |", hint("passthrough"));
        }
        if !st.failures_by_status.is_empty() {
            let by_status: Vec<String> = st.failures_by_status.iter().map(|(k, v)| format!("HTTP {k}: {v}")).collect();
            let _ = writeln!(out, "\nBy last HTTP status: {}.", by_status.join(", "));
        }
    }

    out.push_str(&super::verify::markdown(&st.verify));
    let _ = writeln!(out, "\n## Slowest pairs\n\n| path | derivative | outcome | elapsed ms |\n|---|---|---|---:|");
    for p in &st.slowest {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.1} |",
            escape(&p.path),
            escape(&p.derivative),
            p.outcome.as_str(),
            p.elapsed_ms
        );
    }
    let _ = writeln!(
        out,
        "\n{} requests, {} of bodies read, {} read by size checks.",
        st.attempts,
        human(st.bytes_read),
        human(st.size_check_bytes)
    );
    out
}
