//! The transport against real servers where they differ: lighttpd over
//! HTTP/2 (8 streams announced in its first SETTINGS, 10 requests a
//! connection) at concurrency 200, stock nginx over HTTP/2 (a GOAWAY every
//! 1000 streams) at `--retries 0`, and stock Varnish (hits told only by
//! `X-Varnish` and `Age`) read by `--verify`. Every pair a server answered
//! must be warm on its first attempt.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use prewarm::util::lab::{find_program, free_port, make_pki, run_nginx, wait_for_port};
use prewarm_e2e::{prewarm, read_results, run, write_listing};
use serde_json::Value;

/// A child server killed at drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `n` objects of a few KiB under `www` and their listing entries.
fn objects(www: &Path, n: usize) -> Vec<(String, u64)> {
    (0..n)
        .map(|i| {
            let path = format!("d{:02}/v{i:05}.mp4", i % 30);
            let size = 2000 + (i * 7919) % 20_000;
            std::fs::create_dir_all(www.join(&path).parent().unwrap()).unwrap();
            std::fs::write(www.join(&path), vec![b'v'; size]).unwrap();
            (path, size as u64)
        })
        .collect()
}

/// Warm the objects at `base` (three derivatives each) and return the
/// records.
fn warm(home: &Path, base: &str, objects: &[(String, u64)], flags: &[&str]) -> Vec<Value> {
    let listing = home.join("listing.json");
    let borrowed: Vec<(&str, u64)> = objects.iter().map(|(p, s)| (p.as_str(), *s)).collect();
    write_listing(&listing, &borrowed);
    let results = home.join("results.jsonl");
    let out = run(prewarm(home)
        .args(["warm", "--plugin", "template", "--base-url", base, "--set", "url={base}/{path}?d={derivative}"])
        .args(["--derivatives", "desktop,tablet,mobile", "--progress", "never", "--listing"])
        .arg(&listing)
        .arg("--results")
        .arg(&results)
        .args(flags));
    let records = read_results(&results);
    assert_eq!(records.len(), objects.len() * 3, "one record per pair; exit {:?}", out.status);
    records
}

/// Each record warm on its first attempt; the pairs sent again.
fn all_warm_first_time(records: &[Value]) -> u64 {
    let late: Vec<&Value> = records.iter().filter(|r| r["outcome"] != "warm" || r["attempts"] != 1).collect();
    assert!(late.is_empty(), "{} pairs not warm at once, e.g. {}", late.len(), late[0]);
    records.iter().map(|r| r["resent"].as_u64().unwrap()).sum()
}

fn program(name: &str) -> PathBuf {
    find_program(name).unwrap_or_else(|| panic!("{name} is installed (scripts/setup)"))
}

#[test]
fn lighttpd_http2_at_concurrency_200_waits_for_its_settings() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make_pki(d, "DNS:localhost,IP:127.0.0.1").unwrap();
    let www = d.join("www");
    let objects = objects(&www, 200);
    let (plain, tls) = (free_port().unwrap(), free_port().unwrap());
    let conf = format!(
        r#"server.modules = ("mod_openssl")
server.document-root = "{www}"
server.bind = "127.0.0.1"
server.port = {plain}
server.errorlog = "{d}/lighttpd.err"
server.max-keep-alive-requests = 10
server.max-keep-alive-idle = 2
server.max-connections = 2048
$SERVER["socket"] == "127.0.0.1:{tls}" {{
  ssl.engine = "enable"
  ssl.pemfile = "{d}/server.pem"
  ssl.privkey = "{d}/server.key"
}}
"#,
        www = www.display(),
        d = d.display()
    );
    std::fs::write(d.join("lighttpd.conf"), conf).unwrap();
    let mut child = Command::new(program("lighttpd"))
        .args(["-D", "-f"])
        .arg(d.join("lighttpd.conf"))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(tls, &mut child, "lighttpd").unwrap();
    let _server = Server(child);
    let ca = d.join("ca.pem").display().to_string();
    let base = format!("https://localhost:{tls}");
    let started = std::time::Instant::now();
    let records = warm(d, &base, &objects, &["--concurrency", "200", "--header-timeout", "10s", "--ca-file", &ca]);
    all_warm_first_time(&records);
    assert!(started.elapsed().as_secs() < 60, "took {:?}", started.elapsed());
}

#[test]
fn nginx_http2_goaway_every_1000_streams_at_retries_0() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make_pki(d, "DNS:localhost,IP:127.0.0.1").unwrap();
    let www = d.join("www");
    let objects = objects(&www, 3000);
    let port = free_port().unwrap();
    // As shipped: keepalive_requests 1000 (a GOAWAY after 1000 streams).
    let conf = format!(
        r#"daemon off; master_process off; worker_processes 1; pid {d}/nginx.pid; error_log {d}/error.log;
events {{ worker_connections 4096; }}
http {{ access_log off; client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  server {{ listen 127.0.0.1:{port} ssl http2; ssl_certificate {d}/server.pem;
    ssl_certificate_key {d}/server.key; root {www}; }} }}
"#,
        d = d.display(),
        www = www.display()
    );
    std::fs::write(d.join("nginx.conf"), conf).unwrap();
    let child = run_nginx(&program("nginx"), d, &d.join("nginx.conf"), port).unwrap();
    let _server = Server(child);
    let ca = d.join("ca.pem").display().to_string();
    let records = warm(
        d,
        &format!("https://localhost:{port}"),
        &objects,
        &["--concurrency", "200", "--retries", "0", "--ca-file", &ca],
    );
    let resent = all_warm_first_time(&records);
    // Streams above each GOAWAY's last stream id went again, not as retries.
    assert!(resent > 0, "nine GOAWAYs and no stream sent again");
}

#[test]
fn stock_varnish_hits_are_verified() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let www = d.join("www");
    let objects = objects(&www, 50);
    let (origin, cache) = (free_port().unwrap(), free_port().unwrap());
    let conf = format!(
        r#"daemon off; master_process off; worker_processes 1; pid {d}/origin.pid; error_log {d}/origin.err;
events {{ worker_connections 1024; }}
http {{ access_log off; client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  server {{ listen 127.0.0.1:{origin}; root {www}; location / {{ add_header Cache-Control "max-age=3600"; }} }} }}
"#,
        d = d.display(),
        www = www.display()
    );
    std::fs::write(d.join("origin.conf"), conf).unwrap();
    let child = run_nginx(&program("nginx"), d, &d.join("origin.conf"), origin).unwrap();
    let _origin = Server(child);
    // Varnish as shipped: a VCL naming the backend, nothing that sets X-Cache.
    std::fs::write(
        d.join("stock.vcl"),
        format!("vcl 4.1;\nbackend default {{ .host = \"127.0.0.1\"; .port = \"{origin}\"; }}\n"),
    )
    .unwrap();
    let mut child = Command::new(program("varnishd"))
        .args(["-F", "-f"])
        .arg(d.join("stock.vcl"))
        .args(["-a", &format!("127.0.0.1:{cache}"), "-s", "malloc,32m", "-n"])
        .arg(d.join("varnish"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(cache, &mut child, "varnishd").unwrap();
    let _cache = Server(child);
    let records = warm(d, &format!("http://127.0.0.1:{cache}"), &objects, &["--verify"]);
    all_warm_first_time(&records);
    let misses = records.iter().filter(|r| r["cache"] == "miss").count();
    let hits = records.iter().filter(|r| r["verify_cache"] == "hit").count();
    assert_eq!((misses, hits), (150, 150), "each pair a miss when warmed, a hit when verified");
}
