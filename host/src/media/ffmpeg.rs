//! Finding ffmpeg and ffprobe (`--ffmpeg`, `PREWARM_FFMPEG`, `PATH`; ffprobe
//! beside ffmpeg, else on `PATH`), checking ffmpeg's version, and running
//! them: each child in its own process group, killed as a group on timeout,
//! when its future is dropped and on Ctrl-C ([`kill_all`]), with stdout
//! captured up to a bound and only the tail of stderr kept.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

/// Oldest ffmpeg whose flags prewarm relies on (`-init_hw_device`,
/// `-filter_hw_device`, the `null` muxer, `-progress`).
pub const MIN_VERSION: u32 = 4;

/// The environment variable naming the ffmpeg binary.
pub const ENV_FFMPEG: &str = "PREWARM_FFMPEG";

const INSTALL_HINT: &str = "install it with `apt-get install ffmpeg` (macOS: `brew install ffmpeg`), or pass --ffmpeg PATH or set PREWARM_FFMPEG";

/// Most stdout kept from one run; ffprobe's JSON and `-encoders` are far
/// smaller.
const MAX_STDOUT: usize = 16 << 20;

/// Bytes of stderr kept (the end of it): enough for ffmpeg's last lines.
const STDERR_TAIL_BYTES: usize = 8 << 10;

/// How long `ffmpeg -version` may take.
const VERSION_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("{tool} not found ({path}): {INSTALL_HINT}")]
    NotFound { tool: &'static str, path: String },
    #[error("ffmpeg at {path} is `{found}`, older than the {MIN_VERSION}.0 prewarm needs: {INSTALL_HINT}")]
    TooOld { path: String, found: String },
    #[error("{program} timed out after {}s and was killed", timeout.as_secs_f64())]
    Timeout { program: String, timeout: Duration },
    #[error("could not run {program}")]
    Io {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} made no progress for {}s and was killed", after.as_secs_f64())]
    Stalled { program: String, after: Duration },
    #[error("{program} failed: {message}")]
    Failed { program: String, message: String },
}

/// A located ffmpeg and ffprobe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tools {
    pub ffmpeg: PathBuf,
    pub ffprobe: PathBuf,
    /// The first line of `ffmpeg -version`, e.g. `ffmpeg version 5.1.6-0+deb12u1 ...`.
    pub version: String,
}

impl Tools {
    /// Find ffmpeg (`explicit`, else `PREWARM_FFMPEG`, else `PATH`) and
    /// ffprobe, and check ffmpeg's version (this runs `ffmpeg -version`).
    pub fn locate(explicit: Option<&Path>) -> Result<Tools, MediaError> {
        let (ffmpeg, ffprobe) = find_binaries(explicit)?;
        let version = version_line(&ffmpeg)?;
        check_version(&ffmpeg, &version)?;
        Ok(Tools { ffmpeg, ffprobe, version })
    }
}

/// Find ffmpeg and ffprobe without running either.
pub fn find_binaries(explicit: Option<&Path>) -> Result<(PathBuf, PathBuf), MediaError> {
    let from_env = std::env::var_os(ENV_FFMPEG).filter(|v| !v.is_empty()).map(PathBuf::from);
    let wanted = explicit.map(Path::to_path_buf).or(from_env).unwrap_or_else(|| PathBuf::from("ffmpeg"));
    let ffmpeg =
        resolve(&wanted).ok_or_else(|| MediaError::NotFound { tool: "ffmpeg", path: wanted.display().to_string() })?;
    let beside = ffmpeg.parent().map(|d| d.join(format!("ffprobe{}", std::env::consts::EXE_SUFFIX)));
    let ffprobe = beside
        .filter(|p| is_executable(p))
        .or_else(|| resolve(Path::new("ffprobe")))
        .ok_or_else(|| MediaError::NotFound { tool: "ffprobe", path: "not beside ffmpeg nor on PATH".into() })?;
    Ok((ffmpeg, ffprobe))
}

/// A path with a directory part is taken as is; a bare name is looked up on
/// `PATH`.
fn resolve(wanted: &Path) -> Option<PathBuf> {
    if wanted.components().count() > 1 || wanted.is_absolute() {
        return is_executable(wanted).then(|| wanted.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(wanted).with_extension(std::env::consts::EXE_EXTENSION))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else { return false };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.is_file() && meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        meta.is_file()
    }
}

