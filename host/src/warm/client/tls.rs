//! `https://`: hyper 1.x client connections over rustls. ALPN picks HTTP/2
//! (connections shared by many requests: `SendRequest` is cloned; each
//! carries at most what its server's SETTINGS allows, [`h2`]; a new one
//! opens when all are full) or HTTP/1.1 (connections pooled, a connection
//! back in the pool only once its body was read whole, closed after
//! [`super::IDLE_TIMEOUT`] unused). A request the server provably did not
//! process (REFUSED_STREAM, a stream above a GOAWAY's last stream id, a
//! reused HTTP/1.1 connection closed or reset before any answer, a dead
//! HTTP/2 connection) is sent again at once and counted in
//! [`super::Job::resent`]. Connection tasks run on the thread's runtime
//! (`tokio::spawn`, which a current-thread runtime runs on its own thread,
//! inside a `LocalSet` or not).

use std::cell::{Cell, RefCell};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio_rustls::rustls::{self, RootCertStore, pki_types::CertificateDer, pki_types::pem::PemObject};

use super::h2::{self as h2conn, Watch};
use super::{Answer, Client, ConfigError, IDLE_TIMEOUT, Job, MAX_RESENDS, h1, io_error, request};
use crate::warm::http::{Exchange, Timeouts, TransportError, TransportKind, timeout_error};

