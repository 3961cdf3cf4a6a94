//! `prewarm hw` and `prewarm optimize` with the real ffmpeg, ffprobe and
//! rclone: what works on this machine (and the GPU encoders that do not),
//! from cache on the second call; oversize sources shrunk through a local
//! rclone remote, verified, with nothing half-written anywhere on failure or
//! Ctrl-C. A fake ffmpeg (tests/fixtures/fake-ffmpeg) stands in only for
//! what this machine cannot show: a GPU that passes its probe then fails,
//! encodes that fail or hang.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use prewarm_e2e::{prewarm, read_results, run};
use serde_json::Value;

/// A sample video: testsrc2 with a tone, at a very high quality so any
/// re-encode is smaller.
fn sample(path: &Path, size: &str, seconds: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i", &format!("testsrc2=size={size}:rate=25")])
        .args(["-f", "lavfi", "-i", "sine=frequency=440", "-t", &seconds.to_string()])
        .args(["-c:v", "libx264", "-crf", "10", "-preset", "ultrafast", "-c:a", "aac", "-shortest"])
        .arg(path)
        .status()
        .expect("ffmpeg (apt-get install ffmpeg)");
    assert!(status.success(), "could not make {}", path.display());
}

fn dimensions(path: &Path) -> (u32, u32) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let (w, h) = text.trim().split_once(',').unwrap_or_else(|| panic!("no video in {}: {text}", path.display()));
    (w.parse().unwrap(), h.parse().unwrap())
}

/// Every file under `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// A copy of the fake ffmpeg in `dir`, with the real ffprobe beside it.
fn fake_ffmpeg(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let fake = dir.join("ffmpeg");
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/fake-ffmpeg"), &fake).unwrap();
    let _ = std::os::unix::fs::symlink("/usr/bin/ffprobe", dir.join("ffprobe"));
    fake
}

/// An rclone config with a local remote `loc:`.
fn rclone_config(home: &Path) -> PathBuf {
    let conf = home.join("rclone.conf");
    std::fs::write(&conf, "[loc]\ntype = local\n").unwrap();
    conf
}

/// `prewarm optimize` from `src` to `dst` through the `loc:` remote.
fn optimize(home: &Path, src: &Path, dst: Option<&Path>) -> Command {
    let mut cmd = prewarm(home);
    cmd.args(["optimize", "--rclone-config"]).arg(rclone_config(home));
    cmd.arg("--source").arg(format!("loc:{}", src.display()));
    match dst {
        Some(d) => cmd.arg("--dest").arg(format!("loc:{}", d.display())),
        None => cmd.arg("--in-place"),
    };
    cmd.arg("--work-dir").arg(home.join("work")).arg("--results").arg(home.join("results.jsonl"));
    cmd
}

fn hw_json(home: &Path, ffmpeg: &Path, extra: &[&str]) -> Value {
    let out = run(prewarm(home).args(["hw", "--json", "--ffmpeg"]).arg(ffmpeg).args(extra));
    assert!(out.status.success(), "hw failed");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn encoder<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["encoders"].as_array().unwrap().iter().find(|e| e["name"] == name).unwrap_or_else(|| panic!("no {name}"))
}

fn calls(path: &Path) -> usize {
    std::fs::read_to_string(path).unwrap_or_default().lines().count()
}

