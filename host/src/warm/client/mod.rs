//! The warm hot path's HTTP client: one per engine thread (`!Send`, shared
//! by that thread's tasks through `&self`), built for thousands of requests
//! in flight in little memory.
//!
//! - `http://`: a minimal HTTP/1.1 client of our own ([`h1`]): idle
//!   connections are bare sockets, kept per origin (LIFO); reads go through
//!   one per-thread scratch buffer; bodies are counted, never stored.
//! - `https://`: hyper 1.x connections over rustls ([`tls`]), HTTP/2 by ALPN
//!   (connections shared by many requests, within the server's stream
//!   limit, [`h2`]) or pooled HTTP/1.1.
//!
//! Both read HTTP/1.1 answers by the same rules (RFC 9112: obs-fold
//! unfolded, `Content-Length: 1000, 1000` accepted, an invalid length or a
//! chunked HTTP/1.0 answer refused as a protocol error). A request the
//! server provably did not process is sent again at once, at most
//! [`MAX_RESENDS`] times, and counted ([`Client::send_counted`]); idle
//! connections close after [`IDLE_TIMEOUT`]; DNS answers are kept for
//! [`origin::DNS_REFRESH`].
//!
//! The URL the egress policy admitted is split by hand ([`target`]); what an origin
//! needs (Host header, DNS answers, TLS server name, `--connect-to` route,
//! IDNA) is worked out once per origin and kept in the origin table.
//! [`Client::send`] sends one request: a header timeout and a total timeout,
//! TTFB (request written to head read), the [`Body`] policy (a probe reads
//! the body of a 206 only; HEAD, 1xx, 204 and 304 have none), errors as
//! [`TransportError`] without the URL, and the [`Exchange::edge`] reached.

#[cfg(test)]
mod baseline;
#[cfg(test)]
mod bench;
mod body;
#[cfg(test)]
mod framing_tests;
mod h1;
mod h2;
mod origin;
mod request;
mod stream;
mod target;
#[cfg(test)]
mod tests;
mod tls;
#[cfg(test)]
mod tls_tests;

use std::cell::{Cell, RefCell};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio_rustls::rustls;

use super::http::{Body, Exchange, Timeouts, TransportError, TransportKind, timeout_error};
use crate::plugin::{Method, ResponseMeta, WarmRequest};
use body::Framing;
use h1::ReadError;
use origin::{Origin, Origins};
pub use stream::Streamer;
pub use target::ConnectTo;
use target::Target;

/// Size of the per-thread read buffer every plain-HTTP read lands in.
const SCRATCH: usize = 64 * 1024;
/// An idle pooled connection is closed after this long unused (hyper's
/// pool default).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// How often the idle connections of every origin are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(10);
/// Most times one request is sent again because the server did not
/// process it; past that the failure counts as an attempt.
pub const MAX_RESENDS: u32 = 10;

/// What every thread's client shares: built once per run.
#[derive(Clone)]
pub struct ClientConfig {
    pub user_agent: String,
    /// `--connect-to` rules, first match wins.
    pub connect_to: Vec<ConnectTo>,
    /// rustls settings: the webpki roots (as reqwest's `rustls-tls`), plus
    /// `--ca-file`; ALPN `h2`, `http/1.1`.
    pub tls: Arc<rustls::ClientConfig>,
}

/// A bad client setting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--ca-file {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("TLS set-up failed: {0}")]
    Tls(String),
}

impl ClientConfig {
    /// The default user agent, the given routes, and trust in the webpki
    /// roots plus the PEM certificates of `ca_file`.
    pub fn new(connect_to: Vec<ConnectTo>, ca_file: Option<&Path>) -> Result<Self, ConfigError> {
        Ok(ClientConfig {
            user_agent: concat!("prewarm/", env!("CARGO_PKG_VERSION")).to_string(),
            connect_to,
            tls: Arc::new(tls::config(ca_file)?),
        })
    }
}

impl ClientConfig {
    /// This configuration with `rule` before its `--connect-to` rules (an
    /// `--edge`'s route).
    pub fn with_first_route(&self, rule: ConnectTo) -> Self {
        let mut config = self.clone();
        config.connect_to.insert(0, rule);
        config
    }
}

