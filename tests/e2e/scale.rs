//! Long runs at scale, against a slow loopback nginx (echo module): live
//! `/metrics` scraped while pairs are in flight; `-v --log-format json`
//! whose every stderr line parses; `list --newer-than` from a saved
//! listing's ModTime and from real rclone (`--max-age`); `--max-failures`
//! stopping a run that only gets 404s; `.jsonl.zst` results resumed
//! (requests counted at the server); and a run killed -9 while it uploads a
//! checkpoint every second, resumed in another directory from the upload.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use prewarm_e2e::slow_nginx::SlowNginx;
use serde_json::Value;

/// A JSON-lines listing of `n` objects `v/cNNN.mp4`, with `ModTime` when given.
fn listing(path: &Path, n: usize, mod_time: impl Fn(usize) -> Option<String>) {
    let mut text = String::new();
    for i in 0..n {
        let mut entry = serde_json::json!({ "Path": format!("v/c{i:03}.mp4"), "Size": 1000 });
        if let Some(t) = mod_time(i) {
            entry["ModTime"] = t.into();
        }
        text.push_str(&format!("{entry}\n"));
    }
    std::fs::write(path, text).unwrap();
}

/// `prewarm warm` of `listing` through `base` with the template plugin, one derivative.
fn warm(home: &Path, listing: &Path, base: &str) -> Command {
    let mut cmd = prewarm_e2e::prewarm(home);
    cmd.args(["warm", "--plugin", "template", "--base-url", base, "--set", "url={base}/{path}"])
        .args(["--derivatives", "desktop", "--progress", "never", "--listing"])
        .arg(listing);
    cmd
}

fn spawn(cmd: &mut Command) -> Child {
    cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()
}

/// GET http://127.0.0.1:PORT/PATH: status line and body.
fn get(port: u16, path: &str) -> Option<(String, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    Some((head.lines().next()?.to_string(), body.to_string()))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The sum of a metric's samples on a /metrics page.
fn metric(page: &str, name: &str) -> Option<f64> {
    let lines = page.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).ok()?;
    let samples: Vec<f64> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter_map(|s| match s.value {
            prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Counter(v) => Some(v),
            _ => None,
        })
        .collect();
    (!samples.is_empty()).then(|| samples.iter().sum())
}

#[test]
fn metrics_are_served_mid_run_and_json_logs_parse_line_by_line() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let server = SlowNginx::start(&h.join("nginx"), Duration::from_millis(500)).unwrap();
    listing(&h.join("l.jsonl"), 200, |_| None);
    let port = free_port();
    let mut child = spawn(
        warm(h, &h.join("l.jsonl"), &server.slow_url)
            .arg("-v")
            .args(["--log-format", "json", "--concurrency", "40", "--results"])
            .arg(h.join("r.jsonl"))
            .args(["--metrics-listen", &format!("127.0.0.1:{port}")]),
    );
    // 200 pairs, 40 at a time, half a second each: about 2.5 s of pairs in flight.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = None;
    while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
        if let Some((status, page)) = get(port, "/metrics")
            && metric(&page, "prewarm_pairs_in_flight").is_some_and(|n| n > 0.0)
            && metric(&page, "prewarm_pairs_total").is_some()
        {
            seen = Some((status, page));
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, page) = seen.expect("a scrape with pairs in flight and pairs done before the run ended");
    assert_eq!(status, "HTTP/1.1 200 OK");
    let in_flight = metric(&page, "prewarm_pairs_in_flight").unwrap();
    assert!(in_flight <= 40.0, "{page}");
    let done = metric(&page, "prewarm_pairs_total").unwrap();
    assert!((1.0..200.0).contains(&done), "mid-run: {done} pairs done\n{page}");
    assert!(page.contains("prewarm_pairs_in_flight{derivative=\"desktop\"}"), "{page}");
    for name in ["prewarm_requests_total", "prewarm_pairs_per_second", "prewarm_size_check_bytes_total"] {
        assert!(metric(&page, name).is_some(), "{name} missing:\n{page}");
    }
    assert_eq!(get(port, "/other").unwrap().0, "HTTP/1.1 404 Not Found");

    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0), "{stderr}");
    let lines: Vec<Value> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}")))
        .collect();
    assert!(!lines.is_empty());
    for l in &lines {
        for key in ["time", "level", "target", "message", "fields"] {
            assert!(!l[key].is_null(), "{key} missing from {l}");
        }
    }
    assert!(lines.iter().any(|l| l["message"].as_str().unwrap().contains("200 pairs")), "{stderr}");
    // The port is closed with the run.
    assert!(get(port, "/metrics").is_none());
}

