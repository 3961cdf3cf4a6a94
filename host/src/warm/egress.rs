//! What may leave the host: every URL a plugin built (warm requests,
//! follow-ups, and the size probes and verify requests derived from them) is
//! checked here before any connection is made.
//!
//! Egress policy: plugins decide, the host enforces. A request goes only to
//! the origin of `--base-url` (scheme, host and port) or to a host the user
//! allowed with `--allow-host HOST[:PORT]` (`*.example.com` for its
//! subdomains; without a port, 80 and 443). Anything else fails its pair
//! with kind `policy`; nothing a plugin returns can widen the policy.
//!
//! Addressable paths: a URL parser resolves dot segments (`.`, `..`, also
//! percent-encoded as `%2e`), reads `\` as `/` and drops tabs and newlines
//! (WHATWG URL Standard, "path state"; RFC 3986 §5.2.4). A URL whose path
//! holds one of those would be sent for another object than the one the
//! record names, so it is refused instead. Empty segments (`a//b`) are kept
//! as they are by every parser and are fine.

/// Why a URL is not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The record's `error_kind`.
    pub kind: &'static str,
    /// One line, without the URL's credentials.
    pub message: String,
}

/// One `--allow-host` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Allowed {
    /// Lowercase host, IDNA-encoded; for `*.example.com`, `.example.com`.
    host: String,
    wildcard: bool,
    /// `None`: the default ports, 80 and 443.
    port: Option<u16>,
}

impl Allowed {
    fn parse(raw: &str) -> Result<Self, String> {
        let text = raw.trim();
        let (wildcard, rest) = match text.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let bad = |why: &str| format!("--allow-host `{raw}`: {why}; expected HOST, HOST:PORT or *.DOMAIN[:PORT]");
        if rest.is_empty() || rest.contains(['/', '?', '#', '@', '*']) {
            return Err(bad("not a host"));
        }
        let url = reqwest::Url::parse(&format!("http://{rest}/")).map_err(|e| bad(&e.to_string()))?;
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| bad("no host"))?.to_string();
        let port = if rest.rsplit_once(':').is_some_and(|(_, p)| p.chars().all(|c| c.is_ascii_digit()) && !p.is_empty())
        {
            Some(url.port_or_known_default().ok_or_else(|| bad("bad port"))?)
        } else {
            None
        };
        Ok(Allowed { host: if wildcard { format!(".{host}") } else { host }, wildcard, port })
    }

    fn permits(&self, host: &str, port: u16) -> bool {
        let host_ok = if self.wildcard { host.ends_with(&self.host) } else { host == self.host };
        host_ok && self.port.map_or(port == 80 || port == 443, |p| p == port)
    }
}

/// Where plugin-built requests may go.
#[derive(Debug)]
pub struct Policy {
    /// `scheme://host:port` of `--base-url`.
    base_origin: String,
    /// `--base-url`'s `scheme://authority/` as given: a URL that starts with
    /// it is of the base origin without a parse.
    base_prefix: String,
    allowed: Vec<Allowed>,
    warned: std::sync::atomic::AtomicBool,
}

/// `scheme://host:port` of a parsed URL (never its credentials).
pub fn origin_of(url: &reqwest::Url) -> String {
    format!("{}://{}:{}", url.scheme(), url.host_str().unwrap_or(""), url.port_or_known_default().unwrap_or(0))
}

impl Policy {
    /// The policy of a run: the base URL's origin and the allowed hosts.
    pub fn new(base_url: &str, allow_hosts: &[String]) -> Result<Self, String> {
        let base = reqwest::Url::parse(base_url).map_err(|e| format!("--base-url: {e}"))?;
        let allowed = allow_hosts.iter().map(|a| Allowed::parse(a)).collect::<Result<_, _>>()?;
        let authority_end = base_url.find("://").map_or(0, |i| i + 3);
        let authority_end =
            base_url[authority_end..].find(['/', '?', '#']).map_or(base_url.len(), |i| authority_end + i);
        let base_prefix = format!("{}/", &base_url[..authority_end]);
        Ok(Policy { base_origin: origin_of(&base), base_prefix, allowed, warned: Default::default() })
    }

