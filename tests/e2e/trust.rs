//! Plugins a user can trust (issue 10): a plugin reaches only the origin of
//! `--base-url` and the hosts the user allows, secrets stay out of every
//! file and log prewarm writes, and a plugin's panic explains itself.

use std::path::{Path, PathBuf};

use prewarm_e2e::fault_server::FaultServer;
use prewarm_e2e::{prewarm, read_results, run, write_listing};

fn hostile_wasm() -> PathBuf {
    Path::new(prewarm::plugin::GUEST_ARTIFACT_DIR).join("hostile.wasm")
}

fn warm_hostile(home: &Path, base: &str, extra: &[&str]) -> (Vec<serde_json::Value>, std::process::Output) {
    let listing = home.join("l.json");
    write_listing(&listing, &[("a.mp4", 10), ("d/b.mp4", 20)]);
    let results = home.join("r.jsonl");
    let out = run(prewarm(home)
        .args(["warm", "--plugin"])
        .arg(hostile_wasm())
        .args(["--base-url", base, "--derivatives", "mobile", "--progress", "never", "--retries", "0"])
        .arg("--listing")
        .arg(&listing)
        .arg("--results")
        .arg(&results)
        .args(extra));
    (read_results(&results), out)
}

#[test]
fn a_plugin_reaches_only_the_base_origin_and_allowed_hosts() {
    let (cdn, other) = (FaultServer::start(), FaultServer::start());
    let home = tempfile::tempdir().unwrap();
    let target = format!("target={}/ok", other.url);
    let (rows, out) =
        warm_hostile(home.path(), &cdn.url, &["--set", "mode=elsewhere", "--set", &target, "--set", "token=tok-3141"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(rows.len(), 2);
    let port = other.url.rsplit(':').next().unwrap();
    for r in &rows {
        assert_eq!(r["outcome"], "failed", "{r}");
        assert_eq!(r["error_kind"], "policy", "{r}");
        assert!(r["error"].as_str().unwrap().contains(&format!("127.0.0.1:{port}")), "names the origin: {r}");
    }
    assert_eq!(other.connections(), 0, "no connection to a refused origin");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("--allow-host").count(), 1, "one warning naming the flag: {stderr}");

    let home = tempfile::tempdir().unwrap();
    let allow = format!("127.0.0.1:{port}");
    let (rows, out) =
        warm_hostile(home.path(), &cdn.url, &["--set", "mode=elsewhere", "--set", &target, "--allow-host", &allow]);
    assert_eq!(out.status.code(), Some(0));
    assert!(rows.iter().all(|r| r["outcome"] == "warm"), "{rows:?}");
    assert_eq!(other.total("GET"), 2);
}

#[test]
fn a_redirect_to_another_origin_is_refused_the_same_way() {
    let (cdn, other) = (FaultServer::start(), FaultServer::start());
    let home = tempfile::tempdir().unwrap();
    let port = other.url.rsplit(':').next().unwrap().to_string();
    let listing = home.path().join("l.json");
    write_listing(&listing, &[(&format!("redirect-to/{port}/a.mp4"), 10)]);
    let results = home.path().join("r.jsonl");
    let out = run(prewarm(home.path())
        .args(["warm", "--plugin", "template", "--base-url", &cdn.url, "--set", "url={base}/{path}"])
        .args(["--derivatives", "mobile", "--progress", "never", "--listing"])
        .arg(&listing)
        .arg("--results")
        .arg(&results));
    assert_eq!(out.status.code(), Some(3));
    let rows = read_results(&results);
    assert_eq!(rows[0]["error_kind"], "policy", "{:?}", rows);
    assert_eq!(other.connections(), 0);
}

#[test]
fn a_panicking_plugin_says_why() {
    let cdn = FaultServer::start();
    let home = tempfile::tempdir().unwrap();
    let base = format!("{}/ok", cdn.url);
    let (rows, out) = warm_hostile(home.path(), &base, &["--set", "mode=panic-classify"]);
    assert_eq!(out.status.code(), Some(3));
    for r in &rows {
        assert_eq!(r["error_kind"], "plugin", "{r}");
        let error = r["error"].as_str().unwrap();
        assert!(
            error.contains("panicked in classify") && error.contains("hostile classify panic on HTTP 200"),
            "{error}"
        );
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("hostile classify panic"), "the log says it too: {stderr}");
}

#[test]
fn secrets_stay_out_of_every_output() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path();
    write_listing(&dir.join("l.json"), &[("v/a.mp4", 7)]);
    let secrets = ["pwtok-4410", "sigtok-1177", "hdrtok-2290", "envtok-9931", "filetok-5521"];
    std::fs::write(dir.join("token.txt"), "filetok-5521\n").unwrap();
    let hostile = hostile_wasm();
    // A closed port: every request fails, so errors are written too.
    let base = "http://user:pwtok-4410@127.0.0.1:9";
    let out = run(prewarm(dir)
        .current_dir(dir)
        .env("CDN_SECRET_X", "Authorization: Bearer envtok-9931")
        .args(["-vv", "warm", "--listing", "l.json", "--plugin", "template", "--base-url", base])
        .args(["--set", "url={base}/{path}?sig=sigtok-1177", "--set", "headers=Authorization: Bearer hdrtok-2290"])
        .args(["--derivatives", "desktop", "--timeout", "1s", "--retries", "1", "--progress", "never"])
        .args(["--results", "r.jsonl", "--report", "s.json", "--markdown", "s.md", "--html", "s.html"])
        .args(["--metrics-textfile", "m.prom"]));
    assert_eq!(out.status.code(), Some(3));
    let env_run = run(prewarm(dir)
        .current_dir(dir)
        .env("CDN_SECRET_X", "Authorization: Bearer envtok-9931")
        .args(["-vv", "warm", "--listing", "l.json", "--plugin", "template", "--base-url", "http://127.0.0.1:9"])
        .args(["--set", "headers=env:CDN_SECRET_X", "--derivatives", "desktop", "--timeout", "1s"])
        .args(["--retries", "0", "--progress", "never", "--results", "re.jsonl", "--report", "se.json"]));
    assert_eq!(env_run.status.code(), Some(3));
    let file_run = run(prewarm(dir)
        .current_dir(dir)
        .args(["-vv", "warm", "--listing", "l.json", "--plugin"])
        .arg(&hostile)
        .args(["--base-url", "http://127.0.0.1:9", "--set", "mode=elsewhere", "--set", "target=http://127.0.0.1:9"])
        .args(["--set", "token=file:token.txt", "--derivatives", "desktop", "--timeout", "1s", "--retries", "0"])
        .args(["--progress", "never", "--results", "rf.jsonl", "--report", "sf.json"]));
    assert_eq!(file_run.status.code(), Some(3));
    let dry = run(prewarm(dir)
        .current_dir(dir)
        .args(["warm", "--listing", "l.json", "--plugin", "template", "--base-url", base, "--dry-run", "--json"])
        .args(["--set", "url={base}/{path}?sig=sigtok-1177", "--set", "headers=Authorization: Bearer hdrtok-2290"]));
    assert_eq!(dry.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&dry.stdout).contains("v/a.mp4"), "the dry run printed its plan");

    let mut outputs: Vec<(String, String)> =
        ["r.jsonl", "s.json", "s.md", "s.html", "m.prom", "re.jsonl", "se.json", "rf.jsonl", "sf.json"]
            .iter()
            .map(|f| (f.to_string(), std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"))))
            .collect();
    for (name, o) in [("stderr", &out), ("env stderr", &env_run), ("file stderr", &file_run), ("dry run", &dry)] {
        outputs.push((name.into(), String::from_utf8_lossy(&o.stderr).into_owned()));
        outputs.push((format!("{name} stdout"), String::from_utf8_lossy(&o.stdout).into_owned()));
    }
    for (name, text) in &outputs {
        for s in secrets {
            assert!(!text.contains(s), "{s} leaked into {name}:\n{text}");
        }
    }
    let summary = std::fs::read_to_string(dir.join("se.json")).unwrap();
    assert!(summary.contains("env:CDN_SECRET_X"), "the summary says where the value came from: {summary}");
}

#[test]
fn plugins_new_builds_outside_the_checkout_and_warms_the_lab() {
    let home = tempfile::tempdir().unwrap();
    let crate_dir = home.path().join("acme-cdn");
    let out = run(prewarm(home.path()).args(["plugins", "new", "acme-cdn", "--dir"]).arg(&crate_dir));
    assert_eq!(out.status.code(), Some(0));
    // A second `new` into the same directory is refused.
    let again = run(prewarm(home.path()).args(["plugins", "new", "acme-cdn", "--dir"]).arg(&crate_dir));
    assert_eq!(again.status.code(), Some(2));

    // Built where it is, outside this repository; the target dir is kept
    // beside the suite's so later runs build incrementally.
    let exe = std::env::current_exe().unwrap();
    let target = exe.ancestors().nth(3).unwrap().join("plugin-new");
    let status = std::process::Command::new(option_env!("CARGO").unwrap_or("cargo"))
        .current_dir(&crate_dir)
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .unwrap();
    assert!(status.success(), "the new plugin does not build outside the repository");
    let wasm = target.join("wasm32-wasip2/release/acme_cdn.wasm");

    let media = home.path().join("media");
    prewarm::util::lab::make_sample_video(&media.join("clips/a.mp4"), 1, "320x240").unwrap();
    let rclone = prewarm::util::lab::find_program("rclone").expect("rclone installed");
    let origin = prewarm::util::lab::start_origin(&rclone, &media).unwrap();
    let cache = prewarm::util::lab::start_cache(&home.path().join("nginx"), &origin.url).unwrap();
    let results = home.path().join("r.jsonl");
    let out = run(prewarm(home.path())
        .args(["warm", "--plugin"])
        .arg(&wasm)
        .args(["--base-url", &cache.url, "--progress", "never", "--source"])
        .arg(&media)
        .arg("--results")
        .arg(&results));
    assert_eq!(out.status.code(), Some(0));
    let rows = read_results(&results);
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r["outcome"] == "warm" && r["url"].as_str().unwrap().contains("clips/a.mp4?width=")));
}

