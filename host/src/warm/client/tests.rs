//! The client against real sockets: in-process servers for the faults a
//! real server will not make on demand (split heads, byte-by-byte chunks,
//! short bodies, stalls, closed idle connections), and nginx for keep-alive
//! and TLS (HTTP/1.1 and HTTP/2 by ALPN, with a CA made by openssl).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::warm::http::{Body, Timeouts, TransportKind};

/// A loopback server: every accepted connection runs `serve`; requests'
/// heads and the count of connections are recorded.
struct Server {
    addr: SocketAddr,
    connections: Arc<AtomicU32>,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Server {
    async fn start<F, Fut>(serve: F) -> Server
    where
        F: Fn(Conn) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicU32::new(0));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let (c, h) = (connections.clone(), heads.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let index = c.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(Conn { stream, buf: Vec::new(), index, heads: h.clone() }));
            }
        });
        Server { addr, connections, heads }
    }

    /// A keep-alive server answering every request with `answer(head)`.
    async fn answering(answer: fn(&str) -> Vec<u8>) -> Server {
        Server::start(move |mut conn| async move {
            while let Some(head) = conn.request().await {
                if conn.stream.write_all(&answer(&head)).await.is_err() {
                    return;
                }
            }
        })
        .await
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn connections(&self) -> u32 {
        self.connections.load(Ordering::SeqCst)
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

/// The server's side of one connection.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    #[allow(dead_code)]
    index: u32,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Conn {
    /// The next request head, or `None` when the client closed.
    async fn request(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                self.buf.drain(..end + 4);
                self.heads.lock().unwrap().push(head.clone());
                return Some(head);
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Write `bytes` one at a time, each in its own segment.
    async fn trickle(&mut self, bytes: &[u8]) {
        self.stream.set_nodelay(true).unwrap();
        for b in bytes {
            self.stream.write_all(&[*b]).await.unwrap();
            self.stream.flush().await.unwrap();
            // Lets the client read each byte on its own; not a race guard.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

fn ok(body: &str) -> Vec<u8> {
    format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nx-test: yes\r\n\r\n{body}", body.len()).into_bytes()
}

fn client() -> Client {
    client_with(Vec::new())
}

fn client_with(connect_to: Vec<ConnectTo>) -> Client {
    Client::new(Arc::new(ClientConfig::new(connect_to, None).unwrap()))
}

fn get(url: &str) -> WarmRequest {
    WarmRequest { url: url.to_string(), method: Method::Get, headers: Vec::new(), read_body: true }
}

const T: Timeouts = Timeouts { headers: Duration::from_secs(5), total: Duration::from_secs(10) };

#[tokio::test]
async fn keep_alive_reuses_one_connection() {
    let server = Server::answering(|_| ok("hello")).await;
    let client = client();
    for _ in 0..5 {
        let ex = client.send(&get(&server.url("/a?x=1")), &[], Body::Full, 1, T).await.unwrap();
        assert_eq!((ex.meta.status, ex.meta.body_bytes, ex.meta.body_complete), (200, 5, true));
        assert_eq!(ex.header("x-test"), Some("yes"));
        assert_eq!(ex.content_length, Some(5));
        assert!(ex.edge.is_none());
    }
    assert_eq!(server.connections(), 1);
    let head = &server.heads()[0];
    assert!(head.starts_with("GET /a?x=1 HTTP/1.1\r\n"), "{head}");
    assert!(head.contains(&format!("host: {}\r\n", server.addr)), "{head}");
    assert!(head.contains(concat!("user-agent: prewarm/", env!("CARGO_PKG_VERSION"))), "{head}");

    // Many tasks at once share the pool: never more connections than tasks.
    let client = Rc::new(client);
    let tasks = tokio::task::LocalSet::new();
    for _ in 0..8 {
        let (client, url) = (client.clone(), server.url("/b"));
        tasks.spawn_local(async move {
            for _ in 0..5 {
                let ex = client.send(&get(&url), &[], Body::Full, 1, T).await.unwrap();
                assert!(ex.meta.body_complete);
            }
        });
    }
    tasks.await;
    assert!(server.connections() <= 9, "{} connections", server.connections());
    assert_eq!(server.heads().len(), 45);
}

#[tokio::test]
async fn chunked_body_byte_by_byte_and_head_split() {
    let server = Server::start(|mut conn| async move {
        while conn.request().await.is_some() {
            conn.trickle(
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4;ext=1\r\nabcd\r\n10\r\n0123456789abcdef\r\n0\r\nx-t: 1\r\n\r\n",
            )
            .await;
        }
    })
    .await;
    let client = client();
    for _ in 0..2 {
        let ex = client.send(&get(&server.url("/c")), &[], Body::Full, 3, T).await.unwrap();
        assert_eq!((ex.meta.body_bytes, ex.meta.body_complete, ex.meta.attempt), (20, true, 3));
        assert_eq!(ex.content_length, None);
        assert!(ex.body_error.is_none());
    }
    // The chunked body was read to its end, so the connection was reused.
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn short_body_is_incomplete() {
    let server = Server::start(|mut conn| async move {
        conn.request().await;
        let _ = conn.stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789").await;
    })
    .await;
    let ex = client().send(&get(&server.url("/")), &[], Body::Full, 1, T).await.unwrap();
    assert_eq!((ex.meta.body_bytes, ex.meta.body_complete), (10, false));
    let error = ex.body_error.unwrap();
    assert_eq!(error.kind, TransportKind::Connection);
    assert_eq!(error.message, "connection closed before the body was complete");
}

#[tokio::test]
async fn stale_idle_connection_is_replaced_once() {
    // Answers one request per connection, then closes without saying so.
    let server = Server::start(|mut conn| async move {
        if conn.request().await.is_some() {
            let _ = conn.stream.write_all(&ok("one")).await;
        }
    })
    .await;
    let client = client();
    for _ in 0..3 {
        let ex = client.send(&get(&server.url("/s")), &[], Body::Full, 1, T).await.unwrap();
        assert_eq!((ex.meta.status, ex.meta.body_bytes), (200, 3));
    }
    assert_eq!(server.connections(), 3);
}

#[tokio::test]
async fn stale_connection_found_by_the_read_is_retried() {
    // The server keeps the first connection open but answers its second
    // request by closing it: the client only learns at the read.
    let server = Server::start(|mut conn| async move {
        if conn.request().await.is_some() {
            let _ = conn.stream.write_all(&ok("one")).await;
        }
        if conn.index == 0 {
            conn.request().await;
            return;
        }
        while conn.request().await.is_some() {
            let _ = conn.stream.write_all(&ok("two")).await;
        }
    })
    .await;
    let client = client();
    client.send(&get(&server.url("/1")), &[], Body::Full, 1, T).await.unwrap();
    let ex = client.send(&get(&server.url("/2")), &[], Body::Full, 1, T).await.unwrap();
    assert_eq!((ex.meta.status, ex.meta.body_bytes), (200, 3));
    assert_eq!(server.connections(), 2);
    assert_eq!(server.heads().len(), 3);
}

#[tokio::test]
async fn header_timeout_and_total_timeout() {
    let silent = Server::start(|mut conn| async move {
        conn.request().await;
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
    .await;
    let short = Timeouts { headers: Duration::from_millis(200), total: Duration::from_secs(5) };
    let e = client().send(&get(&silent.url("/")), &[], Body::Full, 1, short).await.unwrap_err();
    assert_eq!(e.kind, TransportKind::Timeout);
    assert_eq!(e.message, "no response headers within 200ms");

    let stalling = Server::start(|mut conn| async move {
        conn.request().await;
        let _ = conn.stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n0123456789").await;
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
    .await;
    let short = Timeouts { headers: Duration::from_secs(5), total: Duration::from_millis(300) };
    let ex = client().send(&get(&stalling.url("/")), &[], Body::Full, 1, short).await.unwrap();
    assert_eq!((ex.meta.status, ex.meta.body_bytes, ex.meta.body_complete), (200, 10, false));
    let error = ex.body_error.unwrap();
    assert_eq!((error.kind, error.message.as_str()), (TransportKind::Timeout, "no complete body within 300ms"));
    assert!(ex.total >= Duration::from_millis(300));
}

#[tokio::test]
async fn responses_without_bodies() {
    let server = Server::answering(|head| {
        let answer = if head.starts_with("HEAD") {
            "HTTP/1.1 200 OK\r\ncontent-length: 12345\r\n\r\n"
        } else if head.contains("/304") {
            "HTTP/1.1 304 Not Modified\r\ncontent-length: 500\r\n\r\n"
        } else if head.contains("/100") {
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"
        } else {
            "HTTP/1.1 204 No Content\r\n\r\n"
        };
        answer.as_bytes().to_vec()
    })
    .await;
    let client = client();
    let head = WarmRequest { method: Method::Head, ..get(&server.url("/h")) };
    let ex = client.send(&head, &[], Body::Full, 1, T).await.unwrap();
    assert_eq!(
        (ex.meta.status, ex.content_length, ex.meta.body_bytes, ex.meta.body_complete),
        (200, Some(12345), 0, true)
    );
    assert!(server.heads()[0].starts_with("HEAD /h HTTP/1.1"));
    for (path, status) in [("/304", 304), ("/204", 204), ("/100", 204)] {
        let ex = client.send(&get(&server.url(path)), &[], Body::Full, 1, T).await.unwrap();
        assert_eq!((ex.meta.status, ex.meta.body_bytes, ex.meta.body_complete), (status, 0, true), "{path}");
    }
    // None of them had a body to wait for: one connection served all.
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn connection_close_is_not_reused() {
    let server =
        Server::answering(|_| b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok".to_vec()).await;
    let client = client();
    for _ in 0..3 {
        let ex = client.send(&get(&server.url("/")), &[], Body::Full, 1, T).await.unwrap();
        assert!(ex.meta.body_complete);
    }
    assert_eq!(server.connections(), 3);
}

#[tokio::test]
async fn range_probe_reads_at_most_and_only_a_206() {
    let server = Server::answering(|head| {
        if head.contains("range: bytes=0-0") {
            b"HTTP/1.1 206 Partial Content\r\ncontent-range: bytes 0-0/5000\r\ncontent-length: 1\r\n\r\nX".to_vec()
        } else {
            ok(&"y".repeat(5000))
        }
    })
    .await;
    let client = client();
    let ex = client.send(&get(&server.url("/r")), &[("range", "bytes=0-0")], Body::AtMost(1), 1, T).await.unwrap();
    assert_eq!((ex.meta.status, ex.meta.body_bytes, ex.meta.body_complete), (206, 1, true));
    assert_eq!(ex.header("content-range"), Some("bytes 0-0/5000"));
    // A server that ignores Range: its body is not read, and the
    // connection it is still on is not reused.
    let ex = client.send(&get(&server.url("/r2")), &[], Body::AtMost(1), 1, T).await.unwrap();
    assert_eq!((ex.meta.status, ex.meta.body_bytes, ex.content_length), (200, 0, Some(5000)));
    let ex = client.send(&get(&server.url("/r3")), &[], Body::None, 1, T).await.unwrap();
    assert_eq!((ex.meta.status, ex.meta.body_bytes), (200, 0));
    assert_eq!(server.connections(), 2);
}

#[tokio::test]
async fn body_to_end_of_connection() {
    let server = Server::start(|mut conn| async move {
        conn.request().await;
        let _ = conn.stream.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await;
        let _ = conn.stream.write_all(&[7u8; 70_000]).await;
    })
    .await;
    let client = client();
    let ex = client.send(&get(&server.url("/")), &[], Body::Full, 1, T).await.unwrap();
    assert_eq!((ex.meta.body_bytes, ex.meta.body_complete, ex.content_length), (70_000, true, None));
    client.send(&get(&server.url("/")), &[], Body::Full, 1, T).await.unwrap();
    assert_eq!(server.connections(), 2);
}

#[tokio::test]
async fn bad_input_and_bad_answers() {
    let client = client();
    let mut request = get("http://127.0.0.1:9/");
    request.headers.push(("x-evil".into(), "a\r\nhost: other".into()));
    let e = client.send(&request, &[], Body::Full, 1, T).await.unwrap_err();
    assert_eq!((e.kind, e.message.as_str()), (TransportKind::Other, "invalid request header `x-evil`"));
    let e = client.send(&get("ftp://h/x"), &[], Body::Full, 1, T).await.unwrap_err();
    assert_eq!(e.kind, TransportKind::Other);

    // Nothing listens on a just-released port.
    let port = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let e = client.send(&get(&format!("http://127.0.0.1:{port}/")), &[], Body::Full, 1, T).await.unwrap_err();
    assert_eq!(e.kind, TransportKind::Connection);
    assert!(e.message.contains("refused"), "{}", e.message);

    let junk = Server::answering(|_| b"HTTP/1.1 2xx\r\n\r\n".to_vec()).await;
    let e = client.send(&get(&junk.url("/")), &[], Body::Full, 1, T).await.unwrap_err();
    assert_eq!((e.kind, e.message.as_str()), (TransportKind::Protocol, "malformed response head"));
    let junk = Server::answering(|_| b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n".to_vec()).await;
    let ex = client.send(&get(&junk.url("/")), &[], Body::Full, 1, T).await.unwrap();
    assert!(!ex.meta.body_complete);
    assert_eq!(ex.body_error.unwrap().message, "malformed chunked body");
}

#[tokio::test]
async fn connect_to_reaches_the_mapped_server_with_the_original_host() {
    let named = Server::answering(|_| ok("named")).await;
    let edge = Server::answering(|_| ok("edge!")).await;
    let rule: ConnectTo = format!("cdn.example.test:80:127.0.0.1:{}", edge.addr.port()).parse().unwrap();
    let rule2: ConnectTo = format!("127.0.0.1:{}:127.0.0.1:{}", named.addr.port(), edge.addr.port()).parse().unwrap();
    let client = client_with(vec![rule, rule2]);
    let ex = client.send(&get("http://cdn.example.test/v.mp4"), &[], Body::Full, 1, T).await.unwrap();
    assert_eq!(ex.meta.body_bytes, 5);
    assert_eq!(ex.edge.as_deref(), Some(edge.addr.to_string().as_str()));
    let ex = client.send(&get(&named.url("/w.mp4")), &[], Body::Full, 1, T).await.unwrap();
    assert_eq!(ex.edge.as_deref(), Some(edge.addr.to_string().as_str()));
    assert_eq!(named.connections(), 0);
    let heads = edge.heads();
    assert!(heads[0].contains("host: cdn.example.test\r\n"), "{}", heads[0]);
    assert!(heads[1].contains(&format!("host: {}\r\n", named.addr)), "{}", heads[1]);
}

#[tokio::test]
async fn idna_host_userinfo_and_plugin_headers() {
    let edge = Server::answering(|_| ok("x")).await;
    let rule: ConnectTo = format!("xn--bcher-kva.example:8080:127.0.0.1:{}", edge.addr.port()).parse().unwrap();
    let client = client_with(vec![rule]);
    let mut request = get("http://us%40r:p%3Ass@B\u{fc}cher.example:8080/a b/\u{e9}.mp4?q=\"1\"#frag");
    request.headers.push(("X-Token".into(), "t".into()));
    request.headers.push(("User-Agent".into(), "custom/1".into()));
    let ex = client.send(&request, &[("range", "bytes=0-0")], Body::Full, 1, T).await.unwrap();
    assert_eq!(ex.meta.status, 200);
    let head = &edge.heads()[0];
    assert!(head.starts_with("GET /a%20b/%C3%A9.mp4?q=%221%22 HTTP/1.1\r\n"), "{head}");
    assert!(head.contains("host: xn--bcher-kva.example:8080\r\n"), "{head}");
    // Basic credentials from the URL's userinfo, percent-decoded: us@r:p:ss.
    assert!(head.contains("authorization: Basic dXNAcjpwOnNz\r\n"), "{head}");
    assert!(head.ends_with("X-Token: t\r\nUser-Agent: custom/1\r\nrange: bytes=0-0"), "{head}");
    assert!(!head.contains("prewarm/"), "the plugin's User-Agent replaces ours: {head}");
}

#[tokio::test]
async fn the_send_future_stays_small() {
    let client = client();
    let request = get("http://127.0.0.1:9/");
    let future = client.send(&request, &[], Body::Full, 1, T);
    let size = std::mem::size_of_val(&future);
    println!("send future: {size} bytes");
    assert!(size <= 2048, "send future is {size} bytes");
}
