//! `prewarm validate` through the real binary, real rclone (`lsjson` and a
//! loopback `serve http`), real ffprobe/ffmpeg and the nginx lab cache:
//! broken sources get their verdicts, derivatives of a good warm all pass,
//! wrong ones are reported with the right check, and no process is left
//! behind after a run, an error or Ctrl-C.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use prewarm::util::lab;
use prewarm_e2e::{prewarm, read_results, run};
use serde_json::Value;

/// A short test video (testsrc2, H.264) made with ffmpeg.
fn video(path: &Path, seconds: u32, size: &str, extra: &[&str]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={size}:rate=25:duration={seconds}"))
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"])
        .args(extra)
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "ffmpeg could not make {}", path.display());
}

/// The first half of `from`, written to `to`: an upload cut short.
fn truncate_half(from: &Path, to: &Path) {
    let bytes = std::fs::read(from).unwrap();
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::write(to, &bytes[..bytes.len() / 2]).unwrap();
}

/// A results file's lines by path (and derivative when there is one).
fn by_item(results: &[Value]) -> std::collections::HashMap<String, Value> {
    results
        .iter()
        .map(|r| {
            let key = match r["derivative"].as_str() {
                Some(d) => format!("{} [{d}]", r["path"].as_str().unwrap()),
                None => r["path"].as_str().unwrap().to_string(),
            };
            (key, r.clone())
        })
        .collect()
}

