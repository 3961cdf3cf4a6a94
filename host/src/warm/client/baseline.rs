//! The reqwest path the hot path's client replaced (a shared
//! `reqwest::Client`, as `warm::http` had it until issue 12), kept for the
//! benchmarks' side-by-side figures only.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::header::{HeaderName, HeaderValue};

use crate::plugin::{Method, ResponseMeta, WarmRequest};
use crate::warm::http::{Body, Exchange, Timeouts, TransportError, TransportKind, timeout_error};

/// A thread's client: pooled connections, HTTP/2 where offered, rustls, no
/// redirects (plugins read them), no decompression.
pub fn reqwest_client(concurrency: usize, header_timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(concat!("prewarm/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(header_timeout)
        .pool_max_idle_per_host(concurrency.max(1))
        .pool_idle_timeout(Duration::from_secs(30))
        .tcp_nodelay(true)
        .build()
}

fn transport_error(e: &reqwest::Error) -> TransportError {
    let kind = if e.is_timeout() {
        TransportKind::Timeout
    } else if e.is_connect() || e.is_request() || e.is_body() {
        TransportKind::Connection
    } else {
        TransportKind::Other
    };
    // Walk the source chain for the root cause; drop the URL.
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message = s.to_string();
        source = s.source();
    }
    TransportError { kind, message: crate::util::redact::redact_text(&message) }
}

/// Send `request` once.
pub async fn reqwest_send(
    client: &reqwest::Client,
    request: &WarmRequest,
    extra_headers: &[(&str, &str)],
    body: Body,
    attempt: u32,
    timeouts: Timeouts,
) -> Result<Exchange, TransportError> {
    let (method, is_head) = match request.method {
        Method::Get => (reqwest::Method::GET, false),
        Method::Head => (reqwest::Method::HEAD, true),
    };
    let mut builder = client.request(method, &request.url);
    for (name, value) in
        request.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).chain(extra_headers.iter().copied())
    {
        let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) else {
            return Err(TransportError {
                kind: TransportKind::Other,
                message: format!("invalid request header `{name}`"),
            });
        };
        builder = builder.header(name, value);
    }
    let req = builder.build().map_err(|e| transport_error(&e))?;
    let started = Instant::now();
    let deadline = started + timeouts.total;
    let response = match tokio::time::timeout(timeouts.headers.min(timeouts.total), client.execute(req)).await {
        Err(_) => {
            return Err(timeout_error("response headers", timeouts.headers.min(timeouts.total)));
        }
        Ok(Err(e)) => return Err(transport_error(&e)),
        Ok(Ok(r)) => r,
    };
    let ttfb = started.elapsed();
    let status = response.status().as_u16();
    // Headers stay in their map (cheap, reference-counted); only those a
    // plugin asks for become strings (`Exchange::headers_for`).
    let headers = response.headers().clone();
    let content_length = response
        .headers()
        .get(reqwest::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());

    let mut body_bytes = 0u64;
    let mut body_error = None;
    let mut complete = true;
    let limit = match body {
        Body::None => Some(0),
        // A probe reads the body only of a partial answer: a server that
        // ignored the Range must not send us the whole object.
        Body::AtMost(_) if status != 206 => Some(0),
        Body::AtMost(n) => Some(n),
        Body::Full => None,
    };
    if !is_head && limit != Some(0) {
        let mut stream = response.bytes_stream();
        loop {
            let next = match tokio::time::timeout_at(deadline.into(), stream.next()).await {
                Err(_) => {
                    body_error = Some(timeout_error("complete body", timeouts.total));
                    break;
                }
                Ok(n) => n,
            };
            match next {
                None => break,
                Some(Ok(chunk)) => {
                    body_bytes += chunk.len() as u64;
                    if limit.is_some_and(|l| body_bytes >= l) {
                        break;
                    }
                }
                Some(Err(e)) => {
                    body_error = Some(transport_error(&e));
                    break;
                }
            }
        }
        if body_error.is_some() {
            complete = false;
        } else if limit.is_none() {
            complete = content_length.is_none_or(|cl| cl == body_bytes);
        }
    }
    Ok(Exchange {
        meta: ResponseMeta {
            url: request.url.clone(),
            status,
            headers: Vec::new(),
            body_bytes,
            body_complete: complete,
            attempt,
        },
        headers,
        ttfb,
        total: started.elapsed(),
        content_length,
        body_error,
        edge: None,
    })
}