#[test]
fn probe_shows_every_step_of_a_pending_transform() {
    let cdn = FaultServer::start();
    let home = tempfile::tempdir().unwrap();
    let out = run(prewarm(home.path())
        .args(["probe", "--plugin", "template", "--base-url", &cdn.url, "--set", "url={base}/{path}?w={width}"])
        .args(["--set", "headers=Authorization: Bearer probetok-7", "--derivative", "mobile", "--json"])
        .arg("pending/clip.mp4"));
    assert_eq!(out.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let steps = report[0]["steps"].as_array().unwrap();
    let kinds: Vec<&str> = steps.iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "planned", "sent", "answer", "verdict", "wait", "sent", "answer", "verdict", "wait", "sent", "answer",
            "verdict", "size"
        ],
        "{steps:#?}"
    );
    let statuses: Vec<u64> = steps.iter().filter_map(|s| s["status"].as_u64()).collect();
    assert_eq!(statuses, [202, 202, 200]);
    assert!(steps[3]["verdict"].as_str().unwrap().starts_with("pending"), "{}", steps[3]);
    assert!(steps[11]["verdict"].as_str().unwrap().starts_with("warm"), "{}", steps[11]);
    assert_eq!(steps[12]["size"], 1000);
    assert_eq!(report[0]["record"]["outcome"], "warm");
    assert_eq!(report[0]["record"]["attempts"], 3);
    assert_eq!(cdn.count("GET", "/pending/clip.mp4?w=854"), 3, "what was shown is what happened");
    assert_eq!(steps[0]["headers"][0][1], "REDACTED");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("probetok-7"));

    // Against a real cache, in text: a miss, then with --verify the hit.
    let media = home.path().join("media");
    prewarm::util::lab::make_sample_video(&media.join("a.mp4"), 1, "320x240").unwrap();
    let rclone = prewarm::util::lab::find_program("rclone").expect("rclone installed");
    let origin = prewarm::util::lab::start_origin(&rclone, &media).unwrap();
    let cache = prewarm::util::lab::start_cache(&home.path().join("nginx"), &origin.url).unwrap();
    let out = run(prewarm(home.path())
        .args(["probe", "--plugin", "template", "--base-url", &cache.url, "--derivative", "tablet", "--verify"])
        .arg("a.mp4"));
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("answer   HTTP 200") && text.contains("x-cache-status: MISS"), "{text}");
    assert!(text.contains("verify   cache hit (HIT)") && text.contains("\"outcome\":\"warm\""), "{text}");
}