/// rustls with the webpki roots and the certificates of `ca_file`.
pub fn config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, ConfigError> {
    let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(path) = ca_file {
        let bad = |reason: String| ConfigError::CaFile { path: path.display().to_string(), reason };
        let certs = CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))?;
        let mut added = 0;
        for cert in certs {
            roots.add(cert.map_err(|e| bad(e.to_string()))?).map_err(|e| bad(e.to_string()))?;
            added += 1;
        }
        if added == 0 {
            return Err(bad("no PEM certificate in it".into()));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

type H1 = http1::SendRequest<Empty<Bytes>>;
type H2 = http2::SendRequest<Empty<Bytes>>;

/// A shared HTTP/2 connection and the requests on it now.
struct Shared {
    sender: H2,
    edge: Option<String>,
    active: Cell<usize>,
    /// Takes no new requests: the server sent GOAWAY, or the connection
    /// failed a request.
    retired: Cell<bool>,
    watch: Arc<Watch>,
    /// When its last request ended (for the idle timeout).
    idle_since: Cell<Instant>,
}

impl Shared {
    fn usable(&self) -> bool {
        !self.retired.get() && !self.watch.closed() && !self.sender.is_closed()
    }

    fn has_room(&self) -> bool {
        self.active.get() < self.watch.limit()
    }
}

/// An idle HTTP/1.1 connection, the edge it reached, and since when.
struct IdleH1 {
    sender: H1,
    edge: Option<String>,
    since: Instant,
}

/// An origin's TLS connections.
#[derive(Default)]
pub struct Pool {
    /// What ALPN chose the last time; `None` before the first connection.
    h2: Cell<Option<bool>>,
    shared: RefCell<Vec<Rc<Shared>>>,
    idle: RefCell<Vec<IdleH1>>,
    /// Held while connecting an origin that may speak HTTP/2, so a burst of
    /// requests opens one connection, not one each.
    connecting: tokio::sync::Mutex<()>,
    /// Woken when an HTTP/2 connection may have room again.
    room: Arc<tokio::sync::Notify>,
}

impl Pool {
    /// Drop connections unused for [`IDLE_TIMEOUT`].
    pub fn close_idle(&self, now: Instant) {
        self.idle.borrow_mut().retain(|c| now.duration_since(c.since) < IDLE_TIMEOUT);
        self.shared
            .borrow_mut()
            .retain(|s| s.usable() && (s.active.get() > 0 || now.duration_since(s.idle_since.get()) < IDLE_TIMEOUT));
    }
}

enum Sender {
    H1(H1),
    H2(H2),
}

/// A connection to send on, whether it was reused, and the edge reached.
struct Lease {
    sender: Sender,
    reused: bool,
    edge: Option<String>,
    /// Counts this request on its HTTP/2 connection until dropped.
    shared: Option<Active>,
}

/// One request counted on an HTTP/2 connection.
struct Active(Rc<Shared>);

impl Drop for Active {
    fn drop(&mut self) {
        let s = &self.0;
        let was = s.active.get();
        s.active.set(was - 1);
        if was == 1 {
            s.idle_since.set(Instant::now());
        }
        // Only a full connection can have had requests waiting for room.
        if was >= s.watch.limit() {
            s.watch.room.notify_waiters();
        }
    }
}

impl Lease {
    fn h2(shared: &Rc<Shared>, reused: bool) -> Self {
        shared.active.set(shared.active.get() + 1);
        Lease {
            sender: Sender::H2(shared.sender.clone()),
            reused,
            edge: shared.edge.clone(),
            shared: Some(Active(shared.clone())),
        }
    }
}

pub async fn send(
    client: &Client,
    job: &Job<'_>,
    attempt: u32,
    timeouts: Timeouts,
) -> Result<Exchange, TransportError> {
    let started = Instant::now();
    let head_limit = timeouts.headers.min(timeouts.total);
    let first = tokio::time::timeout_at((started + head_limit).into(), head(client, job)).await;
    let (response, lease) = match first {
        Err(_) => return Err(timeout_error("response headers", head_limit)),
        Ok(r) => r?,
    };
    let ttfb = started.elapsed();
    let (parts, mut body) = response.into_parts();
    // The same reading as plain HTTP's: none when Transfer-Encoding frames
    // the body (hyper has already refused an invalid length).
    let content_length = super::body::content_length(
        parts.headers.get_all(http::header::CONTENT_LENGTH).iter().map(http::HeaderValue::as_bytes),
        parts.headers.contains_key(http::header::TRANSFER_ENCODING),
    )
    .ok()
    .flatten();
    let status = parts.status.as_u16();
    let limit = job.limit_for(status);
    let (mut bytes, mut body_error) = (0u64, None);
    // A connection goes back to the pool only with its body consumed.
    let mut ended = hyper::body::Body::is_end_stream(&body);
    if !ended && !job.is_head && limit != Some(0) {
        let read = async {
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(hyper_error)?;
                if let Some(data) = frame.data_ref() {
                    bytes += data.len() as u64;
                    if limit.is_some_and(|l| bytes >= l) {
                        return Ok(false);
                    }
                }
            }
            Ok(true)
        };
        match tokio::time::timeout_at((started + timeouts.total).into(), read).await {
            Err(_) => body_error = Some(timeout_error("complete body", timeouts.total)),
            Ok(Err(e)) => body_error = Some(e),
            Ok(Ok(end)) => ended = end,
        }
    }
    let body_complete = body_error.is_none() && (!job.reads_all(status) || content_length.is_none_or(|cl| cl == bytes));
    if let (Sender::H1(sender), true) = (lease.sender, ended && body_error.is_none()) {
        job.origin.tls.idle.borrow_mut().push(IdleH1 { sender, edge: lease.edge.clone(), since: Instant::now() });
    }
    let answer = Answer {
        status,
        headers: parts.headers,
        content_length,
        ttfb,
        body_bytes: bytes,
        body_complete,
        body_error,
        edge: lease.edge,
    };
    Ok(answer.into_exchange(job, attempt, started))
}

