//! The request as it goes out: headers checked once, the HTTP/1.1 head
//! written by hand into the thread's buffer, or an `http::Request` for
//! hyper. The client's own headers (Host, User-Agent, Accept, Basic
//! credentials from the URL) give way to a plugin's header of that name.

use bytes::Bytes;
use http_body_util::Empty;

use super::Job;
use crate::plugin::Method;
use crate::warm::http::{TransportError, TransportKind};

/// Every plugin and extra header: a token name (RFC 9110 §5.6.2) and a
/// value without control characters (so no CR or LF can split the head).
pub fn check_headers(request: &crate::plugin::WarmRequest, extra: &[(&str, &str)]) -> Result<(), TransportError> {
    let pairs = request.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).chain(extra.iter().copied());
    for (name, value) in pairs {
        let name_ok = !name.is_empty() && name.bytes().all(crate::warm::egress::is_tchar);
        let value_ok = value.bytes().all(|b| (b >= 0x20 && b != 0x7f) || b == b'\t');
        if !name_ok || !value_ok {
            return Err(invalid_header(name));
        }
    }
    Ok(())
}

fn invalid_header(name: &str) -> TransportError {
    TransportError { kind: TransportKind::Other, message: format!("invalid request header `{name}`") }
}

fn method(job: &Job<'_>) -> &'static str {
    match job.request.method {
        Method::Get => "GET",
        Method::Head => "HEAD",
    }
}

/// The headers of `job` (plugin's, then extra), in order.
fn headers<'a>(job: &'a Job<'_>) -> impl Iterator<Item = (&'a str, &'a str)> {
    job.request.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).chain(job.extra.iter().copied())
}

fn has(job: &Job<'_>, name: &str) -> bool {
    headers(job).any(|(n, _)| n.eq_ignore_ascii_case(name))
}

/// The client's own headers that the request does not set itself.
fn defaults<'a>(job: &'a Job<'_>, user_agent: &'a str, host: bool) -> impl Iterator<Item = (&'a str, &'a str)> {
    let origin = job.origin;
    [
        host.then_some(("host", origin.host_header.as_str())),
        Some(("user-agent", user_agent)),
        Some(("accept", "*/*")),
        origin.authorization.as_deref().map(|a| ("authorization", a)),
    ]
    .into_iter()
    .flatten()
    .filter(|(n, _)| !has(job, n))
}

/// The HTTP/1.1 request head, into `out` (cleared first).
pub fn write_h1(out: &mut Vec<u8>, job: &Job<'_>, user_agent: &str) {
    out.clear();
    out.extend_from_slice(method(job).as_bytes());
    out.push(b' ');
    push_path(out, job.target.path);
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in defaults(job, user_agent, true).chain(headers(job)) {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Bytes a request target may not carry as they are (controls, space,
/// non-ASCII, and what the URL Standard's path set encodes) go
/// percent-encoded, as a URL parser would have sent them.
fn needs_encoding(b: u8) -> bool {
    b <= 0x20 || b >= 0x7f || matches!(b, b'"' | b'<' | b'>' | b'`' | b'{' | b'}')
}

fn push_path(out: &mut Vec<u8>, path: &str) {
    if path.starts_with('?') {
        out.push(b'/');
    }
    for &b in path.as_bytes() {
        if needs_encoding(b) {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        } else {
            out.push(b);
        }
    }
}

/// The request for hyper: origin-form and a Host header for HTTP/1.1, the
/// absolute URI (its authority becomes `:authority`) for HTTP/2.
pub fn for_hyper(job: &Job<'_>, user_agent: &str, h2: bool) -> Result<http::Request<Empty<Bytes>>, TransportError> {
    let mut path = Vec::with_capacity(job.target.path.len() + 1);
    push_path(&mut path, job.target.path);
    let uri = if h2 {
        let mut full = format!("https://{}", job.origin.host_header).into_bytes();
        full.extend_from_slice(&path);
        http::Uri::from_maybe_shared(Bytes::from(full))
    } else {
        http::Uri::from_maybe_shared(Bytes::from(path))
    };
    let uri = uri.map_err(|_| super::other("URL is not a valid request target"))?;
    let mut builder = http::Request::builder().method(method(job)).uri(uri);
    for (name, value) in defaults(job, user_agent, !h2).chain(headers(job)) {
        builder = builder.header(name, value);
    }
    builder.body(Empty::new()).map_err(|_| super::other("invalid request"))
}
