//! Reading every CDN's answer right (issue 11), end to end against the
//! scripted server answering exactly as CDNs and origins do in public bug
//! reports: cache state by each header's grammar, sizes that are not sizes,
//! keys a URL cannot address, and listings with duplicate paths.

use prewarm_e2e::fault_server::{BODY_LEN, FaultServer};
use prewarm_e2e::{prewarm, read_results, record, run, write_listing};
use serde_json::Value;

use crate::faults::{DERIVATIVES, check, warm};

#[test]
fn rfc9211_cache_status_is_read_from_the_cache_that_answered() {
    let server = FaultServer::start();
    let home = tempfile::tempdir().unwrap();
    let (results, code) = warm(&server, home.path(), &["cache-tiers/a.mp4", "cloudfront/b.mp4"], &[]);
    assert_eq!(code, Some(0));
    for d in DERIVATIVES {
        let r = record(&results, "cache-tiers/a.mp4", d);
        // The shield hit, but EdgeCDN (the last member) answered: a miss.
        assert_eq!(r["cache"], "miss", "{r}");
        assert_eq!(r["cache_tiers"], serde_json::json!(["hit", "miss"]), "{r}");
        assert!(r["cache_status"].as_str().unwrap().contains("EdgeCDN"), "{r}");
        let cf = record(&results, "cloudfront/b.mp4", d);
        assert_eq!(cf["cache"], "hit", "{cf}");
        assert_eq!(cf["cache_status"], "RefreshHit from cloudfront");
    }
}

#[test]
fn a_zero_length_is_not_a_size() {
    let server = FaultServer::start();
    let home = tempfile::tempdir().unwrap();
    // No full-body method: the chunked warm answer gives no size, HEAD says
    // 0, the Range total is the size.
    let (results, code) =
        warm(&server, home.path(), &["zero-head/a.mp4"], &["--set", "size-methods=warm-content-length,head,range"]);
    assert_eq!(code, Some(0));
    for d in DERIVATIVES {
        let r = record(&results, "zero-head/a.mp4", d);
        assert_eq!(r["size"], 5_242_880, "{r}");
        assert_eq!(r["size_method"], "range", "{r}");
        assert_eq!(r["size_check_bytes"], 1, "{r}");
    }
}

#[test]
fn a_body_read_whole_is_the_size_without_a_probe() {
    let server = FaultServer::start();
    let home = tempfile::tempdir().unwrap();
    let objects: Vec<String> = (0..10).map(|i| format!("chunked/{i}.mp4")).collect();
    let refs: Vec<&str> = objects.iter().map(String::as_str).collect();
    let (results, code) = warm(&server, home.path(), &refs, &[]);
    assert_eq!(code, Some(0));
    for r in &results {
        assert_eq!(r["size"], BODY_LEN, "{r}");
        assert_eq!(r["size_method"], "full-body", "{r}");
        assert_eq!(r["size_check_bytes"], 0, "{r}");
    }
    // One round trip per pair: the warm GET, nothing else.
    assert_eq!(server.total("GET"), refs.len() as u32 * 2);
    assert_eq!(server.total("HEAD"), 0);
}

#[test]
fn a_head_without_a_length_is_remembered_like_a_refusal() {
    let server = FaultServer::start();
    let home = tempfile::tempdir().unwrap();
    let headers_only = ["--set", "body=headers-only", "--set", "size-methods=head,range", "--concurrency", "1"];
    let (results, code) = warm(&server, home.path(), &["chunked/a.mp4", "chunked/b.mp4"], &headers_only);
    assert_eq!(code, Some(0));
    // chunked has no Range support either: no size, and it says so.
    assert!(results.iter().all(|r| r["size"].is_null()), "{results:?}");
    assert_eq!(server.total("HEAD"), 1, "HEAD asked once per host, then remembered as telling nothing");
    let caps: Value = serde_json::from_slice(&std::fs::read(home.path().join("caps.json")).unwrap()).unwrap();
    assert_eq!(caps.as_object().unwrap().values().next().unwrap()["head_length"], false);
}

