//! Figures for BENCHMARKS.md ("Hot-path HTTP client"), measured, never
//! timed tests: this client against the reqwest path it replaces
//! (`baseline.rs`), same nginx, one current-thread runtime. Run each
//! alone (peak RSS is per process):
//! `cargo test --release -p prewarm --lib warm::client::bench::NAME -- --ignored --nocapture --exact`

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::baseline::{reqwest_client, reqwest_send};
use super::tls_tests::start_nginx;
use super::{Client, ClientConfig};
use crate::plugin::{Method, WarmRequest};
use crate::warm::http::{Body, Timeouts};

const T: Timeouts = Timeouts { headers: Duration::from_secs(30), total: Duration::from_secs(60) };
const CONCURRENCY: usize = 64;
const REQUESTS: usize = 50_000;

fn get(url: &str) -> WarmRequest {
    WarmRequest { url: url.to_string(), method: Method::Get, headers: Vec::new(), read_body: true }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Resident and peak resident set of this process, bytes (/proc/self/status).
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// `requests` GETs by `tasks` local tasks, each checked; requests/s.
async fn drive<F, Fut>(tasks: usize, requests: usize, send: F) -> f64
where
    F: Fn() -> Fut + Clone + 'static,
    Fut: std::future::Future<Output = u64>,
{
    let left = Rc::new(Cell::new(requests));
    let local = tokio::task::LocalSet::new();
    let started = Instant::now();
    for _ in 0..tasks {
        let (left, send) = (left.clone(), send.clone());
        local.spawn_local(async move {
            while left.get() > 0 {
                left.set(left.get() - 1);
                assert!(send().await > 0, "a request failed");
            }
        });
    }
    local.await;
    requests as f64 / started.elapsed().as_secs_f64()
}

async fn ours(url: &str, tasks: usize, requests: usize) -> f64 {
    let client = Rc::new(Client::new(Arc::new(ClientConfig::new(Vec::new(), None).unwrap())));
    let request = Rc::new(get(url));
    drive(tasks, requests, move || {
        let (client, request) = (client.clone(), request.clone());
        async move {
            let ex = client.send(&request, &[], Body::Full, 1, T).await.unwrap();
            assert!(ex.meta.status == 200 && ex.meta.body_complete);
            ex.meta.body_bytes
        }
    })
    .await
}

async fn theirs(url: &str, tasks: usize, requests: usize) -> f64 {
    let client = reqwest_client(tasks, T.headers).unwrap();
    let request = Rc::new(get(url));
    drive(tasks, requests, move || {
        let (client, request) = (client.clone(), request.clone());
        async move {
            let ex = reqwest_send(&client, &request, &[], Body::Full, 1, T).await.unwrap();
            assert!(ex.meta.status == 200 && ex.meta.body_complete);
            ex.meta.body_bytes
        }
    })
    .await
}

#[tokio::test]
#[ignore = "a benchmark: run by hand, figures in BENCHMARKS.md"]
async fn throughput() {
    let nginx = start_nginx();
    // BENCH_PATH=/a: a 12-byte body instead of 10 KiB.
    let path = std::env::var("BENCH_PATH").unwrap_or_else(|_| "/file/10k.bin".into());
    let url = format!("http://127.0.0.1:{}{path}", nginx.plain);
    let requests = env_usize("BENCH_REQUESTS", REQUESTS);
    let (mut best_ours, mut best_theirs) = (0f64, 0f64);
    for round in 0..3 {
        let a = ours(&url, CONCURRENCY, requests).await;
        // BENCH_ONLY=ours: for a profile of this client alone.
        let b = match std::env::var("BENCH_ONLY").as_deref() {
            Ok("ours") => f64::NAN,
            _ => theirs(&url, CONCURRENCY, requests).await,
        };
        println!("round {round}: warm::client {a:.0} req/s, reqwest {b:.0} req/s");
        best_ours = best_ours.max(a);
        best_theirs = best_theirs.max(b);
    }
    println!(
        "best of 3, {CONCURRENCY} tasks, {path}: warm::client {best_ours:.0} req/s, reqwest {best_theirs:.0} req/s ({:.2}x)",
        best_ours / best_theirs
    );
}

/// Requests in flight at once against nginx answering after 1 s: peak RSS
/// growth per request, for `which` client.
async fn in_flight(which: &str) {
    let nginx = start_nginx();
    let url = format!("http://127.0.0.1:{}/slow", nginx.plain);
    let n = env_usize("BENCH_IN_FLIGHT", 4000);
    let before = rss().0;
    let started = Instant::now();
    let rate = match which {
        "ours" => ours(&url, n, n).await,
        _ => theirs(&url, n, n).await,
    };
    let elapsed = started.elapsed();
    let (now, peak) = rss();
    println!(
        "{which}: {n} in flight for {elapsed:.2?} ({rate:.0} req/s): peak RSS +{:.1} MiB ({:.0} bytes per request), {:.1} MiB after",
        (peak - before) as f64 / 1048576.0,
        (peak - before) as f64 / n as f64,
        now as f64 / 1048576.0
    );
}

#[tokio::test]
#[ignore = "a benchmark: run by hand, figures in BENCHMARKS.md"]
async fn in_flight_ours() {
    in_flight("ours").await;
}

#[tokio::test]
#[ignore = "a benchmark: run by hand, figures in BENCHMARKS.md"]
async fn in_flight_reqwest() {
    in_flight("reqwest").await;
}

#[test]
fn sizes() {
    let config = Arc::new(ClientConfig::new(Vec::new(), None).unwrap());
    let client = Client::new(config);
    let request = get("http://127.0.0.1:9/");
    let ours = std::mem::size_of_val(&client.send(&request, &[], Body::Full, 1, T));
    let reqwest = reqwest_client(1, T.headers).unwrap();
    let theirs = std::mem::size_of_val(&reqwest_send(&reqwest, &request, &[], Body::Full, 1, T));
    let conn = std::mem::size_of::<tokio::net::TcpStream>();
    println!("send future: warm::client {ours} bytes, reqwest path {theirs} bytes; idle connection: {conn} bytes");
    // Thousands are alive at once: keep it near a kilobyte (reqwest's is
    // smaller inline but boxes its connection futures and buffers).
    assert!(ours <= 1536, "send future grew to {ours} bytes");
}
