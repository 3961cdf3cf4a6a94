//! What may leave the host: every request a plugin built (warm requests,
//! follow-ups and redirects, and the size probes and verify requests
//! derived from them, and what validate's relay fetches) is admitted here
//! before any connection is made.
//!
//! Egress policy: plugins decide, the host enforces. A request goes only to
//! the origin of `--base-url` (scheme, host and port) or to a host the user
//! allowed with `--allow-host HOST[:PORT]` (`*.example.com` for its
//! subdomains; without a port, 80 and 443). Anything else fails its pair
//! with kind `policy`; nothing a plugin returns can widen the policy.
//!
//! One parse: a URL is parsed once, by the WHATWG URL Standard (the `url`
//! crate); the policy checks that parse and [`Policy::admit`] hands back its
//! serialization, which is what the client sends. In that serialization the
//! authority holds no `\`, control or space and at most one `@`, so the
//! client's own split of it agrees with the parser by construction (a
//! property test checks it). A URL whose text a reader would split
//! otherwise (a backslash, control character or space in the authority) or
//! that carries credentials the user did not give (userinfo other than
//! `--base-url`'s) is refused with kind `policy`.
//!
//! Headers that frame or route the request (`Host`, `Connection`,
//! `Content-Length`, `Transfer-Encoding`, `TE`, `Upgrade`, `Keep-Alive`,
//! `Proxy-*`: RFC 9110 §7.2, §7.6.1, §8.6; RFC 9112 §6.1) are the host's: a
//! plugin that sets one fails its pair with kind `plan`, as does a header
//! name that is not a token or a value with a control character (CR or LF
//! would split the request).
//!
//! Addressable paths: a URL parser resolves dot segments (`.`, `..`, also
//! percent-encoded as `%2e`), reads `\` as `/` and drops tabs and newlines
//! (WHATWG URL Standard, "path state"; RFC 3986 §5.2.4). A URL whose path
//! holds one of those would be sent for another object than the one the
//! record names, so it is refused instead. Empty segments (`a//b`) are kept
//! as they are by every parser and are fine.

use url::{Position, Url};

use crate::plugin::WarmRequest;

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
        let url = Url::parse(&format!("http://{rest}/")).map_err(|e| bad(&e.to_string()))?;
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
    /// `--base-url`'s `scheme://userinfo@host:port/` as the parser
    /// serializes it: a URL that starts with it and holds only characters
    /// the parser keeps as they are is its own serialization.
    base_prefix: String,
    /// `--base-url`'s userinfo (username, password), the only one a
    /// plugin's URL may carry, and only to the base origin.
    base_userinfo: (String, Option<String>),
    allowed: Vec<Allowed>,
    warned: std::sync::atomic::AtomicBool,
}

/// `scheme://host:port` of a parsed URL (never its credentials).
pub fn origin_of(url: &Url) -> String {
    format!("{}://{}:{}", url.scheme(), url.host_str().unwrap_or(""), url.port_or_known_default().unwrap_or(0))
}

/// A refusal of kind `policy`.
fn policy(message: String) -> Refusal {
    Refusal { kind: "policy", message }
}

impl Policy {
    /// The policy of a run: the base URL's origin and the allowed hosts.
    pub fn new(base_url: &str, allow_hosts: &[String]) -> Result<Self, String> {
        let base = Url::parse(base_url).map_err(|e| format!("--base-url: {e}"))?;
        let allowed = allow_hosts.iter().map(|a| Allowed::parse(a)).collect::<Result<_, _>>()?;
        let base_prefix = format!("{}/", &base[..Position::BeforePath]);
        let base_userinfo = (base.username().to_string(), base.password().map(str::to_string));
        Ok(Policy { base_origin: origin_of(&base), base_prefix, base_userinfo, allowed, warned: Default::default() })
    }

    /// Whether `url`'s origin may be requested.
    pub fn check(&self, url: &Url) -> Result<(), Refusal> {
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
        Err(policy(format!(
            "refused a request to {origin}: not the origin of --base-url ({}) and not allowed by --allow-host; \
             nothing was sent",
            self.base_origin
        )))
    }

