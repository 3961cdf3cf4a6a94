//! Learning a derivative's size: the plugin's size methods tried in order
//! (the warm answer's Content-Length, HEAD, `Range: bytes=0-0`, a counted
//! body), with what each host supports detected once, remembered for the
//! run, and persisted with an expiry so the next run skips the probing.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::http::{self, Body, Exchange, Timeouts};
use super::pacing::Pacer;
use crate::plugin::{Method, SizeMethod, WarmInfo, WarmRequest};

/// Detected capabilities older than this are probed again.
const CAPS_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// What one host supports for size probes (`None`: not known yet).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct HostCaps {
    /// Answers HEAD (false: 405 or 501).
    pub head: Option<bool>,
    /// Its HEAD answers carry a usable Content-Length (false: none, or 0).
    #[serde(default)]
    pub head_length: Option<bool>,
    /// Tells a size when asked `Range: bytes=0-0` (false: it answers 200
    /// without a Content-Length).
    pub range: Option<bool>,
    /// When this was detected (Unix seconds).
    pub checked_unix: u64,
}

/// Per-host capabilities, shared by all workers.
pub struct Capabilities {
    hosts: Mutex<HashMap<String, HostCaps>>,
    path: Option<PathBuf>,
    dirty: AtomicBool,
}

fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// `scheme://host:port` of a URL: the unit capabilities are kept for. Read
/// by hand (no full URL parse per pair): the scheme and host lowercased, the
/// default port filled in, userinfo dropped.
pub fn host_key(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return String::new() };
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let authority = authority.rsplit_once('@').map_or(authority, |(_, hostport)| hostport);
    let scheme = scheme.to_ascii_lowercase();
    // A port is what follows the last `:` outside an IPv6 literal's brackets.
    let (host, port) = match authority.rfind(':').filter(|&i| !authority[i..].contains(']')) {
        Some(i) if authority[i + 1..].bytes().all(|b| b.is_ascii_digit()) && i + 1 < authority.len() => {
            (&authority[..i], authority[i + 1..].parse::<u16>().unwrap_or(0))
        }
        _ => (authority.trim_end_matches(':'), if scheme == "https" { 443 } else { 80 }),
    };
    format!("{scheme}://{}:{port}", host.to_ascii_lowercase())
}

impl Capabilities {
    /// Load the cache file (missing or unreadable: start empty).
    pub fn load(path: Option<PathBuf>) -> Self {
        let now = now_unix();
        let hosts: HashMap<String, HostCaps> = path
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let hosts =
            hosts.into_iter().filter(|(_, c)| now.saturating_sub(c.checked_unix) < CAPS_TTL.as_secs()).collect();
        Capabilities { hosts: Mutex::new(hosts), path, dirty: AtomicBool::new(false) }
    }

    /// Whether size probes by HEAD are worth sending to `host`.
    fn head_tells_size(&self, host: &str) -> bool {
        let caps = self.get(host);
        caps.head != Some(false) && caps.head_length != Some(false)
    }

    pub fn get(&self, host: &str) -> HostCaps {
        self.hosts.lock().unwrap_or_else(|p| p.into_inner()).get(host).copied().unwrap_or_default()
    }

    pub(crate) fn update(&self, host: &str, f: impl FnOnce(&mut HostCaps)) {
        let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        let caps = hosts.entry(host.to_string()).or_default();
        let before = *caps;
        f(caps);
        if *caps != before {
            caps.checked_unix = now_unix();
            self.dirty.store(true, Ordering::Relaxed);
        }
    }

    /// Write the cache file if anything was learned (temp file + rename).
    pub fn save(&self) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        if !self.dirty.load(Ordering::Relaxed) {
            return Ok(());
        }
        let json = serde_json::to_vec_pretty(&*self.hosts.lock().unwrap_or_else(|p| p.into_inner()))?;
        crate::util::atomic_file::write(path, &json)
    }
}

/// The size found, how, and what it cost.
#[derive(Debug, Clone, Default)]
pub struct SizeOutcome {
    pub size: Option<u64>,
    pub method: Option<SizeMethod>,
    /// Body bytes read by size probes (not by the warm request).
    pub bytes_moved: u64,
    /// Extra requests sent.
    pub requests: u32,
}

/// Everything a size probe needs.
pub struct Prober<'a> {
    pub client: &'a http::Client,
    pub caps: &'a Capabilities,
    pub pacer: &'a Pacer,
    pub timeouts: Timeouts,
}

fn content_range_total(value: Option<&str>) -> Option<u64> {
    value?.rsplit_once('/').and_then(|(_, total)| total.trim().parse().ok())
}

/// The size the warm answer tells, by HTTP's rules whatever the plugin
/// said: none from a 204 or 304 (no content, RFC 9110 §15.3.5, §15.4.5),
/// a 206's only from its Content-Range total (its Content-Length is the
/// part's), else the plugin's reading or the Content-Length (none beside
/// Transfer-Encoding: the client reports none then).
fn warm_size(warm: &Exchange, info: &WarmInfo) -> Option<u64> {
    match warm.meta.status {
        204 | 304 => None,
        206 => content_range_total(warm.header("content-range")),
        s if (200..300).contains(&s) => info.size.or(warm.content_length),
        _ => None,
    }
}

/// The size a warm answer itself proved: its body read whole, counted.
/// A size of 0 is no derivative's size.
fn counted_body(warm: &Exchange, request: &WarmRequest) -> Option<u64> {
    let whole = request.read_body && request.method == Method::Get && warm.meta.status == 200;
    (whole && warm.meta.body_complete && warm.meta.body_bytes > 0).then_some(warm.meta.body_bytes)
}

