//! One HTTP/1.1 reading for both transports: a table of raw answers at RFC
//! 9112's corners, each with the reading expected, sent through the plain
//! client and through hyper over TLS from the same in-process server (a
//! real server will not send these on demand). Also: reused connections
//! the server closes or resets before answering are sent again, counted.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

use super::{Client, ClientConfig};
use crate::plugin::{Method, WarmRequest};
use crate::warm::http::{Body, Exchange, Timeouts, TransportKind};

const T: Timeouts = Timeouts { headers: Duration::from_secs(5), total: Duration::from_secs(10) };
const BODY: &[u8] = b"0123456789";

/// What the server does after an answer.
#[derive(Clone, Copy, PartialEq)]
enum After {
    Keep,
    Close,
    Reset,
}

/// The 1000-byte body every case sends.
fn body() -> Vec<u8> {
    BODY.repeat(100)
}

fn chunked(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for part in body.chunks(300) {
        out.extend(format!("{:x}\r\n", part.len()).bytes());
        out.extend(part);
        out.extend(b"\r\n");
    }
    out.extend(b"0\r\n\r\n");
    out
}

/// The raw answer to the `nth` request (1-based) on a connection for
/// `/case/NAME`.
fn answer(name: &str, nth: u32) -> (Vec<u8>, After) {
    let head = |lines: &str| format!("HTTP/1.1 200 OK\r\n{lines}\r\n\r\n").into_bytes();
    let with = |mut h: Vec<u8>, b: &[u8]| {
        h.extend(b);
        h
    };
    let ok = || with(head("Content-Length: 1000"), &body());
    match name {
        "ok" => (ok(), After::Keep),
        "obsfold" => (
            with(head("Content-Length: 1000\r\nX-Folded: first\r\n  second part\r\nX-Cache: MISS"), &body()),
            After::Keep,
        ),
        "cl_list_equal" => (with(head("Content-Length: 1000, 1000"), &body()), After::Keep),
        "dup_cl_equal" => (with(head("Content-Length: 1000\r\nContent-Length: 1000"), &body()), After::Keep),
        "cl_spaces" => (with(head("Content-Length:    1000   "), &body()), After::Keep),
        "cl_plus" => (with(head("Content-Length: +1000"), &body()), After::Keep),
        "cl_inner_space" => (with(head("Content-Length: 1 000"), &body()), After::Keep),
        "dup_cl_diff" => (with(head("Content-Length: 1000\r\nContent-Length: 999"), &body()), After::Keep),
        "te_http10" => {
            let h = b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 1000\r\nConnection: keep-alive\r\n\r\n";
            (with(h.to_vec(), &chunked(&body())), After::Keep)
        }
        "chunk_bad_hex" => (with(head("Transfer-Encoding: chunked"), b"3g\r\nabc\r\n0\r\n\r\n"), After::Keep),
        "te_cl_smaller" => {
            (with(head("Transfer-Encoding: chunked\r\nContent-Length: 10"), &chunked(&body())), After::Keep)
        }
        "te_list_chunked" => (with(head("Transfer-Encoding: gzip, chunked"), &chunked(&body())), After::Keep),
        "te_gzip_eof" => (with(head("Transfer-Encoding: gzip"), &body()), After::Close),
        "s204_cl" => (b"HTTP/1.1 204 No Content\r\nContent-Length: 1000\r\n\r\n".to_vec(), After::Keep),
        "s304_cl" => {
            (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 1000\r\nETag: \"x\"\r\n\r\n".to_vec(), After::Keep)
        }
        "s206" => {
            let h = head("Content-Range: bytes 0-99/1000\r\nContent-Length: 100").replace_status("206 Partial Content");
            (with(h, &body()[..100]), After::Keep)
        }
        "lf_only" => (with(b"HTTP/1.1 200 OK\nContent-Length: 1000\n\n".to_vec(), &body()), After::Keep),
        "http10_keepalive" => (
            with(b"HTTP/1.0 200 OK\r\nContent-Length: 1000\r\nConnection: keep-alive\r\n\r\n".to_vec(), &body()),
            After::Keep,
        ),
        "http12" => (with(b"HTTP/1.2 200 OK\r\nContent-Length: 1000\r\n\r\n".to_vec(), &body()), After::Keep),
        "fields_150" => {
            let many: Vec<String> = (0..150).map(|i| format!("X-H{i}: v")).collect();
            (with(head(&format!("Content-Length: 1000\r\n{}", many.join("\r\n"))), &body()), After::Keep)
        }
        "field_100k" => {
            (with(head(&format!("Content-Length: 1000\r\nX-Big: {}", "a".repeat(100_000))), &body()), After::Keep)
        }
        "close_on_second" if nth >= 2 => (Vec::new(), After::Close),
        "rst_on_second" if nth >= 2 => (Vec::new(), After::Reset),
        "close_on_second" | "rst_on_second" => (ok(), After::Keep),
        _ => (b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(), After::Keep),
    }
}

