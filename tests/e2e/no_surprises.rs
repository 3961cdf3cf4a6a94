//! What a careful operator hits in the first week (issue 14): an existing
//! results file is never replaced silently, logs carry no escape codes where
//! nobody sees colours, passthrough is not warm (exit 3), the summary reads
//! as English, a listing saved without `-R` is flagged, `list --shard`
//! shows what a shard's warm will do, and a stdout closed by its reader
//! ends quietly.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use prewarm::util::lab;
use prewarm_e2e::fault_server::FaultServer;
use prewarm_e2e::{prewarm, prewarm_bin, read_results, run, warm_listing, write_listing};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn an_existing_results_file_is_refused_unless_resumed_or_overwritten() {
    let server = FaultServer::start();
    let home = tempfile::tempdir().unwrap();
    let results = home.path().join("history.jsonl");
    let history = "{\"path\":\"old.mp4\",\"derivative\":\"desktop\",\"outcome\":\"warm\"}\n".repeat(50);
    std::fs::write(&results, &history).unwrap();
    let objects = [("ok/a.mp4", 10_000u64), ("ok/b.mp4", 10_000)];

    let out = run(warm_listing(home.path(), &server.url, &objects).arg("--results").arg(&results));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    for needle in ["history.jsonl", "50 records", "--resume", "--overwrite"] {
        assert!(err.contains(needle), "{needle:?} missing from {err}");
    }
    assert_eq!(std::fs::read_to_string(&results).unwrap(), history, "the history was touched");
    assert_eq!(server.total("GET"), 0, "refused before any request");

    let out = run(warm_listing(home.path(), &server.url, &objects).arg("--results").arg(&results).arg("--overwrite"));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("replacing") && stderr(&out).contains("50 records"), "{}", stderr(&out));
    let now = read_results(&results);
    assert_eq!(now.len(), 6, "replaced by this run's pairs");
    assert!(now.iter().all(|r| r["path"] != "old.mp4"));

    let out = run(warm_listing(home.path(), &server.url, &objects)
        .arg("--results")
        .arg(&results)
        .args(["--resume", "--overwrite"]));
    assert_eq!(out.status.code(), Some(2), "--resume and --overwrite contradict each other");
}

/// A warm that logs a warning (it replaces a results file) with stderr as given.
fn warm_that_warns(home: &Path, server: &FaultServer) -> Command {
    let results = home.join("r.jsonl");
    std::fs::write(&results, "{}\n").unwrap();
    let mut cmd = warm_listing(home, &server.url, &[("ok/a.mp4", 10)]);
    cmd.arg("--results").arg(&results).arg("--overwrite");
    cmd
}

fn quoted(args: impl IntoIterator<Item = String>) -> String {
    args.into_iter().map(|a| format!("'{}'", a.replace('\'', r"'\''"))).collect::<Vec<_>>().join(" ")
}

/// Run a command on a pseudo-terminal (util-linux `script`); returns what the terminal showed.
fn on_a_terminal(cmd: &Command, no_color: Option<&str>) -> String {
    let line = quoted(
        std::iter::once(cmd.get_program().to_string_lossy().into_owned())
            .chain(cmd.get_args().map(|a| a.to_string_lossy().into_owned())),
    );
    let mut script = Command::new("script");
    script.args(["-qec", &line, "/dev/null"]).env_remove("NO_COLOR");
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => script.env(k, v),
            None => script.env_remove(k),
        };
    }
    if let Some(v) = no_color {
        script.env("NO_COLOR", v);
    }
    let out = script.output().expect("util-linux script");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn logs_carry_no_escape_codes_when_piped_or_with_no_color() {
    let server = FaultServer::start();
    let home = tempfile::tempdir().unwrap();

    let out = run(warm_that_warns(home.path(), &server).env_remove("NO_COLOR"));
    let err = stderr(&out);
    assert!(err.contains("WARN") && err.contains("replacing"), "the warning is logged: {err}");
    assert!(!err.contains('\x1b'), "escape codes in piped stderr: {err:?}");

    // On a terminal, colour is the default (this is what makes the next check mean something)…
    let coloured = on_a_terminal(&warm_that_warns(home.path(), &server), None);
    assert!(coloured.contains("replacing") && coloured.contains('\x1b'), "{coloured:?}");
    // …and NO_COLOR turns it off.
    let plain = on_a_terminal(&warm_that_warns(home.path(), &server), Some("1"));
    assert!(plain.contains("WARN") && plain.contains("replacing"), "{plain:?}");
    assert!(!plain.contains('\x1b'), "escape codes with NO_COLOR set: {plain:?}");
}