/// Send on a pooled or new connection until the response head arrives. A
/// request the server did not process goes again at once, at most
/// [`MAX_RESENDS`] times; a reused HTTP/1.1 connection that failed is
/// followed by a fresh one.
async fn head(
    client: &Client,
    job: &Job<'_>,
) -> Result<(http::Response<hyper::body::Incoming>, Lease), TransportError> {
    let mut may_reuse = true;
    loop {
        let mut lease = lease(client, job, may_reuse).await?;
        let answer = match &mut lease.sender {
            Sender::H1(s) => s.send_request(request::for_hyper(job, &client.config.user_agent, false)?).await,
            Sender::H2(s) => s.send_request(request::for_hyper(job, &client.config.user_agent, true)?).await,
        };
        let e = match answer {
            Ok(response) => return Ok((response, lease)),
            Err(e) => e,
        };
        let unprocessed = not_processed(&e, &lease);
        if let Some(Active(shared)) = &lease.shared
            && (unprocessed || e.is_closed() || e.is_timeout())
        {
            shared.retired.set(true);
        }
        if !unprocessed || job.resent.get() >= MAX_RESENDS {
            return Err(hyper_error(e));
        }
        job.resent.set(job.resent.get() + 1);
        may_reuse = lease.shared.is_some();
    }
}

/// Whether a failed request provably never reached the server's
/// processing (RFC 9113 §8.7, RFC 9112 §9.3.1), so sending it again is no
/// retry: never written (the connection was closing), refused or above a
/// GOAWAY's last stream id, on an HTTP/2 connection found dead by PING,
/// or on a reused HTTP/1.1 connection that closed or reset before a byte
/// of answer.
fn not_processed(e: &hyper::Error, lease: &Lease) -> bool {
    if e.is_canceled() {
        return true;
    }
    if lease.shared.is_some() {
        if let Some(h2e) = source_of::<::h2::Error>(e) {
            let refused = h2e.is_reset() && h2e.reason() == Some(::h2::Reason::REFUSED_STREAM);
            return refused || (h2e.is_go_away() && h2e.is_remote());
        }
        // Keep-alive PING unanswered: the connection is dead, and the
        // stream had no answer.
        return e.is_timeout();
    }
    let dropped = source_of::<std::io::Error>(e).is_some_and(|io| {
        use std::io::ErrorKind::*;
        matches!(io.kind(), ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof)
    });
    lease.reused && (e.is_closed() || e.is_incomplete_message() || dropped)
}

/// The first error of type `T` in `e`'s chain of sources.
fn source_of<T: std::error::Error + 'static>(e: &hyper::Error) -> Option<&T> {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(found) = s.downcast_ref::<T>() {
            return Some(found);
        }
        source = s.source();
    }
    None
}

async fn lease(client: &Client, job: &Job<'_>, may_reuse: bool) -> Result<Lease, TransportError> {
    let pool = &job.origin.tls;
    loop {
        // Registered before looking, so a wake-up between the look and the
        // wait is not lost.
        let room = pool.room.notified();
        tokio::pin!(room);
        room.as_mut().enable();
        match reuse(pool, may_reuse).await {
            Reuse::Lease(lease) => return Ok(lease),
            Reuse::Wait => {
                room.await;
                continue;
            }
            Reuse::Connect => {}
        }
        // Only one connect at a time where HTTP/2 may come out of it; the
        // others then share that connection.
        let _guard = match pool.h2.get() {
            Some(false) => None,
            _ => Some(pool.connecting.lock().await),
        };
        match reuse(pool, may_reuse).await {
            Reuse::Lease(lease) => return Ok(lease),
            Reuse::Wait => continue,
            Reuse::Connect => return connect(client, job).await,
        }
    }
}

/// What the pool offers a request.
enum Reuse {
    Lease(Lease),
    /// Every HTTP/2 connection is full, and one has not yet said how many
    /// streams it takes: wait for its SETTINGS or a free stream.
    Wait,
    Connect,
}