#[test]
fn list_newer_than_reads_the_modtime_of_a_saved_listing_and_asks_rclone() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let path = h.join("l.jsonl");
    // Half modified long ago, half in the future (in other offsets too).
    listing(&path, 400, |i| {
        Some(if i % 2 == 1 { "2020-01-01T00:00:00Z" } else { "2099-01-01T02:00:00.123456789+02:00" }.into())
    });
    let list = |extra: &[&str], listing: &Path| {
        let mut cmd = prewarm_e2e::prewarm(h);
        cmd.args(["list", "--json", "--listing"]).arg(listing).args(extra);
        prewarm_e2e::run(&mut cmd)
    };
    let objects = |out: &std::process::Output| -> Vec<String> {
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["objects"].as_array().unwrap().iter().map(|o| o["path"].as_str().unwrap().to_string()).collect()
    };
    let out = list(&["--newer-than", "30d"], &path);
    assert_eq!(out.status.code(), Some(0));
    let newer = objects(&out);
    assert_eq!(newer.len(), 200);
    assert!(newer.iter().all(|p| p[3..6].parse::<usize>().unwrap() % 2 == 0), "{newer:?}");
    assert_eq!(objects(&list(&["--newer-than", "2019-12-31"], &path)).len(), 400);
    assert_eq!(objects(&list(&["--newer-than", "2020-01-01T00:00:01Z"], &path)).len(), 200);

    // A listing without ModTime cannot answer: a usage error naming it.
    let bare = h.join("bare.jsonl");
    listing(&bare, 3, |_| None);
    let out = list(&["--newer-than", "30d"], &bare);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("line 1") && err.contains("--newer-than needs each object's ModTime"), "{err}");
    let out = list(&["--newer-than", "yesterday"], &path);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--newer-than: `yesterday` is neither a duration"));

    // A remote: rclone lists with ModTime and --max-age, one stream.
    let media = h.join("media");
    std::fs::create_dir_all(&media).unwrap();
    for i in 0..6 {
        std::fs::write(media.join(format!("v{i}.mp4")), b"v").unwrap();
    }
    for i in 0..4 {
        let status = Command::new("touch").args(["-d", "2020-01-01"]).arg(media.join(format!("v{i}.mp4"))).status();
        assert!(status.unwrap().success());
    }
    let mut cmd = prewarm_e2e::prewarm(h);
    cmd.args(["list", "--json", "--newer-than", "1h", "--source"]).arg(&media);
    let out = prewarm_e2e::run(&mut cmd);
    assert_eq!(out.status.code(), Some(0));
    let mut recent = objects(&out);
    recent.sort();
    assert_eq!(recent, ["v4.mp4", "v5.mp4"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"]["rclone_processes"], 2, "version check + one lsjson stream");
}

#[test]
fn max_failures_stops_a_run_that_only_gets_404s() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let server = SlowNginx::start(&h.join("nginx"), Duration::from_millis(500)).unwrap();
    listing(&h.join("l.jsonl"), 5000, |_| None);
    let results = h.join("r.jsonl");
    let out = prewarm_e2e::run(
        warm(h, &h.join("l.jsonl"), &server.missing_url)
            .args(["--max-failures", "50", "--concurrency", "8", "--report"])
            .arg(h.join("s.json"))
            .arg("--markdown")
            .arg(h.join("s.md"))
            .arg("--results")
            .arg(&results),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    let line = err.lines().find(|l| l.contains("stopped after")).expect("the reason line");
    assert!(line.contains(": not_found (HTTP 404) for http://127.0.0.1:"), "{line}");
    let records = prewarm_e2e::read_results(&results);
    assert!(records.len() >= 50 && records.len() < 500, "{} records", records.len());
    let failed = records.iter().filter(|r| r["outcome"] == "failed").count();
    assert!(failed >= 50 && records.iter().all(|r| r["outcome"] == "failed" || r["error_kind"] == "stopped"));
    // Every pair that reached the server is recorded failed, once; the ones
    // recorded stopped never reached it.
    assert_eq!(server.requests().len(), failed);
    let unique: HashSet<&str> = records.iter().map(|r| r["path"].as_str().unwrap()).collect();
    assert_eq!(unique.len(), records.len(), "one record per pair");
    let summary: Value = serde_json::from_slice(&std::fs::read(h.join("s.json")).unwrap()).unwrap();
    assert!(summary["runs"][0]["stopped"].as_str().unwrap().starts_with("stopped after"));
    let markdown = std::fs::read_to_string(h.join("s.md")).unwrap();
    assert!(markdown.contains("stopped after") && markdown.contains("--max-failures stopped the run"), "{markdown}");

    // A share: stopped once 100 pairs are in and at least 20% failed.
    let out = prewarm_e2e::run(
        warm(h, &h.join("l.jsonl"), &server.missing_url)
            .args(["--max-failures", "20%", "--concurrency", "8", "--overwrite", "--results"])
            .arg(&results),
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("(--max-failures 20%): not_found"));
    assert!(prewarm_e2e::read_results(&results).len() < 500);
}

#[test]
fn zstd_results_are_written_and_resumed() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let server = SlowNginx::start(&h.join("nginx"), Duration::from_millis(50)).unwrap();
    listing(&h.join("l.jsonl"), 400, |_| None);
    let results = h.join("r.jsonl.zst");
    let run = |limit: &str, resume: bool| {
        let mut cmd = warm(h, &h.join("l.jsonl"), &server.slow_url);
        cmd.args(["--concurrency", "100", "--limit", limit, "--results"]).arg(&results);
        if resume {
            cmd.arg("--resume");
        }
        prewarm_e2e::run(&mut cmd).status.code()
    };
    assert_eq!(run("100", false), Some(0));
    assert_eq!(&std::fs::read(&results).unwrap()[..4], &[0x28, 0xb5, 0x2f, 0xfd], "zstd magic");
    let first = prewarm_e2e::read_results(&results);
    assert_eq!(first.len(), 100);
    assert!(first.iter().all(|r| r["outcome"] == "warm"));
    assert_eq!(server.requests().len(), 100);

    assert_eq!(run("150", true), Some(0));
    assert_eq!(server.requests().len(), 150, "the 100 warm pairs were not asked again");
    let all = prewarm_e2e::read_results(&results);
    assert_eq!(all.len(), 150);
    let unique: HashSet<&str> = all.iter().map(|r| r["path"].as_str().unwrap()).collect();
    assert_eq!(unique.len(), 150);
}

