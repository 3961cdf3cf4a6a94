//! Warming through a real cache: sample videos made with ffmpeg, served by
//! `rclone serve http`, cached by nginx `proxy_cache`. Every pair is in the
//! results exactly once and warm, and a second request for every derivative
//! URL is a cache HIT, read by the `template` plugin and by `video-resizer`
//! from nginx's `X-Cache-Status`.

use std::collections::HashSet;
use std::path::Path;

use prewarm::util::lab;
use prewarm_e2e::{prewarm, read_results, run};

const VIDEOS: &[&str] =
    &["intro.mp4", "trailers/launch trailer.mp4", "trailers/teaser.MOV", "séries/s01/épisode #1.mp4"];

struct Lab {
    _origin: lab::Service,
    cache: lab::Service,
    media: std::path::PathBuf,
}

fn lab(root: &Path) -> Lab {
    let media = root.join("media");
    for (i, name) in VIDEOS.iter().enumerate() {
        lab::make_sample_video(&media.join(name), 1 + i as u32 % 2, "320x240").unwrap();
    }
    std::fs::write(media.join("readme.txt"), "not a video").unwrap();
    let rclone = lab::find_program("rclone").expect("rclone installed");
    let origin = lab::start_origin(&rclone, &media).unwrap();
    let cache = lab::start_cache(&root.join("nginx"), &origin.url).unwrap();
    Lab { _origin: origin, cache, media }
}

fn warm(home: &Path, lab: &Lab, results: &Path, extra: &[&str]) -> std::process::Output {
    run(prewarm(home)
        .args(["warm", "--source"])
        .arg(&lab.media)
        .args(["--extensions", "mp4,mov", "--plugin", "template", "--base-url", &lab.cache.url])
        .args([
            "--set",
            "url={base}/{path}?imwidth={width}",
            "--set",
            "cache-header=x-cache-status",
            "--concurrency",
            "4",
            "--progress",
            "never",
        ])
        .arg("--results")
        .arg(results)
        .args(extra))
}

async fn cache_status(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.unwrap();
    let status = r.status().as_u16();
    let cache = r.headers().get("x-cache-status").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let _ = r.bytes().await.unwrap();
    (status, cache)
}