    /// Everything a plugin-built request must pass before it is sent: its
    /// headers are the plugin's to set ([`check_headers`]) and its URL is
    /// admitted ([`Policy::admit_url`]). On success `request.url` is the
    /// URL as parsed, which is what the client sends; `true` when that is
    /// not how the plugin wrote it.
    pub fn admit(&self, request: &mut WarmRequest, key: Option<&str>) -> Result<bool, Refusal> {
        check_headers(request.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())))?;
        let parsed = self.admit_url(&request.url, key)?;
        let rewritten = parsed.is_some();
        if let Some(parsed) = parsed {
            request.url = parsed;
        }
        Ok(rewritten)
    }

    /// A plugin-built URL checked and parsed once: an absolute http(s) URL
    /// whose authority reads the same to every reader, with no credentials
    /// of the plugin's, an addressable path (for the warm request, `key`
    /// names the object) and an allowed origin. `Some(serialization)` when
    /// the parser wrote it otherwise than `url` (the client must send that).
    pub fn admit_url(&self, url: &str, key: Option<&str>) -> Result<Option<String>, Refusal> {
        // The common case, checked without a URL parse: the base origin
        // exactly as serialized, then only characters the parser keeps as
        // they are (a test checks this against the parser).
        if let Some(rest) = url.strip_prefix(&self.base_prefix)
            && rest.bytes().all(kept_as_is)
            && rewritten_path(url).is_none()
        {
            return Ok(None);
        }
        let invalid = |why: String| Refusal {
            kind: "plan",
            message: match key {
                Some(_) => format!("the plugin built an invalid URL: {why}"),
                None => format!("follow-up to an invalid URL: {why}"),
            },
        };
        let authority =
            written_authority(url).ok_or_else(|| invalid("not an absolute http:// or https:// URL".into()))?;
        if let Some(c) = authority.chars().find(|c| *c == '\\' || c.is_control() || c.is_whitespace()) {
            let what = if c == '\\' { "a backslash".to_string() } else { format!("the character {c:?}") };
            return Err(policy(format!(
                "refused {}: its authority holds {what}, which URL parsers and readers split differently, so it \
                 could reach another host than it shows; nothing was sent",
                crate::util::redact::redact_url(url)
            )));
        }
        let mut parsed = Url::parse(url).map_err(|e| invalid(e.to_string()))?;
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
        self.check_userinfo(&parsed)?;
        self.check(&parsed)?;
        parsed.set_fragment(None);
        Ok((parsed.as_str() != url).then(|| parsed.into()))
    }

    /// Credentials in a URL are the user's (`--base-url`'s, to its own
    /// origin) or none: a plugin cannot send its own, or the user's to
    /// another host.
    fn check_userinfo(&self, url: &Url) -> Result<(), Refusal> {
        if url.username().is_empty() && url.password().is_none() {
            return Ok(());
        }
        let same = (url.username(), url.password()) == (self.base_userinfo.0.as_str(), self.base_userinfo.1.as_deref());
        if same && origin_of(url) == self.base_origin {
            return Ok(());
        }
        Err(policy(format!(
            "refused a request to {}: the URL carries credentials (userinfo) that are not --base-url's; nothing was \
             sent",
            origin_of(url)
        )))
    }
}

/// Bytes the URL parser keeps as they are in a path or query of an http(s)
/// URL: printable ASCII except what it percent-encodes or reads otherwise
/// (`\` as `/`, `#` as the fragment, `'` in a query).
fn kept_as_is(b: u8) -> bool {
    b.is_ascii_graphic() && !matches!(b, b'\\' | b'#' | b'<' | b'>' | b'"' | b'`' | b'{' | b'}' | b'|' | b'^' | b'\'')
}

/// The authority as a reader of the text sees it: after `http://` or
/// `https://` (any case) up to the first `/`, `?` or `#`. `None` when the
/// text does not start so (the parser would accept `http:\\host` or
/// `http:host` for other hosts than a reader sees).
fn written_authority(url: &str) -> Option<&str> {
    let lower = |n: usize| url.get(..n).map(str::to_ascii_lowercase);
    let rest = if lower(7).as_deref() == Some("http://") {
        &url[7..]
    } else if lower(8).as_deref() == Some("https://") {
        &url[8..]
    } else {
        return None;
    };
    Some(&rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())])
}

/// Request headers that frame or route the request: the host sets them.
const HOST_HEADERS: &[&str] =
    &["host", "connection", "content-length", "transfer-encoding", "te", "upgrade", "keep-alive"];