/// A shared HTTP/2 connection with room, or the most recent idle HTTP/1.1
/// one.
async fn reuse(pool: &Pool, may_reuse: bool) -> Reuse {
    {
        let mut shared = pool.shared.borrow_mut();
        shared.retain(|s| s.usable() || s.active.get() > 0);
        let usable = || shared.iter().filter(|s| s.usable());
        if let Some(s) = usable().find(|s| s.has_room()) {
            return Reuse::Lease(Lease::h2(s, true));
        }
        if usable().any(|s| !s.watch.settled()) {
            return Reuse::Wait;
        }
    }
    if !may_reuse {
        return Reuse::Connect;
    }
    let now = Instant::now();
    loop {
        let Some(IdleH1 { mut sender, edge, since }) = pool.idle.borrow_mut().pop() else { return Reuse::Connect };
        if now.duration_since(since) < IDLE_TIMEOUT && !sender.is_closed() && sender.ready().await.is_ok() {
            return Reuse::Lease(Lease { sender: Sender::H1(sender), reused: true, edge, shared: None });
        }
    }
}

/// A new connection: TCP, TLS, then HTTP/2 or HTTP/1.1 by ALPN.
async fn connect(client: &Client, job: &Job<'_>) -> Result<Lease, TransportError> {
    let pool = &job.origin.tls;
    let tcp = job.origin.connect().await.map_err(io_error)?;
    let edge = job.origin.mapped.then(|| tcp.peer_addr().ok().map(|a| a.to_string())).flatten();
    let name = job.origin.server_name.clone().ok_or_else(|| super::other("no TLS server name"))?;
    let tls = tokio_rustls::TlsConnector::from(client.config.tls.clone()).connect(name, tcp).await.map_err(io_error)?;
    let is_h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    pool.h2.set(Some(is_h2));
    if is_h2 {
        let preface = Arc::new(AtomicBool::new(false));
        let io = TokioIo::new(h2conn::Preface::new(tls, preface.clone()));
        let (sender, conn) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .initial_max_send_streams(h2conn::INITIAL_STREAMS)
            .keep_alive_interval(h2conn::PING_INTERVAL)
            .keep_alive_timeout(h2conn::PING_TIMEOUT)
            .handshake(io)
            .await
            .map_err(hyper_error)?;
        let watch = Arc::new(Watch::new(pool.room.clone()));
        tokio::spawn(h2conn::drive(conn, watch.clone(), preface, |c| c.current_max_send_streams()));
        let shared = Rc::new(Shared {
            sender,
            edge,
            active: Cell::new(0),
            retired: Cell::new(false),
            watch,
            idle_since: Cell::new(Instant::now()),
        });
        let lease = Lease::h2(&shared, false);
        pool.shared.borrow_mut().push(shared);
        return Ok(lease);
    }
    let (sender, conn) = http1::Builder::new()
        // The plain-HTTP reader's rules: obs-fold unfolded (RFC 9112
        // §5.2), the same head size limit (and hyper's default of 100
        // fields, which the plain reader shares: setting it would put
        // hyper's headers on the heap).
        .allow_obsolete_multiline_headers_in_responses(true)
        .max_header_size(h1::MAX_HEAD)
        .handshake(TokioIo::new(tls))
        .await
        .map_err(hyper_error)?;
    tokio::spawn(conn);
    Ok(Lease { sender: Sender::H1(sender), reused: false, edge, shared: None })
}

/// A hyper error as a transport error: its root cause, no URL. A response
/// hyper could not parse (head or chunked framing) is a protocol error: the
/// same answer would fail the same way again.
pub(super) fn hyper_error(e: hyper::Error) -> TransportError {
    // hyper's body decoder reports bad chunked framing as InvalidInput or
    // InvalidData.
    let bad_body = source_of::<std::io::Error>(&e)
        .is_some_and(|io| matches!(io.kind(), std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData));
    let kind = if e.is_timeout() {
        TransportKind::Timeout
    } else if e.is_parse() || bad_body {
        TransportKind::Protocol
    } else if e.is_user() {
        TransportKind::Other
    } else {
        TransportKind::Connection
    };
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message = s.to_string();
        source = s.source();
    }
    TransportError { kind, message: crate::util::redact::redact_text(&message) }
}
