//! Prometheus metrics of a run, encoded by the `prometheus` crate in the
//! text exposition format: a textfile for node_exporter's textfile
//! collector (written atomically), a PUT to a Pushgateway, and the live
//! `/metrics` of `--metrics-listen` (`report::live`). Every metric name is
//! defined here, once: the live page serves [`progress_families`] of the
//! summary so far plus [`live_families`]. Labels are built as lists of
//! pairs, so a dimension (edge, variant) is one more pair.

use std::path::Path;

use prometheus::proto::{
    Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType, Quantile, Summary as PromSummary,
};
use prometheus::{Encoder, TextEncoder};

use super::Summary;
use crate::stats::TimingSummary;

/// A metric carrying `pairs` as labels; the caller sets its value.
fn labelled(pairs: &[(&str, &str)]) -> Metric {
    let mut m = Metric::default();
    m.set_label(
        pairs
            .iter()
            .map(|(k, v)| {
                let mut l = LabelPair::default();
                l.set_name(k.to_string());
                l.set_value(v.to_string());
                l
            })
            .collect(),
    );
    m
}

fn family(name: &str, help: &str, kind: MetricType, metrics: Vec<Metric>) -> MetricFamily {
    let mut f = MetricFamily::default();
    f.set_name(name.to_string());
    f.set_help(help.to_string());
    f.set_field_type(kind);
    f.set_metric(metrics);
    f
}

fn counter(value: f64, pairs: &[(&str, &str)]) -> Metric {
    let mut c = Counter::default();
    c.set_value(value);
    let mut m = labelled(pairs);
    m.set_counter(c);
    m
}

fn gauge(value: f64, pairs: &[(&str, &str)]) -> Metric {
    let mut g = Gauge::default();
    g.set_value(value);
    let mut m = labelled(pairs);
    m.set_gauge(g);
    m
}

fn summary(t: &TimingSummary, pairs: &[(&str, &str)]) -> Metric {
    let mut s = PromSummary::default();
    s.set_sample_count(t.count);
    s.set_sample_sum(t.mean_ms * t.count as f64 / 1000.0);
    s.set_quantile(
        [(0.5, t.p50_ms), (0.9, t.p90_ms), (0.95, t.p95_ms), (0.99, t.p99_ms)]
            .iter()
            .map(|(q, ms)| {
                let mut quantile = Quantile::default();
                quantile.set_quantile(*q);
                quantile.set_value(ms / 1000.0);
                quantile
            })
            .collect(),
    );
    let mut m = labelled(pairs);
    m.set_summary(s);
    m
}

fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// Whether every pair of the run is warm.
fn all_warm(s: &Summary) -> bool {
    s.stats.pairs > 0 && s.stats.outcomes.get("warm").copied().unwrap_or(0) == s.stats.pairs
}

/// The metric families of a summary. `last_success` is the previous
/// success time to carry over when this run was not a success.
pub fn families(s: &Summary, last_success: Option<f64>) -> Vec<MetricFamily> {
    let now = unix_now();
    let success = if all_warm(s) { Some(now) } else { last_success };
    let mut out = progress_families(s);
    out.push(family(
        "prewarm_last_run_timestamp_seconds",
        "When the last run finished (Unix time).",
        MetricType::GAUGE,
        vec![gauge(now, &[])],
    ));
    if let Some(t) = success {
        out.push(family(
            "prewarm_last_success_timestamp_seconds",
            "When a run last finished with every pair warm (Unix time).",
            MetricType::GAUGE,
            vec![gauge(t, &[])],
        ));
    }
    out
}