/// Every header a plugin (or a user's `--set headers=`) adds: a token name
/// (RFC 9110 §5.6.2) that is not the host's, and a value without control
/// characters other than tab (RFC 9110 §5.5), so no CR or LF can split the
/// request. Fails with kind `plan`, naming the header.
pub fn check_headers<'a>(headers: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<(), Refusal> {
    let plan = |message: String| Refusal { kind: "plan", message };
    for (name, value) in headers {
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err(plan(format!("the plugin set a header named {name:?}, which is not a valid header name")));
        }
        let lower = name.to_ascii_lowercase();
        if HOST_HEADERS.contains(&lower.as_str()) || lower.starts_with("proxy-") {
            return Err(plan(format!(
                "the plugin set the header `{name}`, which frames or routes the request and is prewarm's own to set; \
                 nothing was sent"
            )));
        }
        if !value.bytes().all(|b| (b >= 0x20 && b != 0x7f) || b == b'\t') {
            return Err(plan(format!(
                "the plugin set header `{name}` to a value with a control character (CR, LF or other); nothing was \
                 sent"
            )));
        }
    }
    Ok(())
}

/// Why a header the user adds (`--header`, `--variant`) cannot be sent, by
/// the same rules as [`check_headers`]; `None` when it can.
pub fn user_header_problem(name: &str, value: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    if name.is_empty() || !name.bytes().all(is_tchar) {
        Some("is not a valid header name (RFC 9110 §5.1)")
    } else if HOST_HEADERS.contains(&lower.as_str()) || lower.starts_with("proxy-") {
        Some("frames or routes the request and is prewarm's own to set")
    } else if !value.bytes().all(|b| (b >= 0x20 && b != 0x7f) || b == b'\t') {
        Some("has a control character (CR, LF or other) in its value")
    } else {
        None
    }
}

