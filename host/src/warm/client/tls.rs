//! `https://`: hyper 1.x client connections over rustls. ALPN picks HTTP/2
//! (connections shared by many requests: `SendRequest` is cloned; a new one
//! opens when each carries [`STREAMS_PER_CONNECTION`] requests) or HTTP/1.1
//! (connections pooled, a connection back in the pool only once its body
//! was read whole). Connection tasks run on the thread's
//! runtime (`tokio::spawn`, which a current-thread runtime runs on its own
//! thread, inside a `LocalSet` or not).

use std::cell::{Cell, RefCell};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio_rustls::rustls::{self, RootCertStore, pki_types::CertificateDer, pki_types::pem::PemObject};

use super::{Answer, Client, ConfigError, Job, io_error, request};
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

/// Requests in flight on one HTTP/2 connection before another opens.
/// Servers cap concurrent streams (SETTINGS_MAX_CONCURRENT_STREAMS, RFC 9113
/// §6.5.2; nginx's default is 128) and queue the rest, which would count
/// against their header timeout: staying under the usual cap keeps
/// thousands of requests in flight over a few connections.
pub const STREAMS_PER_CONNECTION: u32 = 100;

/// A shared HTTP/2 connection and the requests on it now.
struct Shared {
    sender: H2,
    edge: Option<String>,
    active: Rc<Cell<u32>>,
}

/// An origin's TLS connections.
#[derive(Default)]
pub struct Pool {
    /// What ALPN chose the last time; `None` before the first connection.
    h2: Cell<Option<bool>>,
    shared: RefCell<Vec<Shared>>,
    idle: RefCell<Vec<(H1, Option<String>)>>,
    /// Held while connecting an origin that may speak HTTP/2, so a burst of
    /// requests opens one connection, not one each.
    connecting: tokio::sync::Mutex<()>,
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
    _active: Option<Active>,
}

/// One request counted on an HTTP/2 connection.
struct Active(Rc<Cell<u32>>);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

impl Lease {
    fn h2(shared: &Shared, reused: bool) -> Self {
        shared.active.set(shared.active.get() + 1);
        Lease {
            sender: Sender::H2(shared.sender.clone()),
            reused,
            edge: shared.edge.clone(),
            _active: Some(Active(shared.active.clone())),
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
    let content_length = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
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
        job.origin.tls.idle.borrow_mut().push((sender, lease.edge.clone()));
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

/// Send on a pooled or new connection until the response head arrives; a
/// reused connection that fails before answering is replaced once.
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
        match answer {
            Ok(response) => return Ok((response, lease)),
            Err(e) if lease.reused && (e.is_canceled() || e.is_closed() || e.is_incomplete_message()) => {
                job.origin.tls.shared.borrow_mut().retain(|s| !s.sender.is_closed());
                may_reuse = false;
            }
            Err(e) => return Err(hyper_error(e)),
        }
    }
}

async fn lease(client: &Client, job: &Job<'_>, may_reuse: bool) -> Result<Lease, TransportError> {
    let pool = &job.origin.tls;
    if may_reuse && let Some(lease) = reuse(pool).await {
        return Ok(lease);
    }
    // Only one connect at a time where HTTP/2 may come out of it; the
    // others then share that connection.
    let _guard = match pool.h2.get() {
        Some(false) => None,
        _ => Some(pool.connecting.lock().await),
    };
    if may_reuse && let Some(lease) = reuse(pool).await {
        return Ok(lease);
    }
    let tcp = job.origin.connect().await.map_err(io_error)?;
    let edge = job.origin.mapped.then(|| tcp.peer_addr().ok().map(|a| a.to_string())).flatten();
    let name = job.origin.server_name.clone().ok_or_else(|| super::other("no TLS server name"))?;
    let tls = tokio_rustls::TlsConnector::from(client.config.tls.clone()).connect(name, tcp).await.map_err(io_error)?;
    let is_h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    pool.h2.set(Some(is_h2));
    let io = TokioIo::new(tls);
    if is_h2 {
        let (sender, conn) = http2::handshake(TokioExecutor::new(), io).await.map_err(hyper_error)?;
        tokio::spawn(conn);
        let shared = Shared { sender, edge, active: Rc::new(Cell::new(0)) };
        let lease = Lease::h2(&shared, false);
        pool.shared.borrow_mut().push(shared);
        return Ok(lease);
    }
    let (sender, conn) = http1::handshake(io).await.map_err(hyper_error)?;
    tokio::spawn(conn);
    Ok(Lease { sender: Sender::H1(sender), reused: false, edge, _active: None })
}

/// A shared HTTP/2 connection with room, or the most recent idle HTTP/1.1
/// one.
async fn reuse(pool: &Pool) -> Option<Lease> {
    {
        let mut shared = pool.shared.borrow_mut();
        shared.retain(|s| !s.sender.is_closed());
        if let Some(s) = shared.iter().find(|s| s.active.get() < STREAMS_PER_CONNECTION) {
            return Some(Lease::h2(s, true));
        }
    }
    loop {
        let (mut sender, edge) = pool.idle.borrow_mut().pop()?;
        if !sender.is_closed() && sender.ready().await.is_ok() {
            return Some(Lease { sender: Sender::H1(sender), reused: true, edge, _active: None });
        }
    }
}

/// A hyper error as a transport error: its root cause, no URL.
pub(super) fn hyper_error(e: hyper::Error) -> TransportError {
    let kind = if e.is_timeout() {
        TransportKind::Timeout
    } else if e.is_parse() || e.is_user() {
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