#[test]
fn hw_proves_encoders_and_answers_from_cache_until_the_fingerprint_changes() {
    let home = tempfile::tempdir().unwrap();
    let bin = home.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let counter = home.path().join("calls");
    let wrapper = bin.join("ffmpeg");
    let script = format!("#!/bin/sh\necho called >>{}\nexec /usr/bin/ffmpeg \"$@\"\n", counter.display());
    std::fs::write(&wrapper, &script).unwrap();
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    let first = hw_json(home.path(), &wrapper, &[]);
    assert_eq!(encoder(&first, "libx264")["usable"], true, "{first}");
    assert_eq!(first["best"]["h264"], "libx264");
    // Debian's ffmpeg is built with these; there is no GPU here.
    for name in ["h264_nvenc", "h264_vaapi", "h264_qsv"] {
        let e = encoder(&first, name);
        assert_eq!(e["built_in"], true, "{e}");
        assert_eq!(e["usable"], false, "{e}");
        let reason = e["reason"].as_str().unwrap_or_default();
        assert!(["no_device", "no_driver", "codec_not_supported", "failed"].contains(&reason), "{e}");
        assert!(e["error"].as_str().is_some_and(|l| l.len() > 10), "ffmpeg's line missing: {e}");
    }
    assert_eq!(encoder(&first, "h264_amf")["built_in"], false);
    let probed = calls(&counter);
    assert!(probed > 5, "the first call proved nothing: {probed} ffmpeg runs");

    let second = hw_json(home.path(), &wrapper, &[]);
    assert_eq!(calls(&counter), probed, "the second call ran ffmpeg: no cache");
    assert_eq!(second["from_cache"], true);
    assert_eq!(second["encoders"], first["encoders"]);

    // A touched binary is another fingerprint.
    let touched = Command::new("touch").args(["-d", "2001-01-01"]).arg(&wrapper).status().unwrap();
    assert!(touched.success());
    hw_json(home.path(), &wrapper, &[]);
    let after_touch = calls(&counter);
    assert!(after_touch > probed, "a touched ffmpeg was not probed again");

    // So is another binary.
    let other = home.path().join("bin2/ffmpeg");
    std::fs::create_dir_all(other.parent().unwrap()).unwrap();
    std::fs::copy(&wrapper, &other).unwrap();
    hw_json(home.path(), &other, &[]);
    let after_other = calls(&counter);
    assert!(after_other > after_touch, "another ffmpeg was not probed");

    // A corrupt cache is probed over and rewritten whole.
    let cache = home.path().join("cache/hw.json");
    std::fs::write(&cache, b"{\"schema\": 1, \"fingerpr").unwrap();
    let recovered = hw_json(home.path(), &other, &[]);
    assert_eq!(encoder(&recovered, "libx264")["usable"], true);
    assert!(calls(&counter) > after_other);
    let file: Value = serde_json::from_slice(&std::fs::read(&cache).unwrap()).expect("cache rewritten as JSON");
    assert_eq!(file["schema"], 1);
    let settled = calls(&counter);
    hw_json(home.path(), &other, &[]);
    assert_eq!(calls(&counter), settled, "the rewritten cache is not used");
    hw_json(home.path(), &other, &["--refresh"]);
    assert!(calls(&counter) > settled, "--refresh did not probe");
}

#[test]
fn hw_without_ffmpeg_says_how_to_install_it() {
    let home = tempfile::tempdir().unwrap();
    let out = run(prewarm(home.path()).args(["hw", "--ffmpeg", "/nonexistent/ffmpeg"]));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("/nonexistent/ffmpeg") && err.contains("apt-get install ffmpeg"), "{err}");
}

#[test]
fn optimize_shrinks_oversize_sources_through_rclone() {
    let home = tempfile::tempdir().unwrap();
    let (src, dst) = (home.path().join("src"), home.path().join("dst"));
    sample(&src.join("one.mp4"), "1280x720", 3);
    sample(&src.join("deep/dir/two.mp4"), "1280x720", 3);
    sample(&src.join("small.mp4"), "160x120", 1);
    let before: Vec<Vec<u8>> = files(&src).iter().map(|f| std::fs::read(src.join(f)).unwrap()).collect();

    let out = run(optimize(home.path(), &src, Some(&dst))
        .args(["--threshold", "200KiB", "--resolution", "480p"])
        .args(["--hw", "none", "--json"]));
    assert!(out.status.success());
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["outcomes"]["optimized"], 2, "{summary}");
    assert_eq!(summary["sources_listed"], 3);
    assert!(summary["bytes_saved"].as_u64().unwrap() > 0);

    assert_eq!(files(&dst), ["deep/dir/two.mp4", "one.mp4"], "only the oversize sources, same paths");
    for f in ["one.mp4", "deep/dir/two.mp4"] {
        assert_eq!(dimensions(&dst.join(f)), (854, 480), "{f}");
        assert!(std::fs::metadata(dst.join(f)).unwrap().len() < std::fs::metadata(src.join(f)).unwrap().len());
    }
    let after: Vec<Vec<u8>> = files(&src).iter().map(|f| std::fs::read(src.join(f)).unwrap()).collect();
    assert!(before == after, "the sources changed");
    let results = read_results(&home.path().join("results.jsonl"));
    assert_eq!(results.len(), 2);
    for r in &results {
        assert_eq!(r["outcome"], "optimized", "{r}");
        assert_eq!(r["encoder"], "libx264");
        assert_eq!((r["width"].as_u64(), r["height"].as_u64()), (Some(854), Some(480)));
        assert!(r["size_after"].as_u64() < r["size_before"].as_u64());
    }
    assert_eq!(files(&home.path().join("work")), Vec::<String>::new(), "work files left");
}

