//! A loopback lab for `prewarm demo` and the end-to-end tests: sample
//! videos made with ffmpeg, a real origin (`rclone serve http`) and a real
//! cache in front of it (nginx with `proxy_cache`, reporting
//! `X-Cache-Status`), and a test certificate authority for the TLS
//! servers of the tests. Every process is stopped when its handle drops.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// A free loopback port (bound and released; good enough on loopback).
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Find a program on PATH or in the usual sbin directories.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Wait until `child` listens on 127.0.0.1:`port` (15 s at most).
pub fn wait_for_port(port: u16, child: &mut Child, what: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("{what} exited before listening ({status})");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    bail!("{what} did not listen on 127.0.0.1:{port} within 15s")
}

/// A child process killed and reaped on drop.
pub struct Service {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    pub port: u16,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `rclone serve http DIR` on a free loopback port: a real origin with
/// Range and HEAD support.
pub fn start_origin(rclone: &Path, dir: &Path) -> Result<Service> {
    let port = free_port()?;
    let mut cmd = Command::new(rclone);
    // `prewarm demo` killed with -9 leaves no server behind.
    crate::util::child::die_with_parent(&mut cmd);
    let mut child = cmd
        .args(["serve", "http"])
        .arg(dir)
        .arg(format!("--addr=127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {} serve http", rclone.display()))?;
    wait_for_port(port, &mut child, "rclone serve http")?;
    Ok(Service { child, url: format!("http://127.0.0.1:{port}"), port })
}

/// nginx with `proxy_cache` in front of `upstream`, its files under `dir`.
/// The cache key is the full request URI, so each derivative URL is its own
/// entry; `X-Cache-Status` tells MISS from HIT. Under `/nocache/` the same
/// origin is served without ever caching (`BYPASS`).
pub fn start_cache(dir: &Path, upstream: &str) -> Result<Service> {
    let nginx = find_program("nginx").context("nginx not found: install it with `apt-get install nginx-light`")?;
    let port = free_port()?;
    for sub in ["cache", "tmp", "logs"] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    let d = dir.display();
    let conf = format!(
        r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/logs/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {d}/logs/access.log;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    proxy_cache_path {d}/cache levels=1:2 keys_zone=prewarm:10m max_size=2g inactive=1h use_temp_path=off;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass {upstream};
            proxy_http_version 1.1;
            proxy_cache prewarm;
            proxy_cache_key $scheme$proxy_host$request_uri;
            proxy_cache_valid 200 206 1h;
            proxy_cache_lock on;
            add_header X-Cache-Status $upstream_cache_status always;
        }}
        # A location that never caches (every answer BYPASS), for --verify.
        location /nocache/ {{
            proxy_pass {upstream}/;
            proxy_http_version 1.1;
            proxy_cache prewarm;
            proxy_cache_bypass 1;
            proxy_no_cache 1;
            add_header X-Cache-Status $upstream_cache_status always;
        }}
    }}
}}
"#
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf)?;
    let child = run_nginx(&nginx, dir, &conf_path, port)?;
    Ok(Service { child, url: format!("http://127.0.0.1:{port}"), port })
}

/// Start `nginx` in the foreground (its `conf` says `daemon off`) with the
/// prefix `dir` and its early errors in `dir/logs/error.log`; return once
/// it listens on 127.0.0.1:`port`.
pub fn run_nginx(nginx: &Path, dir: &Path, conf: &Path, port: u16) -> Result<Child> {
    std::fs::create_dir_all(dir.join("logs"))?;
    let mut cmd = Command::new(nginx);
    crate::util::child::die_with_parent(&mut cmd);
    let mut child = cmd
        .arg("-c")
        .arg(conf)
        .arg("-p")
        .arg(dir)
        .arg("-e")
        .arg(dir.join("logs/error.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", nginx.display()))?;
    wait_for_port(port, &mut child, "nginx")?;
    Ok(child)
}

/// Run ffmpeg quietly with `input` arguments, `codec` arguments and the
/// output `path` (its directory created); whether it succeeded.
fn ffmpeg(input: &[&str], codec: &[&str], path: &Path) -> Result<bool> {
    let ffmpeg = find_program("ffmpeg").context("ffmpeg not found: install it with `apt-get install ffmpeg`")?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let status = Command::new(&ffmpeg)
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(input)
        .args(codec)
        .arg(path)
        .stdin(Stdio::null())
        .status()?;
    Ok(status.success())
}

const H264: &[&str] = &["-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "ultrafast"];

/// Make a short test-pattern video with ffmpeg (H.264 when available).
pub fn make_sample_video(path: &Path, seconds: u32, size: &str) -> Result<()> {
    let source = format!("testsrc=duration={seconds}:size={size}:rate=25");
    let input = ["-f", "lavfi", "-i", source.as_str()];
    if ffmpeg(&input, H264, path)? || ffmpeg(&input, &["-c:v", "mpeg4"], path)? {
        return Ok(());
    }
    bail!("ffmpeg could not make {}", path.display())
}

/// Re-encode `src` scaled to `width` (keeping the aspect ratio) into `dst`:
/// a stand-in for the derivative a CDN would make.
pub fn make_rendition(src: &Path, dst: &Path, width: u32) -> Result<()> {
    let src = src.to_string_lossy();
    let scale = format!("scale={width}:-2");
    // A CDN's progressive-download renditions have their index first.
    let codec: Vec<&str> =
        H264.iter().copied().chain(["-crf", "30", "-vf", scale.as_str(), "-movflags", "+faststart"]).collect();
    if ffmpeg(&["-i", &src], &codec, dst)? {
        return Ok(());
    }
    bail!("ffmpeg could not scale {src} to width {width}")
}

/// A test CA (`ca.pem`, `ca.key`) and a server certificate signed by it
/// (`server.pem`, `server.key`) in `dir`, for `alt_names` as openssl writes
/// a subjectAltName (`DNS:localhost,IP:127.0.0.1`); its CN is the first
/// name. P-256 keys, valid two days.
pub fn make_pki(dir: &Path, alt_names: &str) -> Result<()> {
    let openssl = |args: &[&str]| -> Result<()> {
        let out = Command::new("openssl").args(args).current_dir(dir).output().context("cannot run openssl")?;
        if !out.status.success() {
            bail!("openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let ca = ["req", "-x509", "-days", "2", "-subj", "/CN=prewarm test CA", "-keyout", "ca.key", "-out", "ca.pem"];
    let ca_ext = ["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"];
    openssl(&[&ca[..], &ec, &ca_ext].concat())?;
    let first = alt_names.split(',').next().and_then(|n| n.split_once(':')).map_or(alt_names, |(_, v)| v);
    let subject = format!("/CN={first}");
    openssl(&[&["req", "-subj", &subject, "-keyout", "server.key", "-out", "server.csr"][..], &ec].concat())?;
    let ext = format!("subjectAltName={alt_names}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n");
    std::fs::write(dir.join("ext.cnf"), ext)?;
    let sign = ["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial"];
    openssl(&[&sign[..], &["-days", "2", "-extfile", "ext.cnf", "-out", "server.pem"]].concat())
}
