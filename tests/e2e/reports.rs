//! Reports from real runs: the summary JSON, Markdown, the HTML page
//! rendered in headless Chromium, the Prometheus textfile parsed by a real
//! parser, a Pushgateway PUT captured on loopback, and shard summaries
//! merged by `prewarm report merge`.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use prewarm_e2e::fault_server::FaultServer;
use prewarm_e2e::{prewarm, run, warm_listing};
use serde_json::Value;

fn objects() -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = (0..30).map(|i| (format!("ok/set {}/v{i}.mp4", i % 4), 4000 + i * 10)).collect();
    v.push(("not-found/gone.mp4".into(), 100));
    v
}

fn warm(server: &FaultServer, home: &Path, extra: &[&str]) -> Option<i32> {
    let objs = objects();
    let refs: Vec<(&str, u64)> = objs.iter().map(|(p, s)| (p.as_str(), *s)).collect();
    let out = run(warm_listing(home, &server.url, &refs)
        .args(["--set", "cache-header=x-cache", "--retries", "0"])
        .args(extra));
    out.status.code()
}

#[test]
fn summary_markdown_html_and_textfile_after_a_run() {
    let server = FaultServer::start();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let p = |name: &str| h.join(name).to_str().unwrap().to_string();
    let code = warm(
        &server,
        h,
        &[
            "--results",
            &p("r.jsonl"),
            "--report",
            &p("s.json"),
            "--markdown",
            &p("r.md"),
            "--html",
            &p("r.html"),
            "--metrics-textfile",
            &p("m.prom"),
        ],
    );
    assert_eq!(code, Some(3), "the 404 makes the run partial");

    let s: Value = serde_json::from_slice(&std::fs::read(h.join("s.json")).unwrap()).unwrap();
    assert_eq!(s["schema_version"], 1);
    assert_eq!(s["stats"]["pairs"], 31 * 3);
    assert_eq!(s["stats"]["outcomes"]["warm"], 30 * 3);
    assert_eq!(s["stats"]["outcomes"]["failed"], 3);
    assert_eq!(s["stats"]["failures_by_kind"]["not_found"], 3);
    assert_eq!(s["stats"]["failures_by_status"]["404"], 3);
    assert_eq!(s["stats"]["cache"]["miss"], 90);
    assert_eq!(s["stats"]["per_derivative"]["mobile"]["count"], 31);
    let red = &s["stats"]["per_derivative"]["mobile"]["reduction"];
    assert_eq!(red["count"], 30);
    assert!(s["stats"]["per_derivative"]["mobile"]["ttfb"]["p95_ms"].as_f64().unwrap() > 0.0);
    assert!(s["stats"]["groups"][0]["ttfb"]["histogram"].as_str().unwrap().len() > 10);
    assert_eq!(s["runs"][0]["plugin"], "template");

    let md = std::fs::read_to_string(h.join("r.md")).unwrap();
    assert!(md.contains("## Per derivative") && md.contains("| mobile | 31 | 30 |"), "{md}");
    assert!(md.contains("| not_found | 3 |") && md.contains("check --base-url"), "{md}");
    assert!(md.contains("## Slowest pairs"));

    // The textfile parses with a real Prometheus parser.
    let text = std::fs::read_to_string(h.join("m.prom")).unwrap();
    let scrape =
        prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("valid exposition format");
    let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
        let s = scrape
            .samples
            .iter()
            .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .unwrap_or_else(|| panic!("no sample {name} {labels:?}"));
        match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => panic!("{name} is not a plain value"),
        }
    };
    assert_eq!(value("prewarm_pairs_total", &[("derivative", "tablet"), ("outcome", "warm")]), 30.0);
    assert_eq!(value("prewarm_failures_total", &[("kind", "not_found")]), 3.0);
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "prewarm_ttfb_seconds" && matches!(s.value, prometheus_parse::Value::Summary(_)))
    );
    assert!(value("prewarm_last_run_timestamp_seconds", &[]) > 1.7e9);
    assert!(!text.contains("prewarm_last_success_timestamp_seconds "), "a partial run is not a success");
    assert!(
        std::fs::read_dir(h).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().starts_with(".tmp")),
        "temp file left behind"
    );
}

