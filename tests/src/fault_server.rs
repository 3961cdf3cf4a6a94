//! A scripted HTTP/1.1 server on loopback. The first path segment names the
//! scenario; each (method, path-and-query) has its own request counter so a
//! scenario can fail the first attempts and then succeed, and tests can
//! count what reached the server.
//!
//! Scenarios: `ok`, `slow-ok` (100 ms before answering), `reset-once`,
//! `reset-always`, `slow-headers`, `slow-body`, `fail-then-ok`,
//! `rate-limited`, `pending`, `no-head`, `no-range`, `truncated`,
//! `not-found`, `stall` (no answer for 120 s), `redirect` (302 to the same target with `&moved=1`),
//! `redirect-to/PORT/…` (302 to another loopback port), `redirect-backslash/PORT/…` (302 to a URL
//! that parsers and hand splits read as different hosts),
//! `malformed` (a head no HTTP parser takes), `bad-chunk` (a chunk size
//! `3g`), `fail-then-reset` (a 503, then a reset before any answer).
//!
//! Answers as CDNs and origins give them in public bug reports:
//! `cache-tiers` (RFC 9211 list: a shield hit, then an edge miss),
//! `cloudfront` (`X-Cache: RefreshHit from cloudfront`), `chunked` (every
//! answer chunked, HEAD without a length), `zero-head` (HEAD says
//! `Content-Length: 0`, Range tells the real total), `range-200` (Range
//! ignored: 200 with the whole length), `unknown-total` (`bytes 0-0/*`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Size of every full body the server sends.
pub const BODY_LEN: usize = 1000;

pub struct FaultServer {
    pub url: String,
    counts: Arc<Mutex<HashMap<String, u32>>>,
    connections: Arc<std::sync::atomic::AtomicU32>,
    _runtime: tokio::runtime::Runtime,
}

impl FaultServer {
    pub fn start() -> Self {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let counts = Arc::new(Mutex::new(HashMap::new()));
        let connections = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let (shared, accepted) = (counts.clone(), connections.clone());
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                accepted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(serve(stream, shared.clone()));
            }
        });
        FaultServer { url, counts, connections, _runtime: runtime }
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> u32 {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Requests seen for `method` and `target` (path and query); with
    /// `method` "HOST", requests whose Host header was `target`.
    pub fn count(&self, method: &str, target: &str) -> u32 {
        self.counts.lock().unwrap().get(&format!("{method} {target}")).copied().unwrap_or(0)
    }

    /// All counters: "METHOD target" → requests.
    pub fn counts(&self) -> HashMap<String, u32> {
        self.counts.lock().unwrap().clone()
    }

    /// Total requests with `method`.
    pub fn total(&self, method: &str) -> u32 {
        self.counts.lock().unwrap().iter().filter(|(k, _)| k.starts_with(&format!("{method} "))).map(|(_, v)| v).sum()
    }
}