trait Status {
    fn replace_status(self, status: &str) -> Vec<u8>;
}

impl Status for Vec<u8> {
    fn replace_status(self, status: &str) -> Vec<u8> {
        String::from_utf8(self).unwrap().replacen("200 OK", status, 1).into_bytes()
    }
}

/// A plain and a TLS (HTTP/1.1 only) port answering from [`answer`].
struct RawServer {
    plain: u16,
    tls: u16,
    connections: Arc<AtomicU32>,
    _dir: tempfile::TempDir,
    ca: std::path::PathBuf,
}

impl RawServer {
    async fn start() -> RawServer {
        let dir = tempfile::tempdir().unwrap();
        super::tls_tests::make_certs(dir.path());
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(dir.path().join("server.pem")).unwrap().map(Result::unwrap).collect();
        let key = PrivateKeyDer::from_pem_file(dir.path().join("server.key")).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let connections = Arc::new(AtomicU32::new(0));
        let plain = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tls = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ports = (plain.local_addr().unwrap().port(), tls.local_addr().unwrap().port());
        let count = connections.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = plain.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream, |s: &TcpStream| s.set_zero_linger()));
            }
        });
        let count = connections.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = tls.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(stream).await {
                        serve(tls, |s: &tokio_rustls::server::TlsStream<TcpStream>| s.get_ref().0.set_zero_linger())
                            .await;
                    }
                });
            }
        });
        let ca = dir.path().join("ca.pem");
        RawServer { plain: ports.0, tls: ports.1, connections, _dir: dir, ca }
    }

    fn url(&self, https: bool, case: &str) -> String {
        match https {
            false => format!("http://127.0.0.1:{}/case/{case}", self.plain),
            true => format!("https://localhost:{}/case/{case}", self.tls),
        }
    }

    fn client(&self) -> Client {
        Client::new(Arc::new(ClientConfig::new(Vec::new(), Some(&self.ca)).unwrap()))
    }
}

/// One connection: read request heads, write each case's answer.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, zero_linger: impl Fn(&S) -> std::io::Result<()>) {
    let (mut buf, mut nth) = (Vec::new(), 0);
    loop {
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end + 4);
        nth += 1;
        let path = head.split(' ').nth(1).unwrap_or("");
        let name = path.strip_prefix("/case/").unwrap_or("");
        let (bytes, after) = answer(name, nth);
        if stream.write_all(&bytes).await.is_err() || stream.flush().await.is_err() {
            return;
        }
        match after {
            After::Keep => {}
            After::Close => {
                let _ = stream.shutdown().await;
                return;
            }
            After::Reset => {
                // SO_LINGER 0: close sends RST, not FIN.
                zero_linger(&stream).unwrap();
                return;
            }
        }
    }
}

fn get(url: &str) -> WarmRequest {
    WarmRequest { url: url.to_string(), method: Method::Get, headers: Vec::new(), read_body: true }
}

/// How an answer must be read: status, body bytes counted, whether the
/// body is complete, the Content-Length reported, and whether the
/// connection was kept for the next request; or the kind of error.
#[derive(Debug, PartialEq)]
enum Reading {
    Answer {
        status: u16,
        bytes: u64,
        complete: bool,
        length: Option<u64>,
        kept: bool,
    },
    /// The head came, the body broke HTTP's framing.
    BadBody {
        status: u16,
    },
    Error(TransportKind),
}

use Reading::{Answer, BadBody, Error};

fn a(status: u16, bytes: u64, length: Option<u64>, kept: bool) -> Reading {
    Answer { status, bytes, complete: true, length, kept }
}

