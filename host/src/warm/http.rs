//! What sending one request means to the warm stage: timeouts for headers
//! and for the whole exchange, TTFB (request sent to headers received), the
//! body policy, the exchange and its errors. The thread's client that does
//! it is [`crate::warm::client`].

use std::time::Duration;

use crate::plugin::ResponseMeta;

/// One engine thread's client: [`crate::warm::client::Client`].
pub type Client = super::client::Client;

/// Timeouts for one exchange.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Connection and response headers.
    pub headers: Duration,
    /// The whole exchange, body included.
    pub total: Duration,
}

/// How an exchange failed without a usable response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    Timeout,
    Connection,
    /// The answer broke HTTP's rules (a malformed head, invalid framing):
    /// deterministic, so retried at most once.
    Protocol,
    Other,
}

impl TransportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Timeout => "timeout",
            TransportKind::Connection => "connection_error",
            TransportKind::Protocol => "protocol_error",
            TransportKind::Other => "unknown",
        }
    }
}

/// A failed exchange.
#[derive(Debug, Clone)]
pub struct TransportError {
    pub kind: TransportKind,
    /// One line, no URL (it may carry credentials).
    pub message: String,
}

/// A completed exchange.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// What the plugin is shown; its `headers` are filled by
    /// [`Exchange::headers_for`].
    pub meta: ResponseMeta,
    /// Every response header.
    pub headers: reqwest::header::HeaderMap,
    /// Request sent to headers received.
    pub ttfb: Duration,
    /// Request sent to body done (or headers, when the body is not read).
    pub total: Duration,
    /// The Content-Length header, if any.
    pub content_length: Option<u64>,
    /// Error that cut the body short, if any.
    pub body_error: Option<TransportError>,
    /// `ADDR:PORT` connected to, when `--connect-to` routed the request.
    pub edge: Option<String>,
}

impl Exchange {
    /// A response header's value, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The headers named in `wanted` (lowercase; empty: all) as strings, in
    /// the order received.
    pub fn headers_for(&self, wanted: &[String]) -> Vec<(String, String)> {
        self.headers
            .iter()
            .filter(|(k, _)| wanted.is_empty() || wanted.iter().any(|w| w == k.as_str()))
            .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect()
    }
}

pub(crate) fn timeout_error(what: &str, after: Duration) -> TransportError {
    TransportError {
        kind: TransportKind::Timeout,
        message: format!("no {what} within {}", humantime::format_duration(after)),
    }
}

/// What to do with the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// Read and count all of it.
    Full,
    /// Stop after the headers.
    None,
    /// Read at most this many bytes (size probes).
    AtMost(u64),
}
