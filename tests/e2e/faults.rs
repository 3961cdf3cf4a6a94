//! Faults a real server cannot be made to show, from the scripted server:
//! each ends in the right outcome with the right attempt count, and the
//! results always hold exactly objects × derivatives lines.

use std::path::Path;

use prewarm_e2e::fault_server::{BODY_LEN, FaultServer};
use prewarm_e2e::{read_results, record, run, warm_listing};
use serde_json::Value;

pub(crate) const DERIVATIVES: &[&str] = &["mobile", "tablet"];

/// Warm `objects` (scenario paths) against the fault server; return the
/// results and the exit code.
pub(crate) fn warm(server: &FaultServer, home: &Path, objects: &[&str], extra: &[&str]) -> (Vec<Value>, Option<i32>) {
    let entries: Vec<(&str, u64)> = objects.iter().map(|o| (*o, 50_000u64)).collect();
    let results = home.join("results.jsonl");
    let out = run(warm_listing(home, &server.url, &entries)
        .args([
            "--derivatives",
            &DERIVATIVES.join(","),
            "--retries",
            "2",
            "--header-timeout",
            "500ms",
            "--timeout",
            "2s",
        ])
        .args(["--concurrency", "4", "--capabilities-cache"])
        .arg(home.join("caps.json"))
        // Each call is a new run into the same file.
        .args(["--overwrite", "--results"])
        .arg(&results)
        .args(extra));
    let results = read_results(&results);
    assert_eq!(results.len(), objects.len() * DERIVATIVES.len(), "every pair gets exactly one line");
    (results, out.status.code())
}

pub(crate) fn check(r: &Value, outcome: &str, attempts: u64, kind: Option<&str>) {
    assert_eq!(r["outcome"], outcome, "{r}");
    assert_eq!(r["attempts"], attempts, "{r}");
    match kind {
        Some(k) => assert_eq!(r["error_kind"], k, "{r}"),
        None => assert!(r["error_kind"].is_null(), "{r}"),
    }
}

#[test]
fn transient_faults_recover_with_the_right_attempt_counts() {
    let server = FaultServer::start();
    let home = tempfile::tempdir().unwrap();
    let objects = [
        "ok/a.mp4",
        "reset-once/b.mp4",
        "fail-then-ok/c.mp4",
        "rate-limited/d.mp4",
        "pending/e.mp4",
        "slow-body/f.mp4",
    ];
    let (results, code) = warm(&server, home.path(), &objects, &[]);
    assert_eq!(code, Some(0));
    for d in DERIVATIVES {
        check(record(&results, "ok/a.mp4", d), "warm", 1, None);
        check(record(&results, "reset-once/b.mp4", d), "warm", 2, None);
        check(record(&results, "fail-then-ok/c.mp4", d), "warm", 2, None);
        check(record(&results, "rate-limited/d.mp4", d), "warm", 2, None);
        check(record(&results, "pending/e.mp4", d), "warm", 3, None);
        let slow = record(&results, "slow-body/f.mp4", d);
        check(slow, "warm", 1, None);
        assert!(slow["total_ms"].as_f64().unwrap() >= 400.0 && slow["ttfb_ms"].as_f64().unwrap() < 400.0, "{slow}");
        assert_eq!(slow["bytes_read"], BODY_LEN);
        assert_eq!(slow["size"], BODY_LEN);
    }
    // The 429's Retry-After (1 s) held the request back.
    let rl = record(&results, "rate-limited/d.mp4", "mobile");
    assert!(rl["elapsed_ms"].as_f64().unwrap() >= 1000.0, "{rl}");
}

#[test]
fn permanent_faults_fail_with_their_kind() {
    let server = FaultServer::start();
    let home = tempfile::tempdir().unwrap();
    let objects = ["slow-headers/a.mp4", "truncated/b.mp4", "reset-always/c.mp4", "not-found/d.mp4"];
    let (results, code) = warm(&server, home.path(), &objects, &[]);
    assert_eq!(code, Some(3), "some pairs failed");
    for d in DERIVATIVES {
        check(record(&results, "slow-headers/a.mp4", d), "failed", 3, Some("timeout"));
        check(record(&results, "truncated/b.mp4", d), "failed", 3, Some("truncated"));
        check(record(&results, "reset-always/c.mp4", d), "failed", 3, Some("truncated"));
        let nf = record(&results, "not-found/d.mp4", d);
        check(nf, "failed", 1, Some("not_found"));
        assert_eq!(nf["status"], 404);
    }
    assert_eq!(server.count("GET", "/not-found/d.mp4?w=854"), 1, "a 404 is not retried");
}

#[test]
fn protocol_errors_are_retried_once_and_a_record_tells_its_last_attempt() {
    let server = FaultServer::start();
    let home = tempfile::tempdir().unwrap();
    let objects = ["malformed/a.mp4", "bad-chunk/b.mp4", "fail-then-reset/c.mp4"];
    let (results, code) = warm(&server, home.path(), &objects, &[]);
    assert_eq!(code, Some(3), "some pairs failed");
    for d in DERIVATIVES {
        // The same broken answer every time: one retry, not --retries 2.
        let malformed = record(&results, "malformed/a.mp4", d);
        check(malformed, "failed", 2, Some("protocol_error"));
        assert!(malformed["status"].is_null(), "{malformed}");
        let chunk = record(&results, "bad-chunk/b.mp4", d);
        check(chunk, "failed", 2, Some("protocol_error"));
        assert_eq!(chunk["status"], 200, "{chunk}");
        // A 503, then no answer: status and TTFB are the last attempt's
        // (none), as its error is.
        let reset = record(&results, "fail-then-reset/c.mp4", d);
        check(reset, "failed", 3, Some("connection_error"));
        assert!(reset["status"].is_null() && reset["ttfb_ms"].is_null(), "{reset}");
        assert_eq!(reset["resent"], 0, "{reset}");
    }
}

