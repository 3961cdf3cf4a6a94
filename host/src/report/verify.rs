//! The `--verify` section of every report: the verified hit ratio per
//! derivative, the CDN's reasons for the pairs that did not verify as hits
//! with a hint each, and the first of those pairs by name.

use std::fmt::Write;

use crate::verification::{VerifyTally, hint};

/// Lines for the terminal summary (empty when the run did not verify).
pub fn text(v: &VerifyTally) -> String {
    let mut out = String::new();
    if v.is_empty() {
        return out;
    }
    let per: Vec<String> = v
        .per_derivative
        .iter()
        .map(|(d, c)| format!("{d} {}/{} ({:.1} %)", c.hit, c.checked, 100.0 * c.hit_ratio()))
        .collect();
    let _ = writeln!(out, "  verified hits: {}", per.join(" · "));
    for r in v.reasons_by_count().iter().take(5) {
        let _ = writeln!(
            out,
            "  not a hit: {} {} × {} ({})",
            r.count,
            r.derivative,
            r.state.as_str(),
            r.cache_status.as_deref().unwrap_or("no cache header")
        );
    }
    out
}

fn escape(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The Markdown section.
pub fn markdown(v: &VerifyTally) -> String {
    let mut out = String::new();
    if v.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "\n## Verified warm (`--verify`)\n\nEach warm pair was asked again; the CDN's cache state of that answer:\n\n\
         | derivative | checked | hit | miss | bypass | unknown | verified hit ratio |\n|---|---:|---:|---:|---:|---:|---:|"
    );
    for (d, c) in &v.per_derivative {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {:.1} % |",
            escape(d),
            c.checked,
            c.hit,
            c.miss,
            c.bypass,
            c.unknown,
            100.0 * c.hit_ratio()
        );
    }
    if v.not_hit_count() == 0 {
        return out;
    }
    let _ = writeln!(out, "\n| derivative | state | the CDN said | pairs | what it means |\n|---|---|---|---:|---|");
    for r in v.reasons_by_count() {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            escape(&r.derivative),
            r.state.as_str(),
            escape(r.cache_status.as_deref().unwrap_or("(no cache header)")),
            r.count,
            hint(r.state)
        );
    }
    if v.other_reasons > 0 {
        let _ = writeln!(out, "\n{} more pairs with other reasons.", v.other_reasons);
    }
    let _ = writeln!(
        out,
        "\nFirst pairs that did not verify as hits:\n\n| path | derivative | state | the CDN said |\n|---|---|---|---|"
    );
    for p in &v.not_hit {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            escape(&p.path),
            escape(&p.derivative),
            p.state.as_str(),
            escape(p.cache_status.as_deref().unwrap_or(""))
        );
    }
    out
}

/// The HTML section (`esc` escapes text for HTML).
pub fn html(v: &VerifyTally, esc: impl Fn(&str) -> String) -> String {
    let mut out = String::new();
    if v.is_empty() {
        return out;
    }
    out.push_str("<h2>Verified warm</h2><table id=\"table-verify\"><tr><th>derivative</th><th>checked</th><th>hit</th><th>miss</th><th>bypass</th><th>unknown</th><th>verified hit ratio</th></tr>");
    for (d, c) in &v.per_derivative {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1} %</td></tr>",
            esc(d),
            c.checked,
            c.hit,
            c.miss,
            c.bypass,
            c.unknown,
            100.0 * c.hit_ratio()
        );
    }
    out.push_str("</table>");
    if v.not_hit_count() > 0 {
        out.push_str("<table id=\"table-verify-reasons\"><tr><th>derivative</th><th>state</th><th>the CDN said</th><th>pairs</th><th>what it means</th></tr>");
        for r in v.reasons_by_count() {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&r.derivative),
                r.state.as_str(),
                esc(r.cache_status.as_deref().unwrap_or("(no cache header)")),
                r.count,
                esc(hint(r.state))
            );
        }
        out.push_str("</table>");
    }
    out
}