#[test]
fn an_ignored_range_gives_its_length_and_an_unknown_total_marks_nothing() {
    let server = FaultServer::start();
    let home = tempfile::tempdir().unwrap();
    let only_range = ["--set", "body=headers-only", "--set", "size-methods=range", "--concurrency", "1"];
    let (results, code) = warm(&server, home.path(), &["range-200/a.mp4"], &only_range);
    assert_eq!(code, Some(0));
    for r in &results {
        assert_eq!(r["size"], BODY_LEN, "{r}");
        assert_eq!(r["size_method"], "range", "{r}");
        assert_eq!(r["size_check_bytes"], 0, "the ignored Range's body is not read: {r}");
    }

    let other = tempfile::tempdir().unwrap();
    let (results, code) = warm(&server, other.path(), &["unknown-total/a.mp4", "unknown-total/b.mp4"], &only_range);
    assert_eq!(code, Some(0));
    assert!(results.iter().all(|r| r["size"].is_null()), "{results:?}");
    // Four warm GETs and four Range GETs: every pair asked, since
    // `bytes 0-0/*` is about that URL, not the host.
    let asked: u32 = server.counts().iter().filter(|(k, _)| k.contains("unknown-total")).map(|(_, n)| n).sum();
    assert_eq!(asked, 8, "{:?}", server.counts());
    let caps: Value = serde_json::from_slice(&std::fs::read(other.path().join("caps.json")).unwrap()).unwrap();
    assert_ne!(caps.as_object().unwrap().values().next().unwrap()["range"], false);
}

#[test]
fn keys_a_url_cannot_address_fail_and_plus_is_encoded() {
    let server = FaultServer::start();
    let home = tempfile::tempdir().unwrap();
    let keys = [
        "ok/x/../real.mp4",
        "ok/./real.mp4",
        "ok/2026/1//x.mp4",
        "ok/promo/sale #2 (50%+off)?.mp4",
        "ok/y/%2e%2e/pct.mp4",
    ];
    let (results, code) = warm(&server, home.path(), &keys, &[]);
    assert_eq!(code, Some(3), "the unaddressable keys fail the run");
    for d in DERIVATIVES {
        for bad in &keys[..2] {
            let r = record(&results, bad, d);
            check(r, "failed", 0, Some("unaddressable"));
            assert!(r["error"].as_str().unwrap().contains(bad), "the error names the key: {r}");
        }
        check(record(&results, "ok/2026/1//x.mp4", d), "warm", 1, None);
        check(record(&results, "ok/promo/sale #2 (50%+off)?.mp4", d), "warm", 1, None);
        // A literal `%2e%2e` in a key is sent encoded, not as a dot segment.
        check(record(&results, "ok/y/%2e%2e/pct.mp4", d), "warm", 1, None);
    }
    let counts = server.counts();
    assert!(!counts.keys().any(|k| k.contains("real.mp4")), "nothing requested for them: {counts:?}");
    assert_eq!(server.count("GET", "/ok/2026/1//x.mp4?w=854"), 1, "{counts:?}");
    assert_eq!(server.count("GET", "/ok/promo/sale%20%232%20(50%25%2Boff)%3F.mp4?w=854"), 1, "{counts:?}");
    assert_eq!(server.count("GET", "/ok/y/%252e%252e/pct.mp4?w=854"), 1, "{counts:?}");
}

#[test]
fn a_path_listed_twice_is_one_pair_and_counted() {
    let server = FaultServer::start();
    let home = tempfile::tempdir().unwrap();
    let listing = home.path().join("dupes.json");
    write_listing(&listing, &[("ok/a.mp4", 10), ("ok/b.mp4", 20), ("ok/a.mp4", 30), ("ok/a.mp4", 10)]);
    let results = home.path().join("r.jsonl");
    let report = home.path().join("s.json");
    let out = run(prewarm(home.path())
        .args(["warm", "--plugin", "template", "--base-url", &server.url, "--derivatives", "mobile"])
        .args(["--set", "url={base}/{path}?w={width}", "--progress", "never", "--listing"])
        .arg(&listing)
        .arg("--results")
        .arg(&results)
        .arg("--report")
        .arg(&report));
    assert_eq!(out.status.code(), Some(0));
    let rows = read_results(&results);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(record(&rows, "ok/a.mp4", "mobile")["original_size"], 10, "the first entry wins");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("listed more than once").count(), 1, "warned once: {stderr}");
    let summary: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(summary["runs"][0]["duplicates"], 2, "{}", summary["runs"][0]);
    assert_eq!(server.count("GET", "/ok/a.mp4?w=854"), 1);
}