fn failed(r: &Value) -> Vec<&str> {
    r["failed"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect()
}

/// A tree with one of each kind of source.
fn broken_tree(dir: &Path) {
    video(&dir.join("good.mp4"), 4, "640x360", &[]);
    truncate_half(&dir.join("good.mp4"), &dir.join("cut/half.mp4"));
    // With the index first, a cut file opens and plays its start.
    video(&dir.join("tmp-faststart.mp4"), 4, "640x360", &["-movflags", "+faststart"]);
    truncate_half(&dir.join("tmp-faststart.mp4"), &dir.join("cut/half-faststart.mp4"));
    std::fs::remove_file(dir.join("tmp-faststart.mp4")).unwrap();
    std::fs::create_dir_all(dir.join("fake")).unwrap();
    std::fs::write(dir.join("fake/text.mp4"), "this is not a video\n").unwrap();
    std::fs::write(dir.join("fake/empty.mp4"), "").unwrap();
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=duration=2", "-c:a", "aac"])
        .arg(dir.join("audio only.mp4"))
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn sources_each_get_their_verdict() {
    let home = tempfile::tempdir().unwrap();
    let src = home.path().join("src");
    broken_tree(&src);
    let out_path = home.path().join("v.jsonl");
    let md = home.path().join("v.md");
    let out = run(prewarm(home.path())
        .args(["validate", "--source"])
        .arg(&src)
        .args(["--jobs", "2", "--results-out"])
        .arg(&out_path)
        .arg("--markdown")
        .arg(&md));
    assert_eq!(out.status.code(), Some(3), "some sources are bad");
    let items = by_item(&read_results(&out_path));
    assert_eq!(items.len(), 6, "{items:?}");
    let good = &items["good.mp4"];
    assert_eq!(good["verdict"], "ok", "{good}");
    assert_eq!(
        (good["codec"].as_str(), good["width"].as_u64(), good["height"].as_u64()),
        (Some("h264"), Some(640), Some(360))
    );
    assert!((good["duration_s"].as_f64().unwrap() - 4.0).abs() < 0.1, "{good}");
    assert!(good["bit_rate_bps"].as_u64().unwrap() > 0);
    for (path, check) in [
        ("cut/half.mp4", "truncated"),
        ("cut/half-faststart.mp4", "truncated"),
        ("fake/text.mp4", "not_media"),
        ("fake/empty.mp4", "empty"),
        ("audio only.mp4", "no_video"),
    ] {
        let r = &items[path];
        assert_eq!(r["verdict"], "bad", "{path}: {r}");
        assert_eq!(failed(r), [check], "{path}: {r}");
    }
    let report = std::fs::read_to_string(&md).unwrap();
    for check in ["truncated` (2)", "not_media` (1)", "empty` (1)", "no_video` (1)"] {
        assert!(report.contains(check), "{check} not in the report:\n{report}");
    }
    assert!(report.contains("Upload it again"), "{report}");
}

#[test]
fn sources_over_the_cdn_limit_are_flagged() {
    let home = tempfile::tempdir().unwrap();
    let src = home.path().join("src");
    video(&src.join("small.mp4"), 2, "320x240", &[]);
    // Sparse: 101 MB on the listing, no disk used.
    std::fs::File::create(src.join("huge.mp4")).unwrap().set_len(101_000_000).unwrap();
    let out_path = home.path().join("v.jsonl");
    let out = run(prewarm(home.path())
        .args(["validate", "--plugin", "cloudflare-media", "--source"])
        .arg(&src)
        .arg("--results-out")
        .arg(&out_path));
    assert_eq!(out.status.code(), Some(3));
    let items = by_item(&read_results(&out_path));
    assert_eq!(items["small.mp4"]["verdict"], "ok", "{:?}", items["small.mp4"]);
    assert!(failed(&items["huge.mp4"]).contains(&"too_large"), "{:?}", items["huge.mp4"]);
}

#[test]
fn sources_that_cannot_be_read_are_unreadable() {
    let home = tempfile::tempdir().unwrap();
    let src = home.path().join("src");
    video(&src.join("here.mp4"), 2, "320x240", &[]);
    let listing = home.path().join("listing.json");
    prewarm_e2e::write_listing(&listing, &[("here.mp4", 1000), ("gone.mp4", 1000)]);
    let out_path = home.path().join("v.jsonl");
    let out = run(prewarm(home.path())
        .args(["validate", "--source"])
        .arg(&src)
        .arg("--listing")
        .arg(&listing)
        .arg("--results-out")
        .arg(&out_path));
    assert_eq!(out.status.code(), Some(3));
    let items = by_item(&read_results(&out_path));
    assert_eq!(items["here.mp4"]["verdict"], "ok", "{:?}", items["here.mp4"]);
    let gone = &items["gone.mp4"];
    assert_eq!((gone["verdict"].as_str(), failed(gone)), (Some("unreadable"), vec!["fetch"]), "{gone}");
    assert!(gone["problems"][0].as_str().unwrap().contains("404"), "{gone}");
    assert!(!gone.to_string().contains("127.0.0.1"), "the loopback URL is not shown: {gone}");
}

/// The lab the demo uses: originals, one rendition per derivative width,
/// served by `rclone serve http` behind an nginx cache.
struct Lab {
    _origin: lab::Service,
    cache: lab::Service,
    originals: PathBuf,
}

/// Sources and their seconds.
const SOURCES: &[(&str, u32)] = &[("intro.mp4", 2), ("series/épisode #1.mp4", 2), ("trailer.mp4", 4)];
const DERIVATIVES: &str = "big=640x360,small=320x240";
const URL: &str = "url={base}/renditions/{width}/{path}";

fn lab(root: &Path, spoil: impl FnOnce(&Path)) -> Lab {
    let media = root.join("media");
    let originals = media.join("originals");
    for (name, seconds) in SOURCES {
        let original = originals.join(name);
        lab::make_sample_video(&original, *seconds, "640x360").unwrap();
        for width in [640, 320] {
            lab::make_rendition(&original, &media.join(format!("renditions/{width}/{name}")), width).unwrap();
        }
    }
    spoil(&media);
    let rclone = lab::find_program("rclone").expect("rclone installed");
    let origin = lab::start_origin(&rclone, &media).unwrap();
    let cache = lab::start_cache(&root.join("nginx"), &origin.url).unwrap();
    Lab { _origin: origin, cache, originals }
}

fn warm_then_validate(home: &Path, lab: &Lab, edit_results: impl FnOnce(&Path)) -> (Option<i32>, Vec<Value>) {
    let results = home.join("warm.jsonl");
    let out = run(prewarm(home)
        .args(["warm", "--source"])
        .arg(&lab.originals)
        .args(["--plugin", "template", "--base-url", &lab.cache.url, "--set", URL, "--derivatives", DERIVATIVES])
        .args(["--progress", "never", "--results"])
        .arg(&results));
    assert_eq!(out.status.code(), Some(0), "the warm says every pair is warm");
    edit_results(&results);
    let checked = home.join("validate.jsonl");
    let out = run(prewarm(home)
        .args(["validate", "--results"])
        .arg(&results)
        .args(["--plugin", "template", "--base-url", &lab.cache.url, "--set", URL, "--derivatives", DERIVATIVES])
        .arg("--source")
        .arg(&lab.originals)
        .arg("--results-out")
        .arg(&checked));
    (out.status.code(), read_results(&checked))
}

#[test]
fn derivatives_of_a_good_warm_all_pass() {
    let home = tempfile::tempdir().unwrap();
    let lab = lab(home.path(), |_| {});
    let (code, results) = warm_then_validate(home.path(), &lab, |_| {});
    assert_eq!(results.len(), SOURCES.len() * 2);
    for r in &results {
        assert_eq!(r["verdict"], "ok", "{r}");
        assert!(r["source_duration_s"].as_f64().unwrap() > 1.5, "the source's duration was read: {r}");
        assert!(r["url"].as_str().unwrap().starts_with(&lab.cache.url));
        let box_width = if r["derivative"] == "big" { 640 } else { 320 };
        assert_eq!(r["width"], box_width, "{r}");
    }
    assert_eq!(code, Some(0));

    // The same from zstd-compressed results.
    let (h, zst, checked) = (home.path(), home.path().join("warm.jsonl.zst"), home.path().join("zst.jsonl"));
    let args = ["--plugin", "template", "--base-url", &lab.cache.url, "--set", URL, "--derivatives", DERIVATIVES];
    let out = run(prewarm(h)
        .args(["warm", "--progress", "never", "--source"])
        .arg(&lab.originals)
        .args(args)
        .arg("--results")
        .arg(&zst));
    assert_eq!(out.status.code(), Some(0));
    let out = run(prewarm(h)
        .args(["validate", "--results"])
        .arg(&zst)
        .args(args)
        .arg("--source")
        .arg(&lab.originals)
        .arg("--results-out")
        .arg(&checked));
    assert_eq!(out.status.code(), Some(0));
    let results = read_results(&checked);
    assert_eq!(results.len(), SOURCES.len() * 2);
    assert!(results.iter().all(|r| r["verdict"] == "ok"));
}

#[test]
fn wrong_derivatives_are_reported_with_the_right_check() {
    let home = tempfile::tempdir().unwrap();
    let lab = lab(home.path(), |media| {
        // The CDN served the big rendition for `small`, and cut one short.
        let r = |w: u32, name: &str| media.join(format!("renditions/{w}/{name}"));
        std::fs::copy(r(640, "intro.mp4"), r(320, "intro.mp4")).unwrap();
        truncate_half(&r(640, "trailer.mp4"), &r(640, "trailer.mp4"));
    });
    // A results line whose recorded size is not what the CDN serves.
    let (code, results) = warm_then_validate(home.path(), &lab, |results| {
        let text = std::fs::read_to_string(results).unwrap();
        let lines: Vec<String> = text
            .lines()
            .map(|l| {
                let mut v: Value = serde_json::from_str(l).unwrap();
                if v["path"] == "series/épisode #1.mp4" && v["derivative"] == "small" {
                    v["size"] = Value::from(v["size"].as_u64().unwrap() + 1);
                }
                v.to_string()
            })
            .collect();
        std::fs::write(results, lines.join("\n") + "\n").unwrap();
    });
    assert_eq!(code, Some(3));
    let items = by_item(&results);
    assert_eq!(failed(&items["intro.mp4 [small]"]), ["dimensions"], "{:?}", items["intro.mp4 [small]"]);
    assert_eq!(failed(&items["trailer.mp4 [big]"]), ["truncated"], "{:?}", items["trailer.mp4 [big]"]);
    assert_eq!(failed(&items["series/épisode #1.mp4 [small]"]), ["size"]);
    let ok = results.iter().filter(|r| r["verdict"] == "ok").count();
    assert_eq!(ok, SOURCES.len() * 2 - 3, "{results:?}");
    assert_eq!(items["trailer.mp4 [small]"]["verdict"], "ok");
}

#[test]
fn bad_input_exits_2_with_one_line() {
    let home = tempfile::tempdir().unwrap();
    let results = home.path().join("r.jsonl");
    std::fs::write(&results, "").unwrap();
    let r = results.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&[], "--source"),
        (&["--listing", r], "--source REMOTE:PATH too"),
        (&["--results", r], "--plugin and --base-url"),
        (&["--results", "/nonexistent/r.jsonl", "--plugin", "template", "--base-url", "http://x"], "no such file"),
        (&["--source", ".", "--decode", "0"], "--decode"),
        (&["--source", ".", "--sample", "2"], "--sample"),
        (&["--source", ".", "--jobs", "0"], "--jobs"),
        (&["--source", ".", "--base-url", "http://x"], "only used with --results"),
    ];
    for (args, needle) in cases {
        let out = run(prewarm(home.path()).arg("validate").args(*args));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: expected {needle:?} in {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
    }
}

/// Processes started by the prewarm run tagged with `marker` (children
/// inherit its environment), with their command names.
fn tagged(marker: &str) -> Vec<(u32, String)> {
    let needle = format!("PREWARM_TEST_MARKER={marker}");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(env) = std::fs::read(entry.path().join("environ")) else { continue };
        if env.split(|b| *b == 0).any(|v| v == needle.as_bytes()) {
            let cmd = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            found.push((pid, String::from_utf8_lossy(&cmd).replace('\0', " ")));
        }
    }
    found
}