/// One engine thread's client.
pub struct Client {
    config: Arc<ClientConfig>,
    /// Keyed by the URL's `scheme://authority` as written.
    origins: Origins,
    /// Every plain-HTTP read of this thread lands here; borrowed only
    /// between a read and the parse of its bytes, never across an await.
    scratch: RefCell<Box<[u8]>>,
    /// The request head being written; same borrowing rule.
    out: RefCell<Vec<u8>>,
    /// When idle connections are next swept.
    next_sweep: Cell<Instant>,
}

/// Where the client sends a URL and what it asks there: the host as it
/// resolves it (ASCII, IPv6 without brackets), the port, and the request
/// target (path and query) before percent-encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub https: bool,
    pub host: String,
    pub port: u16,
    pub target: String,
}

/// The client's reading of `url`, through the same steps [`Client::send`]
/// takes (the egress policy's property test holds the two together).
pub fn destination(url: &str) -> Result<Destination, String> {
    let target = Target::split(url).map_err(|e| e.to_string())?;
    let authority = target::Authority::parse(target.authority, target.https).map_err(|e| e.to_string())?;
    let host = origin::ascii_host(authority.host)?;
    Ok(Destination { https: target.https, host, port: authority.port, target: target.path.to_string() })
}

/// A request's place in the client: where, what, and how much body.
struct Job<'a> {
    origin: &'a Origin,
    target: Target<'a>,
    request: &'a WarmRequest,
    extra: &'a [(&'a str, &'a str)],
    is_head: bool,
    /// `None`: the whole body; `Some(0)`: none of it.
    limit: Option<u64>,
    /// A size probe (`Body::AtMost`): it reads the body only of a 206, so
    /// a server that ignored the Range never sends the whole object.
    probe: bool,
    /// Times the request was sent again because the server did not
    /// process it.
    resent: &'a Cell<u32>,
}

impl Job<'_> {
    /// Body bytes to read of an answer with `status` (`None`: all).
    fn limit_for(&self, status: u16) -> Option<u64> {
        if self.probe && status != 206 { Some(0) } else { self.limit }
    }

    /// Whether the body was to be read whole; then it is complete only when
    /// it matched its Content-Length. 204 and 304 carry none, whatever
    /// their headers say (RFC 9110 §15.3.5, §15.4.5).
    fn reads_all(&self, status: u16) -> bool {
        self.limit.is_none() && !self.is_head && status != 204 && status != 304
    }
}

impl Client {
    pub fn new(config: Arc<ClientConfig>) -> Self {
        Client {
            config,
            origins: Origins::default(),
            scratch: RefCell::new(vec![0; SCRATCH].into_boxed_slice()),
            out: RefCell::new(Vec::with_capacity(1024)),
            next_sweep: Cell::new(Instant::now() + SWEEP_EVERY),
        }
    }

    /// Send `request` once (the contract is in the module doc).
    pub async fn send(
        &self,
        request: &WarmRequest,
        extra_headers: &[(&str, &str)],
        body: Body,
        attempt: u32,
        timeouts: Timeouts,
    ) -> Result<Exchange, TransportError> {
        self.send_counted(request, extra_headers, body, attempt, timeouts, &Cell::new(0)).await
    }

    /// [`Client::send`], adding to `resent` each time the request went
    /// again because the server provably did not process it.
    pub async fn send_counted(
        &self,
        request: &WarmRequest,
        extra_headers: &[(&str, &str)],
        body: Body,
        attempt: u32,
        timeouts: Timeouts,
        resent: &Cell<u32>,
    ) -> Result<Exchange, TransportError> {
        let target = Target::split(&request.url).map_err(|e| other(e.to_string()))?;
        request::check_headers(request, extra_headers)?;
        self.sweep();
        let origin = self.origin(&target)?;
        let job = Job {
            origin: &origin,
            target,
            request,
            extra: extra_headers,
            is_head: request.method == Method::Head,
            limit: match body {
                Body::None => Some(0),
                Body::AtMost(n) => Some(n),
                Body::Full => None,
            },
            probe: matches!(body, Body::AtMost(_)),
            resent,
        };
        if origin.https {
            // Boxed: hyper's futures are large, and plain HTTP (the common,
            // memory-critical case) should not carry their size.
            Box::pin(tls::send(self, &job, attempt, timeouts)).await
        } else {
            self.send_plain(&job, attempt, timeouts).await
        }
    }

