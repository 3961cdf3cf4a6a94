//! Kill -9 mid-run, then `--resume`: the union of results covers every pair,
//! and pairs already warm are not requested again (counted at the server).

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use prewarm_e2e::fault_server::FaultServer;
use prewarm_e2e::{read_results, run, warm_listing};

#[test]
fn kill_then_resume_covers_every_pair_once() {
    let server = FaultServer::start();
    let home = tempfile::tempdir().unwrap();
    let objects: Vec<String> = (0..40).map(|i| format!("slow-ok/batch {}/v{i}.mp4", i % 3)).collect();
    let entries: Vec<(&str, u64)> = objects.iter().map(|o| (o.as_str(), 10_000)).collect();
    let results = home.path().join("results.jsonl");
    let command = |resume: bool| {
        let mut c = warm_listing(home.path(), &server.url, &entries);
        c.args(["--derivatives", "mobile,tablet", "--concurrency", "2", "--results"]).arg(&results);
        if resume {
            c.arg("--resume");
        }
        c
    };

    let mut child = command(false).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while read_lines(&results) < 10 {
        assert!(Instant::now() < deadline, "no progress");
        assert!(child.try_wait().unwrap().is_none(), "run finished before it could be killed");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let first = read_results(&results);
    let total_pairs = objects.len() * 2;
    assert!(first.len() < total_pairs, "the kill came too late to test anything");
    let warm_before: HashSet<(String, String)> = first
        .iter()
        .filter(|r| r["outcome"] == "warm")
        .map(|r| (r["path"].as_str().unwrap().to_string(), r["derivative"].as_str().unwrap().to_string()))
        .collect();
    let counts_before = server.counts();

    let out = run(&mut command(true));
    assert_eq!(out.status.code(), Some(0));
    let all = read_results(&results);
    let mut seen: HashSet<(String, String)> = HashSet::new();
    for r in &all {
        assert_eq!(r["outcome"], "warm", "{r}");
        seen.insert((r["path"].as_str().unwrap().to_string(), r["derivative"].as_str().unwrap().to_string()));
    }
    assert_eq!(seen.len(), total_pairs, "the union covers every pair");
    assert_eq!(all.len(), total_pairs, "pairs warm before the kill are not recorded again");

    // Nothing warm before the kill was requested again.
    let counts_after = server.counts();
    for (path, derivative) in &warm_before {
        let w = if derivative == "mobile" { 854 } else { 1280 };
        let encoded = path.replace(' ', "%20");
        let key = format!("GET /{encoded}?w={w}");
        assert_eq!(counts_after.get(&key), counts_before.get(&key), "{key} requested again after resume");
    }
}

fn read_lines(path: &std::path::Path) -> usize {
    std::fs::read_to_string(path).map(|t| t.lines().count()).unwrap_or(0)
}

#[test]
fn ctrl_c_records_the_pairs_in_flight_and_writes_the_reports() {
    interrupted_by("-INT");
}

/// SIGTERM (a Kubernetes eviction, `kubectl delete`) ends a run as Ctrl-C
/// does: every pair in flight recorded, the reports written.
#[test]
fn sigterm_ends_a_run_as_ctrl_c_does() {
    interrupted_by("-TERM");
}

fn interrupted_by(signal: &str) {
    let server = FaultServer::start();
    let home = tempfile::tempdir().unwrap();
    let objects: Vec<String> = (0..200).map(|i| format!("slow-ok/v{i}.mp4")).collect();
    let entries: Vec<(&str, u64)> = objects.iter().map(|o| (o.as_str(), 10_000)).collect();
    let results = home.path().join("results.jsonl");
    let report = home.path().join("summary.json");
    let child = warm_listing(home.path(), &server.url, &entries)
        .args(["--concurrency", "4"])
        .arg("--results")
        .arg(&results)
        .arg("--report")
        .arg(&report)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while read_lines(&results) < 12 {
        assert!(Instant::now() < deadline, "no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3), "an interrupted run is not a success");
    assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted"));

    let all = read_results(&results);
    assert!(all.len() < objects.len() * 3, "interrupted too late");
    let keys: HashSet<(String, String)> =
        all.iter().map(|r| (r["path"].to_string(), r["derivative"].to_string())).collect();
    assert_eq!(keys.len(), all.len(), "a pair recorded twice");
    assert!(
        all.iter().all(|r| r["outcome"] == "warm" || (r["outcome"] == "skipped" && r["error_kind"] == "interrupted")),
        "{all:?}"
    );
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(summary["runs"][0]["interrupted"], true);
    assert_eq!(summary["stats"]["pairs"], all.len());
    // Every GET that reached the server belongs to a recorded pair.
    assert!(server.total("GET") as usize <= all.len() + 4, "requests without a record");
}

#[test]
fn ctrl_c_does_not_wait_out_stalled_requests() {
    let server = FaultServer::start();
    let home = tempfile::tempdir().unwrap();
    let entries = [("stall/a.mp4", 1u64), ("stall/b.mp4", 1)];
    let results = home.path().join("results.jsonl");
    let child = warm_listing(home.path(), &server.url, &entries)
        .args(["--header-timeout", "10m", "--timeout", "10m", "--results"])
        .arg(&results)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.total("GET") < 6 {
        assert!(Instant::now() < deadline, "requests never reached the server");
        std::thread::sleep(Duration::from_millis(20));
    }
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let all = read_results(&results);
    assert_eq!(all.len(), 6, "every pair in flight is recorded");
    assert!(all.iter().all(|r| r["outcome"] == "skipped" && r["error_kind"] == "interrupted"), "{all:?}");
}