async fn serve(mut stream: TcpStream, counts: Arc<Mutex<HashMap<String, u32>>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() > 64 * 1024 {
            return;
        }
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let mut lines = head.lines();
    let mut first = lines.next().unwrap_or("").split_whitespace();
    let (method, target) = (first.next().unwrap_or("").to_string(), first.next().unwrap_or("").to_string());
    let field = |name: &str| {
        head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    };
    let range = field("range");
    let n = {
        let mut c = counts.lock().unwrap();
        // Host headers are counted too, as "HOST value".
        *c.entry(format!("HOST {}", field("host").unwrap_or_default())).or_default() += 1;
        let e = c.entry(format!("{method} {target}")).or_default();
        *e += 1;
        *e
    };
    let scenario = target.trim_start_matches('/').split(['/', '?']).next().unwrap_or("").to_string();
    let body = vec![b'v'; BODY_LEN];
    let head_only = method == "HEAD";
    let full = |extra: &str| {
        format!("HTTP/1.1 200 OK\r\nContent-Length: {BODY_LEN}\r\nX-Cache: MISS\r\nConnection: close\r\n{extra}\r\n")
    };
    let simple = |status: &str, extra: &str| {
        format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n{extra}\r\n")
    };
    let chunked = || {
        let mut c = format!("{:x}\r\n", BODY_LEN).into_bytes();
        c.extend_from_slice(&body);
        c.extend_from_slice(b"\r\n0\r\n\r\n");
        c
    };
    const CHUNKED_OK: &str = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    let partial = |total: &str| {
        format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Length: 1\r\nContent-Range: bytes 0-0/{total}\r\nConnection: close\r\n\r\n"
        )
    };
    let _ = match scenario.as_str() {
        "cache-tiers" => {
            let h = full("Cache-Status: \"Shield, Inc\"; hit; ttl=3000, EdgeCDN; fwd=uri-miss; stored\r\n");
            send(&mut stream, &h, if head_only { &[] } else { &body }).await
        }
        "cloudfront" => {
            let h = full("X-Cache: RefreshHit from cloudfront\r\n").replace("X-Cache: MISS\r\n", "");
            send(&mut stream, &h, if head_only { &[] } else { &body }).await
        }
        "chunked" | "zero-head" | "range-200" | "unknown-total" if head_only => {
            let length = if scenario == "zero-head" { "Content-Length: 0\r\n" } else { "" };
            send(&mut stream, &format!("HTTP/1.1 200 OK\r\n{length}Connection: close\r\n\r\n"), &[]).await
        }
        "zero-head" if range.is_some() => send(&mut stream, &partial("5242880"), &body[..1]).await,
        "unknown-total" if range.is_some() => send(&mut stream, &partial("*"), &body[..1]).await,
        "chunked" | "zero-head" | "unknown-total" => send(&mut stream, CHUNKED_OK, &chunked()).await,
        "range-200" => send(&mut stream, &full(""), &body).await,
        "slow-ok" => {
            tokio::time::sleep(Duration::from_millis(100)).await;
            send(&mut stream, &full(""), if head_only { &[] } else { &body }).await
        }
        "reset-once" | "reset-always" if !head_only && (scenario == "reset-always" || n == 1) => {
            let _ = stream.write_all(full("").as_bytes()).await;
            let _ = stream.write_all(&body[..100]).await;
            let _ = stream.flush().await;
            // Close with RST rather than FIN.
            if let Ok(std) = stream.into_std() {
                let _ = socket2_linger_zero(&std);
            }
            Ok(())
        }
        "malformed" => send(&mut stream, "HTTP/1.1 2xx\r\n\r\n", &[]).await,
        "bad-chunk" if !head_only => send(&mut stream, CHUNKED_OK, b"3g\r\nabc\r\n0\r\n\r\n").await,
        "fail-then-reset" if n == 1 => send(&mut stream, &simple("503 Service Unavailable", ""), &[]).await,
        "fail-then-reset" => {
            if let Ok(std) = stream.into_std() {
                let _ = socket2_linger_zero(&std);
            }
            Ok(())
        }
        "stall" => {
            tokio::time::sleep(Duration::from_secs(120)).await;
            send(&mut stream, &full(""), &body).await
        }
        "slow-headers" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            send(&mut stream, &full(""), &body).await
        }
        "slow-body" if !head_only => {
            let _ = stream.write_all(full("").as_bytes()).await;
            for part in body.chunks(BODY_LEN / 10) {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if stream.write_all(part).await.is_err() {
                    return;
                }
                let _ = stream.flush().await;
            }
            Ok(())
        }
        "fail-then-ok" if n == 1 => send(&mut stream, &simple("500 Internal Server Error", ""), &[]).await,
        "rate-limited" if n == 1 => {
            send(&mut stream, &simple("429 Too Many Requests", "Retry-After: 1\r\n"), &[]).await
        }
        "pending" if n <= 2 => {
            send(&mut stream, &simple("202 Accepted", "X-Transform-Pending: true\r\nRetry-After: 0\r\n"), &[]).await
        }
        "no-head" | "no-range" if head_only => {
            send(&mut stream, &simple("405 Method Not Allowed", "Allow: GET\r\n"), &[]).await
        }
        "no-head" if range.is_some() => {
            let h = format!(
                "HTTP/1.1 206 Partial Content\r\nContent-Length: 1\r\nContent-Range: bytes 0-0/{BODY_LEN}\r\nConnection: close\r\n\r\n"
            );
            send(&mut stream, &h, &body[..1]).await
        }
        "no-head" | "no-range" => {
            // Chunked: no Content-Length to read the size from.
            let mut chunked = format!("{:x}\r\n", BODY_LEN).into_bytes();
            chunked.extend_from_slice(&body);
            chunked.extend_from_slice(b"\r\n0\r\n\r\n");
            send(&mut stream, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n", &chunked)
                .await
        }
        "truncated" if !head_only => {
            let _ = stream.write_all(full("").as_bytes()).await;
            let _ = stream.write_all(&body[..BODY_LEN / 2]).await;
            let _ = stream.shutdown().await;
            Ok(())
        }
        "not-found" => send(&mut stream, &simple("404 Not Found", ""), &[]).await,
        // `/redirect-to/PORT/rest`: 302 to `http://127.0.0.1:PORT/ok/rest`.
        "redirect-to" => {
            let rest = target.trim_start_matches("/redirect-to/");
            let (port, rest) = rest.split_once('/').unwrap_or((rest, ""));
            let location = format!("Location: http://127.0.0.1:{port}/ok/{rest}\r\n");
            send(&mut stream, &simple("302 Found", &location), &[]).await
        }
        // `/redirect-backslash/PORT/rest`: 302 to `http://SELF\@127.0.0.1:PORT/ok/rest`, which a
        // URL parser reads as this server and a hand split as 127.0.0.1:PORT (issue 19).
        "redirect-backslash" => {
            let rest = target.trim_start_matches("/redirect-backslash/");
            let (port, rest) = rest.split_once('/').unwrap_or((rest, ""));
            let own = field("host").unwrap_or_default();
            let location = format!("Location: http://{own}\\@127.0.0.1:{port}/ok/{rest}\r\n");
            send(&mut stream, &simple("302 Found", &location), &[]).await
        }
        "redirect" if !target.contains("moved=1") => {
            let location = format!("Location: {target}&moved=1\r\n");
            send(&mut stream, &simple("302 Found", &location), &[]).await
        }
        _ => send(&mut stream, &full(""), if head_only { &[] } else { &body }).await,
    };
}

async fn send(stream: &mut TcpStream, head: &str, body: &[u8]) -> std::io::Result<()> {
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.flush().await?;
    stream.shutdown().await
}

/// Abort the connection: SO_LINGER 0 makes the close send RST.
fn socket2_linger_zero(stream: &std::net::TcpStream) -> std::io::Result<()> {
    let sock = socket2::SockRef::from(stream);
    sock.set_linger(Some(Duration::ZERO))
}