fn tagged_run(home: &Path, marker: &str, args: &[OsString]) -> Command {
    let mut cmd = prewarm(home);
    cmd.env("PREWARM_TEST_MARKER", marker).arg("validate").args(args);
    cmd
}

#[test]
fn no_process_left_behind() {
    let home = tempfile::tempdir().unwrap();
    let src = home.path().join("src");
    for i in 0..12 {
        video(&src.join(format!("v{i:02}.mp4")), 4, "320x240", &[]);
    }
    let out_path = home.path().join("v.jsonl");
    let base: Vec<OsString> = vec!["--source".into(), src.into(), "--results-out".into(), out_path.clone().into()];

    // A run that ends normally.
    let marker = format!("done-{}", std::process::id());
    let out = run(&mut tagged_run(home.path(), &marker, &base));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(tagged(&marker), [], "left behind after a run");

    // A run that ends in an error: the listing breaks after some items.
    let listing = home.path().join("listing.json");
    std::fs::write(&listing, "{\"Path\":\"v00.mp4\",\"Size\":1}\n{\"Path\":\"v01.mp4\",\"Size\":1}\n{\"Path\": oops\n")
        .unwrap();
    let marker = format!("error-{}", std::process::id());
    let mut with_listing = base.clone();
    with_listing.extend(["--listing".into(), listing.into()]);
    let out = run(&mut tagged_run(home.path(), &marker, &with_listing));
    assert_eq!(out.status.code(), Some(2), "a broken listing is bad input");
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 3"));
    assert_eq!(tagged(&marker), [], "left behind after an error");

    // Ctrl-C while ffmpeg decodes.
    let marker = format!("interrupt-{}", std::process::id());
    let mut deep = base.clone();
    deep.extend(["--deep".into(), "--jobs".into(), "1".into()]);
    let md = home.path().join("v.md");
    deep.extend(["--markdown".into(), md.clone().into()]);
    let mut child =
        tagged_run(home.path(), &marker, &deep).stderr(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut password = None;
    loop {
        let procs = tagged(&marker);
        let decoding = procs.iter().any(|(_, c)| c.starts_with("ffmpeg") || c.contains("/ffmpeg "));
        if let Some((pid, _)) = procs.iter().find(|(_, c)| c.contains("serve http")) {
            let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            password = env.split(|b| *b == 0).find_map(|v| v.strip_prefix(b"RCLONE_PASS=").map(|p| p.to_vec()));
        }
        if decoding && password.is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "no ffmpeg seen decoding: {procs:?}");
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it could be interrupted");
        std::thread::sleep(Duration::from_millis(20));
    }
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("(interrupted)"), "{err}");
    assert_eq!(tagged(&marker), [], "left behind after Ctrl-C");

    // The server's password never shows.
    let password = String::from_utf8(password.unwrap()).unwrap();
    assert!(password.len() >= 16);
    let report = std::fs::read_to_string(&md).unwrap();
    let lines = std::fs::read_to_string(&out_path).unwrap();
    for text in [err.as_ref(), report.as_str(), lines.as_str(), &String::from_utf8_lossy(&out.stdout)] {
        assert!(!text.contains(&password), "the rclone password leaked");
    }
}

