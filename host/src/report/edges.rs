//! The per-edge and per-variant part of every report (`--edge`,
//! `--connect-to`, `--variant`): for each edge, its pairs, how many are
//! warm, how many failed because the edge was down and, with `--verify`,
//! how many it answered from cache.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::stats::routes::RouteTally;

fn percent(x: f64) -> String {
    format!("{:.1} %", 100.0 * x)
}

/// One line per edge for the terminal.
pub fn text(what: &str, map: &BTreeMap<String, RouteTally>) -> String {
    let mut out = String::new();
    for (name, t) in map {
        let _ = write!(out, "  {what} {name}: {} of {} warm", t.warm, t.pairs);
        if t.edge_down > 0 {
            let _ = write!(out, " · {} edge_down", t.edge_down);
        }
        if t.verified > 0 {
            let _ = write!(out, " · {} of {} verified hit", t.verified_hit, t.verified);
        }
        out.push('\n');
    }
    out
}

/// A Markdown table, headed `title`.
pub fn markdown(title: &str, column: &str, map: &BTreeMap<String, RouteTally>) -> String {
    if map.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "\n## {title}\n\n| {column} | pairs | warm | warm share | edge_down | verified | verified hit | hit share |\n|---|---:|---:|---:|---:|---:|---:|---:|\n"
    );
    for (name, t) in map {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            name.replace('|', "\\|"),
            t.pairs,
            t.warm,
            percent(t.warm_ratio()),
            t.edge_down,
            t.verified,
            t.verified_hit,
            percent(t.verified_hit_ratio())
        );
    }
    out
}

/// An HTML bar chart of each edge's warm and verified-hit ratios (two bars
/// an edge, 0-100 %) and its table.
pub fn html(title: &str, id: &str, map: &BTreeMap<String, RouteTally>, esc: fn(&str) -> String) -> String {
    if map.is_empty() {
        return String::new();
    }
    let (w, row, left) = (640.0, 18.0, 140.0);
    let group = row * 2.0 + 10.0;
    let h = group * map.len() as f64 + 40.0;
    let mut svg = format!(
        r#"<figure><figcaption>{t}: warm and verified hit (% of pairs)</figcaption><svg id="chart-{id}" class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{t}">"#,
        t = esc(title)
    );
    for (i, (name, t)) in map.iter().enumerate() {
        let y = 10.0 + i as f64 * group;
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end" class="label">{}</text>"#,
            left - 8.0,
            y + row,
            esc(name)
        );
        for (j, (label, ratio, color)) in
            [("warm", t.warm_ratio(), "#16a34a"), ("verified hit", t.verified_hit_ratio(), "#2563eb")]
                .into_iter()
                .enumerate()
        {
            let (yy, bw) = (y + j as f64 * row, (w - left - 90.0) * ratio);
            let _ = write!(
                svg,
                r#"<rect class="bar" x="{left}" y="{yy}" width="{bw:.1}" height="{}" fill="{color}"><title>{}: {label} {}</title></rect><text x="{}" y="{}" class="value">{label} {}</text>"#,
                row - 3.0,
                esc(name),
                percent(ratio),
                left + bw + 6.0,
                yy + row * 0.7,
                percent(ratio)
            );
        }
    }
    svg.push_str("</svg></figure>");
    let mut table = format!(
        "<h2>{}</h2>{svg}<table id=\"table-{id}\"><tr><th>name</th><th>pairs</th><th>warm</th><th>edge_down</th><th>verified</th><th>verified hit</th></tr>",
        esc(title)
    );
    for (name, t) in map {
        let _ = write!(
            table,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(name),
            t.pairs,
            t.warm,
            t.edge_down,
            t.verified,
            t.verified_hit
        );
    }
    table.push_str("</table>");
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_each_edge() {
        let mut map = BTreeMap::new();
        map.insert(
            "fra".to_string(),
            RouteTally { pairs: 4, warm: 4, verified: 4, verified_hit: 3, ..Default::default() },
        );
        map.insert("dead".to_string(), RouteTally { pairs: 4, not_warm: 4, edge_down: 4, ..Default::default() });
        let t = text("edge", &map);
        assert!(t.contains("edge fra: 4 of 4 warm · 3 of 4 verified hit") && t.contains("4 edge_down"), "{t}");
        let md = markdown("Per edge", "edge", &map);
        assert!(md.contains("| fra | 4 | 4 | 100.0 % | 0 | 4 | 3 | 75.0 % |"), "{md}");
        let h = html("Per edge", "edges", &map, |s| s.to_string());
        assert!(h.contains("id=\"chart-edges\"") && h.contains("verified hit 75.0 %"), "{h}");
        assert!(html("Per edge", "edges", &BTreeMap::new(), |s| s.to_string()).is_empty());
    }
}