/// The first line of `ffmpeg -version`.
pub fn version_line(ffmpeg: &Path) -> Result<String, MediaError> {
    // A runtime of its own, built, used and dropped on a plain thread: the
    // caller may be inside a runtime, where another may be neither blocked
    // on nor dropped.
    let out = std::thread::scope(|s| {
        s.spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|source| MediaError::Io { program: ffmpeg.display().to_string(), source })?;
            runtime.block_on(async {
                let mut cmd = tokio::process::Command::new(ffmpeg);
                cmd.arg("-version");
                run(cmd, VERSION_TIMEOUT).await
            })
        })
        .join()
        .unwrap_or_else(|_| Err(MediaError::Failed { program: "ffmpeg -version".into(), message: "panicked".into() }))
    });
    let out = out?;
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next().unwrap_or_default().trim().to_string();
    if !out.status.success() || !first.starts_with("ffmpeg version") {
        return Err(MediaError::NotFound {
            tool: "ffmpeg",
            path: format!("{} does not answer `ffmpeg -version`", ffmpeg.display()),
        });
    }
    Ok(first)
}

/// The release in a version line: `Some(major)` for `5.1.6-0+deb12u1`,
/// `n6.0`, `7.1-static`; `None` for git builds (`N-112345-g...`), which
/// are taken as new enough.
pub fn major_version(line: &str) -> Option<u32> {
    let word = line.strip_prefix("ffmpeg version ")?.split_whitespace().next()?;
    let word = word.strip_prefix('n').unwrap_or(word);
    let digits: String = word.chars().take_while(char::is_ascii_digit).collect();
    if digits.is_empty() || !word[digits.len()..].starts_with(['.', '-']) && word.len() != digits.len() {
        return None;
    }
    digits.parse().ok()
}

/// Whether a version line is `major.minor` or later (git builds are).
pub fn at_least(line: &str, major: u32, minor: u32) -> bool {
    let Some(found) = major_version(line) else { return true };
    let minor_found = line
        .strip_prefix("ffmpeg version ")
        .and_then(|w| w.trim_start_matches('n').split(['.', '-', ' ']).nth(1))
        .and_then(|m| m.parse::<u32>().ok())
        .unwrap_or(0);
    (found, minor_found) >= (major, minor)
}

/// Refuse an ffmpeg older than [`MIN_VERSION`].
pub fn check_version(ffmpeg: &Path, line: &str) -> Result<(), MediaError> {
    match major_version(line) {
        Some(major) if major < MIN_VERSION => {
            Err(MediaError::TooOld { path: ffmpeg.display().to_string(), found: line.to_string() })
        }
        _ => Ok(()),
    }
}

/// Whether this ffmpeg has every filter in `names` (`ffmpeg -filters`).
pub async fn has_filters(tools: &Tools, names: &[&str]) -> bool {
    let mut cmd = tokio::process::Command::new(&tools.ffmpeg);
    cmd.args(["-hide_banner", "-filters"]);
    let Ok(out) = run(cmd, VERSION_TIMEOUT).await else { return false };
    let text = String::from_utf8_lossy(&out.stdout);
    let listed: HashSet<&str> = text.lines().filter_map(|l| l.split_whitespace().nth(1)).collect();
    names.iter().all(|n| listed.contains(n))
}

/// What a finished child left.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    /// The last lines of stderr (at most 8 KiB), secrets redacted.
    pub stderr_tail: String,
}

impl Output {
    /// ffmpeg's own error line: the last line that reads like an error,
    /// else the last line.
    pub fn error_line(&self) -> String {
        error_line(&self.stderr_tail)
    }
}

/// The line of ffmpeg's stderr worth showing: the first error a component
/// logged (`[h264_nvenc @ 0x...] Cannot load libcuda.so.1`, the address
/// dropped), else the last error line that is not a generic wrap-up, else
/// the last line.
pub fn error_line(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let wrap_up = |l: &str| l.starts_with("Conversion failed") || l.starts_with("Exiting normally");
    let generic = |l: &str| {
        wrap_up(l) || l.starts_with("Error initializing output stream") || l.starts_with("Error parsing global options")
    };
    let wordy = |l: &str| {
        let lower = l.to_ascii_lowercase();
        ["error", "fail", "cannot", "could not", "no such", "supported", "invalid", "unable", "no va display"]
            .iter()
            .any(|w| lower.contains(w))
    };
    lines
        .iter()
        .find(|l| l.starts_with('[') && wordy(l))
        .or_else(|| lines.iter().rev().find(|l| wordy(l) && !generic(l)))
        .or_else(|| lines.iter().rev().find(|l| wordy(l) && !wrap_up(l)))
        .or(lines.last())
        .map(|l| strip_address(l))
        .unwrap_or_else(|| "no error message".into())
}

