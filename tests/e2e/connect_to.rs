//! Warming a named edge through the real binary: `--connect-to` sends a
//! host's requests to another server, which sees the original Host header;
//! results and summary name the edge.

use prewarm_e2e::fault_server::FaultServer;
use prewarm_e2e::{read_results, run, warm_listing};

#[test]
fn connect_to_reaches_the_mapped_server_with_the_original_host() {
    let named = FaultServer::start();
    let edge = FaultServer::start();
    let home = tempfile::tempdir().unwrap();
    let named_authority = named.url.trim_start_matches("http://").to_string();
    let edge_authority = edge.url.trim_start_matches("http://").to_string();
    let rule = format!("{named_authority}:{edge_authority}");
    let (results, report) = (home.path().join("r.jsonl"), home.path().join("s.json"));
    let out = run(warm_listing(home.path(), &named.url, &[("ok/a.mp4", 5000), ("ok/b.mp4", 7000)])
        .args(["--derivatives", "mobile=640x360", "--connect-to", &rule, "--results"])
        .arg(&results)
        .arg("--report")
        .arg(&report));
    assert_eq!(out.status.code(), Some(0));

    // Every request reached the edge, none the named server, and the edge
    // saw the named server's authority as Host.
    assert_eq!(named.connections(), 0);
    assert_eq!(edge.count("GET", "/ok/a.mp4?w=640"), 1);
    assert_eq!(edge.count("GET", "/ok/b.mp4?w=640"), 1);
    assert_eq!(edge.count("HOST", &named_authority), edge.total("GET") + edge.total("HEAD"));

    for record in read_results(&results) {
        assert_eq!(record["outcome"], "warm");
        assert_eq!(record["edge"], edge_authority.as_str(), "{record}");
    }
    let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(summary["stats"]["edges"][edge_authority.as_str()], 2);
    assert_eq!(summary["runs"][0]["connect_to"][0], rule.as_str());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains(&format!("edges (--connect-to): {edge_authority} 2 pairs")), "{text}");

    // Without the rule, nothing is recorded about edges.
    let (results, report) = (home.path().join("r2.jsonl"), home.path().join("s2.json"));
    let out = run(warm_listing(home.path(), &named.url, &[("ok/c.mp4", 5000)])
        .args(["--derivatives", "mobile=640x360", "--results"])
        .arg(&results)
        .arg("--report")
        .arg(&report));
    assert_eq!(out.status.code(), Some(0));
    assert!(read_results(&results)[0].get("edge").is_none());
    let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert!(summary["stats"].get("edges").is_none() && summary["runs"][0].get("connect_to").is_none());

    // A rule for another host matches nothing: the run says so.
    let out = run(warm_listing(home.path(), &named.url, &[("ok/d.mp4", 5000)])
        .args(["--derivatives", "mobile=640x360", "--connect-to", &format!("elsewhere.invalid:80:{edge_authority}")])
        .arg("--results")
        .arg(home.path().join("r3.jsonl")));
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("no request matched --connect-to elsewhere.invalid:80:"), "{text}");
}
