//! Fixtures for the end-to-end suites: running the built `prewarm` binary,
//! writing listings, reading results, and a scripted HTTP server for the
//! faults a real server cannot be made to show (resets, stalls, 429s...),
//! one answering as Cloudflare Media Transformations and the
//! video-resizer Worker document, and a slow nginx (echo module) for runs
//! that must still be in flight when a test looks.

pub mod fault_server;
pub mod slow_nginx;
pub mod vendor_server;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The `prewarm` binary built beside this test executable
/// (`cargo build --release -p prewarm` runs first in the README's test
/// command).
pub fn prewarm_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(Path::parent).expect("target profile dir");
    let bin = dir.join("prewarm");
    assert!(
        bin.is_file(),
        "{} not built: run `cargo build --release -p prewarm` first (the README's test command does)",
        bin.display()
    );
    bin
}

/// A `prewarm` command with its caches in `home` (no user state touched).
pub fn prewarm(home: &Path) -> Command {
    let mut cmd = Command::new(prewarm_bin());
    cmd.env("PREWARM_CACHE_DIR", home.join("cache")).env_remove("RUST_LOG");
    cmd
}

/// Run and return the output, echoing stderr when the test fails later.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run prewarm");
    eprintln!("--- prewarm stderr ---\n{}", String::from_utf8_lossy(&out.stderr));
    out
}

/// Write a saved listing: one lsjson object per line.
pub fn write_listing(path: &Path, objects: &[(&str, u64)]) {
    let mut text = String::from("[\n");
    for (i, (p, size)) in objects.iter().enumerate() {
        let name = p.rsplit('/').next().unwrap_or(p);
        let comma = if i + 1 < objects.len() { "," } else { "" };
        text.push_str(&serde_json::json!({ "Path": p, "Name": name, "Size": size, "IsDir": false }).to_string());
        text.push_str(comma);
        text.push('\n');
    }
    text.push_str("]\n");
    std::fs::write(path, text).expect("write listing");
}

/// Every line of a results file, zstd-compressed (`.zst`) or not; none
/// when it does not exist.
pub fn read_results(path: &Path) -> Vec<Value> {
    let Ok(lines) = prewarm::util::zstd_lines::open_lines(path) else { return Vec::new() };
    use std::io::BufRead as _;
    lines
        .lines()
        .map(|l| l.unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .map(|l| serde_json::from_str(&l).unwrap_or_else(|e| panic!("bad results line {l:?}: {e}")))
        .collect()
}

/// The one record of (path, derivative); panics if there is not exactly one.
pub fn record<'a>(results: &'a [Value], path: &str, derivative: &str) -> &'a Value {
    let found: Vec<&Value> = results.iter().filter(|r| r["path"] == path && r["derivative"] == derivative).collect();
    assert_eq!(found.len(), 1, "expected one record for {path} / {derivative}, found {}", found.len());
    found[0]
}

/// `prewarm warm` with the `template` plugin (`{base}/{path}?w={width}`)
/// against `base_url`, over a saved listing of `objects` written in `home`,
/// without a progress bar. Add the rest of the flags to the command.
pub fn warm_listing(home: &Path, base_url: &str, objects: &[(&str, u64)]) -> Command {
    let listing = home.join("listing.json");
    write_listing(&listing, objects);
    let mut cmd = prewarm(home);
    cmd.args(["warm", "--plugin", "template", "--base-url", base_url, "--set", "url={base}/{path}?w={width}"])
        .args(["--progress", "never", "--listing"])
        .arg(listing);
    cmd
}