impl Prober<'_> {
    /// Try `methods` in order until one gives a size. When the plugin
    /// accepts `full-body`, a body the warm request already read whole is
    /// that count, free: it is used before any probe is sent.
    pub async fn resolve(
        &self,
        request: &WarmRequest,
        methods: &[SizeMethod],
        warm: &Exchange,
        info: &WarmInfo,
    ) -> SizeOutcome {
        // Only probes need the host's key: not computed for the common case.
        let host = std::cell::OnceCell::new();
        let host = || host.get_or_init(|| host_key(&request.url)).as_str();
        let counted = counted_body(warm, request).filter(|_| methods.contains(&SizeMethod::FullBody));
        let mut out = SizeOutcome::default();
        for &method in methods {
            let (size, how) = match method {
                SizeMethod::WarmContentLength => (warm_size(warm, info).filter(|&s| s > 0), method),
                _ if counted.is_some() => (counted, SizeMethod::FullBody),
                SizeMethod::Head if self.caps.head_tells_size(host()) => {
                    (self.head(request, host(), &mut out).await, method)
                }
                SizeMethod::Range if self.caps.get(host()).range != Some(false) => {
                    (self.range(request, host(), &mut out).await, method)
                }
                SizeMethod::Head | SizeMethod::Range => continue,
                SizeMethod::FullBody => (self.full(request, &mut out).await, method),
            };
            if let Some(size) = size {
                out.size = Some(size);
                out.method = Some(how);
                break;
            }
        }
        out
    }

    async fn head(&self, request: &WarmRequest, host: &str, out: &mut SizeOutcome) -> Option<u64> {
        self.pacer.ready().await;
        out.requests += 1;
        let head = WarmRequest { method: Method::Head, ..request.clone() };
        let ex = self.client.send(&head, &[], Body::None, 1, self.timeouts).await.ok()?;
        match ex.meta.status {
            405 | 501 => {
                self.caps.update(host, |c| c.head = Some(false));
                None
            }
            // A 204 or 206 tells no size of the whole representation.
            204 | 206 => None,
            200..=299 => {
                // A HEAD without a length (or with 0) says nothing about the
                // size; remembered like a refusal so later pairs skip it.
                let size = ex.content_length.filter(|&l| l > 0);
                self.caps.update(host, |c| {
                    c.head = Some(true);
                    c.head_length = Some(size.is_some());
                });
                size
            }
            _ => None,
        }
    }

    async fn range(&self, request: &WarmRequest, host: &str, out: &mut SizeOutcome) -> Option<u64> {
        self.pacer.ready().await;
        out.requests += 1;
        let ex = self.client.send(request, &[("range", "bytes=0-0")], Body::AtMost(1), 1, self.timeouts).await.ok()?;
        out.bytes_moved += ex.meta.body_bytes;
        match ex.meta.status {
            // `bytes 0-0/*` (length unknown) is about this URL only: the
            // host still honours Range.
            206 => {
                self.caps.update(host, |c| c.range = Some(true));
                content_range_total(ex.header("content-range")).filter(|&t| t > 0)
            }
            // Range ignored: the whole representation's Content-Length is
            // the size; its body is not read (`Body::AtMost` reads only a 206's).
            // Only a host that ignores Range *and* gives no length is
            // remembered as useless for this method.
            200 => {
                let size = ex.content_length.filter(|&l| l > 0);
                if size.is_none() {
                    self.caps.update(host, |c| c.range = Some(false));
                }
                size
            }
            _ => None,
        }
    }

    async fn full(&self, request: &WarmRequest, out: &mut SizeOutcome) -> Option<u64> {
        self.pacer.ready().await;
        out.requests += 1;
        let ex = self.client.send(request, &[], Body::Full, 1, self.timeouts).await.ok()?;
        out.bytes_moved += ex.meta.body_bytes;
        ((200..300).contains(&ex.meta.status) && ex.meta.body_complete && ex.meta.body_bytes > 0)
            .then_some(ex.meta.body_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_keys_match_the_url_standard() {
        assert_eq!(host_key("http://CDN.example.com/a"), "http://cdn.example.com:80");
        assert_eq!(host_key("https://u:p@cdn.example.com:8443/a?b"), "https://cdn.example.com:8443");
        assert_eq!(host_key("https://[::1]/x"), "https://[::1]:443");
        assert_eq!(host_key("http://[::1]:9000"), "http://[::1]:9000");
        assert_eq!(host_key("HTTPS://cdn.example.com:/x"), "https://cdn.example.com:443");
        assert_eq!(host_key("no scheme"), "");
    }

    #[test]
    fn reads_content_range_total() {
        assert_eq!(content_range_total(Some("bytes 0-0/12345")), Some(12345));
        assert_eq!(content_range_total(Some("bytes 0-0/*")), None);
    }

    #[test]
    fn capabilities_persist_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("caps.json");
        let caps = Capabilities::load(Some(path.clone()));
        caps.update("http://a:80", |c| c.head = Some(false));
        caps.save().unwrap();
        let again = Capabilities::load(Some(path.clone()));
        assert_eq!(again.get("http://a:80").head, Some(false));
        // An entry older than the TTL is dropped on load.
        let mut stale: HashMap<String, HostCaps> = HashMap::new();
        stale.insert("http://b:80".into(), HostCaps { head: Some(false), checked_unix: 1, ..Default::default() });
        std::fs::write(&path, serde_json::to_vec(&stale).unwrap()).unwrap();
        assert_eq!(Capabilities::load(Some(path)).get("http://b:80").head, None);
    }
}
