//! The first-party plugins against a loopback server answering as each
//! vendor documents (`prewarm_e2e::vendor_server`): every `Cf-Resized`
//! code ends with its outcome and attempt count, the URL Cloudflare
//! receives is the one its docs describe, options are checked before any
//! request, and the video-resizer Worker's own answers (another
//! derivative, 202s, its JSON 502, v1's headers, the durable store) read
//! the way the Worker means them.

use std::path::Path;

use prewarm_e2e::vendor_server::{DERIVATIVE_LEN, SOURCE_LEN, VendorServer};
use prewarm_e2e::{prewarm, read_results, record, run, write_listing};
use serde_json::Value;

/// `prewarm warm --plugin PLUGIN` over `objects` against `base`, one line
/// per pair expected; returns the results, the exit code and stderr.
fn warm(
    home: &Path,
    plugin: &str,
    base: &str,
    objects: &[(&str, u64)],
    extra: &[&str],
) -> (Vec<Value>, Option<i32>, String) {
    let listing = home.join("listing.json");
    write_listing(&listing, objects);
    let results = home.join("results.jsonl");
    let _ = std::fs::remove_file(&results);
    let out = run(prewarm(home)
        .args(["warm", "--plugin", plugin, "--base-url", base, "--progress", "never", "--retries", "2"])
        .args(["--concurrency", "8", "--timeout", "10s", "--listing"])
        .arg(&listing)
        .arg("--results")
        .arg(&results)
        .args(extra));
    (read_results(&results), out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn check(r: &Value, outcome: &str, attempts: u64, kind: Option<&str>) {
    assert_eq!(r["outcome"], outcome, "{r}");
    assert_eq!(r["attempts"], attempts, "{r}");
    match kind {
        Some(k) => assert_eq!(r["error_kind"], k, "{r}"),
        None => assert!(r["error_kind"].is_null(), "{r}"),
    }
}

#[test]
fn every_cf_resized_code_has_its_outcome_and_attempt_count() {
    let server = VendorServer::start();
    let home = tempfile::tempdir().unwrap();
    let n = SOURCE_LEN as u64;
    let cases: &[(&str, &str, u64, Option<&str>)] = &[
        ("err-9504", "failed", 3, Some("server_error")),
        ("err-9509", "failed", 3, Some("server_error")),
        ("err-9517", "failed", 3, Some("server_error")),
        ("err-9523", "failed", 3, Some("server_error")),
        ("err-9504-once", "warm", 2, None),
        ("err-9523-once", "warm", 2, None),
        ("err-9404", "failed", 1, Some("not_found")),
        ("err-9408", "failed", 1, Some("forbidden")),
        ("err-9401", "failed", 1, Some("client_error")),
        ("err-9406", "failed", 1, Some("client_error")),
        ("err-9419", "failed", 1, Some("client_error")),
        ("err-9412", "failed", 1, Some("client_error")),
        ("err-9402", "failed", 1, Some("transform_error")),
    ];
    let paths: Vec<String> = cases.iter().map(|(sc, ..)| format!("cf/{sc}/a.mp4")).collect();
    let mut objects: Vec<(&str, u64)> = paths.iter().map(|p| (p.as_str(), n)).collect();
    // Over the limit (sent anyway with --ignore-limits): 9402 is the size.
    objects.push(("cf/err-9402/big.mp4", 150_000_000));
    let (results, code, _) =
        warm(home.path(), "cloudflare-media", &server.url, &objects, &["--derivatives", "mobile", "--ignore-limits"]);
    assert_eq!(code, Some(3), "some pairs failed");
    assert_eq!(results.len(), objects.len());
    for ((scenario, outcome, attempts, kind), path) in cases.iter().zip(&paths) {
        let r = record(&results, path, "mobile");
        check(r, outcome, *attempts, *kind);
        if *outcome == "failed" {
            let code = &scenario[4..8];
            assert!(r["error"].as_str().unwrap().contains(&format!("err={code}")), "{r}");
        }
    }
    let head_range = record(&results, "cf/err-9402/a.mp4", "mobile");
    assert!(head_range["error"].as_str().unwrap().contains("HEAD and Range"), "{head_range}");
    check(record(&results, "cf/err-9402/big.mp4", "mobile"), "failed", 1, Some("too_large"));
    // A missing source is asked for once.
    let target = format!("/cdn-cgi/media/width=854,height=640,fit=contain/{}/cf/err-9404/a.mp4", server.url);
    assert_eq!(server.count("GET", &target), 1, "{:?}", server.targets());
}

#[test]
fn the_source_is_a_full_url_and_the_prefix_sits_at_the_zone_root() {
    let server = VendorServer::start();
    let home = tempfile::tempdir().unwrap();
    let objects = [("cf/ok/a b.mp4", SOURCE_LEN as u64)];
    let mobile = ["--derivatives", "mobile"];
    let base = format!("{}/assets", server.url);

    let (results, code, _) = warm(home.path(), "cloudflare-media", &base, &objects, &mobile);
    assert_eq!(code, Some(0));
    let r = record(&results, "cf/ok/a b.mp4", "mobile");
    check(r, "warm", 1, None);
    assert_eq!(r["size"], DERIVATIVE_LEN);
    let full = format!("/cdn-cgi/media/width=854,height=640,fit=contain/{}/assets/cf/ok/a%20b.mp4", server.url);
    assert_eq!(server.count("GET", &full), 1, "{:?}", server.targets());

    // One value per option: `options` wins over the `fit` setting.
    let (_, code, _) = warm(
        home.path(),
        "cloudflare-media",
        &base,
        &objects,
        &[&mobile[..], &["--set", "options=fit=cover,duration=5s"]].concat(),
    );
    assert_eq!(code, Some(0));
    let cover =
        format!("/cdn-cgi/media/width=854,height=640,fit=cover,duration=5s/{}/assets/cf/ok/a%20b.mp4", server.url);
    assert_eq!(server.count("GET", &cover), 1, "{:?}", server.targets());

    // The absolute-path form, for sites whose pages request that URL.
    let (_, code, _) =
        warm(home.path(), "cloudflare-media", &base, &objects, &[&mobile[..], &["--set", "source-form=path"]].concat());
    assert_eq!(code, Some(0));
    assert_eq!(server.count("GET", "/cdn-cgi/media/width=854,height=640,fit=contain/assets/cf/ok/a%20b.mp4"), 1);
    assert!(
        server.targets().iter().all(|t| t.contains(" /cdn-cgi/media/")),
        "a request missed the zone root: {:?}",
        server.targets()
    );
}

#[test]
fn bad_options_are_refused_at_configure_before_any_request() {
    let server = VendorServer::start();
    let home = tempfile::tempdir().unwrap();
    let objects = [("cf/ok/a.mp4", SOURCE_LEN as u64)];
    for (set, names) in [
        ("options=mode=clip", "mode=clip"),
        ("options=time=11m", "time=11m"),
        ("options=duration=0s", "duration=0s"),
        ("options=audio=maybe", "audio=maybe"),
        ("options=format=gif,mode=frame", "format=gif"),
        ("options=mode=audio,audio=false", "audio=false"),
        ("options=width=5000", "width"),
        ("options=fit=cover,fit=contain", "`fit` is given twice"),
        ("options=colour=red", "`colour` is not a Media Transformations option"),
        ("origin=https://media.example.com/v?sig=1", "query"),
    ] {
        let (results, code, stderr) = warm(home.path(), "cloudflare-media", &server.url, &objects, &["--set", set]);
        assert_eq!(code, Some(2), "{set} accepted");
        assert!(stderr.contains(names), "{set}: {stderr}");
        assert!(results.is_empty(), "{set}: {results:?}");
    }
    assert!(server.targets().is_empty(), "a refused run sent requests: {:?}", server.targets());
}

#[test]
fn a_source_of_exactly_the_limit_is_too_large_and_chunked_sources_are_passthrough() {
    let server = VendorServer::start();
    let home = tempfile::tempdir().unwrap();
    let objects = [
        ("cf/ok/at-limit.mp4", 100_000_000),
        ("cf/ok/under-limit.mp4", 99_999_999),
        ("cf/chunked-source/c.mp4", SOURCE_LEN as u64),
        ("cf/source/s.mp4", SOURCE_LEN as u64),
    ];
    let (results, _, _) = warm(home.path(), "cloudflare-media", &server.url, &objects, &["--derivatives", "mobile"]);
    let at_limit = record(&results, "cf/ok/at-limit.mp4", "mobile");
    check(at_limit, "skipped", 0, Some("too_large"));
    // Both print as 95.4 MiB: the message shows exact bytes instead.
    assert_eq!(
        at_limit["error"],
        "source is 100,000,000 bytes, over the CDN's 99,999,999 bytes limit (use --ignore-limits to warm anyway)"
    );
    check(record(&results, "cf/ok/under-limit.mp4", "mobile"), "warm", 1, None);
    let chunked = record(&results, "cf/chunked-source/c.mp4", "mobile");
    check(chunked, "passthrough", 1, None);
    assert_eq!(chunked["bytes_read"], SOURCE_LEN);
    check(record(&results, "cf/source/s.mp4", "mobile"), "passthrough", 1, None);
    assert!(!server.targets().iter().any(|t| t.contains("at-limit")), "the at-limit source was sent");

    // A run that only skipped never reads "all warm": exit 3, the reason named.
    let (results, code, stderr) =
        warm(home.path(), "cloudflare-media", &server.url, &objects[..1], &["--derivatives", "mobile"]);
    check(&results[0], "skipped", 0, Some("too_large"));
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("not warm: 1 skipped") && stderr.contains("too_large 1"), "{stderr}");
}

#[test]
fn the_worker_serving_another_derivative_fails_naming_it() {
    let server = VendorServer::start();
    let home = tempfile::tempdir().unwrap();
    let objects = [("vr/ok/a.mp4", SOURCE_LEN as u64)];
    let wanted = ["--derivatives", "mobile,thumbnail,hd=1000x560"];

    // By name: `hd` is unknown to the Worker, which serves desktop.
    let (results, code, _) = warm(home.path(), "video-resizer", &server.url, &objects, &wanted);
    assert_eq!(code, Some(3));
    let mobile = record(&results, "vr/ok/a.mp4", "mobile");
    check(mobile, "warm", 1, None);
    assert_eq!(mobile["cache"], "hit", "{mobile}");
    check(record(&results, "vr/ok/a.mp4", "thumbnail"), "warm", 1, None);
    let hd = record(&results, "vr/ok/a.mp4", "hd");
    check(hd, "failed", 1, Some("client_error"));
    assert!(hd["error"].as_str().unwrap().contains("served `desktop` (1920x1080)"), "{hd}");

    // By imwidth: 1000 maps to tablet; the thumbnail is asked for by name.
    let (results, _, _) = warm(
        home.path(),
        "video-resizer",
        &server.url,
        &objects,
        &[&wanted[..], &["--set", "url-format=imwidth"]].concat(),
    );
    check(record(&results, "vr/ok/a.mp4", "mobile"), "warm", 1, None);
    check(record(&results, "vr/ok/a.mp4", "thumbnail"), "warm", 1, None);
    let hd = record(&results, "vr/ok/a.mp4", "hd");
    assert!(hd["error"].as_str().unwrap().contains("served `tablet` (1280x720)"), "{hd}");
    assert_eq!(server.count("GET", "/vr/ok/a.mp4?derivative=thumbnail"), 2);
    assert_eq!(server.count("GET", "/vr/ok/a.mp4?imwidth=1000"), 1);
}

#[test]
fn the_worker_202_sequence_ends_stored_and_warm() {
    let server = VendorServer::start();
    let home = tempfile::tempdir().unwrap();
    let objects = [("vr/pending/a.mp4", SOURCE_LEN as u64), ("vr/pending-3/b.mp4", SOURCE_LEN as u64)];
    let (results, code, stderr) = warm(
        home.path(),
        "video-resizer",
        &server.url,
        &objects,
        &["--derivatives", "mobile", "--set", "poll-ms=1000", "-v"],
    );
    assert_eq!(code, Some(0));
    // The Worker's Retry-After (10 s) is the floor of the first wait.
    let one = record(&results, "vr/pending/a.mp4", "mobile");
    check(one, "warm", 2, None);
    assert!(one["elapsed_ms"].as_f64().unwrap() >= 10_000.0, "{one}");
    assert!(one["cache_status"].as_str().unwrap().contains("container"), "{one}");
    // Three 202s: waits of 1, 2 and 4 s.
    let three = record(&results, "vr/pending-3/b.mp4", "mobile");
    check(three, "warm", 4, None);
    assert!(three["elapsed_ms"].as_f64().unwrap() >= 7_000.0, "{three}");
    assert!(stderr.contains("Worker job video:vr/pending-3/b.mp4"), "job id not logged: {stderr}");

    // Still pending after the last poll.
    let home = tempfile::tempdir().unwrap();
    let objects = [("vr/pending-3/c.mp4", SOURCE_LEN as u64)];
    let (results, code, _) = warm(
        home.path(),
        "video-resizer",
        &server.url,
        &objects,
        &["--derivatives", "mobile", "--set", "poll-ms=100", "--max-polls", "1"],
    );
    assert_eq!(code, Some(3));
    let still = record(&results, "vr/pending-3/c.mp4", "mobile");
    check(still, "pending", 2, Some("still_pending"));
    let job = still["job_id"].as_str().unwrap_or_default();
    assert!(job.starts_with("video:vr/pending-3/c.mp4"), "the Worker's job id is kept: {still}");
}

#[test]
fn the_worker_own_answers_read_as_it_means_them() {
    let server = VendorServer::start();
    let home = tempfile::tempdir().unwrap();
    let n = SOURCE_LEN as u64;
    let objects = [
        ("vr/missing/a.mp4", n),
        ("vr/edge-502/b.mp4", n),
        ("vr/v1-fallback/c.mp4", n),
        ("vr/v1-hit/d.mp4", n),
        ("vr/passthrough-stored/e.mp4", n),
        ("vr/not-stored/f.mp4", n),
    ];
    let (results, code, _) = warm(home.path(), "video-resizer", &server.url, &objects, &["--derivatives", "mobile"]);
    assert_eq!(code, Some(3));
    let missing = record(&results, "vr/missing/a.mp4", "mobile");
    check(missing, "failed", 1, Some("not_found"));
    assert!(missing["error"].as_str().unwrap().contains("ALL_SOURCES_FAILED"), "{missing}");
    assert_eq!(server.count("GET", "/vr/missing/a.mp4?derivative=mobile"), 1, "the JSON 502 was retried");
    check(record(&results, "vr/edge-502/b.mp4", "mobile"), "failed", 3, Some("server_error"));
    check(record(&results, "vr/v1-fallback/c.mp4", "mobile"), "passthrough", 1, None);
    let hit = record(&results, "vr/v1-hit/d.mp4", "mobile");
    check(hit, "warm", 1, None);
    assert_eq!((hit["cache"].as_str(), hit["cache_status"].as_str()), (Some("hit"), Some("HIT")), "{hit}");
    check(record(&results, "vr/passthrough-stored/e.mp4", "mobile"), "passthrough", 1, None);
    let not_stored = record(&results, "vr/not-stored/f.mp4", "mobile");
    check(not_stored, "failed", 1, Some("other"));
    assert!(not_stored["error"].as_str().unwrap().contains("X-R2-Stored: false"), "{not_stored}");
}