    /// Whether `url` may be requested.
    pub fn check(&self, url: &reqwest::Url) -> Result<(), Refusal> {
        let origin = origin_of(url);
        let port = url.port_or_known_default().unwrap_or(0);
        let host = url.host_str().unwrap_or("");
        if origin == self.base_origin || self.allowed.iter().any(|a| a.permits(host, port)) {
            return Ok(());
        }
        let flag = if port == 80 || port == 443 { host.to_string() } else { format!("{host}:{port}") };
        if !self.warned.swap(true, std::sync::atomic::Ordering::Relaxed) {
            tracing::warn!(
                "the plugin asked for {origin}, which is neither the origin of --base-url ({}) nor allowed: refused \
                 (pairs fail with kind `policy`); if that host is yours, allow it with --allow-host {flag}",
                self.base_origin
            );
        }
        Err(Refusal {
            kind: "policy",
            message: format!(
                "refused a request to {origin}: not the origin of --base-url ({}) and not allowed by --allow-host; \
                 nothing was sent",
                self.base_origin
            ),
        })
    }
}

/// Whether `url`'s path would be rewritten by URL rules; the reason if so.
pub fn rewritten_path(url: &str) -> Option<&'static str> {
    if url.bytes().any(|b| matches!(b, b'\t' | b'\n' | b'\r')) {
        return Some("a tab or line break, which URL parsers drop");
    }
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path_start = after_scheme.find('/')?;
    let path = &after_scheme[path_start..];
    let path = path.split(['?', '#']).next().unwrap_or(path);
    if path.contains('\\') {
        return Some("a backslash, which URL parsers read as `/`");
    }
    for segment in path.split('/') {
        if segment.len() > 6 || !segment.bytes().all(|b| b == b'.' || b == b'%' || b.is_ascii_alphanumeric()) {
            continue;
        }
        if !segment.starts_with(['.', '%']) {
            continue;
        }
        let decoded = segment.to_ascii_lowercase().replace("%2e", ".");
        if decoded == "." || decoded == ".." {
            return Some("a dot segment (`.` or `..`), which URL parsers resolve away");
        }
    }
    None
}