/// RFC 9110 §5.6.2 `tchar`: a byte of a header name (a token).
pub fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(policy: &Policy, url: &str) -> bool {
        policy.check(&Url::parse(url).unwrap()).is_ok()
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
            "https://u:p@cdn.example.com/a.mp4?q='x'",
        ] {
            let parsed = Url::parse(url).unwrap();
            let slow = rewritten_path(url).is_none() && p.check(&parsed).is_ok();
            assert_eq!(p.admit_url(url, Some("k")).is_ok(), slow, "{url}");
            if let Ok(None) = p.admit_url(url, Some("k")) {
                assert_eq!(parsed.as_str(), url, "admitted unchanged, so it must be its own serialization");
            }
        }
    }

    /// The two readings of the issue-19 URL: the parser's authority ends at
    /// `\`, a hand split's at the last `@`.
    #[test]
    fn a_backslash_or_control_in_the_authority_is_refused() {
        let p = Policy::new("http://127.0.0.1:8001", &[]).unwrap();
        for url in [
            "http://127.0.0.1:8001\\@127.0.0.1:8002/x",
            "http://127.0.0.1:8001\\@127.0.0.1:8002",
            "http://127.0.0.1:8001\t@127.0.0.1:8002/x",
            "http://127.0.0.1:8001 @127.0.0.1:8002/x",
        ] {
            let refused = p.admit_url(url, None).unwrap_err();
            assert_eq!(refused.kind, "policy", "{url}");
            assert!(refused.message.contains("authority"), "{}", refused.message);
        }
        // The parser reads these as the base origin; a reader may not: not sent.
        for url in ["http:\\\\127.0.0.1:8001/x", "http:/127.0.0.1:8001/x", "http:127.0.0.1:8001/x"] {
            assert_eq!(p.admit_url(url, None).unwrap_err().kind, "plan", "{url}");
        }
    }

    #[test]
    fn only_the_users_own_credentials_pass_and_only_to_its_origin() {
        let p = Policy::new("https://user:pw@cdn.example.com/a", &["media.example.net".into()]).unwrap();
        assert_eq!(p.admit_url("https://user:pw@cdn.example.com/x.mp4", None), Ok(None));
        for url in [
            "https://other:pw@cdn.example.com/x.mp4",
            "https://user:pw@media.example.net/x.mp4",
            "https://token@media.example.net/x.mp4",
            "https://user:pw2@cdn.example.com/x.mp4",
        ] {
            let refused = p.admit_url(url, None).unwrap_err();
            assert_eq!(refused.kind, "policy", "{url}");
            assert!(!refused.message.contains("pw"), "{}", refused.message);
        }
        let plain = Policy::new("https://cdn.example.com", &[]).unwrap();
        assert_eq!(plain.admit_url("https://a:b@cdn.example.com/x", None).unwrap_err().kind, "policy");
    }

    #[test]
    fn admitted_urls_come_back_as_parsed() {
        let p = Policy::new("http://cdn.example.com", &[]).unwrap();
        let sent = |url: &str| p.admit_url(url, None).unwrap();
        assert_eq!(sent("HTTP://CDN.example.com:80/a b.mp4#frag"), Some("http://cdn.example.com/a%20b.mp4".into()));
        assert_eq!(sent("http://cdn.example.com/a.mp4?x='1'"), Some("http://cdn.example.com/a.mp4?x=%271%27".into()));
        assert_eq!(sent("http://cdn.example.com/a.mp4"), None);
        let mut request = WarmRequest {
            url: "http://CDN.example.com/b.mp4".into(),
            method: crate::plugin::Method::Get,
            headers: vec![],
            read_body: true,
        };
        p.admit(&mut request, None).unwrap();
        assert_eq!(request.url, "http://cdn.example.com/b.mp4");
    }

    #[test]
    fn headers_that_frame_or_route_the_request_are_the_hosts() {
        for name in ["Host", "connection", "Content-Length", "Transfer-Encoding", "TE", "Upgrade", "Keep-Alive"] {
            let refused = check_headers([(name, "x")]).unwrap_err();
            assert_eq!(refused.kind, "plan");
            assert!(refused.message.contains(name), "{}", refused.message);
        }
        assert!(check_headers([("Proxy-Authorization", "Basic eA==")]).is_err());
        for value in ["a\r\nX-Evil: 1", "a\nb", "a\rb", "a\0b"] {
            assert_eq!(check_headers([("X-Ok", value)]).unwrap_err().kind, "plan", "{value:?}");
        }
        assert!(check_headers([("x evil", "1")]).is_err());
        assert!(check_headers([(":authority", "evil")]).is_err());
        assert!(check_headers([("Authorization", "Bearer t\tx"), ("Accept", "*/*"), ("X-Device", "tv")]).is_ok());
    }

    /// Property: for any URL the policy admits, the client reaches the host
    /// and port the policy checked, with the path and query the parser
    /// read; generated from the pieces that make parsers and hand splits
    /// disagree.
    #[test]
    fn what_the_policy_admits_is_what_the_client_sends() {
        use rand::{Rng, SeedableRng};
        let p = Policy::new(
            "http://u:p@cdn.example.com:8080/assets",
            &["127.0.0.1:9000".into(), "*.edge.example.org".into()],
        )
        .unwrap();
        let starts = [
            "http://cdn.example.com:8080",
            "http://u:p@cdn.example.com:8080",
            "HTTP://CDN.Example.com:8080",
            "http://127.0.0.1:9000",
            "https://x.edge.example.org",
            "http://",
            "https://",
            "http:",
            "",
        ];
        let pieces = [
            "cdn.example.com",
            "127.0.0.1",
            ":8080",
            ":9000",
            ":80",
            ":",
            "@",
            "u:p@",
            "\\",
            "/",
            "//",
            "?",
            "#",
            "%2e",
            "%2E",
            "%2f",
            "%40",
            "%5c",
            ".",
            "..",
            "a",
            "\u{e9}",
            "[::1]",
            " ",
            "\t",
            "\n",
            "evil.net",
            "x.edge.example.org",
            "'",
            "%",
            "{",
            "|",
            "^",
            "\"",
            "<",
            "\u{ff0e}",
            "\u{3002}",
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(19);
        let mut admitted = 0;
        for _ in 0..100_000 {
            let mut url = starts[rng.random_range(0..starts.len())].to_string();
            for _ in 0..rng.random_range(0..8) {
                url.push_str(pieces[rng.random_range(0..pieces.len())]);
            }
            let Ok(sent) = p.admit_url(&url, None) else { continue };
            admitted += 1;
            let checked = Url::parse(&url).expect("admitted URLs parse");
            assert!(p.check(&checked).is_ok(), "{url}");
            let sent = sent.unwrap_or_else(|| url.clone());
            let to = crate::warm::client::destination(&sent).unwrap_or_else(|e| panic!("{url} -> {sent}: {e}"));
            let host = checked.host_str().unwrap().trim_start_matches('[').trim_end_matches(']');
            assert_eq!(to.https, checked.scheme() == "https", "{url}");
            assert_eq!(to.host, host, "{url} -> {sent}");
            assert_eq!(Some(to.port), checked.port_or_known_default(), "{url} -> {sent}");
            let target = &checked[Position::BeforePath..Position::AfterQuery];
            assert_eq!(to.target, if target.is_empty() { "/" } else { target }, "{url} -> {sent}");
        }
        assert!(admitted > 10_000, "only {admitted} generated URLs admitted: the generator lost its aim");
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
        let refused = p.check(&Url::parse("http://u:secret@10.0.0.1:2379/v2/keys").unwrap()).unwrap_err();
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