/// What a run has done so far (or in all, at its end): the families both
/// the end-of-run outputs and the live page carry.
pub fn progress_families(s: &Summary) -> Vec<MetricFamily> {
    let st = &s.stats;
    let mut pairs = Vec::new();
    for (d, g) in &st.per_derivative {
        for (o, n) in &g.outcomes {
            pairs.push(counter(*n as f64, &[("derivative", d), ("outcome", o)]));
        }
    }
    let failures = st.failures_by_kind.iter().map(|(k, n)| counter(*n as f64, &[("kind", k)])).collect();
    let cache = st.cache.iter().map(|(k, n)| counter(*n as f64, &[("cache", k)])).collect();
    let ttfb = st.per_derivative.iter().map(|(d, g)| summary(&g.ttfb, &[("derivative", d)])).collect();
    let total = st.per_derivative.iter().map(|(d, g)| summary(&g.total, &[("derivative", d)])).collect();
    let saved = st
        .per_derivative
        .iter()
        .filter(|(_, g)| g.reduction.count > 0)
        .map(|(d, g)| gauge(g.reduction.saved_percent() / 100.0, &[("derivative", d)]))
        .collect();
    let pauses = st.overview.timeline.total().rate_limit_pauses;
    let mut out = vec![
        family("prewarm_pairs_total", "Object and derivative pairs by final outcome.", MetricType::COUNTER, pairs),
        family(
            "prewarm_requests_total",
            "Warm requests sent, polls and retries included.",
            MetricType::COUNTER,
            vec![counter(st.attempts as f64, &[])],
        ),
        family("prewarm_failures_total", "Pairs not warm, by failure kind.", MetricType::COUNTER, failures),
        family(
            "prewarm_cache_results_total",
            "Warmed pairs by the cache state the CDN reported.",
            MetricType::COUNTER,
            cache,
        ),
        family(
            "prewarm_ttfb_seconds",
            "Time from sending a warm request to its response headers.",
            MetricType::SUMMARY,
            ttfb,
        ),
        family(
            "prewarm_request_duration_seconds",
            "Time from sending a warm request to the end of its body.",
            MetricType::SUMMARY,
            total,
        ),
        family(
            "prewarm_body_bytes_total",
            "Body bytes read by warm requests.",
            MetricType::COUNTER,
            vec![counter(st.bytes_read as f64, &[])],
        ),
        family(
            "prewarm_size_check_bytes_total",
            "Body bytes read by size checks.",
            MetricType::COUNTER,
            vec![counter(st.size_check_bytes as f64, &[])],
        ),
        family(
            "prewarm_size_saved_ratio",
            "Fraction of source bytes saved by derivatives (bytes-weighted).",
            MetricType::GAUGE,
            saved,
        ),
        family(
            "prewarm_run_duration_seconds",
            "Wall-clock duration of the run.",
            MetricType::GAUGE,
            vec![gauge(s.elapsed_s(), &[])],
        ),
        family(
            "prewarm_rate_limit_pauses_total",
            "Run-wide pauses ordered by a 429 (Too Many Requests) answer.",
            MetricType::COUNTER,
            vec![counter(pauses as f64, &[])],
        ),
    ];
    out.extend(route_families(st));
    out.retain(|f| !f.get_metric().is_empty());
    out
}

/// What only a run in progress knows (`--metrics-listen`).
#[derive(Debug, Clone, Default)]
pub struct LiveFigures {
    /// Pairs in flight, by their labels (derivative).
    pub in_flight: Vec<(Vec<(String, String)>, f64)>,
    /// Pairs finished per second over the last few seconds.
    pub rate: f64,
    /// Pairs this run will finish, once the listing's length is known.
    pub expected: Option<u64>,
    /// Seconds left at the current rate, once the total is known.
    pub eta_seconds: Option<f64>,
}

