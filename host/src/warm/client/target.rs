//! Where a request goes: the URL the egress policy admitted (the URL
//! parser's own serialization) split by hand into scheme, authority and
//! request target (no second full parse per request; a split that could
//! read an authority otherwise than the parser is refused, not guessed),
//! and `--connect-to` rules (curl's `HOST:PORT:ADDR:PORT`), which send a
//! host's requests to another address with the Host header and TLS server
//! name unchanged.

use std::fmt;
use std::str::FromStr;

/// The parts of an absolute `http` or `https` URL, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'a> {
    pub https: bool,
    /// `scheme://authority`: the key of the origin table.
    pub origin: &'a str,
    /// The authority as written (userinfo, host, port).
    pub authority: &'a str,
    /// Path and query, never empty (`/` when the URL has none), without the
    /// fragment.
    pub path: &'a str,
}

/// Why a URL cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("unsupported URL scheme (expected http or https)")]
    Scheme,
    #[error("URL has no host")]
    NoHost,
    #[error("URL has a bad port")]
    Port,
    #[error("URL's authority holds a backslash, a control character, a space or a second `@`")]
    Authority,
}

impl<'a> Target<'a> {
    pub fn split(url: &'a str) -> Result<Self, TargetError> {
        let (https, rest) = if let Some(rest) = strip_prefix_ci(url, "https://") {
            (true, rest)
        } else if let Some(rest) = strip_prefix_ci(url, "http://") {
            (false, rest)
        } else {
            return Err(TargetError::Scheme);
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..end];
        if authority.is_empty() {
            return Err(TargetError::NoHost);
        }
        // The parser never serializes these into an authority; a URL that
        // holds one did not come through it.
        if authority.bytes().any(|b| b == b'\\' || b <= b' ' || b == 0x7f) || authority.matches('@').count() > 1 {
            return Err(TargetError::Authority);
        }
        let mut path = &rest[end..];
        if let Some(hash) = path.find('#') {
            path = &path[..hash];
        }
        if path.is_empty() || path.starts_with('?') {
            // "/" is added by the caller for an empty path; a bare query is
            // rare enough to be sent as "/?query" by that same rule.
            path = if path.is_empty() { "/" } else { path };
        }
        let origin = &url[..url.len() - rest.len() + end];
        Ok(Target { https, origin, authority, path })
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

/// An authority taken apart: userinfo (for Basic auth), host (IPv6 without
/// brackets) and port (the scheme's default when absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority<'a> {
    pub userinfo: Option<&'a str>,
    pub host: &'a str,
    pub port: u16,
    /// Whether the URL named the port (even the default one).
    pub explicit_port: bool,
}

impl<'a> Authority<'a> {
    pub fn parse(authority: &'a str, https: bool) -> Result<Self, TargetError> {
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (host, port) = split_host_port(hostport).ok_or(TargetError::Port)?;
        if host.is_empty() {
            return Err(TargetError::NoHost);
        }
        let default = if https { 443 } else { 80 };
        let port_num = match port {
            None | Some("") => default,
            Some(p) => p.parse::<u16>().map_err(|_| TargetError::Port)?,
        };
        Ok(Authority { userinfo, host, port: port_num, explicit_port: port.is_some_and(|p| !p.is_empty()) })
    }
}

/// `host[:port]` or `[v6][:port]` into host (brackets removed) and port text.
fn split_host_port(s: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        match after {
            "" => Some((host, None)),
            _ => Some((host, Some(after.strip_prefix(':')?))),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => Some((h, Some(p))),
            None => Some((s, None)),
        }
    }
}

/// `host:port` with brackets around an IPv6 host, as in a Host header or an
/// edge address.
pub fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// One `--connect-to HOST:PORT:ADDR:PORT` rule (curl's meaning): requests
/// for HOST:PORT connect to ADDR:PORT instead; Host header and TLS server
/// name stay those of the URL. An empty HOST or PORT on the left matches
/// any; an empty ADDR or PORT on the right keeps the URL's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectTo {
    /// Lowercase, IPv6 without brackets; `None`: any host.
    pub host: Option<String>,
    /// `None`: any port.
    pub port: Option<u16>,
    /// `None`: the URL's host.
    pub addr: Option<String>,
    /// `None`: the URL's port.
    pub addr_port: Option<u16>,
}

impl ConnectTo {
    /// Where to connect for `host:port`, if this rule matches.
    pub fn route(&self, host: &str, port: u16) -> Option<(String, u16)> {
        let host_ok = self.host.as_deref().is_none_or(|h| h.eq_ignore_ascii_case(host));
        let port_ok = self.port.is_none_or(|p| p == port);
        (host_ok && port_ok)
            .then(|| (self.addr.clone().unwrap_or_else(|| host.to_string()), self.addr_port.unwrap_or(port)))
    }
}

/// The first of `rules` that matches `host:port` (curl uses the first).
pub fn route(rules: &[ConnectTo], host: &str, port: u16) -> Option<(String, u16)> {
    rules.iter().find_map(|r| r.route(host, port))
}