/// RFC 9112's corners and the reading both transports must give.
fn table() -> Vec<(&'static str, Reading)> {
    vec![
        ("ok", a(200, 1000, Some(1000), true)),
        // §5.2: a user agent replaces obs-fold with a space.
        ("obsfold", a(200, 1000, Some(1000), true)),
        // §6.3: a list of one repeated length is that length.
        ("cl_list_equal", a(200, 1000, Some(1000), true)),
        ("dup_cl_equal", a(200, 1000, Some(1000), true)),
        ("cl_spaces", a(200, 1000, Some(1000), true)),
        // §6.3: an invalid length is unrecoverable: the client closes.
        ("cl_plus", Error(TransportKind::Protocol)),
        ("cl_inner_space", Error(TransportKind::Protocol)),
        ("dup_cl_diff", Error(TransportKind::Protocol)),
        // §6.1: Transfer-Encoding in HTTP/1.0 is faulty framing.
        ("te_http10", Error(TransportKind::Protocol)),
        // §7.1: chunk-size is 1*HEXDIG.
        ("chunk_bad_hex", BadBody { status: 200 }),
        // §6.3: Transfer-Encoding overrides Content-Length: no length, the
        // chunks counted, complete.
        ("te_cl_smaller", a(200, 1000, None, true)),
        ("te_list_chunked", a(200, 1000, None, true)),
        // A coding other than chunked last: read to the end of the connection.
        ("te_gzip_eof", a(200, 1000, None, false)),
        // No content in a 204 or 304, whatever Content-Length says.
        ("s204_cl", a(204, 0, Some(1000), true)),
        ("s304_cl", a(304, 0, Some(1000), true)),
        ("s206", a(206, 100, Some(100), true)),
        ("lf_only", a(200, 1000, Some(1000), true)),
        ("http10_keepalive", a(200, 1000, Some(1000), true)),
        ("http12", Error(TransportKind::Protocol)),
        ("fields_150", Error(TransportKind::Protocol)),
        ("field_100k", Error(TransportKind::Protocol)),
    ]
}

async fn read(server: &RawServer, https: bool, case: &str) -> (Reading, Option<Exchange>) {
    let client = server.client();
    let before = server.connections.load(Ordering::SeqCst);
    let ex = match client.send(&get(&server.url(https, case)), &[], Body::Full, 1, T).await {
        Err(e) => return (Error(e.kind), None),
        Ok(ex) => ex,
    };
    if let Some(e) = &ex.body_error {
        assert_eq!(e.kind, TransportKind::Protocol, "{case}: {}", e.message);
        return (BadBody { status: ex.meta.status }, Some(ex));
    }
    let next = client.send(&get(&server.url(https, "ok")), &[], Body::Full, 1, T).await.unwrap();
    assert_eq!(next.meta.status, 200);
    let kept = server.connections.load(Ordering::SeqCst) - before == 1;
    let reading = Answer {
        status: ex.meta.status,
        bytes: ex.meta.body_bytes,
        complete: ex.meta.body_complete,
        length: ex.content_length,
        kept,
    };
    (reading, Some(ex))
}

#[tokio::test]
async fn rfc9112_corners_read_the_same_over_http_and_https() {
    let server = RawServer::start().await;
    let mut wrong = Vec::new();
    for (case, expected) in table() {
        for https in [false, true] {
            let (reading, ex) = read(&server, https, case).await;
            if reading != expected {
                wrong.push(format!(
                    "{case} over {}: {reading:?}, expected {expected:?}",
                    ["http", "https"][https as usize]
                ));
            }
            if case == "obsfold" {
                assert_eq!(ex.unwrap().header("x-folded"), Some("first second part"), "https: {https}");
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test]
async fn a_reused_connection_closed_or_reset_before_answering_is_sent_again() {
    let server = RawServer::start().await;
    for case in ["close_on_second", "rst_on_second"] {
        for https in [false, true] {
            let client = server.client();
            let url = server.url(https, case);
            let first = client.send(&get(&url), &[], Body::Full, 1, T).await.unwrap();
            assert_eq!(first.meta.status, 200);
            let resent = Cell::new(0);
            let second = client.send_counted(&get(&url), &[], Body::Full, 1, T, &resent).await;
            let second = second.unwrap_or_else(|e| panic!("{case} https {https}: {}", e.message));
            assert_eq!((second.meta.status, second.meta.body_bytes), (200, 1000), "{case} https {https}");
            assert_eq!(resent.get(), 1, "{case} https {https}: sent again once, on a fresh connection");
        }
    }
}
