//! A slow loopback server: real nginx with its echo module
//! (Debian `libnginx-mod-http-echo`), answering every request after a set
//! delay with a small body, and a second server answering 404 to all. Every
//! request is logged (`$request_uri`, one line each) so a test counts what
//! reached the server. Long runs (checkpoints, live metrics, a stopped run)
//! need pairs that are still in flight when the test looks.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use prewarm::util::lab::{find_program, free_port, run_nginx, wait_for_port};

/// Where Debian installs the echo module.
const ECHO_MODULE: &str = "/usr/lib/nginx/modules/ngx_http_echo_module.so";

/// nginx in the foreground, killed and reaped on drop.
pub struct SlowNginx {
    child: Child,
    /// `http://127.0.0.1:PORT`: every answer after the delay, 200 with 100 bytes.
    pub slow_url: String,
    /// `http://127.0.0.1:PORT`: 404 to everything, at once.
    pub missing_url: String,
    /// One line per request answered by either server.
    pub access_log: PathBuf,
}

impl Drop for SlowNginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SlowNginx {
    /// Start it under `dir`, each slow answer after `delay`.
    pub fn start(dir: &Path, delay: Duration) -> Result<Self> {
        if !Path::new(ECHO_MODULE).is_file() {
            bail!("{ECHO_MODULE} missing: install it with `apt-get install libnginx-mod-http-echo` (scripts/setup)");
        }
        let nginx = find_program("nginx").context("nginx not found: install it with `apt-get install nginx-light`")?;
        std::fs::create_dir_all(dir)?;
        let (slow, missing) = (free_port()?, free_port()?);
        let d = dir.display();
        let access_log = dir.join("access.log");
        let conf = format!(
            "load_module {ECHO_MODULE};
worker_processes 1; daemon off; pid {d}/nginx.pid; error_log {d}/error.log;
events {{ worker_connections 4096; }}
http {{
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  log_format uri '$request_uri'; access_log {log} uri;
  server {{ listen 127.0.0.1:{slow}; location / {{ echo_sleep {secs}; echo_duplicate 100 \"v\"; }} }}
  server {{ listen 127.0.0.1:{missing}; location / {{ return 404; }} }}
}}
",
            log = access_log.display(),
            secs = delay.as_secs_f64(),
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf)?;
        let mut child = run_nginx(&nginx, dir, &conf_path, slow)?;
        wait_for_port(missing, &mut child, "nginx")?;
        Ok(SlowNginx {
            child,
            slow_url: format!("http://127.0.0.1:{slow}"),
            missing_url: format!("http://127.0.0.1:{missing}"),
            access_log,
        })
    }

    /// The request URIs logged so far.
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.access_log).unwrap_or_default().lines().map(str::to_string).collect()
    }

    /// Forget the requests logged so far.
    pub fn clear_log(&self) {
        std::fs::write(&self.access_log, "").expect("truncate the access log");
    }
}