#[test]
fn optimize_in_place_replaces_only_verified_outputs() {
    let home = tempfile::tempdir().unwrap();
    let src = home.path().join("src");
    sample(&src.join("keep/one.mp4"), "1280x720", 3);
    std::fs::write(src.join("keep/corrupt.mp4"), vec![0x42u8; 300_000]).unwrap();
    let corrupt = std::fs::read(src.join("keep/corrupt.mp4")).unwrap();

    let out = run(optimize(home.path(), &src, None).args(["--threshold", "1", "--resolution", "360p", "--hw", "none"]));
    assert_eq!(out.status.code(), Some(3), "one source failed");
    assert_eq!(files(&src), ["keep/corrupt.mp4", "keep/one.mp4"], "no temporary objects left");
    assert_eq!(dimensions(&src.join("keep/one.mp4")), (640, 360), "the original was replaced");
    assert_eq!(std::fs::read(src.join("keep/corrupt.mp4")).unwrap(), corrupt, "a failed source was touched");
    let results = read_results(&home.path().join("results.jsonl"));
    let bad = results.iter().find(|r| r["path"] == "keep/corrupt.mp4").unwrap();
    assert_eq!(bad["outcome"], "failed");
    assert!(bad["error"].as_str().unwrap().starts_with("not a video ("), "{bad}");
    assert_eq!(bad["kind"], "not_video");
}

#[test]
fn a_failing_encode_leaves_originals_and_destination_untouched() {
    let home = tempfile::tempdir().unwrap();
    let (src, dst) = (home.path().join("src"), home.path().join("dst"));
    sample(&src.join("a/one.mp4"), "1280x720", 2);
    let original = std::fs::read(src.join("a/one.mp4")).unwrap();
    let fake = fake_ffmpeg(&home.path().join("fake"));
    for dest in [Some(dst.as_path()), None] {
        let mut cmd = optimize(home.path(), &src, dest);
        cmd.args(["--threshold", "1", "--hw", "none", "--ffmpeg"]).arg(&fake).env("FAKE_FFMPEG_MODE", "encode-fail");
        let out = run(&mut cmd);
        assert_eq!(out.status.code(), Some(3));
        let results = read_results(&home.path().join("results.jsonl"));
        assert_eq!(results[0]["outcome"], "failed");
        assert!(results[0]["error"].as_str().unwrap().contains("fake encoder failure"), "{}", results[0]);
        assert_eq!(std::fs::read(src.join("a/one.mp4")).unwrap(), original);
        assert_eq!(files(&src), ["a/one.mp4"]);
        assert_eq!(files(&dst), Vec::<String>::new(), "something reached the destination");
        assert_eq!(files(&home.path().join("work")), Vec::<String>::new(), "work files left");
    }
}

#[test]
fn a_gpu_that_fails_the_real_encode_falls_back_to_software() {
    let home = tempfile::tempdir().unwrap();
    let (src, dst) = (home.path().join("src"), home.path().join("dst"));
    sample(&src.join("one.mp4"), "1280x720", 2);
    let fake = fake_ffmpeg(&home.path().join("fake"));
    let mut cmd = optimize(home.path(), &src, Some(&dst));
    cmd.args(["--threshold", "1", "--resolution", "480p", "--hw", "nvenc", "--jobs", "1", "--ffmpeg"])
        .arg(&fake)
        .env("FAKE_FFMPEG_MODE", "nvenc-probe-only");
    let out = run(&mut cmd);
    assert!(out.status.success());
    let results = read_results(&home.path().join("results.jsonl"));
    assert_eq!(results[0]["outcome"], "optimized", "{}", results[0]);
    assert_eq!(results[0]["fallback_from"], "h264_nvenc");
    assert_eq!(results[0]["encoder"], "libx264");
    assert_eq!(dimensions(&dst.join("one.mp4")), (854, 480));

    // The failure is remembered: the next run does not trust the probe.
    let report = hw_json(home.path(), &fake, &[]);
    assert_eq!(report["from_cache"], true);
    let nvenc = encoder(&report, "h264_nvenc");
    assert_eq!(nvenc["usable"], false, "{nvenc}");
    assert!(nvenc["error"].as_str().unwrap().contains("OpenEncodeSessionEx"), "{nvenc}");
}

