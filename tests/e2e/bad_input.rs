//! Bad input through the real binary: a clear one-line error naming the
//! input, exit 2 (usage) or 3 (the run finished but nothing was warm), and
//! no secret in the output.

use std::path::Path;

use prewarm_e2e::{prewarm, read_results, run, write_listing};

fn warm(home: &Path, args: &[&str]) -> (Option<i32>, String) {
    let listing = home.join("listing.json");
    write_listing(&listing, &[("a.mp4", 10), ("b/c d.mp4", 20)]);
    let out = run(prewarm(home)
        .args(["warm", "--progress", "never", "--listing"])
        .arg(&listing)
        .arg("--results")
        .arg(home.join("r.jsonl"))
        .args(args));
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn one_line(err: &str) -> bool {
    err.trim().lines().count() == 1 && err.starts_with("error: ")
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    let home = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--plugin", "no-such-cdn", "--base-url", "http://127.0.0.1:9"], "unknown plugin `no-such-cdn`"),
        (&["--plugin", "template", "--base-url", "http://a\\b.example/x"], "holds a backslash"),
        (&["--plugin", "template", "--base-url", "http:/a.example"], "write it as http://host"),
        (&["--plugin", "/nonexistent/plugin.wasm", "--base-url", "http://127.0.0.1:9"], "/nonexistent/plugin.wasm"),
        (
            &["--plugin", "template", "--base-url", "http://127.0.0.1:9", "--set", "colour=red"],
            "unknown setting `colour`",
        ),
        (&["--plugin", "template", "--base-url", "http://127.0.0.1:9", "--set", "novalue"], "--set `novalue`"),
        (&["--plugin", "cloudflare-media", "--base-url", "http://127.0.0.1:9", "--set", "fit=stretch"], "fit"),
        (&["--plugin", "template", "--base-url", "not a url"], "--base-url"),
        (&["--plugin", "template", "--base-url", "ftp://cdn.example.com"], "http:// or https://"),
        (
            &["--plugin", "template", "--base-url", "http://127.0.0.1:9", "--derivatives", "huge"],
            "`huge` is not a derivative",
        ),
        (&["--plugin", "template", "--base-url", "http://127.0.0.1:9", "--timeout", "soon"], "--timeout"),
        (&["--plugin", "template", "--base-url", "http://127.0.0.1:9", "--concurrency", "0"], "--concurrency"),
        (&["--plugin", "template", "--base-url", "http://127.0.0.1:9", "--shard", "3/2"], "--shard"),
        (&["--plugin", "template", "--base-url", "http://127.0.0.1:9", "--threads", "0"], "--threads 0"),
        (
            &[
                "--plugin",
                "template",
                "--base-url",
                "http://127.0.0.1:9",
                "--connect-to",
                "cdn.example.com:443:10.0.0.1",
            ],
            "--connect-to `cdn.example.com:443:10.0.0.1`: 3 fields instead of 4",
        ),
        (
            &["--plugin", "template", "--base-url", "http://127.0.0.1:9", "--ca-file", "/nonexistent/ca.pem"],
            "--ca-file /nonexistent/ca.pem",
        ),
    ];
    for (args, needle) in cases {
        let (code, err) = warm(home.path(), args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: expected {needle:?} in {err}");
        assert!(one_line(&err), "{args:?}: not one line: {err}");
    }
    assert!(!home.path().join("r.jsonl").exists(), "no results file before the first request");
}

#[test]
fn unreachable_base_url_fails_every_pair_with_exit_3() {
    let home = tempfile::tempdir().unwrap();
    let port = prewarm::util::lab::free_port().unwrap();
    let (code, _) = warm(
        home.path(),
        &["--plugin", "template", "--base-url", &format!("http://127.0.0.1:{port}"), "--retries", "1"],
    );
    assert_eq!(code, Some(3));
    let results = read_results(&home.path().join("r.jsonl"));
    assert_eq!(results.len(), 6);
    assert!(
        results.iter().all(|r| r["outcome"] == "failed" && r["error_kind"] == "connection_error" && r["attempts"] == 2),
        "{results:?}"
    );
}

#[test]
fn credentials_never_reach_output() {
    let home = tempfile::tempdir().unwrap();
    let port = prewarm::util::lab::free_port().unwrap();
    let base = format!("http://user:hunter2secret@127.0.0.1:{port}");
    let report = home.path().join("s.json");
    let (code, err) = warm(
        home.path(),
        &[
            "--plugin",
            "template",
            "--base-url",
            &base,
            "--retries",
            "0",
            "--set",
            "url={base}/{path}?token=tok3nvalue&w={width}",
            "--report",
            report.to_str().unwrap(),
            "-vv",
        ],
    );
    assert_eq!(code, Some(3));
    let results = std::fs::read_to_string(home.path().join("r.jsonl")).unwrap();
    let summary = std::fs::read_to_string(&report).unwrap();
    for (name, text) in [("stderr", &err), ("results", &results), ("summary", &summary)] {
        assert!(!text.contains("hunter2secret"), "password in {name}");
        assert!(!text.contains("tok3nvalue"), "token in {name}");
    }
    assert!(results.contains("REDACTED"));
}

#[test]
fn dry_run_plans_without_sending() {
    let home = tempfile::tempdir().unwrap();
    let listing = home.path().join("l.json");
    write_listing(&listing, &[("x/a b.mp4", 10)]);
    let out = run(prewarm(home.path())
        .args([
            "warm",
            "--dry-run",
            "--json",
            "--plugin",
            "video-resizer",
            "--base-url",
            "http://127.0.0.1:9",
            "--listing",
        ])
        .arg(&listing));
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 4, "the Worker's three breakpoints and its thumbnail");
    assert_eq!(lines[0]["url"], "http://127.0.0.1:9/x/a%20b.mp4?derivative=desktop");
    assert_eq!(lines[3]["url"], "http://127.0.0.1:9/x/a%20b.mp4?derivative=thumbnail");
    assert_eq!(lines[0]["method"], "GET");
}

/// Every request in flight holds a socket: `--concurrency` is bounded by the
/// open-files hard limit (prewarm raises its soft limit to it), not by a
/// fixed number, and beyond it the error names the limit.
#[test]
fn concurrency_is_bounded_by_the_open_files_limit() {
    let home = tempfile::tempdir().unwrap();
    let listing = home.path().join("listing.json");
    write_listing(&listing, &[("a.mp4", 10)]);
    let with_limit = |concurrency: &str| {
        let mut cmd = std::process::Command::new("bash");
        // Soft limit below the hard one: prewarm must raise it itself.
        cmd.args(["-c", "ulimit -Sn 100 && ulimit -Hn 700 && exec \"$@\"", "bash"])
            .arg(prewarm_e2e::prewarm_bin())
            .env("PREWARM_CACHE_DIR", home.path().join("cache"))
            .args(["warm", "--progress", "never", "--plugin", "template", "--base-url", "http://127.0.0.1:9"])
            .args(["--retries", "0", "--overwrite", "--listing"])
            .arg(&listing)
            .arg("--results")
            .arg(home.path().join("r.jsonl"))
            .args(["--concurrency", concurrency]);
        let out = run(&mut cmd);
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, err) = with_limit("1000");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--concurrency 1000") && err.contains("open-files limit (700)"), "{err}");
    assert!(one_line(&err), "not one line: {err}");
    // 400 is above the soft limit of 100 but within the hard one.
    let (code, err) = with_limit("400");
    assert_eq!(code, Some(3), "the run went ahead (and failed on the unreachable base URL): {err}");
    assert_eq!(read_results(&home.path().join("r.jsonl")).len(), 3);
}