#[test]
fn html_report_renders_in_headless_chromium() {
    let server = FaultServer::start();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let html = h.join("report.html");
    let summary = h.join("s.json");
    // One object rate limited once: a 429 pause on the timeline.
    let mut objs = objects();
    objs.push(("rate-limited/x.mp4".into(), 5000));
    let refs: Vec<(&str, u64)> = objs.iter().map(|(p, s)| (p.as_str(), *s)).collect();
    run(warm_listing(h, &server.url, &refs)
        .args(["--set", "cache-header=x-cache", "--retries", "0", "--results"])
        .arg(h.join("r.jsonl"))
        .arg("--html")
        .arg(&html)
        .arg("--report")
        .arg(&summary));
    let s: Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    let buckets = s["stats"]["timeline"]["buckets"].as_array().unwrap();
    let sum = |k: &str| buckets.iter().map(|b| b[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!((sum("pairs"), sum("failed")), (32 * 3, 3), "{buckets:?}");
    assert!(sum("rate_limit_pauses") >= 3, "a pause per derivative of the rate-limited object");
    assert_eq!(s["stats"]["cache_by_derivative"]["mobile"]["miss"], 31);
    let page = std::fs::read_to_string(&html).unwrap();
    for external in ["<script", "src=", "href=", "url(", "@import"] {
        assert!(!page.contains(external), "page must be self-contained, found {external}");
    }

    let chromium = prewarm::util::lab::find_program("chromium").expect("chromium installed by scripts/setup");
    let common = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ];
    let profile = h.join("chrome-profile");
    let shot = h.join("report.png");
    let status = Command::new(&chromium)
        .args(common)
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1200,1400")
        .arg(format!("file://{}", html.display()))
        .status()
        .unwrap();
    assert!(status.success());
    let png = std::fs::read(&shot).unwrap();
    assert!(png.len() > 10_000 && png.starts_with(b"\x89PNG"), "screenshot too small to hold the charts");

    let dom = Command::new(&chromium)
        .args(common)
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    for id in ["chart-outcomes", "chart-ttfb", "chart-reduction", "chart-cache", "chart-timeline"] {
        assert!(dom.contains(&format!("id=\"{id}\"")), "{id} missing from the rendered DOM");
    }
    assert_eq!(dom.matches("class=\"series\"").count(), 3, "one TTFB curve per derivative");
    assert!(dom.matches("class=\"bar\"").count() >= 5);
    // Cache states: one miss segment per derivative; the timeline: the rate, the failures, the pauses.
    assert_eq!(dom.matches("class=\"segment\" data-state=\"miss\"").count(), 3);
    assert_eq!(dom.matches("class=\"rate\"").count(), 1);
    assert!(dom.contains("class=\"failed\"") && dom.contains("class=\"pause\""));
}

#[test]
fn pushgateway_gets_a_well_formed_put() {
    let server = FaultServer::start();
    let home = tempfile::tempdir().unwrap();
    let gateway = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", gateway.local_addr().unwrap());
    let capture = std::thread::spawn(move || {
        let (mut s, _) = gateway.accept().unwrap();
        let mut req = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let n = s.read(&mut buf).unwrap();
            req.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&req).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let len: usize = text
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if req.len() >= end + 4 + len {
                    break;
                }
            }
            if n == 0 {
                break;
            }
        }
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").unwrap();
        String::from_utf8(req).unwrap()
    });
    let code = warm(
        &server,
        home.path(),
        &["--results", home.path().join("r.jsonl").to_str().unwrap(), "--pushgateway", &url, "--shard", "0/1"],
    );
    assert_eq!(code, Some(3));
    let req = capture.join().unwrap();
    let (head, body) = req.split_once("\r\n\r\n").unwrap();
    let first = head.lines().next().unwrap();
    assert!(first.starts_with("PUT /metrics/job/prewarm/instance/") && first.contains("shard-0-of-1"), "{first}");
    assert!(head.to_ascii_lowercase().contains("content-type: text/plain; version=0.0.4"), "{head}");
    let scrape = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).unwrap();
    assert!(scrape.samples.iter().any(|s| s.metric == "prewarm_pairs_total"));
}

