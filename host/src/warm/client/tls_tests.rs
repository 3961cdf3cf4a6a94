//! The client against a real nginx: plain keep-alive, and https with a test
//! CA made by openssl (HTTP/1.1 pooled, HTTP/2 by ALPN shared), trusted
//! through `--ca-file`'s path, and `--connect-to` keeping the TLS name.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use super::{Client, ClientConfig, ConnectTo};
use crate::plugin::{Method, WarmRequest};
use crate::util::lab::{find_program, free_port, wait_for_port};
use crate::warm::http::{Body, Exchange, Timeouts, TransportKind};

const T: Timeouts = Timeouts { headers: Duration::from_secs(5), total: Duration::from_secs(10) };

/// nginx with a plain port, an HTTP/1.1 TLS port and an HTTP/2 TLS port,
/// each answer naming its protocol and connection serial.
pub(super) struct Nginx {
    child: Child,
    pub plain: u16,
    tls: u16,
    h2: u16,
    _dir: tempfile::TempDir,
    ca: std::path::PathBuf,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA and a server certificate for localhost and 127.0.0.1.
pub(super) fn make_certs(dir: &Path) {
    crate::util::lab::make_pki(dir, "DNS:localhost,IP:127.0.0.1").expect("test certificates");
}

/// The echo module (Debian's libnginx-mod-http-echo), for answers after a
/// delay: `/slow` answers after 1 s when it is there.
const ECHO_MODULE: &str = "/usr/lib/nginx/modules/ngx_http_echo_module.so";

pub(super) fn start_nginx() -> Nginx {
    let nginx = find_program("nginx").expect("nginx is installed (scripts/setup)");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    make_certs(dir.path());
    let (plain, tls, h2) = (free_port().unwrap(), free_port().unwrap(), free_port().unwrap());
    let location = r#"location / {
            add_header X-Proto $server_protocol always;
            add_header X-Conn $connection always;
            return 200 "hello nginx\n";
        }
        location /file/ { alias DIR/files/; }
        SLOW"#;
    let (echo, slow) = match Path::new(ECHO_MODULE).exists() {
        true => (format!("load_module {ECHO_MODULE};"), "location /slow { echo_sleep 1; echo ok; }"),
        false => (String::new(), ""),
    };
    let location = location.replace("DIR", &d).replace("SLOW", slow);
    std::fs::create_dir_all(dir.path().join("files")).unwrap();
    std::fs::write(dir.path().join("files/10k.bin"), vec![b'v'; 10 * 1024]).unwrap();
    let certs = format!("ssl_certificate {d}/server.pem; ssl_certificate_key {d}/server.key;");
    let conf = format!(
        r#"{echo}
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 16384; }}
worker_rlimit_nofile 16384;
http {{
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{ listen 127.0.0.1:{plain}; {location} }}
    server {{ listen 127.0.0.1:{tls} ssl; {certs} {location} }}
    server {{ listen 127.0.0.1:{h2} ssl http2; {certs} {location} }}
}}
"#
    );
    std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
    let mut child = Command::new(nginx)
        .arg("-c")
        .arg(dir.path().join("nginx.conf"))
        .arg("-p")
        .arg(dir.path())
        .arg("-e")
        .arg(dir.path().join("error.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for port in [plain, tls, h2] {
        wait_for_port(port, &mut child, "nginx").unwrap();
    }
    let ca = dir.path().join("ca.pem");
    Nginx { child, plain, tls, h2, _dir: dir, ca }
}

fn get(url: &str) -> WarmRequest {
    WarmRequest { url: url.to_string(), method: Method::Get, headers: Vec::new(), read_body: true }
}

fn trusting(nginx: &Nginx, connect_to: Vec<ConnectTo>) -> Client {
    Client::new(Arc::new(ClientConfig::new(connect_to, Some(&nginx.ca)).unwrap()))
}

fn conn_and_proto(ex: &Exchange) -> (String, String) {
    (ex.header("x-conn").unwrap_or("").to_string(), ex.header("x-proto").unwrap_or("").to_string())
}

