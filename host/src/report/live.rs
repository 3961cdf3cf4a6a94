//! `--metrics-listen ADDR`: Prometheus `/metrics` while a run lasts. The
//! recorder publishes the statistics so far once a second; engine threads
//! keep the pairs in flight per derivative in atomics, read at scrape time.
//! The page is the same families as the textfile (`prometheus`), plus what
//! only a run in progress knows: pairs in flight, the recent rate, the
//! expected total and the time left. The server is a few lines of HTTP/1.1
//! (RFC 9112), one request per connection (`Connection: close`), enough
//! for a Prometheus scraper and curl; anything but `GET /metrics` gets 404.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::prometheus::{self, LiveFigures};
use super::{RunInfo, SCHEMA_VERSION, Summary};
use crate::stats::{Stats, StatsSummary};

/// Seconds the rate is averaged over.
const RATE_WINDOW: usize = 10;
/// Longest request head read before answering.
const MAX_HEAD: usize = 8 * 1024;

/// The live state of one run.
pub struct Live {
    derivatives: Vec<String>,
    in_flight: Vec<AtomicI64>,
    published: Mutex<Published>,
}

/// What the recorder last published.
#[derive(Default)]
struct Published {
    stats: Option<StatsSummary>,
    elapsed_s: f64,
    /// (elapsed seconds, pairs recorded this run), one a second.
    recent: VecDeque<(f64, u64)>,
    expected: Option<u64>,
}

impl Live {
    pub fn new(derivatives: Vec<String>) -> Self {
        let in_flight = derivatives.iter().map(|_| AtomicI64::new(0)).collect();
        Live { derivatives, in_flight, published: Mutex::default() }
    }

    pub fn pair_started(&self, derivative: usize) {
        self.in_flight[derivative].fetch_add(1, Ordering::Relaxed);
    }

    pub fn pair_finished(&self, derivative: usize) {
        self.in_flight[derivative].fetch_sub(1, Ordering::Relaxed);
    }

    /// The statistics so far (recorder, about once a second): `done` pairs
    /// recorded by this run, of `expected` once known.
    pub fn publish(&self, stats: &Stats, elapsed: Duration, done: u64, expected: Option<u64>) {
        let summary = stats.to_summary();
        let mut p = self.published.lock().unwrap_or_else(|e| e.into_inner());
        p.stats = Some(summary);
        p.elapsed_s = elapsed.as_secs_f64();
        p.expected = expected;
        let at = p.elapsed_s;
        p.recent.push_back((at, done));
        while p.recent.len() > RATE_WINDOW + 1 {
            p.recent.pop_front();
        }
    }

    /// The `/metrics` page now.
    pub fn render(&self) -> Vec<u8> {
        let p = self.published.lock().unwrap_or_else(|e| e.into_inner());
        let mut families = match &p.stats {
            Some(stats) => prometheus::progress_families(&Summary {
                schema_version: SCHEMA_VERSION,
                runs: vec![RunInfo { elapsed_s: p.elapsed_s, ..RunInfo::default() }],
                stats: stats.clone(),
                missing_shards: Vec::new(),
            }),
            None => Vec::new(),
        };
        let in_flight = self
            .derivatives
            .iter()
            .zip(&self.in_flight)
            .map(|(d, n)| (vec![("derivative".to_string(), d.clone())], n.load(Ordering::Relaxed).max(0) as f64))
            .collect();
        let rate = match (p.recent.front(), p.recent.back()) {
            (Some(a), Some(b)) if b.0 > a.0 => (b.1 - a.1) as f64 / (b.0 - a.0),
            _ => 0.0,
        };
        let done = p.recent.back().map_or(0, |r| r.1);
        let eta_seconds = p.expected.filter(|_| rate > 0.0).map(|n| n.saturating_sub(done) as f64 / rate);
        families.extend(prometheus::live_families(&LiveFigures { in_flight, rate, expected: p.expected, eta_seconds }));
        prometheus::encode(&families)
    }
}

/// Bind `--metrics-listen` before the run, so a taken or malformed address
/// is a usage error and not a silent gap in the metrics.
pub fn bind(addr: &str) -> Result<std::net::TcpListener, String> {
    let listener = std::net::TcpListener::bind(addr).map_err(|e| {
        format!("--metrics-listen {addr}: cannot listen there ({e}); give ADDR:PORT, e.g. 0.0.0.0:9464")
    })?;
    listener.set_nonblocking(true).map_err(|e| format!("--metrics-listen {addr}: {e}"))?;
    Ok(listener)
}

/// Answer scrapes until the task is dropped.
pub async fn serve(live: std::sync::Arc<Live>, listener: std::net::TcpListener) {
    let Ok(listener) = TcpListener::from_std(listener) else { return };
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors, say: try again shortly, not in a spin.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let live = live.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(10), answer(&live, stream)).await;
        });
    }
}

async fn answer(live: &Live, mut stream: tokio::net::TcpStream) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let mut parts = line.split(|b| *b == b' ');
    let (method, target) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let path = target.split(|b| *b == b'?').next().unwrap_or_default();
    let (status, kind, body) = match (method, path) {
        (b"GET" | b"HEAD", b"/metrics") => ("200 OK", ::prometheus::TEXT_FORMAT, live.render()),
        _ => ("404 Not Found", "text/plain; charset=utf-8", b"prewarm serves GET /metrics\n".to_vec()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    if method != b"HEAD" {
        stream.write_all(&body).await?;
    }
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Outcome, Record};
    use crate::util::size::{SizeClass, SizeClasses};

    #[test]
    fn the_page_has_progress_in_flight_rate_and_eta() {
        let live = Live::new(vec!["mobile".into(), "desktop".into()]);
        live.pair_started(0);
        live.pair_started(0);
        live.pair_started(1);
        live.pair_finished(1);
        let mut stats = Stats::new(SizeClasses::default());
        let warm = Record { outcome: Outcome::Warm, ..Record::blank("a.mp4", "mobile", 1, SizeClass::Small) };
        live.publish(&stats, Duration::from_secs(1), 0, None);
        for _ in 0..20 {
            stats.record(&warm, Duration::from_secs(2));
        }
        live.publish(&stats, Duration::from_secs(3), 20, Some(120));
        let page = String::from_utf8(live.render()).unwrap();
        assert!(page.contains("prewarm_pairs_in_flight{derivative=\"mobile\"} 2"), "{page}");
        assert!(page.contains("prewarm_pairs_in_flight{derivative=\"desktop\"} 0"), "{page}");
        assert!(page.contains("prewarm_pairs_total{derivative=\"mobile\",outcome=\"warm\"} 20"), "{page}");
        assert!(page.contains("prewarm_pairs_per_second 10"), "{page}");
        assert!(page.contains("prewarm_eta_seconds 10"), "{page}");
        assert!(!page.contains("prewarm_last_run_timestamp_seconds"), "end-of-run only: {page}");
    }
}
