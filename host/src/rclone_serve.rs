//! One loopback `rclone serve http REMOTE:PATH` for a run, so ffprobe and
//! ffmpeg read sources by URL with Range requests instead of downloading
//! them: bound to 127.0.0.1 on a free port, read-only, behind a random user
//! and password handed to rclone through its environment (not its command
//! line) and never printed. Its own process group, so a terminal's Ctrl-C
//! reaches prewarm alone and the probes in flight are not cut short; it is
//! stopped when the handle drops, on error and on Ctrl-C ([`ServeHttp::stop`]),
//! and on Linux killed by the kernel if prewarm itself is killed.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use rand::distr::{Alphanumeric, SampleString};

use crate::rclone::{Rclone, RcloneError};

/// How long rclone may take to list the root and start answering.
const READY_WITHIN: Duration = Duration::from_secs(20);

/// Characters escaped in a path segment of the URL.
const SEGMENT: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// A running `rclone serve http`.
pub struct ServeHttp {
    child: Mutex<Option<Child>>,
    /// `http://127.0.0.1:PORT`, without credentials.
    base: String,
    authorization: String,
    remote: String,
}

impl ServeHttp {
    /// Serve `remote` and wait until it answers an authenticated request.
    pub async fn start(rclone: &Rclone, remote: &str) -> Result<ServeHttp, RcloneError> {
        let failed = |message: String| RcloneError::Failed { operation: format!("serve http {remote}"), message };
        let port = crate::util::lab::free_port().map_err(|e| failed(format!("no free loopback port: {e}")))?;
        let user = Alphanumeric.sample_string(&mut rand::rng(), 16);
        let pass = Alphanumeric.sample_string(&mut rand::rng(), 32);
        let mut cmd = rclone.std_command();
        cmd.args(["serve", "http", "--read-only", "--no-modtime"]).arg(format!("--addr=127.0.0.1:{port}"));
        // Secrets of an on-the-fly remote go by environment, like the
        // credentials.
        let (argv_remote, remote_env) = crate::util::rclone_secrets::remote_for_argv(remote);
        cmd.arg(argv_remote)
            .envs(remote_env)
            .env("RCLONE_USER", &user)
            .env("RCLONE_PASS", &pass)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // The death signal is already set by `std_command`.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.spawn().map_err(RcloneError::Spawn)?;
        let stderr = keep_stderr_tail(&mut child);
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        // Whatever text might carry them (an ffmpeg message, a log line) is
        // scrubbed before it is shown.
        for secret in [&user, &pass, &token] {
            crate::util::redact::register_secret(secret);
        }
        let serve = ServeHttp {
            child: Mutex::new(Some(child)),
            base: format!("http://127.0.0.1:{port}"),
            authorization: format!("Basic {token}"),
            remote: remote.to_string(),
        };
        match serve.wait_ready().await {
            Ok(()) => Ok(serve),
            Err(why) => {
                serve.stop();
                let said = stderr.lock().unwrap_or_else(|p| p.into_inner()).join("\n");
                let said = if said.trim().is_empty() {
                    String::new()
                } else {
                    format!(": {}", crate::rclone::last_error_line(&said))
                };
                Err(failed(format!("{why}{said}")))
            }
        }
    }

    async fn wait_ready(&self) -> Result<(), String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| format!("no HTTP client: {e}"))?;
        let deadline = Instant::now() + READY_WITHIN;
        let mut delay = Duration::from_millis(20);
        while Instant::now() < deadline {
            // A name that is not there: answering it needs no listing of a
            // possibly huge root, and 404 proves the credentials work.
            let probe = format!("{}/.prewarm-ready-check", self.base);
            let answer = client.head(probe).header("authorization", &self.authorization).send().await;
            if let Ok(r) = answer {
                let status = r.status();
                return if status.is_success() || status == reqwest::StatusCode::NOT_FOUND {
                    Ok(())
                } else {
                    Err(format!("answered {status} to a test request"))
                };
            }
            if let Some(status) = self.exited() {
                return Err(format!("exited before serving ({status})"));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(200));
        }
        Err(format!("did not answer within {}s", READY_WITHIN.as_secs()))
    }

    fn exited(&self) -> Option<std::process::ExitStatus> {
        let mut guard = self.child.lock().unwrap_or_else(|p| p.into_inner());
        guard.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    /// The URL of `path` (relative to the served root), percent-encoded per
    /// segment; it holds no credentials.
    pub fn url_for(&self, path: &str) -> String {
        let encoded: Vec<String> =
            path.split('/').map(|s| percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()).collect();
        format!("{}/{}", self.base, encoded.join("/"))
    }

    /// The `Authorization` header value every request needs. A secret: never
    /// log or print it.
    pub fn authorization(&self) -> &str {
        &self.authorization
    }

    /// The remote being served, as the user named it.
    pub fn remote(&self) -> &str {
        &self.remote
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map(Child::id)
    }

    /// Kill and reap rclone (idempotent; also done on drop).
    pub fn stop(&self) {
        if let Some(mut child) = self.child.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ServeHttp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Drain rclone's stderr on a thread (a full pipe would stall rclone),
/// keeping the last lines for an error message.
fn keep_stderr_tail(child: &mut Child) -> Arc<Mutex<Vec<String>>> {
    let kept = Arc::new(Mutex::new(Vec::new()));
    if let Some(stderr) = child.stderr.take() {
        let sink = Arc::clone(&kept);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut lines = sink.lock().unwrap_or_else(|p| p.into_inner());
                if lines.len() == 20 {
                    lines.remove(0);
                }
                lines.push(line);
            }
        });
    }
    kept
}