#[test]
fn ctrl_c_or_sigterm_mid_encode_leaves_no_partial_object_and_no_process() {
    for signal in ["-INT", "-TERM"] {
        interrupt_mid_encode(signal);
    }
}

fn interrupt_mid_encode(signal: &str) {
    let home = tempfile::tempdir().unwrap();
    let (src, dst) = (home.path().join("src"), home.path().join("dst"));
    sample(&src.join("one.mp4"), "640x360", 1);
    let fake = fake_ffmpeg(&home.path().join("fake"));
    let pid_file = home.path().join("encode.pid");
    let mut cmd = optimize(home.path(), &src, Some(&dst));
    cmd.args(["--threshold", "1", "--hw", "none", "--ffmpeg"])
        .arg(&fake)
        .env("FAKE_FFMPEG_MODE", "encode-hang")
        .env("FAKE_FFMPEG_PIDFILE", &pid_file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let grandchild = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file).ok().filter(|p| p.ends_with('\n')) {
            break pid.trim().to_string();
        }
        assert!(child.try_wait().unwrap().is_none(), "optimize ended before the encode started");
        assert!(Instant::now() < deadline, "the encode never started");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!files(&home.path().join("work")).is_empty(), "the partial output should exist mid-encode");
    let sent = Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "optimize did not stop on {signal}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(3), "an interrupted run is not a success");
    assert_eq!(files(&dst), Vec::<String>::new(), "a partial object reached the destination");
    assert_eq!(files(&home.path().join("work")), Vec::<String>::new(), "work files left");
    let results = read_results(&home.path().join("results.jsonl"));
    assert_eq!(results[0]["outcome"], "interrupted", "{}", results[0]);
    // The encoder's own child went with its process group.
    let alive = || {
        std::fs::read_to_string(format!("/proc/{grandchild}/stat"))
            .is_ok_and(|s| s.rsplit(')').next().is_some_and(|r| !r.trim_start().starts_with('Z')))
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!alive(), "the encode's process {grandchild} outlived {signal}");
}

#[test]
fn optimize_refuses_bad_input_with_one_line() {
    let home = tempfile::tempdir().unwrap();
    let src = home.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let listing = home.path().join("listing.json");
    prewarm_e2e::write_listing(&listing, &[("a.mp4", 1 << 30)]);
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--listing".into(), listing.display().to_string(), "--dest".into(), "/tmp/x".into()], "--root"),
        (vec!["--source".into(), src.display().to_string(), "--dest".into(), src.display().to_string()], "--in-place"),
        (
            vec!["--source".into(), src.display().to_string(), "--in-place".into(), "--jobs".into(), "0".into()],
            "--jobs",
        ),
        (
            vec!["--source".into(), src.display().to_string(), "--in-place".into(), "--threshold".into(), "big".into()],
            "--threshold",
        ),
        (
            vec!["--source".into(), src.display().to_string(), "--in-place".into(), "--hw".into(), "vaapi".into()],
            "h264_vaapi",
        ),
        (
            vec![
                "--source".into(),
                src.display().to_string(),
                "--in-place".into(),
                "--plugin".into(),
                "template".into(),
            ],
            "--threshold",
        ),
    ];
    for (args, needle) in cases {
        let out = run(prewarm(home.path()).arg("optimize").args(&args));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

/// `optimize --upload`: the results file lands on the rclone destination as
/// written; without --results there is nothing to upload (exit 2).
#[test]
fn optimize_uploads_its_results() {
    let home = tempfile::tempdir().unwrap();
    let (src, dst, bucket) = (home.path().join("src"), home.path().join("dst"), home.path().join("bucket/opt"));
    sample(&src.join("one.mp4"), "320x240", 1);
    let out = run(optimize(home.path(), &src, Some(&dst))
        .args(["--threshold", "1", "--hw", "none", "--upload"])
        .arg(format!("loc:{}", bucket.display())));
    assert!(out.status.success());
    let uploaded = std::fs::read(bucket.join("results.jsonl")).unwrap();
    assert_eq!(uploaded, std::fs::read(home.path().join("results.jsonl")).unwrap());
    let results = read_results(&bucket.join("results.jsonl"));
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["path"], "one.mp4");

    let out = run(prewarm(home.path()).args(["optimize", "--source"]).arg(&src).args([
        "--dest",
        "loc:/nowhere",
        "--upload",
        "loc:/up",
    ]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--results"));
}
