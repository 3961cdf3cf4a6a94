//! A loopback server answering as two CDNs document themselves, for the
//! vendor suite: Cloudflare Media Transformations under `/cdn-cgi/media/`
//! (developers.cloudflare.com/stream/transform-videos/ and its
//! troubleshooting page) and the video-resizer Worker everywhere else
//! (erfianugrah/video-resizer-2 `docs/api.md` and `src/handlers/transform.ts`,
//! v1's fallback and cache headers).
//!
//! The directory holding the object names the scenario (`.../<scenario>/<file>`).
//! Cloudflare: `ok`, `source` (the untransformed source), `chunked-source`
//! (the same without a Content-Length), `err-NNNN` (`Cf-Resized: err=NNNN`
//! every time), `err-NNNN-once` (then `ok`). The Worker: `ok` (resolves the
//! derivative as the Worker does: unknown names fall back to desktop,
//! `imwidth` maps by breakpoints), `pending` (one documented 202 first),
//! `pending-3` (three 202s with `Retry-After: 1`), `missing` (the Worker's
//! JSON 502), `edge-502` (Cloudflare's HTML 502), `v1-fallback`, `v1-hit`,
//! `passthrough-stored`, `not-stored`. Every request is counted by
//! "METHOD target" so tests can check the exact URL that arrived.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Size of every source in the vendor suite's listings.
pub const SOURCE_LEN: usize = 5000;
/// Size of every transformed answer.
pub const DERIVATIVE_LEN: usize = 1000;

type Counts = Arc<Mutex<HashMap<String, u32>>>;

pub struct VendorServer {
    pub url: String,
    counts: Counts,
    _runtime: tokio::runtime::Runtime,
}

impl VendorServer {
    pub fn start() -> Self {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let counts: Counts = Arc::default();
        let shared = counts.clone();
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, shared.clone()));
            }
        });
        VendorServer { url, counts, _runtime: runtime }
    }

    /// Requests seen for `method` and `target` (path and query).
    pub fn count(&self, method: &str, target: &str) -> u32 {
        self.counts.lock().unwrap().get(&format!("{method} {target}")).copied().unwrap_or(0)
    }

    /// Every "METHOD target" seen, sorted.
    pub fn targets(&self) -> Vec<String> {
        let mut all: Vec<String> = self.counts.lock().unwrap().keys().cloned().collect();
        all.sort();
        all
    }
}

/// One answer: status line, headers, body.
struct Answer {
    status: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    chunked: bool,
}

impl Answer {
    fn new(status: &'static str, len: usize) -> Self {
        Answer { status, headers: Vec::new(), body: vec![b'v'; len], chunked: false }
    }

    /// Set a header, replacing one of the same name.
    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.headers.push((name, value.into()));
        self
    }

    fn text(status: &'static str, content_type: &str, body: &str) -> Self {
        Answer { status, headers: vec![("Content-Type", content_type.into())], body: body.into(), chunked: false }
    }
}

async fn serve(mut stream: TcpStream, counts: Counts) {
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
    let mut first = head.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (first.next().unwrap_or("").to_string(), first.next().unwrap_or("").to_string());
    let n = {
        let mut c = counts.lock().unwrap();
        let e = c.entry(format!("{method} {target}")).or_default();
        *e += 1;
        *e
    };
    let answer = match target.strip_prefix("/cdn-cgi/media/") {
        Some(rest) => cloudflare(rest, n),
        None => worker(&target, n),
    };
    let _ = send(&mut stream, answer, method == "HEAD").await;
}

/// The directory name just above the file: the scenario.
fn scenario(path: &str) -> &str {
    let path = path.split('?').next().unwrap_or(path);
    path.rsplit('/').nth(1).unwrap_or("")
}