#[tokio::test]
async fn nginx_plain_and_tls_http1_keep_alive() {
    let nginx = start_nginx();
    let client = trusting(&nginx, Vec::new());
    for url in [format!("http://127.0.0.1:{}/a", nginx.plain), format!("https://localhost:{}/a", nginx.tls)] {
        let mut seen = Vec::new();
        for _ in 0..5 {
            let ex = client.send(&get(&url), &[], Body::Full, 1, T).await.unwrap();
            assert_eq!((ex.meta.status, ex.meta.body_bytes, ex.meta.body_complete), (200, 12, true), "{url}");
            seen.push(conn_and_proto(&ex));
        }
        assert_eq!(seen[0].1, "HTTP/1.1", "{url}");
        assert!(seen.iter().all(|s| *s == seen[0]), "{url}: one connection expected, got {seen:?}");
    }
    // HEAD over TLS: no body awaited, connection kept.
    let head = WarmRequest { method: Method::Head, ..get(&format!("https://localhost:{}/a", nginx.tls)) };
    let ex = client.send(&head, &[], Body::Full, 1, T).await.unwrap();
    assert_eq!((ex.meta.status, ex.meta.body_bytes, ex.content_length), (200, 0, Some(12)));
}

#[tokio::test]
async fn nginx_http2_by_alpn_shares_one_connection() {
    let nginx = start_nginx();
    let client = Rc::new(trusting(&nginx, Vec::new()));
    let url = format!("https://127.0.0.1:{}/v.mp4", nginx.h2);
    let seen = Rc::new(std::cell::RefCell::new(Vec::new()));
    let tasks = tokio::task::LocalSet::new();
    for _ in 0..20 {
        let (client, url, seen) = (client.clone(), url.clone(), seen.clone());
        tasks.spawn_local(async move {
            let ex = client.send(&get(&url), &[], Body::Full, 1, T).await.unwrap();
            assert_eq!((ex.meta.status, ex.meta.body_bytes, ex.meta.body_complete), (200, 12, true));
            seen.borrow_mut().push(conn_and_proto(&ex));
        });
    }
    tasks.await;
    let seen = seen.take();
    assert_eq!(seen.len(), 20);
    assert_eq!(seen[0].1, "HTTP/2.0");
    assert!(seen.iter().all(|s| *s == seen[0]), "one HTTP/2 connection expected, got {seen:?}");

    // More requests at once than one connection should carry: more
    // connections, each under the cap.
    let many = 2 * super::h2::STREAMS_PER_CONNECTION + 50;
    let seen = Rc::new(std::cell::RefCell::new(Vec::new()));
    let tasks = tokio::task::LocalSet::new();
    for _ in 0..many {
        let (client, url, seen) = (client.clone(), url.clone(), seen.clone());
        tasks.spawn_local(async move {
            let ex = client.send(&get(&url), &[], Body::Full, 1, T).await.unwrap();
            assert_eq!(ex.meta.status, 200);
            seen.borrow_mut().push(conn_and_proto(&ex));
        });
    }
    tasks.await;
    let connections: std::collections::BTreeSet<_> = seen.borrow().iter().map(|s| s.0.clone()).collect();
    assert!((2..=4).contains(&connections.len()), "{many} requests went over {connections:?}");
}

#[tokio::test]
async fn tls_trust_and_connect_to_keep_the_server_name() {
    let nginx = start_nginx();
    // Without the test CA the certificate is refused.
    let untrusting = Client::new(Arc::new(ClientConfig::new(Vec::new(), None).unwrap()));
    let e =
        untrusting.send(&get(&format!("https://localhost:{}/", nginx.tls)), &[], Body::Full, 1, T).await.unwrap_err();
    assert_eq!(e.kind, TransportKind::Connection);
    assert!(e.message.contains("certificate"), "{}", e.message);

    // A port where nothing listens, routed to nginx: the certificate is
    // checked against the URL's name, and the edge is recorded.
    let nowhere = free_port().unwrap();
    for port in [nginx.tls, nginx.h2] {
        let rule: ConnectTo = format!("localhost:{nowhere}:127.0.0.1:{port}").parse().unwrap();
        let client = trusting(&nginx, vec![rule]);
        let ex = client.send(&get(&format!("https://localhost:{nowhere}/x")), &[], Body::Full, 1, T).await.unwrap();
        assert_eq!(ex.meta.status, 200);
        assert_eq!(ex.edge, Some(format!("127.0.0.1:{port}")));
    }
}

#[test]
fn a_bad_ca_file_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    for path in [empty, dir.path().join("missing.pem")] {
        let e = ClientConfig::new(Vec::new(), Some(&path)).err().unwrap().to_string();
        assert!(e.starts_with(&format!("--ca-file {}: ", path.display())) && !e.contains('\n'), "{e}");
    }
}