/// `[h264_nvenc @ 0x55d0c0] msg` → `[h264_nvenc] msg`: the address changes
/// every run.
fn strip_address(line: &str) -> String {
    if let (Some(at), Some(close)) = (line.find(" @ 0x"), line.find(']'))
        && line.starts_with('[')
        && at < close
    {
        return format!("{}{}", &line[..at], &line[close..]);
    }
    line.to_string()
}

/// Process groups of children still running, for [`kill_all`].
static RUNNING: Mutex<Option<HashSet<i32>>> = Mutex::new(None);
/// Process groups killed and perhaps not gone yet, for [`wait_killed`].
static KILLED: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// Wait (at most `max`) until every process group this process killed is
/// gone: SIGKILL is delivered asynchronously, and a run that stops on
/// Ctrl-C must not exit while its children are still dying.
pub async fn wait_killed(max: Duration) {
    let deadline = tokio::time::Instant::now() + max;
    loop {
        let alive = {
            let mut killed = KILLED.lock().unwrap_or_else(|p| p.into_inner());
            // SAFETY: kill(2) with signal 0 only asks whether the group exists.
            killed.retain(|g| unsafe { libc::kill(-*g, 0) } == 0);
            !killed.is_empty()
        };
        if !alive || tokio::time::Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Kill every ffmpeg/ffprobe process group this process started and that
/// is still running: call before exiting on Ctrl-C, when destructors will
/// not run.
pub fn kill_all() {
    let groups: Vec<i32> = RUNNING
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .map(|s| s.iter().copied().collect())
        .unwrap_or_default();
    for g in groups {
        kill_group(g);
    }
}

fn kill_group(group: i32) {
    #[cfg(unix)]
    // SAFETY: kill(2) with a negative pid signals that process group; it
    // touches no memory of ours.
    unsafe {
        libc::kill(-group, libc::SIGKILL);
    }
    KILLED.lock().unwrap_or_else(|p| p.into_inner()).push(group);
    #[cfg(not(unix))]
    let _ = group;
}

/// Kills its process group when dropped, unless the child was reaped.
struct GroupGuard {
    group: Option<i32>,
}

impl GroupGuard {
    fn new(group: Option<i32>) -> Self {
        if let Some(g) = group {
            RUNNING.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(HashSet::new).insert(g);
        }
        GroupGuard { group }
    }

    fn kill_and_forget(&mut self, kill: bool) {
        if let Some(g) = self.group.take() {
            if kill {
                kill_group(g);
            }
            if let Some(set) = RUNNING.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
                set.remove(&g);
            }
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill_and_forget(true);
    }
}

/// Run `cmd` to completion in its own process group, within `timeout`.
/// stdin is closed; stdout is captured (up to 16 MiB) and the tail of
/// stderr kept. On timeout, or when this future is dropped, the whole group
/// is killed. A non-zero exit is not an error here: look at `status`.
pub async fn run(cmd: tokio::process::Command, timeout: Duration) -> Result<Output, MediaError> {
    run_watched(cmd, timeout, None).await
}

/// [`run`] for an ffmpeg given `-progress pipe:1`: also killed, with
/// [`MediaError::Stalled`], when `stall` passes with no progress (the
/// frame count, output time and size all unchanged). stdout holds only the
/// last progress block.
pub async fn run_with_progress(
    cmd: tokio::process::Command,
    timeout: Duration,
    stall: Duration,
) -> Result<Output, MediaError> {
    run_watched(cmd, timeout, Some(stall)).await
}

async fn run_watched(
    mut cmd: tokio::process::Command,
    timeout: Duration,
    stall: Option<Duration>,
) -> Result<Output, MediaError> {
    let program = program_name(&cmd);
    #[cfg(unix)]
    cmd.process_group(0);
    #[cfg(target_os = "linux")]
    // SAFETY: prctl(2) only, between fork and exec: async-signal-safe, no
    // allocation. The child is killed when the thread that spawned it ends
    // (prewarm killed with -9 included); callers spawn from runtime worker
    // threads, which live as long as the run.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => MediaError::NotFound {
            tool: if program.contains("ffprobe") { "ffprobe" } else { "ffmpeg" },
            path: program.clone(),
        },
        _ => MediaError::Io { program: program.clone(), source },
    })?;
    let mut guard = GroupGuard::new(child.id().and_then(|id| i32::try_from(id).ok()));
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let progress = std::sync::Arc::new(Mutex::new(tokio::time::Instant::now()));
    let read_out = async {
        match stall {
            None => read_bounded(stdout).await,
            Some(_) => read_progress(stdout, &progress).await,
        }
    };
    let finished = async {
        let (out, err, status) = tokio::join!(read_out, read_tail(stderr), child.wait());
        (out, err, status)
    };
    let watchdog = async {
        let Some(stall) = stall else { return std::future::pending::<()>().await };
        loop {
            let last = *progress.lock().unwrap_or_else(|p| p.into_inner());
            if last.elapsed() >= stall {
                return;
            }
            tokio::time::sleep_until(last + stall).await;
        }
    };
    let (out, err, status) = tokio::select! {
        done = tokio::time::timeout(timeout, finished) => match done {
            Ok(done) => done,
            Err(_) => {
                guard.kill_and_forget(true);
                return Err(MediaError::Timeout { program, timeout });
            }
        },
        () = watchdog => {
            guard.kill_and_forget(true);
            return Err(MediaError::Stalled { program, after: stall.unwrap_or_default() });
        }
    };
    let io = |source| MediaError::Io { program: program.clone(), source };
    let status = status.map_err(io)?;
    // Reaped: the group id may be reused from now on, so never signal it.
    guard.kill_and_forget(false);
    let stdout = out.map_err(io)?;
    let stderr_tail = crate::util::redact::redact_text(&String::from_utf8_lossy(&err.map_err(io)?));
    Ok(Output { status, stdout, stderr_tail })
}