    /// Close the connections idle for [`IDLE_TIMEOUT`], every
    /// [`SWEEP_EVERY`].
    fn sweep(&self) {
        let now = Instant::now();
        if now < self.next_sweep.get() {
            return;
        }
        self.next_sweep.set(now + SWEEP_EVERY);
        self.origins.each(|origin| origin.close_idle(now));
    }

    fn origin(&self, target: &Target<'_>) -> Result<Rc<Origin>, TransportError> {
        self.origins.get(target, &self.config).map_err(other)
    }

    async fn send_plain(&self, job: &Job<'_>, attempt: u32, timeouts: Timeouts) -> Result<Exchange, TransportError> {
        let started = Instant::now();
        let head_limit = timeouts.headers.min(timeouts.total);
        let mut counter = Counter { bytes: 0, limit: job.limit, leftover: false };
        let first = tokio::time::timeout_at((started + head_limit).into(), self.plain_head(job, &mut counter)).await;
        let (stream, mut head, mut body_error) = match first {
            Err(_) => return Err(timeout_error("response headers", head_limit)),
            Ok(r) => r?,
        };
        let ttfb = started.elapsed();
        let mut ended = false;
        if body_error.is_none() && !counter.stop(&head.framing) {
            let deadline = (started + timeouts.total).into();
            match tokio::time::timeout_at(deadline, self.plain_body(&stream, &mut head.framing, &mut counter)).await {
                Err(_) => body_error = Some(timeout_error("complete body", timeouts.total)),
                Ok(Err(e)) => body_error = Some(e),
                Ok(Ok(eof)) => ended = eof,
            }
        }
        let read_all = job.reads_all(head.status);
        let body_complete = body_error.is_none()
            && (!read_all || ended || head.framing.done())
            && (!read_all || head.content_length.is_none_or(|cl| cl == counter.bytes));
        let edge = job.origin.mapped.then(|| stream.peer_addr().map(|a| a.to_string()).ok()).flatten();
        if !head.close && head.framing.done() && !counter.leftover && body_error.is_none() {
            job.origin.idle.borrow_mut().push((stream, Instant::now()));
        }
        let answer = Answer {
            status: head.status,
            headers: head.headers,
            content_length: head.content_length,
            ttfb,
            body_bytes: counter.bytes,
            body_complete,
            body_error,
            edge,
        };
        Ok(answer.into_exchange(job, attempt, started))
    }

    /// Connect (or reuse), write the request, read the head and the body
    /// bytes that came with it. A reused connection the server closed or
    /// reset before a byte of answer did not process the request (RFC 9112
    /// §9.3.1): it goes again at once on a fresh connection, counted as
    /// resent.
    async fn plain_head(
        &self,
        job: &Job<'_>,
        counter: &mut Counter,
    ) -> Result<(TcpStream, h1::Head, Option<TransportError>), TransportError> {
        let mut may_reuse = true;
        loop {
            let idle = if may_reuse { job.origin.take_idle() } else { None };
            let reused = idle.is_some();
            let stream = match idle {
                Some(s) => s,
                // Boxed: connecting (and resolving) is rare next to reuse,
                // and its future would otherwise grow every request's.
                None => Box::pin(job.origin.connect()).await.map_err(io_error)?,
            };
            request::write_h1(&mut self.out.borrow_mut(), job, &self.config.user_agent);
            if let Err(e) = h1::write_request(&stream, &self.out).await {
                if reused {
                    may_reuse = false;
                    job.resent.set(job.resent.get() + 1);
                    continue;
                }
                return Err(io_error(e));
            }
            let read = h1::read_head(&stream, &self.scratch, job.is_head, |head, bytes| {
                counter.limit = job.limit_for(head.status);
                if counter.stop(&head.framing) {
                    counter.leftover |= !bytes.is_empty();
                    Ok(())
                } else {
                    counter.feed(&mut head.framing, bytes)
                }
            })
            .await;
            match read {
                Ok((head, Ok(()))) => return Ok((stream, head, None)),
                Ok((head, Err(e))) => return Ok((stream, head, Some(protocol(e.to_string())))),
                Err(ReadError::ClosedBeforeHead | ReadError::FailedBeforeHead(_)) if reused => {
                    may_reuse = false;
                    job.resent.set(job.resent.get() + 1);
                }
                Err(ReadError::FailedBeforeHead(e)) => return Err(io_error(e)),
                Err(ReadError::ClosedBeforeHead) | Err(ReadError::ClosedInHead) => {
                    return Err(TransportError {
                        kind: TransportKind::Connection,
                        message: "connection closed before a complete response head".into(),
                    });
                }
                Err(ReadError::Io(e)) => return Err(io_error(e)),
                Err(ReadError::Malformed(what)) => return Err(protocol(what.to_string())),
            }
        }
    }