impl FromStr for ConnectTo {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!(
                "--connect-to `{raw}`: {why}; expected HOST:PORT:ADDR:PORT (e.g. example.com:443:192.0.2.10:443, IPv6 in brackets)"
            )
        };
        let fields = split_fields(raw).ok_or_else(|| bad("unbalanced brackets"))?;
        let [host, port, addr, addr_port] = fields.as_slice() else {
            return Err(bad(&format!("{} fields instead of 4", fields.len())));
        };
        let host_of = |f: &str| -> Result<Option<String>, String> {
            let f = f.trim();
            let inner = match f.strip_prefix('[') {
                Some(rest) => rest.strip_suffix(']').ok_or_else(|| bad("unbalanced brackets"))?,
                None => f,
            };
            if inner.contains(['/', '@', '?', '#', ' ', '[', ']']) {
                return Err(bad(&format!("`{f}` is not a host")));
            }
            if inner.contains(':') && inner.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(bad(&format!("`{f}` is not an IPv6 address")));
            }
            Ok((!inner.is_empty()).then(|| inner.to_ascii_lowercase()))
        };
        let port_of = |f: &str| -> Result<Option<u16>, String> {
            let f = f.trim();
            if f.is_empty() {
                return Ok(None);
            }
            match f.parse::<u16>() {
                Ok(p) if p > 0 => Ok(Some(p)),
                _ => Err(bad(&format!("`{f}` is not a port (1-65535)"))),
            }
        };
        Ok(ConnectTo {
            host: host_of(host)?,
            port: port_of(port)?,
            addr: host_of(addr)?,
            addr_port: port_of(addr_port)?,
        })
    }
}

/// Split on `:` outside brackets.
fn split_fields(raw: &str) -> Option<Vec<&str>> {
    let mut fields = Vec::with_capacity(4);
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in raw.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ':' if depth == 0 => {
                fields.push(&raw[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        if !(0..=1).contains(&depth) {
            return None;
        }
    }
    (depth == 0).then(|| {
        fields.push(&raw[start..]);
        fields
    })
}

impl fmt::Display for ConnectTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = |h: &Option<String>| match h {
            Some(h) if h.contains(':') => format!("[{h}]"),
            Some(h) => h.clone(),
            None => String::new(),
        };
        let port = |p: Option<u16>| p.map(|p| p.to_string()).unwrap_or_default();
        write!(f, "{}:{}:{}:{}", host(&self.host), port(self.port), host(&self.addr), port(self.addr_port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_urls_by_hand() {
        let t = Target::split("https://User:pw@Example.com:8443/a/b.mp4?w=1#frag").unwrap();
        assert!(t.https);
        assert_eq!(t.origin, "https://User:pw@Example.com:8443");
        assert_eq!(t.authority, "User:pw@Example.com:8443");
        assert_eq!(t.path, "/a/b.mp4?w=1");
        let t = Target::split("HTTP://[::1]:8080?x=1").unwrap();
        assert!(!t.https);
        assert_eq!((t.authority, t.path), ("[::1]:8080", "?x=1"));
        assert_eq!(Target::split("http://h").unwrap().path, "/");
        assert_eq!(Target::split("ftp://h/x"), Err(TargetError::Scheme));
        assert_eq!(Target::split("http:///x"), Err(TargetError::NoHost));
        for two_readings in ["http://127.0.0.1:1\\@127.0.0.1:2/x", "http://a@b@c/x", "http://a b/x", "http://a\tb/"] {
            assert_eq!(Target::split(two_readings), Err(TargetError::Authority), "{two_readings}");
        }

        let a = Authority::parse("u:p@[::1]:8080", false).unwrap();
        assert_eq!((a.userinfo, a.host, a.port, a.explicit_port), (Some("u:p"), "::1", 8080, true));
        let a = Authority::parse("example.com", true).unwrap();
        assert_eq!((a.host, a.port, a.explicit_port), ("example.com", 443, false));
        assert_eq!(Authority::parse("h:99999", false), Err(TargetError::Port));
        assert_eq!(Authority::parse("h:x", false), Err(TargetError::Port));
        assert_eq!(join_host_port("::1", 80), "[::1]:80");
    }

    #[test]
    fn parses_connect_to_like_curl() {
        let c: ConnectTo = "Example.com:443:192.0.2.10:8443".parse().unwrap();
        assert_eq!(c.host.as_deref(), Some("example.com"));
        assert_eq!((c.port, c.addr.as_deref(), c.addr_port), (Some(443), Some("192.0.2.10"), Some(8443)));
        assert_eq!(c.route("EXAMPLE.com", 443), Some(("192.0.2.10".to_string(), 8443)));
        assert_eq!(c.route("example.com", 80), None);
        assert_eq!(c.to_string(), "example.com:443:192.0.2.10:8443");

        let c: ConnectTo = "[2001:db8::1]:80:[::1]:8080".parse().unwrap();
        assert_eq!(c.route("2001:db8::1", 80), Some(("::1".to_string(), 8080)));
        assert_eq!(c.to_string(), "[2001:db8::1]:80:[::1]:8080");

        // Empty fields: any host / port on the left, the URL's on the right.
        let c: ConnectTo = "::edge.example.net:".parse().unwrap();
        assert_eq!(c.route("a.example.com", 8443), Some(("edge.example.net".to_string(), 8443)));

        for bad in ["a:1:b", "a:1:b:2:3", "a:x:b:1", "a:1:b:0", "[::1:1:b:2", "a:1:b/c:2", "a:1:1:2:3:4:b"] {
            let e = bad.parse::<ConnectTo>().unwrap_err();
            assert!(e.starts_with(&format!("--connect-to `{bad}`")) && !e.contains('\n'), "{e}");
        }
    }
}
