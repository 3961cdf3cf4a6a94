//! Warming every edge and every variant (`--edge`, `--variant`): three
//! nginx caches at 127.0.0.2-4 on one port in front of one origin, reached
//! through a host name that resolves nowhere, a slow edge (nginx's echo
//! module answering after 2 s), an https edge with a certificate for the
//! URL's host only, and an address with nothing listening.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use prewarm::util::lab;
use prewarm_e2e::{prewarm, read_results, run, write_listing};

const HOST: &str = "cdn.prewarm.test";

struct Edges {
    nginx: Child,
    /// The one port every edge listens on.
    port: u16,
    home: tempfile::TempDir,
}

impl Drop for Edges {
    fn drop(&mut self) {
        let _ = self.nginx.kill();
        let _ = self.nginx.wait();
    }
}

/// A caching edge at `addr`: keyed on the Host, the URL and `X-Device`,
/// telling its cache state and the Host it saw.
fn cache_server(addr: &str, port: u16, zone: &str, origin: u16, tls: &str) -> String {
    format!(
        r#"server {{ listen {addr}:{port} {tls};
    location / {{ proxy_pass http://127.0.0.1:{origin}; proxy_cache {zone}; proxy_cache_valid 200 1h;
      proxy_cache_key $host$uri$is_args$args$http_x_device;
      add_header X-Cache-Status $upstream_cache_status always; add_header X-Host $host always; }} }}
"#
    )
}

fn start() -> Edges {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path();
    let www = dir.join("www/v");
    std::fs::create_dir_all(&www).unwrap();
    for i in 0..12 {
        std::fs::write(www.join(format!("c{i}.mp4")), vec![b'x'; 3000 + i * 97]).unwrap();
    }
    // A certificate for HOST only (no IP address in it).
    lab::make_pki(dir, &format!("DNS:{HOST}")).unwrap();
    let nginx = lab::find_program("nginx").expect("nginx installed (nginx-light)");
    let (origin, port) = (lab::free_port().unwrap(), lab::free_port().unwrap());
    for sub in ["tmp", "logs"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let d = dir.display();
    let mut conf = format!(
        r#"load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
daemon off; master_process off; worker_processes 1; pid {d}/nginx.pid; error_log {d}/logs/error.log warn;
events {{ worker_connections 1024; }}
http {{ access_log off; client_body_temp_path {d}/tmp/body; proxy_temp_path {d}/tmp/proxy;
  fastcgi_temp_path {d}/tmp/fastcgi; uwsgi_temp_path {d}/tmp/uwsgi; scgi_temp_path {d}/tmp/scgi;
  ssl_certificate {d}/server.pem; ssl_certificate_key {d}/server.key;
  server {{ listen 127.0.0.1:{origin}; root {d}/www; }}
  server {{ listen 127.0.0.5:{port}; location / {{ echo_sleep 2; echo slow; }} }}
"#
    );
    for (i, addr) in ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.6"].iter().enumerate() {
        conf.push_str(&format!("  proxy_cache_path {d}/cache{i} keys_zone=e{i}:1m;\n"));
        conf.push_str(&cache_server(addr, port, &format!("e{i}"), origin, if i == 3 { "ssl" } else { "" }));
    }
    conf.push_str("}\n");
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let child = lab::run_nginx(&nginx, dir, &dir.join("nginx.conf"), origin).unwrap();
    Edges { nginx: child, port, home }
}

impl Edges {
    fn path(&self, name: &str) -> PathBuf {
        self.home.path().join(name)
    }

    /// `prewarm warm` of `objects` objects, two derivatives, at
    /// `scheme://cdn.prewarm.test:PORT`.
    fn warm(&self, scheme: &str, objects: usize, results: &str) -> Command {
        let listing = self.path("listing.json");
        let names: Vec<(String, u64)> = (0..objects).map(|i| (format!("v/c{i}.mp4"), 3000 + i as u64 * 97)).collect();
        let borrowed: Vec<(&str, u64)> = names.iter().map(|(n, s)| (n.as_str(), *s)).collect();
        write_listing(&listing, &borrowed);
        let mut cmd = prewarm(self.home.path());
        cmd.args(["warm", "--plugin", "template", "--base-url", &format!("{scheme}://{HOST}:{}", self.port)])
            .args(["--set", "url={base}/{path}?w={width}", "--set", "cache-header=x-cache-status"])
            .args(["--derivatives", "mobile,tablet", "--progress", "never", "--listing"])
            .arg(listing)
            .arg("--results")
            .arg(self.path(results));
        cmd
    }

    /// The cache state and the Host header `addr` saw for `target`.
    fn ask(&self, addr: &str, target: &str, device: Option<&str>) -> (String, String) {
        let mut curl = Command::new("curl");
        curl.args(["-s", "-o", "/dev/null", "-D", "-", "--resolve", &format!("{HOST}:{}:{addr}", self.port)]);
        if let Some(d) = device {
            curl.args(["-H", &format!("X-Device: {d}")]);
        }
        let out = curl.arg(format!("http://{HOST}:{}{target}", self.port)).output().expect("curl runs");
        let head = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
        let header = |name: &str| {
            head.lines().find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string())).unwrap_or_default()
        };
        (header("x-cache-status:"), header("x-host:"))
    }
}