#[test]
fn every_derivative_ends_up_cached() {
    let home = tempfile::tempdir().unwrap();
    let lab = lab(home.path());
    let results_path = home.path().join("results.jsonl");
    let out = warm(home.path(), &lab, &results_path, &["--report", home.path().join("s.json").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "warm failed");

    let results = read_results(&results_path);
    assert_eq!(results.len(), VIDEOS.len() * 3, "one record per pair");
    let pairs: HashSet<(String, String)> = results
        .iter()
        .map(|r| (r["path"].as_str().unwrap().to_string(), r["derivative"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(pairs.len(), results.len(), "a pair recorded twice");
    for v in VIDEOS {
        for d in ["desktop", "tablet", "mobile"] {
            assert!(pairs.contains(&(v.to_string(), d.to_string())), "missing {v} / {d}");
        }
    }
    for r in &results {
        assert_eq!(r["outcome"], "warm", "{r}");
        assert_eq!(r["status"], 200);
        assert_eq!(r["cache"], "miss", "first request must be a miss: {r}");
        let size = std::fs::metadata(lab.media.join(r["path"].as_str().unwrap())).unwrap().len();
        assert_eq!(r["original_size"], size);
        // The origin ignores the query: the "derivative" is the whole file.
        assert_eq!(r["size"], size, "{r}");
        assert_eq!(r["bytes_read"], size);
        assert_eq!(r["size_method"], "warm-content-length");
        assert!(r["ttfb_ms"].as_f64().unwrap() > 0.0);
    }

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        for r in &results {
            let (status, cache) = cache_status(r["url"].as_str().unwrap()).await;
            assert_eq!((status, cache.as_str()), (200, "HIT"), "not cached: {}", r["url"]);
        }
    });

    // A second run sees hits everywhere.
    let again = home.path().join("again.jsonl");
    let out = warm(home.path(), &lab, &again, &[]);
    assert_eq!(out.status.code(), Some(0));
    let second = read_results(&again);
    assert_eq!(second.len(), VIDEOS.len() * 3);
    assert!(second.iter().all(|r| r["cache"] == "hit"), "second pass not all hits");
}

#[test]
fn sizes_by_head_and_range_move_at_most_one_byte() {
    let home = tempfile::tempdir().unwrap();
    let lab = lab(home.path());
    for (method, max_bytes) in [("head", 0), ("range", 1)] {
        let results_path = home.path().join(format!("{method}.jsonl"));
        // Headers-only warm requests, so the size must come from the probe.
        let out = warm(
            home.path(),
            &lab,
            &results_path,
            &["--set", &format!("size-methods={method}"), "--set", "body=headers-only"],
        );
        assert_eq!(out.status.code(), Some(0));
        for r in read_results(&results_path) {
            let size = std::fs::metadata(lab.media.join(r["path"].as_str().unwrap())).unwrap().len();
            assert_eq!(r["size"], size, "{method}: {r}");
            assert_eq!(r["size_method"], method);
            assert!(r["size_check_bytes"].as_u64().unwrap() <= max_bytes, "{method} moved {}", r["size_check_bytes"]);
        }
    }
}

#[test]
fn verify_proves_every_pair_is_a_hit_and_names_a_cache_that_does_not_keep_it() {
    let home = tempfile::tempdir().unwrap();
    let lab = lab(home.path());
    let results = home.path().join("verified.jsonl");
    let report = home.path().join("verified.json");
    let md = home.path().join("verified.md");
    let out = warm(
        home.path(),
        &lab,
        &results,
        &["--verify", "--report", report.to_str().unwrap(), "--markdown", md.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0));
    let rows = read_results(&results);
    assert_eq!(rows.len(), VIDEOS.len() * 3);
    assert!(rows.iter().all(|r| r["verify_cache"] == "hit" && r["verify_cache_status"] == "HIT"), "{rows:?}");
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    for (_, c) in summary["stats"]["verify"]["per_derivative"].as_object().unwrap() {
        assert_eq!(c["checked"], VIDEOS.len());
        assert_eq!(c["hit"], VIDEOS.len());
    }
    assert!(std::fs::read_to_string(&md).unwrap().contains("| 100.0 % |"));

    // The same objects where nginx never caches: each pair is warm (the
    // answer came) but does not verify, the reason is named, exit 3.
    let results = home.path().join("bypass.jsonl");
    let md = home.path().join("bypass.md");
    let out = run(prewarm(home.path())
        .args(["warm", "--source"])
        .arg(&lab.media)
        .args(["--extensions", "mp4,mov", "--plugin", "template", "--base-url"])
        .arg(format!("{}/nocache", lab.cache.url))
        .args(["--set", "url={base}/{path}?imwidth={width}", "--verify", "--progress", "never"])
        .arg("--results")
        .arg(&results)
        .arg("--markdown")
        .arg(&md));
    assert_eq!(out.status.code(), Some(3));
    let rows = read_results(&results);
    assert_eq!(rows.len(), VIDEOS.len() * 3);
    assert!(rows.iter().all(|r| r["outcome"] == "warm" && r["verify_cache"] == "bypass"), "{rows:?}");
    let text = std::fs::read_to_string(&md).unwrap();
    assert!(text.contains("| bypass | BYPASS |") && text.contains("will not cache"), "{text}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("verified hits:") && stderr.contains("(0.0 %)"), "{stderr}");
}

#[test]
fn video_resizer_reads_nginx_x_cache_status() {
    let home = tempfile::tempdir().unwrap();
    let lab = lab(home.path());
    let run_once = |name: &str| {
        let results = home.path().join(name);
        run(prewarm(home.path())
            .args(["warm", "--source"])
            .arg(&lab.media)
            .args(["--extensions", "mp4,mov", "--plugin", "video-resizer", "--base-url", &lab.cache.url])
            .args(["--progress", "never", "--results"])
            .arg(&results));
        read_results(&results)
    };
    // nginx ignores the query and serves the untransformed source.
    let first = run_once("first.jsonl");
    assert_eq!(first.len(), VIDEOS.len() * 4, "three breakpoints and the thumbnail per video");
    for r in &first {
        assert_eq!(r["outcome"], "passthrough", "{r}");
        assert_eq!(r["cache"], "miss", "{r}");
    }
    let second = run_once("second.jsonl");
    assert_eq!(second.len(), VIDEOS.len() * 4);
    for r in &second {
        assert_eq!((&r["cache"], &r["cache_status"]), (&"hit".into(), &"HIT".into()), "{r}");
    }
}