impl Policy {
    /// Everything a plugin-built URL must pass before it is sent: a valid
    /// absolute URL, an addressable path (for the warm request, `key` names
    /// the object), and an allowed origin.
    pub fn admit(&self, url: &str, key: Option<&str>) -> Result<(), Refusal> {
        // The common case, checked without a URL parse: the base origin
        // exactly as given, then only characters a URL keeps as they are.
        let plain = |b: u8| {
            b.is_ascii_graphic() && !matches!(b, b'\\' | b'#' | b'<' | b'>' | b'"' | b'`' | b'{' | b'}' | b'|' | b'^')
        };
        if let Some(rest) = url.strip_prefix(&self.base_prefix)
            && rest.bytes().all(plain)
            && rewritten_path(url).is_none()
        {
            return Ok(());
        }
        let parsed = reqwest::Url::parse(url).map_err(|e| Refusal {
            kind: "plan",
            message: match key {
                Some(_) => format!("the plugin built an invalid URL: {e}"),
                None => format!("follow-up to an invalid URL: {e}"),
            },
        })?;
        if let Some(why) = rewritten_path(url) {
            return Err(Refusal {
                kind: "unaddressable",
                message: match key {
                    Some(key) => format!(
                        "object key `{}` cannot be addressed by a URL: its path holds {why}, so another object \
                         would be requested; nothing was sent",
                        crate::util::redact::redact_text(key)
                    ),
                    None => {
                        format!("follow-up {} not sent: its path holds {why}", crate::util::redact::redact_url(url))
                    }
                },
            });
        }
        self.check(&parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(policy: &Policy, url: &str) -> bool {
        policy.check(&reqwest::Url::parse(url).unwrap()).is_ok()
    }

    #[test]
    fn the_unparsed_fast_path_agrees_with_the_parser() {
        let p = Policy::new("https://u:p@cdn.example.com/assets", &[]).unwrap();
        for url in [
            "https://u:p@cdn.example.com/a.mp4?w=1",
            "https://u:p@cdn.example.com/a/../b.mp4",
            "https://u:p@cdn.example.com/a/%2E%2e/b.mp4",
            "https://u:p@cdn.example.com/a\\b.mp4",
            "https://u:p@cdn.example.com/a b.mp4",
            "https://u:p@cdn.example.com.evil.net/a.mp4",
            "https://u:p@cdn.example.com:444/a.mp4",
            "https://cdn.example.com/a.mp4",
            "https://u:p@cdn.example.com/.hidden/a.mp4",
        ] {
            let parsed = reqwest::Url::parse(url).unwrap();
            let slow = rewritten_path(url).is_none() && p.check(&parsed).is_ok();
            assert_eq!(p.admit(url, Some("k")).is_ok(), slow, "{url}");
        }
    }

    #[test]
    fn only_the_base_origin_and_allowed_hosts_pass() {
        let p = Policy::new(
            "https://user:pw@cdn.example.com/assets",
            &["media.example.net".into(), "*.edge.example.org".into(), "127.0.0.1:8080".into(), "[::1]:9000".into()],
        )
        .unwrap();
        assert!(allowed(&p, "https://cdn.example.com/a.mp4"));
        assert!(allowed(&p, "https://CDN.example.com:443/a.mp4"));
        assert!(!allowed(&p, "http://cdn.example.com/a.mp4"), "another scheme is another origin");
        assert!(!allowed(&p, "https://cdn.example.com:8443/a.mp4"));
        assert!(allowed(&p, "https://media.example.net/a.mp4"));
        assert!(allowed(&p, "http://media.example.net/a.mp4"));
        assert!(!allowed(&p, "https://media.example.net:8443/a.mp4"));
        assert!(allowed(&p, "https://a.edge.example.org/x"));
        assert!(!allowed(&p, "https://edge.example.org/x"), "a wildcard covers subdomains only");
        assert!(!allowed(&p, "https://evil-edge.example.org/x"));
        assert!(allowed(&p, "http://127.0.0.1:8080/x"));
        assert!(!allowed(&p, "http://127.0.0.1:8081/x"));
        assert!(allowed(&p, "http://[::1]:9000/x"));
        assert!(!allowed(&p, "http://169.254.169.254/latest/meta-data/"));
        let refused = p.check(&reqwest::Url::parse("http://u:secret@10.0.0.1:2379/v2/keys").unwrap()).unwrap_err();
        assert_eq!(refused.kind, "policy");
        assert!(refused.message.contains("http://10.0.0.1:2379") && !refused.message.contains("secret"));
    }

    #[test]
    fn bad_allow_hosts_are_refused() {
        for bad in ["", "*.", "http://x.com", "x.com/path", "u@x.com", "x.com:99999", "a*.x.com"] {
            assert!(Policy::new("https://cdn.example.com", &[bad.into()]).is_err(), "{bad}");
        }
    }

    #[test]
    fn dot_segments_in_every_spelling_are_refused() {
        for url in [
            "https://cdn.example.com/x/../real.mp4",
            "https://cdn.example.com/x/./real.mp4",
            "https://cdn.example.com/x/%2e%2e/real.mp4",
            "https://cdn.example.com/x/%2E./real.mp4",
            "https://cdn.example.com/x/.%2e/real.mp4",
            "https://cdn.example.com/x/%2e/real.mp4",
            "https://cdn.example.com/..",
            "https://cdn.example.com/a/..?w=1",
            "https://cdn.example.com/a\\..\\b.mp4",
            "https://cdn.example.com/a\tb.mp4",
        ] {
            assert!(rewritten_path(url).is_some(), "{url}");
        }
    }

    #[test]
    fn ordinary_paths_pass() {
        for url in [
            "https://cdn.example.com/2026/1//x.mp4",
            "https://cdn.example.com/a/...mp4",
            "https://cdn.example.com/a/.hidden/b.mp4",
            "https://cdn.example.com/a/%2e%2ex/b.mp4",
            "https://cdn.example.com/a/b.mp4?p=../x",
            "https://cdn.example.com/a/b.mp4#..",
            "https://cdn.example.com",
            "https://cdn.example.com/promo/sale%20%232%20(50%25%2Boff)%3F.mp4",
        ] {
            assert_eq!(rewritten_path(url), None, "{url}");
        }
    }
}
