//! A DNS answer that changes during a run: the base URL's host name
//! resolves through a hosts file bind-mounted over `/etc/hosts` in a mount
//! namespace of prewarm's own (`unshare --mount`, so nothing outside the
//! test sees it), first to one nginx, then, rewritten mid-run, to another.
//! The system resolver tells no TTL, so prewarm keeps an answer 60 s
//! (`DNS_REFRESH`, the issue's floor) and then asks again: connections
//! opened after that go to the new address, and none before it does.

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use prewarm::util::lab::{find_program, free_port, run_nginx};
use prewarm_e2e::{prewarm_bin, read_results, write_listing};

const HOST: &str = "prewarm-dns.test";
/// Pairs per second: the run lasts past the 60 s refresh.
const RATE: u64 = 2;
const OBJECTS: u64 = 140;

/// Request times (nginx's `$msec`, seconds) in an access log.
fn times(log: &Path) -> Vec<f64> {
    let Ok(file) = std::fs::File::open(log) else { return Vec::new() };
    std::io::BufReader::new(file).lines().map_while(Result::ok).filter_map(|l| l.trim().parse().ok()).collect()
}

#[test]
fn new_connections_follow_a_dns_change_after_the_refresh() {
    assert!(
        Command::new("unshare").args(["--mount", "true"]).status().is_ok_and(|s| s.success()),
        "this test needs `unshare --mount` (root, util-linux) to give prewarm a hosts file of its own"
    );
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    for sub in ["tmp", "logs"] {
        std::fs::create_dir_all(h.join(sub)).unwrap();
    }
    let port = free_port().unwrap();
    let d = h.display();
    // Two requests a connection, so the run keeps opening new ones.
    let server = |addr: &str, log: &str| {
        format!(
            "server {{ listen {addr}:{port}; keepalive_requests 2; access_log {d}/logs/{log} t; \
             location / {{ add_header X-Cache HIT; return 200 \"derivative\"; }} }}\n"
        )
    };
    let conf = format!(
        "daemon off; master_process off; worker_processes 1; pid {d}/nginx.pid; error_log {d}/logs/error.log warn;\n\
         events {{ worker_connections 256; }}\n\
         http {{ log_format t '$msec'; client_body_temp_path {d}/tmp/b; proxy_temp_path {d}/tmp/p;\n\
         fastcgi_temp_path {d}/tmp/f; uwsgi_temp_path {d}/tmp/u; scgi_temp_path {d}/tmp/s;\n{}{}{}}}\n",
        server("127.0.0.1", "ready.log"),
        server("127.0.0.2", "old.log"),
        server("127.0.0.3", "new.log"),
    );
    std::fs::write(h.join("nginx.conf"), conf).unwrap();
    let nginx = find_program("nginx").expect("nginx installed (scripts/setup)");
    let mut server = run_nginx(&nginx, h, &h.join("nginx.conf"), port).unwrap();

    let hosts = h.join("hosts");
    std::fs::write(&hosts, format!("127.0.0.1 localhost\n127.0.0.2 {HOST}\n")).unwrap();
    let listing = h.join("listing.json");
    let names: Vec<(String, u64)> = (0..OBJECTS).map(|i| (format!("v/c{i}.mp4"), 1_000_000)).collect();
    write_listing(&listing, &names.iter().map(|(p, s)| (p.as_str(), *s)).collect::<Vec<_>>());
    let results = h.join("results.jsonl");
    let started = Instant::now();
    let warm = Command::new("unshare")
        .args(["--mount", "sh", "-c", r#"mount --bind "$0" /etc/hosts && exec "$@""#])
        .arg(&hosts)
        .arg(prewarm_bin())
        .args(["warm", "--plugin", "template", "--set", "url={base}/{path}", "--derivatives", "desktop"])
        .args(["--base-url", &format!("http://{HOST}:{port}"), "--concurrency", "1", "--progress", "never"])
        .args(["--rate", &RATE.to_string(), "--listing"])
        .arg(&listing)
        .arg("--results")
        .arg(&results)
        .env("PREWARM_CACHE_DIR", h.join("cache"))
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("unshare runs");

    // Once the first request has reached the old address, the name moves
    // (rewritten in place: the bind mount holds the file, not its name).
    while times(&h.join("logs/old.log")).is_empty() {
        assert!(started.elapsed() < Duration::from_secs(30), "no request reached the old address");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::write(&hosts, format!("127.0.0.1 localhost\n127.0.0.3 {HOST}\n")).unwrap();
    let out = warm.wait_with_output().unwrap();
    let _ = server.kill();
    let _ = server.wait();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");

    let records = read_results(&results);
    assert_eq!(records.len() as u64, OBJECTS, "{stderr}");
    assert!(records.iter().all(|r| r["outcome"] == "warm"), "{stderr}");
    let (old, new) = (times(&h.join("logs/old.log")), times(&h.join("logs/new.log")));
    assert_eq!((old.len() + new.len()) as u64, OBJECTS, "every request reached one of the two addresses");
    let first_old = old.iter().cloned().fold(f64::MAX, f64::min);
    let first_new = new.iter().cloned().fold(f64::MAX, f64::min);
    let last_old = old.iter().cloned().fold(0.0, f64::max);
    assert!(new.len() >= 5, "after the refresh new connections go to the new address: {} there", new.len());
    // The answer is kept for the refresh (60 s) though the file changed
    // within a second of the first request, then followed.
    assert!(first_new - first_old >= 59.0, "asked again after {:.1} s, before the 60 s floor", first_new - first_old);
    assert!(last_old < first_new + 1.0, "the old address kept getting new connections after the change was seen");
}
