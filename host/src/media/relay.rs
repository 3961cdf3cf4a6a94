//! The loopback relay validate's readers fetch through. ffprobe, ffmpeg and
//! the 16-byte sniff never reach a CDN or the source server themselves: they
//! get `http://127.0.0.1:PORT/TOKEN/ID/NAME` (a random port and 128-bit path
//! token per run, one id per object, valid while that object is checked),
//! and the relay asks upstream with prewarm's own client. So the egress
//! policy, `--connect-to`, `--ca-file`, the plugin's headers and secrets and
//! rclone's credentials stay inside prewarm: no child's arguments hold a
//! header, token or credential, and no child follows a redirect.
//!
//! What passes: GET and HEAD, the reader's `Range` (RFC 9110 §14.2), and
//! the answer's status, framing and range headers with its body streamed.
//! Redirects (RFC 9110 §15.4) are followed here, at most
//! [`MAX_REDIRECTS`], each target admitted by the egress policy first; a
//! refused one ends the read with 502 and the reason kept for the object's
//! record. Credentials (`Authorization`, `Cookie`) are not carried to
//! another origin, as browsers do (Fetch Standard, HTTP-redirect fetch).
//! Sources (the loopback `rclone serve http`) are never redirected.

use std::collections::HashMap;
use std::convert::Infallible;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rand::distr::{Alphanumeric, SampleString};

use crate::plugin::{Method, WarmRequest};
use crate::warm::client::{ClientConfig, Streamer};
use crate::warm::egress::Policy;

/// Redirects followed for one read.
pub const MAX_REDIRECTS: u32 = 5;

/// Response headers passed on to the reader.
const PASSED: &[&str] =
    &["content-type", "content-length", "content-range", "accept-ranges", "last-modified", "etag", "content-encoding"];

/// Request headers not carried to another origin.
const CREDENTIALS: &[&str] = &["authorization", "cookie"];

type RelayBody = Either<Incoming, Full<Bytes>>;

/// How the relay reaches upstream.
pub struct Upstream {
    pub client: Arc<ClientConfig>,
    /// Where derivative reads (and their redirects) may go.
    pub policy: Option<Arc<Policy>>,
    /// Connection and response headers, per hop.
    pub header_timeout: Duration,
}

/// One object's upstream request, while it is checked.
struct Entry {
    request: WarmRequest,
    /// Under the egress policy (a CDN derivative), redirects followed
    /// under it; otherwise (a source on the loopback server) none.
    policed: bool,
    /// Why a read was refused, for the object's record.
    refused: Option<String>,
}

#[derive(Default)]
struct Shared {
    entries: Mutex<HashMap<u64, Entry>>,
    next: AtomicU64,
}

/// A running relay; stops when dropped.
pub struct Relay {
    /// `http://127.0.0.1:PORT/TOKEN`.
    base: String,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// An object's relay URL; its entry goes when this drops.
pub struct Ticket<'r> {
    relay: &'r Relay,
    id: u64,
    /// What the reader is given.
    pub url: String,
}

impl Ticket<'_> {
    /// Why the relay refused a read of this object (a redirect the egress
    /// policy refused), if it did.
    pub fn refusal(&self) -> Option<String> {
        self.relay.shared.lock().get(&self.id).and_then(|e| e.refused.clone())
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        self.relay.shared.lock().remove(&self.id);
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Relay {
    /// Bind 127.0.0.1 on a free port and serve on a thread of its own.
    pub fn start(upstream: Upstream) -> std::io::Result<Relay> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let token = Alphanumeric.sample_string(&mut rand::rng(), 24);
        let base = format!("http://{}/{token}", listener.local_addr()?);
        let shared = Arc::new(Shared::default());
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let state = State { shared: shared.clone(), token, upstream };
        let thread = std::thread::Builder::new().name("prewarm-relay".into()).spawn(move || {
            let local = tokio::task::LocalSet::new();
            local.block_on(&runtime, serve(listener, Rc::new(state), stopped));
        })?;
        Ok(Relay { base, shared, stop: Some(stop), thread: Some(thread) })
    }

    /// The relay URL for `request` (its URL admitted already when
    /// `policed`); `name` ends the URL so readers see the object's name.
    pub fn open(&self, request: WarmRequest, policed: bool, name: &str) -> Ticket<'_> {
        let id = self.shared.next.fetch_add(1, Ordering::Relaxed);
        self.shared.lock().insert(id, Entry { request, policed, refused: None });
        let name = name.rsplit('/').next().unwrap_or("object");
        let name = percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC);
        Ticket { relay: self, id, url: format!("{}/{id}/{name}", self.base) }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The relay thread's state.
struct State {
    shared: Arc<Shared>,
    token: String,
    upstream: Upstream,
}