#[test]
fn every_pair_passthrough_exits_3_and_says_so() {
    // A real cache in front of an origin that serves every source untransformed.
    let home = tempfile::tempdir().unwrap();
    let media = home.path().join("media");
    std::fs::create_dir_all(media.join("d")).unwrap();
    for i in 0..3 {
        std::fs::write(media.join(format!("d/v{i}.mp4")), vec![b'x'; 3000 + i * 11]).unwrap();
    }
    let rclone = lab::find_program("rclone").expect("rclone installed");
    let origin = lab::start_origin(&rclone, &media).unwrap();
    let cache = lab::start_cache(&home.path().join("nginx"), &origin.url).unwrap();
    let results = home.path().join("r.jsonl");
    let out = run(prewarm(home.path())
        .args(["warm", "--plugin", "video-resizer", "--base-url", &cache.url, "--progress", "never", "--source"])
        .arg(&media)
        .args(["--derivatives", "desktop,tablet,mobile", "--results"])
        .arg(&results));
    let err = stderr(&out);
    let records = read_results(&results);
    assert_eq!(records.len(), 9);
    assert!(records.iter().all(|r| r["outcome"] == "passthrough"), "{records:?}");
    assert_eq!(out.status.code(), Some(3), "passthrough is not warm: {err}");
    let headline = err.lines().find(|l| l.starts_with("prewarm: ")).unwrap_or_default();
    assert!(headline.contains("not warm: 9 passthrough"), "{headline}");
}

#[test]
fn the_summary_reads_as_english() {
    let server = FaultServer::start();
    let home = tempfile::tempdir().unwrap();
    // The server's body is 1000 bytes: larger than a 100-byte source.
    let out = run(warm_listing(home.path(), &server.url, &[("ok/small.mp4", 100)])
        .args(["--derivatives", "mobile", "--results"])
        .arg(home.path().join("one.jsonl")));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("prewarm: 1 pair in") && err.contains("· all warm"), "{err}");
    assert!(
        err.contains(
            "sizes: 1 derivative is 1000 B for 100 B of their sources, counted once per derivative (900.0 % larger)"
        ),
        "{err}"
    );
    // A leading space: a rate such as `442.1 pairs/s` is fine English.
    assert!(!err.contains(" 1 pairs") && !err.contains(" 1 derivatives") && !err.contains("smaller"), "{err}");

    // 1000 bytes of a 100 MB source is not 100.0 % smaller.
    let out = run(warm_listing(home.path(), &server.url, &[("ok/big.mp4", 100_000_000), ("ok/b2.mp4", 100_000_000)])
        .args(["--derivatives", "mobile", "--results"])
        .arg(home.path().join("two.jsonl")));
    let err = stderr(&out);
    assert!(err.contains("prewarm: 2 pairs in") && err.contains("2 derivatives total"), "{err}");
    assert!(err.contains("(over 99.9 % smaller)") && !err.contains("100.0 %"), "{err}");
}