    /// Read and count the rest of the body; whether it ended with the
    /// connection (the only end of a body framed by neither length nor
    /// chunks).
    async fn plain_body(
        &self,
        stream: &TcpStream,
        framing: &mut Framing,
        counter: &mut Counter,
    ) -> Result<bool, TransportError> {
        while !counter.stop(framing) {
            let eof = h1::read_with(stream, &self.scratch, |bytes| {
                if bytes.is_empty() {
                    return Ok(true);
                }
                counter.feed(framing, bytes).map(|()| false)
            })
            .await
            .map_err(io_error)?
            .map_err(|e| protocol(e.to_string()))?;
            if eof {
                if *framing == Framing::Eof {
                    return Ok(true);
                }
                return Err(TransportError {
                    kind: TransportKind::Connection,
                    message: "connection closed before the body was complete".into(),
                });
            }
        }
        Ok(false)
    }
}

/// Body bytes counted against the caller's limit.
struct Counter {
    bytes: u64,
    limit: Option<u64>,
    /// Bytes arrived past the end of the response: the connection is not
    /// in a known state and is not reused.
    leftover: bool,
}

impl Counter {
    fn stop(&self, framing: &Framing) -> bool {
        framing.done() || self.limit.is_some_and(|l| self.bytes >= l)
    }

    fn feed(&mut self, framing: &mut Framing, bytes: &[u8]) -> Result<(), body::Malformed> {
        let fed = framing.feed(bytes)?;
        self.bytes += fed.data;
        self.leftover |= fed.consumed < bytes.len();
        Ok(())
    }
}

/// A response as the transports saw it, before it becomes an [`Exchange`].
struct Answer {
    status: u16,
    headers: http::HeaderMap,
    content_length: Option<u64>,
    ttfb: std::time::Duration,
    body_bytes: u64,
    body_complete: bool,
    body_error: Option<TransportError>,
    edge: Option<String>,
}

impl Answer {
    fn into_exchange(self, job: &Job<'_>, attempt: u32, started: Instant) -> Exchange {
        Exchange {
            meta: ResponseMeta {
                url: job.request.url.clone(),
                status: self.status,
                headers: Vec::new(),
                body_bytes: self.body_bytes,
                body_complete: self.body_complete,
                attempt,
            },
            headers: self.headers,
            ttfb: self.ttfb,
            total: started.elapsed(),
            content_length: self.content_length,
            body_error: self.body_error,
            edge: self.edge,
        }
    }
}

fn other(message: impl ToString) -> TransportError {
    TransportError { kind: TransportKind::Other, message: message.to_string() }
}

/// An answer that broke HTTP's framing: the same answer would fail again.
fn protocol(message: impl ToString) -> TransportError {
    TransportError { kind: TransportKind::Protocol, message: message.to_string() }
}

fn io_error(e: std::io::Error) -> TransportError {
    let kind = match e.kind() {
        std::io::ErrorKind::TimedOut => TransportKind::Timeout,
        _ => TransportKind::Connection,
    };
    TransportError { kind, message: crate::util::redact::redact_text(&e.to_string()) }
}