fn by_edge<'a>(records: &'a [serde_json::Value], edge: &str) -> Vec<&'a serde_json::Value> {
    records.iter().filter(|r| r["edge"] == edge).collect()
}

#[test]
fn every_edge_is_cached_with_the_original_host_and_a_dead_edge_fails_fast() {
    let lab = start();
    let started = std::time::Instant::now();
    let out = run(lab
        .warm("http", 12, "r.jsonl")
        .args(["--edge", "a=127.0.0.2", "--edge", "b=127.0.0.3", "--edge", "c=127.0.0.4", "--edge", "dead=127.0.0.9"])
        .args(["--verify", "--timeout", "20s", "--report"])
        .arg(lab.path("s.json"))
        .arg("--metrics-textfile")
        .arg(lab.path("m.prom")));
    assert_eq!(out.status.code(), Some(3), "a dead edge is a run that is not all warm");
    assert!(started.elapsed().as_secs() < 15, "the dead edge held the run back: {:?}", started.elapsed());
    let records = read_results(&lab.path("r.jsonl"));
    assert_eq!(records.len(), 12 * 2 * 4, "one record per (pair, edge)");
    for edge in ["a", "b", "c"] {
        let mine = by_edge(&records, edge);
        assert_eq!(mine.len(), 24);
        assert!(mine.iter().all(|r| r["outcome"] == "warm" && r["verify_cache"] == "hit"), "{edge}: {mine:?}");
    }
    let dead = by_edge(&records, "dead");
    assert!(dead.iter().all(|r| r["outcome"] == "failed" && r["error_kind"] == "edge_down"), "{dead:?}");
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(log.matches("edge `dead` (127.0.0.9) is down").count(), 1, "one line names the dead edge: {log}");

    // Each cache holds every derivative, under the URL's own Host.
    for addr in ["127.0.0.2", "127.0.0.3", "127.0.0.4"] {
        for i in [0, 5, 11] {
            for w in [854, 1280] {
                let (cache, host) = lab.ask(addr, &format!("/v/c{i}.mp4?w={w}"), None);
                assert_eq!((cache.as_str(), host.as_str()), ("hit", HOST), "{addr} c{i} w={w}");
            }
        }
    }

    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(lab.path("s.json")).unwrap()).unwrap();
    let per_edge = &summary["stats"]["per_edge"];
    assert_eq!((per_edge["a"]["warm"].as_u64(), per_edge["a"]["verified_hit"].as_u64()), (Some(24), Some(24)));
    assert_eq!(per_edge["dead"]["edge_down"], 24);
    assert_eq!(summary["runs"][0]["edges"][3], "dead=127.0.0.9");
    let prom = std::fs::read_to_string(lab.path("m.prom")).unwrap();
    assert!(prom.contains(r#"prewarm_edge_pairs_total{edge="b",result="warm"} 24"#), "{prom}");
    assert!(prom.contains(r#"prewarm_edge_down_pairs_total{edge="dead"} 24"#), "{prom}");

    // Merged with a second run's summary, the edges stay apart.
    let mut second = summary.clone();
    second["runs"][0]["started_at"] = "2026-01-01T00:00:00.000Z".into();
    std::fs::write(lab.path("s2.json"), second.to_string()).unwrap();
    let merged = lab.path("merged.json");
    let out = run(prewarm(lab.home.path())
        .args(["report", "merge"])
        .arg(lab.path("s.json"))
        .arg(lab.path("s2.json"))
        .arg("--output")
        .arg(&merged));
    assert!(out.status.success());
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&merged).unwrap()).unwrap();
    assert_eq!(
        (m["stats"]["per_edge"]["c"]["warm"].as_u64(), m["stats"]["per_edge"]["dead"]["edge_down"].as_u64()),
        (Some(48), Some(48))
    );
}

#[test]
fn a_slow_edge_gets_its_share_and_the_others_go_on() {
    let lab = start();
    let out = run(lab
        .warm("http", 6, "r.jsonl")
        .args(["--edge", "a=127.0.0.2", "--edge", "b=127.0.0.3", "--edge", "slow=127.0.0.5"])
        .args(["--concurrency", "6", "--threads", "1"]));
    assert_eq!(out.status.code(), Some(0));
    let records = read_results(&lab.path("r.jsonl"));
    let finished = |edge: &str| -> Vec<String> {
        by_edge(&records, edge).iter().map(|r| r["finished_at"].as_str().unwrap().to_string()).collect()
    };
    let fast_last = finished("a").into_iter().chain(finished("b")).max().unwrap();
    let slow_first = finished("slow").into_iter().min().unwrap();
    // RFC 3339 in UTC with milliseconds: text order is time order.
    let timeline: Vec<String> = records
        .iter()
        .map(|r| format!("{} {} {} {}", r["finished_at"], r["edge"], r["path"], r["elapsed_ms"]))
        .collect();
    assert!(
        fast_last < slow_first,
        "the fast edges waited for the slow one: {fast_last} >= {slow_first}\n{}",
        timeline.join("\n")
    );
    assert_eq!(by_edge(&records, "slow").len(), 12);
}

#[test]
fn each_variant_is_cached_apart() {
    let lab = start();
    let out = run(lab
        .warm("http", 4, "r.jsonl")
        .args(["--edge", "a=127.0.0.2", "--variant", "phone=X-Device: phone", "--variant", "tv=X-Device: tv"])
        .args(["--header", "X-Warmer: env:EDGES_TEST_SECRET"])
        .env("EDGES_TEST_SECRET", "s3cret-header-value"));
    assert_eq!(out.status.code(), Some(0));
    let records = read_results(&lab.path("r.jsonl"));
    assert_eq!(records.len(), 4 * 2 * 2);
    assert_eq!(records.iter().filter(|r| r["variant"] == "phone").count(), 8);
    for device in ["phone", "tv"] {
        let (cache, _) = lab.ask("127.0.0.2", "/v/c3.mp4?w=854", Some(device));
        assert_eq!(cache, "hit", "{device}");
    }
    let (cache, _) = lab.ask("127.0.0.2", "/v/c3.mp4?w=854", Some("watch"));
    assert_eq!(cache, "miss", "a device nobody warmed");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("s3cret-header-value"));

    // A header prewarm sets itself is refused before anything is sent.
    let out = run(lab.warm("http", 1, "r2.jsonl").args(["--variant", "x=Host: evil.example"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--variant `x`: header `Host`"));
}

#[test]
fn an_https_edge_is_verified_against_the_url_host() {
    let lab = start();
    let out =
        run(lab.warm("https", 2, "r.jsonl").args(["--edge", "tls=127.0.0.6", "--ca-file"]).arg(lab.path("ca.pem")));
    assert_eq!(out.status.code(), Some(0));
    let records = read_results(&lab.path("r.jsonl"));
    assert!(records.iter().all(|r| r["outcome"] == "warm" && r["edge"] == "tls"), "{records:?}");
    // Without the test CA the edge's certificate is not trusted.
    let out = run(lab.warm("https", 1, "r2.jsonl").args(["--edge", "tls=127.0.0.6", "--retries", "0"]));
    assert_eq!(out.status.code(), Some(3));
    assert!(read_results(&lab.path("r2.jsonl")).iter().all(|r| r["outcome"] == "failed"));
}

#[test]
fn kill_and_resume_across_edges() {
    let lab = start();
    let edges = ["--edge", "a=127.0.0.2", "--edge", "slow=127.0.0.5", "--concurrency", "4", "--threads", "1"];
    let mut child = lab.warm("http", 6, "r.jsonl").args(edges).stderr(Stdio::null()).spawn().unwrap();
    let results = lab.path("r.jsonl");
    // Until edge a is done (its pairs take milliseconds, the slow edge's 2 s).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while read_results(&results).iter().filter(|r| r["edge"] == "a").count() < 12 {
        assert!(std::time::Instant::now() < deadline, "edge a did not finish");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let first = read_results(&results);
    assert!(first.len() < 24, "the kill came too late to test anything");

    let out = run(lab.warm("http", 6, "r.jsonl").args(edges).args(["--resume", "--json"]));
    assert_eq!(out.status.code(), Some(0));
    let all = read_results(&results);
    let mut keys: Vec<(String, String, String)> =
        all.iter().map(|r| (r["path"].to_string(), r["derivative"].to_string(), r["edge"].to_string())).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 24, "every (pair, edge) recorded");
    assert_eq!(all.len(), 24, "no (pair, edge) warm before the kill was warmed again");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["runs"][0]["resumed_skips"].as_u64(), Some(first.len() as u64));
}