/// Media Transformations: `<options>/<source>`. The HTTP status that goes
/// with each error code is not documented; these are plausible ones, and
/// the plugin must read the code, not the status.
fn cloudflare(rest: &str, n: u32) -> Answer {
    let source = rest.split_once('/').map(|(_, s)| s).unwrap_or("");
    let sc = scenario(source);
    let code = sc.strip_prefix("err-").map(|c| c.trim_end_matches("-once"));
    match (sc, code) {
        (_, Some(code)) if !(sc.ends_with("-once") && n > 1) => {
            let status = match code {
                "9404" => "404 Not Found",
                "9408" => "403 Forbidden",
                "9504" | "9509" => "502 Bad Gateway",
                "9517" | "9523" => "500 Internal Server Error",
                _ => "415 Unsupported Media Type",
            };
            Answer::text(status, "text/plain", "ERROR 9xxx: see Cf-Resized").header("Cf-Resized", format!("err={code}"))
        }
        ("source", _) => Answer::new("200 OK", SOURCE_LEN).header("cf-cache-status", "MISS"),
        ("chunked-source", _) => {
            let mut a = Answer::new("200 OK", SOURCE_LEN).header("cf-cache-status", "MISS");
            a.chunked = true;
            a
        }
        _ => Answer::new("200 OK", DERIVATIVE_LEN)
            .header("Content-Type", "video/mp4")
            .header("cf-cache-status", "MISS")
            .header("Cf-Resized", "internal=ok/- q=0"),
    }
}

/// The Worker's derivatives and breakpoints (`config/worker-config.json`).
fn resolve(query: &str) -> (&'static str, u32, u32) {
    let param = |key: &str| query.split('&').find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='));
    let table = [("desktop", 1920, 1080), ("tablet", 1280, 720), ("mobile", 854, 640), ("thumbnail", 640, 360)];
    if let Some(name) = param("derivative") {
        return table.iter().find(|(n, ..)| *n == name).copied().unwrap_or(table[0]);
    }
    match param("imwidth").and_then(|w| w.parse::<u32>().ok()) {
        Some(w) if w <= 854 => table[2],
        Some(w) if w <= 1280 => table[1],
        _ => table[0],
    }
}

fn worker(target: &str, n: u32) -> Answer {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let (derivative, width, height) = resolve(query);
    let served = |len: usize, source: &str| {
        Answer::new("200 OK", len)
            .header("Content-Type", "video/mp4")
            .header("Via", "video-resizer")
            .header("X-Derivative", derivative)
            .header("X-Resolved-Width", width.to_string())
            .header("X-Resolved-Height", height.to_string())
            .header("X-Transform-Source", source)
            .header("X-R2-Stored", "true")
            // cache.put then cache.match: HIT on the very request that transformed.
            .header("cf-cache-status", "HIT")
    };
    let pending = |retry_after: &str| {
        let job = format!("video:{}:w={width}", path.trim_start_matches('/'));
        Answer::text("202 Accepted", "application/json", &format!(r#"{{"status":"queued","jobId":"{job}"}}"#))
            .header("Retry-After", retry_after)
            .header("X-Transform-Pending", "true")
            .header("X-Job-Id", job)
    };
    match scenario(path) {
        "pending" if n == 1 => pending("10"),
        "pending-3" if n <= 3 => pending("1"),
        "pending" | "pending-3" => served(DERIVATIVE_LEN, "container"),
        "missing" => Answer::text(
            "502 Bad Gateway",
            "application/json",
            r#"{"error":{"code":"ALL_SOURCES_FAILED","message":"All sources failed for origin 'videos'"}}"#,
        ),
        "edge-502" => Answer::text("502 Bad Gateway", "text/html", "<html><body>502 Bad gateway</body></html>"),
        // v1 serves the original when the transform fails; the headers, not
        // the byte count, say so here.
        "v1-fallback" => Answer::new("200 OK", DERIVATIVE_LEN)
            .header("X-Fallback-Applied", "true")
            .header("X-Video-Too-Large", "true"),
        "v1-hit" => Answer::new("200 OK", DERIVATIVE_LEN)
            .header("X-Cache-Status", "HIT")
            .header("X-Video-Derivative", derivative)
            .header("cf-cache-status", "DYNAMIC"),
        "passthrough-stored" => served(SOURCE_LEN, "passthrough"),
        "not-stored" => served(DERIVATIVE_LEN, "cdn-cgi").header("X-R2-Stored", "false"),
        _ => served(DERIVATIVE_LEN, "cdn-cgi"),
    }
}

async fn send(stream: &mut TcpStream, a: Answer, head_only: bool) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {}\r\nConnection: close\r\n", a.status);
    for (k, v) in &a.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let mut body = a.body;
    if a.chunked {
        head.push_str("Transfer-Encoding: chunked\r\n");
        let mut chunked = format!("{:x}\r\n", body.len()).into_bytes();
        chunked.extend_from_slice(&body);
        chunked.extend_from_slice(b"\r\n0\r\n\r\n");
        body = chunked;
    } else {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    if !head_only {
        stream.write_all(&body).await?;
    }
    stream.flush().await?;
    stream.shutdown().await
}