#[test]
fn a_listing_saved_without_recursion_is_flagged() {
    let home = tempfile::tempdir().unwrap();
    let media = home.path().join("media");
    std::fs::create_dir_all(media.join("season 1")).unwrap();
    std::fs::write(media.join("intro.mp4"), b"top").unwrap();
    std::fs::write(media.join("season 1/e1.mp4"), b"below").unwrap();
    let rclone = lab::find_program("rclone").expect("rclone installed");
    let save = |name: &str, recursive: bool| {
        let path = home.path().join(name);
        let mut cmd = Command::new(&rclone);
        cmd.args(["lsjson", "--no-modtime", "--no-mimetype"]);
        if recursive {
            cmd.arg("-R");
        }
        let out = cmd.arg(&media).output().unwrap();
        assert!(out.status.success());
        std::fs::write(&path, out.stdout).unwrap();
        path
    };
    let list = |listing: &Path| run(prewarm(home.path()).args(["list", "--listing"]).arg(listing));

    let out = list(&save("flat.json", false));
    assert!(out.status.success());
    let err = stderr(&out);
    assert_eq!(err.matches("without -R").count(), 1, "warned once: {err}");
    assert!(err.contains("flat.json") && err.contains("1 directory entry"), "{err}");

    let out = list(&save("deep.json", true));
    assert!(out.status.success());
    assert!(!stderr(&out).contains("without -R"), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("season 1/e1.mp4"));
}

#[test]
fn list_shard_shows_what_the_shard_warms() {
    let home = tempfile::tempdir().unwrap();
    let listing = home.path().join("l.json");
    let names: Vec<String> = (0..40).map(|i| format!("set {}/v{i}.mp4", i % 5)).collect();
    let objects: Vec<(&str, u64)> = names.iter().map(|n| (n.as_str(), 1000)).collect();
    write_listing(&listing, &objects);

    let mut union = BTreeSet::new();
    for shard in ["0/3", "1/3", "2/3"] {
        let out = run(prewarm(home.path()).args(["list", "--json", "--shard", shard, "--listing"]).arg(&listing));
        assert!(out.status.success(), "list --shard {shard}: {}", stderr(&out));
        let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let listed: BTreeSet<String> =
            listed["objects"].as_array().unwrap().iter().map(|o| o["path"].as_str().unwrap().to_string()).collect();

        let out = Command::new(prewarm_bin())
            .env("PREWARM_CACHE_DIR", home.path().join("cache"))
            .args(["warm", "--dry-run", "--json", "--plugin", "template", "--base-url", "http://127.0.0.1:9"])
            .args(["--set", "url={base}/{path}?w={width}", "--derivatives", "mobile", "--shard", shard, "--listing"])
            .arg(&listing)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let planned: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["path"].as_str().unwrap().to_string())
            .collect();
        assert!(!listed.is_empty() && listed.len() < names.len(), "shard {shard}: {listed:?}");
        assert_eq!(listed, planned, "shard {shard}");
        union.extend(listed);
    }
    assert_eq!(union.len(), names.len(), "the shards cover the listing");
}

/// `prewarm hw --json | head -1`: a stdout closed by its reader ends every
/// command printing there the way Unix tools end, killed by SIGPIPE (a
/// shell shows 141), with nothing on stderr: no "error: Broken pipe", no
/// panic.
#[test]
fn a_closed_stdout_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let home = tempfile::tempdir().unwrap();
    let listing = home.path().join("l.json");
    write_listing(&listing, &[("a.mp4", 10), ("b/c.mp4", 20)]);
    let l = listing.to_str().unwrap();
    let warm = ["warm", "--dry-run", "--plugin", "template", "--base-url", "http://127.0.0.1:9", "--listing", l];
    let cases: [&[&str]; 8] = [
        &["plugins", "list"],
        &["plugins", "inspect", "template", "--json"],
        &["completions", "bash"],
        &["man"],
        &["list", "--json", "--listing", l],
        &["list", "--listing", l],
        &warm,
        &["hw", "--json"],
    ];
    for args in cases {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = prewarm(home.path()).args(args).stdout(writer).output().unwrap();
        assert_eq!(out.status.signal(), Some(13), "{args:?}: {:?}, stderr: {}", out.status, stderr(&out));
        assert_eq!(stderr(&out), "", "{args:?}");
    }
}