/// Read ffmpeg's `-progress` blocks, stamping `progress` whenever a value
/// that moves with the encode changes; keeps the last block.
async fn read_progress(
    reader: impl AsyncRead + Unpin,
    progress: &Mutex<tokio::time::Instant>,
) -> std::io::Result<Vec<u8>> {
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(reader).lines();
    let (mut block, mut last) = (Vec::new(), Vec::new());
    let mut seen: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    while let Some(line) = lines.next_line().await? {
        if let Some((key, value)) = line.split_once('=')
            && matches!(key, "frame" | "out_time_us" | "total_size")
            && seen.insert(key.to_string(), value.to_string()).as_deref() != Some(value)
        {
            *progress.lock().unwrap_or_else(|p| p.into_inner()) = tokio::time::Instant::now();
        }
        block.extend_from_slice(line.as_bytes());
        block.push(b'\n');
        if line.starts_with("progress=") {
            last = std::mem::take(&mut block);
        }
    }
    if !block.is_empty() {
        last = block;
    }
    Ok(last)
}

fn program_name(cmd: &tokio::process::Command) -> String {
    let program = cmd.as_std().get_program();
    Path::new(program).file_name().unwrap_or(program).to_string_lossy().into_owned()
}

async fn read_bounded(mut reader: impl AsyncRead + Unpin) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    (&mut reader).take(MAX_STDOUT as u64 + 1).read_to_end(&mut out).await?;
    if out.len() > MAX_STDOUT {
        return Err(std::io::Error::other(format!("more than {MAX_STDOUT} bytes on stdout")));
    }
    Ok(out)
}