#[test]
fn pending_that_never_ends_is_reported_pending() {
    let server = FaultServer::start();
    let home = tempfile::tempdir().unwrap();
    let (results, code) = warm(&server, home.path(), &["pending/x.mp4"], &["--max-polls", "1"]);
    assert_eq!(code, Some(3));
    for d in DERIVATIVES {
        check(record(&results, "pending/x.mp4", d), "pending", 2, Some("still_pending"));
    }
}

#[test]
fn size_methods_fall_back_and_capabilities_are_remembered() {
    let server = FaultServer::start();
    let home = tempfile::tempdir().unwrap();
    // HEAD answered 405: fall back to Range, which this path supports.
    let (results, code) = warm(
        &server,
        home.path(),
        &["no-head/a.mp4", "no-head/b.mp4"],
        &["--set", "size-methods=head,range,full-body", "--set", "body=headers-only", "--concurrency", "1"],
    );
    assert_eq!(code, Some(0));
    for r in &results {
        assert_eq!(r["size"], BODY_LEN, "{r}");
        assert_eq!(r["size_method"], "range", "{r}");
        assert_eq!(r["size_check_bytes"], 1, "{r}");
    }
    assert_eq!(server.total("HEAD"), 1, "HEAD probed once per host, then skipped");
    let caps: Value = serde_json::from_slice(&std::fs::read(home.path().join("caps.json")).unwrap()).unwrap();
    let host = caps.as_object().unwrap().values().next().unwrap();
    assert_eq!(host["head"], false);
    assert_eq!(host["range"], true);

    // The next run reads the remembered capabilities: no HEAD at all.
    let (_, code) = warm(
        &server,
        home.path(),
        &["no-head/c.mp4"],
        &["--set", "size-methods=head,range,full-body", "--set", "body=headers-only"],
    );
    assert_eq!(code, Some(0));
    assert_eq!(server.total("HEAD"), 1, "capabilities not reused across runs");
}

#[test]
fn range_ignored_falls_back_to_a_counted_body() {
    let server = FaultServer::start();
    let home = tempfile::tempdir().unwrap();
    let (results, code) = warm(
        &server,
        home.path(),
        &["no-range/a.mp4"],
        &["--set", "size-methods=head,range,full-body", "--set", "body=headers-only", "--concurrency", "1"],
    );
    assert_eq!(code, Some(0));
    for r in &results {
        assert_eq!(r["size"], BODY_LEN, "{r}");
        assert_eq!(r["size_method"], "full-body", "{r}");
        // One full GET counted; the ignored Range's body was not read.
        assert_eq!(r["size_check_bytes"], BODY_LEN, "{r}");
    }
    let caps: Value = serde_json::from_slice(&std::fs::read(home.path().join("caps.json")).unwrap()).unwrap();
    assert_eq!(caps.as_object().unwrap().values().next().unwrap()["range"], false);
}

#[test]
fn rate_cap_and_many_objects_keep_one_line_per_pair() {
    let server = FaultServer::start();
    let home = tempfile::tempdir().unwrap();
    let objects: Vec<String> = (0..60).map(|i| format!("ok/dir {}/clip {i}.mp4", i % 7)).collect();
    let refs: Vec<&str> = objects.iter().map(String::as_str).collect();
    let (results, code) = warm(&server, home.path(), &refs, &["--rate", "400", "--concurrency", "8", "--threads", "1"]);
    assert_eq!(code, Some(0));
    assert!(results.iter().all(|r| r["outcome"] == "warm"));
    assert_eq!(server.total("GET"), 120);
}

#[test]
fn redirects_are_followed_and_bad_urls_fail_without_retries() {
    let server = FaultServer::start();
    let home = tempfile::tempdir().unwrap();
    let (results, code) = warm(&server, home.path(), &["redirect/a.mp4"], &[]);
    assert_eq!(code, Some(0));
    for d in DERIVATIVES {
        let r = record(&results, "redirect/a.mp4", d);
        check(r, "warm", 2, None);
        assert_eq!(r["size"], BODY_LEN);
    }
    assert_eq!(server.total("GET"), 4, "one redirect and one fetch per pair");

    let entries = [("x.mp4", 1u64)];
    let out = run(warm_listing(home.path(), "http://127.0.0.1:9", &entries)
        .args(["--set", "url=http://[::1/{path}", "--results"])
        .arg(home.path().join("bad.jsonl")));
    assert_eq!(out.status.code(), Some(3));
    let bad = read_results(&home.path().join("bad.jsonl"));
    assert_eq!(bad.len(), 3);
    assert!(bad.iter().all(|r| r["error_kind"] == "plan" && r["attempts"] == 0), "{bad:?}");
}