/// The families of [`LiveFigures`].
pub fn live_families(l: &LiveFigures) -> Vec<MetricFamily> {
    let in_flight = l
        .in_flight
        .iter()
        .map(|(labels, n)| {
            let pairs: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            gauge(*n, &pairs)
        })
        .collect();
    let mut out = vec![
        family("prewarm_pairs_in_flight", "Pairs started and not yet recorded.", MetricType::GAUGE, in_flight),
        family(
            "prewarm_pairs_per_second",
            "Pairs recorded per second over the last 10 seconds.",
            MetricType::GAUGE,
            vec![gauge(l.rate, &[])],
        ),
    ];
    if let Some(n) = l.expected {
        out.push(family(
            "prewarm_pairs_expected",
            "Pairs this run will record, once the listing's length is known.",
            MetricType::GAUGE,
            vec![gauge(n as f64, &[])],
        ));
    }
    if let Some(eta) = l.eta_seconds {
        out.push(family(
            "prewarm_eta_seconds",
            "Seconds left at the current rate.",
            MetricType::GAUGE,
            vec![gauge(eta, &[])],
        ));
    }
    out
}

/// The text exposition of `families`.
pub fn encode(families: &[MetricFamily]) -> Vec<u8> {
    let mut buf = Vec::new();
    TextEncoder::new().encode(families, &mut buf).expect("encoding to memory");
    buf
}

/// Per edge (label `edge`) and per variant (label `variant`): pairs warm
/// and not warm, pairs failed because the edge was down, verified hits.
fn route_families(st: &crate::stats::StatsSummary) -> Vec<MetricFamily> {
    let mut out = Vec::new();
    for (label, map) in [("edge", &st.per_edge), ("variant", &st.per_variant)] {
        let mut pairs = Vec::new();
        for (name, t) in map {
            pairs.push(counter(t.warm as f64, &[(label, name), ("result", "warm")]));
            pairs.push(counter(t.not_warm as f64, &[(label, name), ("result", "not_warm")]));
        }
        let hits = map.iter().map(|(n, t)| counter(t.verified_hit as f64, &[(label, n)])).collect();
        out.push(family(
            &format!("prewarm_{label}_pairs_total"),
            &format!("Pairs per {label}, warm or not."),
            MetricType::COUNTER,
            pairs,
        ));
        out.push(family(
            &format!("prewarm_{label}_verified_hits_total"),
            &format!("Warm pairs per {label} that --verify found a cache hit."),
            MetricType::COUNTER,
            hits,
        ));
    }
    let down = st.per_edge.iter().map(|(n, t)| counter(t.edge_down as f64, &[("edge", n)])).collect();
    out.push(family(
        "prewarm_edge_down_pairs_total",
        "Pairs per edge failed because the edge was marked down.",
        MetricType::COUNTER,
        down,
    ));
    out
}

/// The text exposition of a summary.
pub fn render(s: &Summary, last_success: Option<f64>) -> Vec<u8> {
    encode(&families(s, last_success))
}

/// `prewarm_last_success_timestamp_seconds` from an earlier textfile, so a
/// failed run does not erase when the last success was.
pub fn previous_success(path: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("prewarm_last_success_timestamp_seconds "))
        .and_then(|v| v.trim().parse().ok())
}

/// Characters kept in a URL path segment carrying a label value.
const LABEL_VALUE: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// PUT the metrics to a Pushgateway under job `prewarm` and `instance`.
pub async fn push(gateway: &str, instance: &str, s: &Summary) -> anyhow::Result<()> {
    let url = format!(
        "{}/metrics/job/prewarm/instance/{}",
        gateway.trim_end_matches('/'),
        percent_encoding::utf8_percent_encode(instance, LABEL_VALUE)
    );
    let response = reqwest::Client::new()
        .put(&url)
        .header(reqwest::header::CONTENT_TYPE, prometheus::TEXT_FORMAT)
        .body(render(s, None))
        .timeout(std::time::Duration::from_secs(30))
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!("pushgateway {}: {}", crate::util::redact::redact_url(gateway), e.without_url())
        })?;
    if !response.status().is_success() {
        anyhow::bail!("pushgateway {} answered {}", crate::util::redact::redact_url(gateway), response.status());
    }
    Ok(())
}
