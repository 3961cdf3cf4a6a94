//! Trust at every edge (issue 19), through the real binary: a URL that a
//! parser and a hand split read as different hosts reaches neither the
//! other host nor its credentials, as a plugin's URL and as a redirect; a
//! plugin cannot set `Host`; validate's ffprobe and ffmpeg read through
//! prewarm's relay, so a redirect to another origin is refused there and
//! no token is in any process's arguments.

use std::path::Path;

use prewarm_e2e::fault_server::FaultServer;
use prewarm_e2e::{prewarm, read_results, run, write_listing};

fn port(server: &FaultServer) -> &str {
    server.url.rsplit(':').next().unwrap()
}

fn warm_template(home: &Path, base: &str, url: &str, extra: &[&str]) -> (Vec<serde_json::Value>, std::process::Output) {
    let listing = home.join("l.json");
    write_listing(&listing, &[("x.mp4", 5000)]);
    let results = home.join("r.jsonl");
    let out = run(prewarm(home)
        .args(["warm", "--plugin", "template", "--base-url", base, "--derivatives", "d=10x10"])
        .args(["--set", &format!("url={url}"), "--retries", "0", "--progress", "never"])
        .arg("--listing")
        .arg(&listing)
        .arg("--results")
        .arg(&results)
        .args(extra));
    (read_results(&results), out)
}

#[test]
fn a_url_read_two_ways_reaches_no_other_origin() {
    let (a, b) = (FaultServer::start(), FaultServer::start());
    let home = tempfile::tempdir().unwrap();
    let tricky = format!("{}\\@127.0.0.1:{}/{{path}}", a.url, port(&b));
    let secret = "headers=Authorization: Bearer tok-19-backslash";
    let (rows, out) = warm_template(home.path(), &a.url, &tricky, &["--set", secret]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!((rows[0]["outcome"].as_str(), rows[0]["error_kind"].as_str()), (Some("failed"), Some("policy")));
    assert!(rows[0]["error"].as_str().unwrap().contains("backslash"), "{}", rows[0]);

    let home = tempfile::tempdir().unwrap();
    let redirect = format!("{{base}}/redirect-backslash/{}/{{path}}", port(&b));
    let (rows, _) = warm_template(home.path(), &a.url, &redirect, &["--set", secret]);
    assert_eq!((rows[0]["outcome"].as_str(), rows[0]["error_kind"].as_str()), (Some("failed"), Some("policy")));
    assert_eq!(a.total("GET"), 1, "the first request was sent, the redirect was not followed: {:?}", a.counts());
    assert_eq!(b.connections(), 0, "the origin nobody allowed got a connection");
}

#[test]
fn a_plugin_cannot_set_host_or_framing_headers() {
    let a = FaultServer::start();
    for header in ["Host: admin.internal", "Transfer-Encoding: chunked", "Proxy-Authorization: Basic eDp5"] {
        let home = tempfile::tempdir().unwrap();
        let headers = format!("headers={header}");
        let (rows, out) = warm_template(home.path(), &a.url, "{base}/ok/{path}", &["--set", &headers]);
        assert_eq!(out.status.code(), Some(3));
        let name = header.split(':').next().unwrap();
        assert_eq!(rows[0]["error_kind"], "plan", "{header}: {}", rows[0]);
        assert!(rows[0]["error"].as_str().unwrap().contains(name), "names the header: {}", rows[0]);
    }
    assert_eq!(a.connections(), 0, "nothing was sent");
    assert_eq!(a.count("HOST", "admin.internal"), 0);
}

/// validate reads derivatives through the relay: the CDN's redirect to an
/// origin nobody allowed is refused there (that origin gets nothing, the
/// item says why), and the plugin's token is in no process's arguments.
#[test]
fn validate_follows_no_redirect_out_and_shows_no_token() {
    let (cdn, other) = (FaultServer::start(), FaultServer::start());
    let home = tempfile::tempdir().unwrap();
    let token = "tok-19-validate-SEKRET";
    let url = format!("{{base}}/redirect-to/{}/{{path}}", port(&other));
    let headers = format!("headers=Authorization: Bearer {token}");
    let allow = format!("127.0.0.1:{}", port(&other));
    let (rows, _) = warm_template(home.path(), &cdn.url, &url, &["--set", &headers, "--allow-host", &allow]);
    assert_eq!(rows[0]["outcome"], "warm", "the warm was allowed there: {}", rows[0]);
    let before = other.connections();

    let out_path = home.path().join("v.jsonl");
    let child = prewarm(home.path())
        .args(["validate", "--plugin", "template", "--base-url", &cdn.url, "--derivatives", "d=10x10"])
        .args(["--set", &format!("url={url}"), "--set", &headers])
        .arg("--results")
        .arg(home.path().join("r.jsonl"))
        .arg("--results-out")
        .arg(&out_path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let seen = sample_arguments(child.id(), token);
    let out = child.wait_with_output().unwrap();
    let seen = seen.join().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(other.connections(), before, "validate reached the origin nobody allowed");
    assert!(cdn.total("GET") > 1, "the relay asked the CDN: {:?}", cdn.counts());
    let rows = read_results(&out_path);
    let problems = rows[0]["problems"].to_string();
    assert!(problems.contains("redirected") && problems.contains("--allow-host"), "{}", rows[0]);
    assert!(seen.is_empty(), "the token was in the arguments of {seen:?}");
    let shown = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!shown.contains(token) && !std::fs::read_to_string(&out_path).unwrap().contains(token));
}

/// Sample every process's arguments until `pid` ends; which held `needle`.
/// prewarm's own are read once it has started a child: from exec to its
/// first line of code a process's arguments are the kernel's to show, and
/// what prewarm promises is that it hides them at once.
fn sample_arguments(pid: u32, needle: &'static str) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        let (mut seen, mut started_child) = (Vec::new(), false);
        while Path::new(&format!("/proc/{pid}/cmdline")).exists() && !is_zombie(pid) {
            for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
                let Some(n) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
                let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
                if parent_of(&stat) == Some(pid) {
                    started_child = true;
                }
                if n == pid && !started_child {
                    continue;
                }
                let argv = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
                if argv.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                    seen.push(String::from_utf8_lossy(&argv).replace('\0', " "));
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(started_child, "prewarm started no child: nothing was sampled");
        seen
    })
}

/// The parent pid in a `/proc/N/stat` line (field 4).
fn parent_of(stat: &str) -> Option<u32> {
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

fn is_zombie(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(')').is_none_or(|(_, rest)| rest.trim_start().starts_with('Z'))
}