/// Read to the end, keeping the last [`STDERR_TAIL_BYTES`] from a line start.
async fn read_tail(mut reader: impl AsyncRead + Unpin) -> std::io::Result<Vec<u8>> {
    let mut kept: Vec<u8> = Vec::with_capacity(STDERR_TAIL_BYTES);
    let mut buf = [0u8; 4096];
    let mut trimmed = false;
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&buf[..n]);
        if kept.len() > 2 * STDERR_TAIL_BYTES {
            kept.drain(..kept.len() - STDERR_TAIL_BYTES);
            trimmed = true;
        }
    }
    if kept.len() > STDERR_TAIL_BYTES {
        kept.drain(..kept.len() - STDERR_TAIL_BYTES);
        trimmed = true;
    }
    if trimmed && let Some(nl) = kept.iter().position(|b| *b == b'\n') {
        kept.drain(..=nl);
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_version_lines() {
        assert_eq!(major_version("ffmpeg version 5.1.6-0+deb12u1 Copyright (c) 2000-2024"), Some(5));
        assert_eq!(major_version("ffmpeg version n6.0 Copyright"), Some(6));
        assert_eq!(major_version("ffmpeg version 7.1-static https://johnvansickle.com"), Some(7));
        assert_eq!(major_version("ffmpeg version 3.4.8"), Some(3));
        assert_eq!(major_version("ffmpeg version N-112345-gdeadbeef"), None);
        assert!(check_version(Path::new("ff"), "ffmpeg version 3.4.8-0ubuntu0.2").is_err());
        assert!(check_version(Path::new("ff"), "ffmpeg version N-112345-g1").is_ok());
        assert!(at_least("ffmpeg version 5.1.6-0+deb12u1 Copyright", 5, 1));
        assert!(!at_least("ffmpeg version 5.0.3 Copyright", 5, 1) && !at_least("ffmpeg version 4.4.2", 5, 1));
        assert!(at_least("ffmpeg version n6.0 Copyright", 5, 1) && at_least("ffmpeg version N-1-g2", 5, 1));
    }

    #[test]
    fn picks_the_error_line() {
        let tail = "Input #0, lavfi\n[h264_nvenc @ 0x55] Cannot load libcuda.so.1\n\
                    Error initializing output stream 0:0 -- Error while opening encoder\nConversion failed!\n";
        assert_eq!(error_line(tail), "[h264_nvenc] Cannot load libcuda.so.1");
        let tail = "Error initializing output stream 0:0 -- Error while opening encoder\nConversion failed!\n";
        assert_eq!(error_line(tail), "Error initializing output stream 0:0 -- Error while opening encoder");
        assert_eq!(error_line(""), "no error message");
        let tail = "[webm @ 0x5] Only VP8 or VP9 or AV1 video and Vorbis or Opus audio and WebVTT subtitles are supported for WebM.\n\
                    Could not write header for output file #0 (incorrect codec parameters ?): Invalid argument\n";
        assert!(error_line(tail).starts_with("[webm] Only VP8 or VP9 or AV1"), "ffmpeg's reason kept");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn kills_the_group_on_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let mut cmd = tokio::process::Command::new("sh");
        // The grandchild would outlive a plain kill of `sh`.
        cmd.arg("-c").arg(format!("sleep 30 & echo $! > {}; wait", pid_file.display()));
        let started = std::time::Instant::now();
        let err = run(cmd, Duration::from_secs(1)).await.unwrap_err();
        assert!(matches!(err, MediaError::Timeout { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
        let pid = std::fs::read_to_string(&pid_file).unwrap().trim().to_string();
        // Killed means gone or a zombie waiting for its reaper.
        let alive = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.rsplit(')').next().is_some_and(|r| !r.trim_start().starts_with('Z')))
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while alive() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!alive(), "the grandchild {pid} survived the timeout");
    }

    /// Whatever the caller: outside a runtime, inside either flavour.
    #[test]
    fn locating_works_inside_a_runtime() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [("ffmpeg", "ffmpeg version 6.1.1 Copyright"), ("ffprobe", "ffprobe version 6.1.1")] {
            let path = dir.path().join(name);
            std::fs::write(&path, format!("#!/bin/sh\necho '{text}'\n")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let ffmpeg = dir.path().join("ffmpeg");
        let located = || Tools::locate(Some(&ffmpeg)).map(|t| t.version);
        assert_eq!(located().unwrap(), "ffmpeg version 6.1.1 Copyright");
        let current = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        assert_eq!(current.block_on(async { located() }).unwrap(), "ffmpeg version 6.1.1 Copyright");
        let multi = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        let owned = ffmpeg.clone();
        let in_task = multi.block_on(async move {
            tokio::spawn(async move { Tools::locate(Some(&owned)).map(|t| t.version) }).await.unwrap()
        });
        assert_eq!(in_task.unwrap(), "ffmpeg version 6.1.1 Copyright");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn keeps_the_end_of_stderr() {
        let mut cmd = tokio::process::Command::new("sh");
        cmd.args(["-c", "i=0; while [ $i -lt 2000 ]; do echo line $i >&2; i=$((i+1)); done; echo out; exit 3"]);
        let out = run(cmd, Duration::from_secs(10)).await.unwrap();
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stdout, b"out\n");
        assert!(out.stderr_tail.len() <= STDERR_TAIL_BYTES);
        assert!(out.stderr_tail.starts_with("line "), "{}", &out.stderr_tail[..20]);
        assert!(out.stderr_tail.ends_with("line 1999\n"));
    }
}