#[test]
fn rclone_dies_with_a_killed_prewarm() {
    let home = tempfile::tempdir().unwrap();
    let src = home.path().join("src");
    for i in 0..6 {
        video(&src.join(format!("v{i}.mp4")), 4, "320x240", &[]);
    }
    let marker = format!("sigkill-{}", std::process::id());
    let args: Vec<OsString> = vec!["--source".into(), src.into(), "--deep".into(), "--jobs".into(), "1".into()];
    let mut child = tagged_run(home.path(), &marker, &args)
        .arg("--results-out")
        .arg(home.path().join("v.jsonl"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let serving = |procs: &[(u32, String)]| procs.iter().any(|(_, c)| c.contains("serve http"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !serving(&tagged(&marker)) {
        assert!(Instant::now() < deadline && child.try_wait().unwrap().is_none(), "rclone serve http never seen");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // The kernel kills rclone when its parent dies; give it time to happen.
    let deadline = Instant::now() + Duration::from_secs(10);
    while serving(&tagged(&marker)) {
        assert!(Instant::now() < deadline, "rclone serve http outlived a killed prewarm: {:?}", tagged(&marker));
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `--upload`: the results and the Markdown report land on the rclone
/// destination as written; outputs that share a file name are refused
/// before anything runs (they would land on one object).
#[test]
fn validate_uploads_its_outputs_and_refuses_two_with_one_name() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let src = h.join("src");
    video(&src.join("good.mp4"), 1, "320x240", &[]);
    std::fs::write(src.join("bad.mp4"), "not a video\n").unwrap();
    let bucket = h.join("bucket/validate");
    let out = run(prewarm(h)
        .current_dir(h)
        .env("RCLONE_CONFIG_BUCKET_TYPE", "local")
        .args(["validate", "--source"])
        .arg(&src)
        .args(["--results-out", "out/sources.jsonl", "--markdown", "sources.md", "--upload"])
        .arg(format!("bucket:{}", bucket.display())));
    assert_eq!(out.status.code(), Some(3), "one source is bad");
    let mut names: Vec<String> =
        std::fs::read_dir(&bucket).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, ["sources.jsonl", "sources.md"]);
    for (local, uploaded) in [("out/sources.jsonl", "sources.jsonl"), ("sources.md", "sources.md")] {
        assert_eq!(std::fs::read(h.join(local)).unwrap(), std::fs::read(bucket.join(uploaded)).unwrap(), "{local}");
    }
    assert_eq!(read_results(&bucket.join("sources.jsonl")).len(), 2);

    let out = run(prewarm(h).current_dir(h).args(["validate", "--source"]).arg(&src).args([
        "--results-out",
        "a/v.out",
        "--markdown",
        "b/v.out",
        "--upload",
        "bucket:elsewhere",
    ]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(
        err.trim(),
        "error: --upload: a/v.out and b/v.out would both be uploaded as `v.out`; give the outputs different file names"
    );
    assert!(!h.join("a/v.out").exists(), "refused before anything was written");
}
