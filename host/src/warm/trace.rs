//! The steps of one pair, for `prewarm probe`: every request (redacted),
//! every answer and the headers the plugin was shown, each verdict, wait,
//! follow-up, the size found and the verify answer. Off (and free) in a
//! warm run.

use serde::Serialize;

use super::http::Exchange;
use crate::plugin::{Verdict, WarmRequest};
use crate::util::redact::{redact_setting, redact_url};

/// One step of a pair.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// The request the plugin planned.
    Planned { method: String, url: String, headers: Vec<(String, String)>, read_body: bool },
    /// A request sent (warm, poll, retry or follow-up).
    Sent { attempt: u32, method: String, url: String },
    /// The answer, and the headers the plugin was shown.
    Answer {
        status: u16,
        ttfb_ms: f64,
        total_ms: f64,
        body_bytes: u64,
        body_complete: bool,
        shown_headers: Vec<(String, String)>,
    },
    /// The request got no usable answer.
    TransportError { kind: String, message: String },
    /// What the plugin made of the answer.
    Verdict { verdict: String },
    /// prewarm waited (backoff, poll interval, 429 pause).
    Wait { ms: f64 },
    /// The size method that answered, and what sizing cost.
    Size { method: Option<String>, size: Option<u64>, probes: u32, probe_bytes: u64 },
    /// `--verify`: the cache state when asked again.
    Verify { cache: String, cache_status: Option<String>, error: Option<String> },
}

impl Step {
    pub fn planned(r: &WarmRequest) -> Step {
        Step::Planned {
            method: format!("{:?}", r.method).to_uppercase(),
            url: redact_url(&r.url),
            headers: r.headers.iter().map(|(k, v)| (k.clone(), redact_setting(k, v))).collect(),
            read_body: r.read_body,
        }
    }

    pub fn sent(r: &WarmRequest, attempt: u32) -> Step {
        Step::Sent { attempt, method: format!("{:?}", r.method).to_uppercase(), url: redact_url(&r.url) }
    }

    pub fn answer(ex: &Exchange) -> Step {
        let ms = |d: std::time::Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
        Step::Answer {
            status: ex.meta.status,
            ttfb_ms: ms(ex.ttfb),
            total_ms: ms(ex.total),
            body_bytes: ex.meta.body_bytes,
            body_complete: ex.meta.body_complete,
            shown_headers: ex.meta.headers.iter().map(|(k, v)| (k.clone(), redact_setting(k, v))).collect(),
        }
    }

    pub fn verdict(v: &Verdict) -> Step {
        let text = match v {
            Verdict::Warm(i) => format!("warm (cache {}{})", i.cache.as_str(), size_note(i.size)),
            Verdict::Passthrough(i) => format!("passthrough (cache {}{})", i.cache.as_str(), size_note(i.size)),
            Verdict::Pending { after_ms, job } => format!(
                "pending: ask again in {after_ms} ms{}",
                job.as_ref().map(|j| format!(" (job {j})")).unwrap_or_default()
            ),
            Verdict::FollowUp(r) => {
                format!("follow-up: {} {}", format!("{:?}", r.method).to_uppercase(), redact_url(&r.url))
            }
            Verdict::Retryable { reason, after_ms } => format!("retryable: {reason} (after {after_ms:?} ms)"),
            Verdict::Failed { kind, message } => format!("failed ({}): {message}", kind.as_str()),
        };
        Step::Verdict { verdict: crate::util::redact::redact_text(&text) }
    }

    /// One line for the terminal.
    pub fn line(&self) -> String {
        match self {
            Step::Planned { method, url, headers, read_body } => {
                let h: Vec<String> = headers.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                format!(
                    "plan     {method} {url}{}{}",
                    if h.is_empty() { String::new() } else { format!(" [{}]", h.join("; ")) },
                    if *read_body { "" } else { " (headers only)" }
                )
            }
            Step::Sent { attempt, method, url } => format!("send #{attempt} {method} {url}"),
            Step::Answer { status, ttfb_ms, total_ms, body_bytes, body_complete, shown_headers } => {
                let h: Vec<String> = shown_headers.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                format!(
                    "answer   HTTP {status} · ttfb {ttfb_ms} ms · total {total_ms} ms · body {body_bytes} B{} · shown: {}",
                    if *body_complete { "" } else { " (cut short)" },
                    if h.is_empty() { "(none)".to_string() } else { h.join("; ") }
                )
            }
            Step::TransportError { kind, message } => format!("error    {kind}: {message}"),
            Step::Verdict { verdict } => format!("verdict  {verdict}"),
            Step::Wait { ms } => format!("wait     {ms} ms"),
            Step::Size { method, size, probes, probe_bytes } => format!(
                "size     {} by {} ({probes} probe request(s), {probe_bytes} probe body bytes)",
                size.map_or("unknown".to_string(), |s| format!("{s} B")),
                method.as_deref().unwrap_or("none")
            ),
            Step::Verify { cache, cache_status, error } => format!(
                "verify   cache {cache}{}{}",
                cache_status.as_ref().map(|c| format!(" ({c})")).unwrap_or_default(),
                error.as_ref().map(|e| format!(": {e}")).unwrap_or_default()
            ),
        }
    }
}

/// `, size N bytes` when the plugin read a size from the answer.
fn size_note(size: Option<u64>) -> String {
    size.map(|s| format!(", size {s} bytes")).unwrap_or_default()
}