/// The pairs of a results file (uploaded checkpoint, or local with a line
/// torn by the kill).
fn pairs(path: &Path) -> HashSet<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|r| r["path"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_run_killed_while_checkpointing_resumes_elsewhere_from_its_upload() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let server = SlowNginx::start(&h.join("nginx"), Duration::from_millis(500)).unwrap();
    listing(&h.join("l.jsonl"), 400, |_| None);
    let (up, run1, run2) = (h.join("up"), h.join("run1"), h.join("run2"));
    for d in [&up, &run1, &run2] {
        std::fs::create_dir_all(d).unwrap();
    }
    // Each run under its own base path, so the server's log tells their requests apart.
    let pod = |dir: &Path, concurrency: &str| {
        let base = format!("{}/{}", server.slow_url, dir.file_name().unwrap().to_string_lossy());
        let mut cmd = warm(h, &h.join("l.jsonl"), &base);
        cmd.current_dir(dir)
            .args(["--concurrency", concurrency, "--results", "run.jsonl", "--report", "run.json", "--resume"])
            .arg("--upload")
            .arg(&up)
            .args(["--checkpoint-every", "1s"]);
        cmd
    };
    // 20 at a time, half a second each: 40 pairs a second.
    let mut child = spawn(&mut pod(&run1, "20"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while pairs(&up.join("run.jsonl")).len() < 100 {
        assert!(Instant::now() < deadline && child.try_wait().unwrap().is_none(), "no checkpoint of 100 pairs");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap(); // SIGKILL, with an upload every second
    child.wait().unwrap();
    let recorded = pairs(&run1.join("run.jsonl"));
    let checkpoint = pairs(&up.join("run.jsonl"));
    assert!(checkpoint.is_subset(&recorded));
    // What the checkpoint misses: about a second of pairs (plus one upload).
    assert!(recorded.len() - checkpoint.len() <= 60, "{} recorded, {} checkpointed", recorded.len(), checkpoint.len());
    let summary: Value = serde_json::from_slice(&std::fs::read(up.join("run.json")).unwrap()).unwrap();
    assert!(summary["stats"]["pairs"].as_u64().unwrap() >= 60, "the summary so far went up too");

    let out = prewarm_e2e::run(&mut pod(&run2, "100"));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    // Exactly the pairs the checkpoint did not hold were asked again.
    let again: Vec<String> =
        server.requests().iter().filter_map(|u| u.strip_prefix("/run2/")).map(String::from).collect();
    let asked: HashSet<String> = again.iter().cloned().collect();
    assert_eq!(again.len(), 400 - checkpoint.len());
    assert!(asked.is_disjoint(&checkpoint));
    let results = prewarm_e2e::read_results(&run2.join("run.jsonl"));
    assert_eq!(results.len(), 400);
    assert!(results.iter().all(|r| r["outcome"] == "warm"));
    // The resumed run's summary covers the whole results file: report merge stays exact.
    let summary: Value = serde_json::from_slice(&std::fs::read(run2.join("run.json")).unwrap()).unwrap();
    assert_eq!(summary["stats"]["pairs"], 400);
    assert_eq!(summary["stats"]["outcomes"]["warm"], 400);
    let mut names: Vec<String> =
        std::fs::read_dir(&up).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, ["run.json", "run.jsonl"], "no temporary name left at the destination");
    assert_eq!(std::fs::read(up.join("run.jsonl")).unwrap(), std::fs::read(run2.join("run.jsonl")).unwrap());
}

/// Shards that share one results name would resume each other's files and
/// count each other's pairs: the second is refused, its file untouched.
#[test]
fn resume_refuses_another_shards_results() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let server = SlowNginx::start(&h.join("nginx"), Duration::from_millis(1)).unwrap();
    listing(&h.join("l.jsonl"), 40, |_| None);
    let results = h.join("shard.jsonl");
    let shard = |s: &str| {
        let mut cmd = warm(h, &h.join("l.jsonl"), &server.slow_url);
        cmd.args(["--shard", s, "--resume", "--results"]).arg(&results);
        prewarm_e2e::run(&mut cmd)
    };
    assert_eq!(shard("0/2").status.code(), Some(0));
    let before = std::fs::read(&results).unwrap();
    let out = shard("1/2");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("another shard than 1/2") && err.trim().lines().count() == 1, "{err}");
    assert_eq!(std::fs::read(&results).unwrap(), before, "the other shard's file was changed");
    // The shard's own file resumes as before.
    assert_eq!(shard("0/2").status.code(), Some(0));
}