#[test]
fn shard_summaries_merge_into_the_whole() {
    let server = FaultServer::start();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let s = |n: &str| h.join(n).to_str().unwrap().to_string();
    for i in 0..2 {
        let shard = format!("{i}/2");
        warm(
            &server,
            h,
            &["--shard", &shard, "--results", &s(&format!("r{i}.jsonl")), "--report", &s(&format!("s{i}.json"))],
        );
    }
    let out = run(prewarm(h).args([
        "report",
        "merge",
        &s("s0.json"),
        &s("s1.json"),
        "-o",
        &s("all.json"),
        "--markdown",
        &s("all.md"),
        "--html",
        &s("all.html"),
    ]));
    assert!(out.status.success());
    let parts: Vec<Value> = (0..2)
        .map(|i| serde_json::from_slice(&std::fs::read(h.join(format!("s{i}.json"))).unwrap()).unwrap())
        .collect();
    let all: Value = serde_json::from_slice(&std::fs::read(h.join("all.json")).unwrap()).unwrap();
    // The shards split the objects; together they are the whole listing.
    let shard_pairs: Vec<u64> = parts.iter().map(|p| p["stats"]["pairs"].as_u64().unwrap()).collect();
    assert!(shard_pairs.iter().all(|n| *n > 0 && *n < 93), "{shard_pairs:?}");
    assert_eq!(all["stats"]["pairs"], 93);
    assert_eq!(all["stats"]["outcomes"]["warm"], 90);
    assert_eq!(all["stats"]["failures_by_kind"]["not_found"], 3);
    assert_eq!(all["runs"].as_array().unwrap().len(), 2);
    let count = |v: &Value| v["stats"]["ttfb"]["count"].as_u64().unwrap();
    assert_eq!(count(&all), count(&parts[0]) + count(&parts[1]));
    assert!(std::fs::read_to_string(h.join("all.md")).unwrap().contains("shard 0/2"));
    let timeline_pairs = |v: &Value| {
        v["stats"]["timeline"]["buckets"].as_array().unwrap().iter().map(|b| b["pairs"].as_u64().unwrap()).sum::<u64>()
    };
    assert_eq!(timeline_pairs(&all), 93);
    assert_eq!(all["stats"]["cache_by_derivative"]["tablet"]["miss"], 30);
    let page = std::fs::read_to_string(h.join("all.html")).unwrap();
    assert!(page.contains("id=\"chart-cache\"") && page.contains("id=\"chart-timeline\""));

    // Rendering a merged summary again gives the same Markdown.
    let out = run(prewarm(h).args(["report", "render", &s("all.json"), "--markdown", &s("again.md")]));
    assert!(out.status.success());
    assert_eq!(
        std::fs::read_to_string(h.join("again.md")).unwrap(),
        std::fs::read_to_string(h.join("all.md")).unwrap()
    );

    // Shards that do not make one whole are refused, naming what is wrong.
    let merge = |inputs: &[String], extra: &[&str]| {
        let out = run(prewarm(h).args(["report", "merge"]).args(inputs).args(["-o", &s("part.json")]).args(extra));
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, err) = merge(&[s("s0.json"), s("s0.json")], &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("s0.json and") && err.contains("merge each run once"), "{err}");
    // A summary holding runs already given (here: the merged one) is refused too.
    let (code, err) = merge(&[s("all.json"), s("s1.json")], &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("merge each run once"), "{err}");
    let (code, err) = merge(&[s("s1.json")], &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("missing shard 0/2;"), "{err}");
    assert!(err.contains("--allow-missing"), "{err}");
    warm(&server, h, &["--shard", "1/3", "--results", &s("r3.jsonl"), "--report", &s("s3.json")]);
    let (code, err) = merge(&[s("s0.json"), s("s3.json")], &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("s3.json") && err.contains("different shard count"), "{err}");
    let (code, err) = merge(&[s("s1.json")], &["--allow-missing", "--markdown", &s("part.md")]);
    assert_eq!(code, Some(0), "{err}");
    let part: Value = serde_json::from_slice(&std::fs::read(h.join("part.json")).unwrap()).unwrap();
    assert_eq!(part["missing_shards"], serde_json::json!(["0/2"]));
    assert!(std::fs::read_to_string(h.join("part.md")).unwrap().contains("**Missing shards**"));
    assert!(err.contains("missing shards (merged with --allow-missing): 0/2"), "{err}");

    let bad = h.join("bad.json");
    std::fs::write(&bad, "{}").unwrap();
    let out = run(prewarm(h).args(["report", "merge", &s("s0.json"), bad.to_str().unwrap(), "-o", &s("x.json")]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.json"));
}