async fn serve(listener: std::net::TcpListener, state: Rc<State>, mut stopped: tokio::sync::oneshot::Receiver<()>) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
    let streamer = Rc::new(Streamer::new(state.upstream.client.clone()));
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(_) => continue,
            },
            _ = &mut stopped => return,
        };
        let (state, streamer) = (state.clone(), streamer.clone());
        tokio::task::spawn_local(async move {
            let service = hyper::service::service_fn(move |req| {
                let (state, streamer) = (state.clone(), streamer.clone());
                async move { Ok::<_, Infallible>(handle(&state, &streamer, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

fn plain(status: u16, message: String) -> hyper::Response<RelayBody> {
    let mut response = hyper::Response::new(Either::Right(Full::new(Bytes::from(message))));
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_GATEWAY);
    response
}

/// Token comparison that takes the same time wherever they differ.
fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn handle(state: &State, streamer: &Streamer, req: hyper::Request<Incoming>) -> hyper::Response<RelayBody> {
    let mut parts = req.uri().path().trim_start_matches('/').splitn(3, '/');
    let (token, id) = (parts.next().unwrap_or(""), parts.next().and_then(|i| i.parse::<u64>().ok()));
    let entry = id.filter(|_| same_token(token, &state.token)).and_then(|id| {
        let entries = state.shared.lock();
        entries.get(&id).map(|e| (id, e.request.clone(), e.policed))
    });
    let Some((id, mut request, policed)) = entry else { return plain(404, "no such object".into()) };
    request.method = match *req.method() {
        http::Method::GET => Method::Get,
        http::Method::HEAD => Method::Head,
        _ => return plain(405, "GET or HEAD only".into()),
    };
    let range =
        req.headers().get(http::header::RANGE).and_then(|v| v.to_str().ok()).filter(|v| v.starts_with("bytes="));
    let extra: Vec<(&str, &str)> = range.map(|r| ("range", r)).into_iter().collect();
    match fetch(state, streamer, request, policed, &extra).await {
        Ok(answer) => pass_on(answer),
        Err(Failed { message, refused }) => {
            if refused && let Some(e) = state.shared.lock().get_mut(&id) {
                e.refused = Some(message.clone());
            }
            plain(502, message)
        }
    }
}

/// Why a read got no answer to pass on.
struct Failed {
    message: String,
    /// Refused by the egress policy (then it is the object's record).
    refused: bool,
}

impl Failed {
    fn upstream(message: String) -> Self {
        Failed { message, refused: false }
    }
}

/// Ask upstream, following redirects under the policy.
async fn fetch(
    state: &State,
    streamer: &Streamer,
    mut request: WarmRequest,
    policed: bool,
    extra: &[(&str, &str)],
) -> Result<http::Response<Incoming>, Failed> {
    let limit = state.upstream.header_timeout;
    for _ in 0..=MAX_REDIRECTS {
        let answer = match tokio::time::timeout(limit, streamer.open(&request, extra)).await {
            Err(_) => {
                return Err(Failed::upstream(format!(
                    "no response headers within {}",
                    humantime::format_duration(limit)
                )));
            }
            Ok(Err(e)) => return Err(Failed::upstream(e.message)),
            Ok(Ok(answer)) => answer,
        };
        let location = answer.headers().get(http::header::LOCATION).and_then(|v| v.to_str().ok());
        let (true, Some(location)) = (answer.status().is_redirection(), location) else { return Ok(answer) };
        if !policed {
            return Err(Failed::upstream(format!("the source server answered a redirect ({})", answer.status())));
        }
        request = redirected(state, request, location)?;
    }
    Err(Failed::upstream(format!("more than {MAX_REDIRECTS} redirects")))
}

/// The request a redirect to `location` asks for, if the policy admits it.
fn redirected(state: &State, mut request: WarmRequest, location: &str) -> Result<WarmRequest, Failed> {
    let here = url::Url::parse(&request.url).map_err(|e| Failed::upstream(e.to_string()))?;
    let next = here.join(location).map_err(|e| Failed::upstream(format!("a redirect to an invalid URL: {e}")))?;
    let policy = state.upstream.policy.as_ref().ok_or_else(|| Failed::upstream("a redirect with no policy".into()))?;
    let admitted = policy
        .admit_url(next.as_str(), None)
        .map_err(|r| Failed { message: format!("the CDN redirected the read: {}", r.message), refused: true })?;
    if next.origin() != here.origin() {
        request.headers.retain(|(name, _)| !CREDENTIALS.iter().any(|c| name.eq_ignore_ascii_case(c)));
    }
    request.url = admitted.unwrap_or_else(|| next.into());
    Ok(request)
}

/// The upstream answer as the reader gets it.
fn pass_on(answer: http::Response<Incoming>) -> hyper::Response<RelayBody> {
    let (parts, body) = answer.into_parts();
    let mut response = hyper::Response::new(Either::Left(body));
    *response.status_mut() = parts.status;
    for name in PASSED {
        if let Some(value) = parts.headers.get(*name) {
            response.headers_mut().insert(*name, value.clone());
        }
    }
    response
}
