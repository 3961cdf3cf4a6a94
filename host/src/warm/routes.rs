//! Where and how each pair is warmed besides its URL: the named edges
//! (`--edge NAME=ADDR[:PORT]`, `--edges FILE`), each a `--connect-to`
//! route for the base URL's host, so the Host header and TLS name stay the
//! URL's; the request variants (`--variant NAME='Header: value; ...'`); and
//! the headers added to every request (`--header`). Each (object,
//! derivative) pair is warmed once per edge and variant. An edge whose
//! connection attempts keep failing is marked down ([`EdgeHealth`]) so its
//! remaining pairs end at once instead of each waiting out its retries.

use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use super::client::ConnectTo;

/// Failed connection attempts in a row, with no answer in between, that
/// mark an edge down. Several, so that a burst of refused connections on a
/// loaded but live edge does not end it.
pub const EDGE_DOWN_AFTER: u32 = 8;

/// One named edge (point of presence).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub name: String,
    /// Host name or IP address (IPv6 without brackets).
    pub addr: String,
    /// `None`: the URL's port.
    pub port: Option<u16>,
}

impl Edge {
    /// `ADDR[:PORT]` as given (IPv6 in brackets).
    pub fn address(&self) -> String {
        let host = if self.addr.contains(':') { format!("[{}]", self.addr) } else { self.addr.clone() };
        match self.port {
            Some(p) => format!("{host}:{p}"),
            None => host,
        }
    }

    /// The route that sends requests for `host` (any port) to this edge.
    pub fn route_for(&self, host: &str) -> ConnectTo {
        ConnectTo {
            host: Some(host.to_ascii_lowercase()),
            port: None,
            addr: Some(self.addr.clone()),
            addr_port: self.port,
        }
    }

    /// Parse `ADDR[:PORT]` for the edge `name`; `what` names the input in
    /// errors.
    fn with_address(name: &str, address: &str, what: &str) -> Result<Self, String> {
        check_name(name).map_err(|why| format!("{what}: edge name `{name}` {why}"))?;
        let bad = |why: &str| {
            format!("{what}: `{address}` {why}; expected ADDR[:PORT] (IPv6 in brackets: [2001:db8::1]:443)")
        };
        let (host, port) = if let Some(rest) = address.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or_else(|| bad("has an unclosed bracket"))?;
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(bad("is not an IPv6 address in brackets"));
            }
            match after {
                "" => (host, None),
                _ => (host, Some(after.strip_prefix(':').ok_or_else(|| bad("has text after the bracket"))?)),
            }
        } else if address.matches(':').count() > 1 {
            return Err(bad("looks like an IPv6 address without brackets"));
        } else {
            match address.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (address, None),
            }
        };
        if host.is_empty() || host.contains(['/', '@', '?', '#', ' ', '=']) {
            return Err(bad("is not a host name or IP address"));
        }
        let port = match port {
            None => None,
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p > 0 => Some(p),
                _ => return Err(bad(&format!("has `{p}`, which is not a port (1-65535)"))),
            },
        };
        Ok(Edge { name: name.to_string(), addr: host.to_ascii_lowercase(), port })
    }
}

impl FromStr for Edge {
    type Err = String;

    /// `NAME=ADDR[:PORT]` (`--edge`).
    fn from_str(raw: &str) -> Result<Self, String> {
        let (name, address) = raw
            .split_once('=')
            .ok_or_else(|| format!("--edge `{raw}`: expected NAME=ADDR[:PORT] (e.g. fra=192.0.2.10)"))?;
        Edge::with_address(name.trim(), address.trim(), &format!("--edge `{raw}`"))
    }
}

/// The edges of an `--edges FILE`: one `NAME ADDR[:PORT]` a line, `#`
/// comments and blank lines ignored.
pub fn parse_edges_file(path: &std::path::Path, text: &str) -> Result<Vec<Edge>, String> {
    let mut edges = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let what = format!("--edges {} line {}", path.display(), n + 1);
        let mut fields = line.split_whitespace();
        match (fields.next(), fields.next(), fields.next()) {
            (Some(name), Some(address), None) => edges.push(Edge::with_address(name, address, &what)?),
            _ => return Err(format!("{what}: expected `NAME ADDR[:PORT]`, got `{line}`")),
        }
    }
    if edges.is_empty() {
        return Err(format!("--edges {}: no edges in the file (one `NAME ADDR[:PORT]` a line)", path.display()));
    }
    Ok(edges)
}

/// Edge and variant names: what goes into records, file names and
/// Prometheus label values, so kept plain.
fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 64 {
        return Err("must be 1 to 64 characters");
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
        return Err("may hold only letters, digits, `.`, `_` and `-`");
    }
    Ok(())
}

/// Names must differ: records and the summary tell edges (variants) apart
/// by name.
pub fn check_unique<'a>(what: &str, names: impl IntoIterator<Item = &'a str>) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for name in names {
        if !seen.insert(name) {
            return Err(format!("{what} `{name}` is given twice; each needs its own name"));
        }
    }
    Ok(())
}

/// One request variant: headers added to every request of its pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    pub name: String,
    pub headers: Vec<(String, String)>,
}

impl FromStr for Variant {
    type Err = String;

    /// `NAME=Header: value[; Header: value]` (`--variant`). A `;` followed by
    /// something other than `Name:` belongs to the value (`User-Agent:
    /// Mozilla/5.0 (iPhone; CPU …)`, `Accept: text/html; q=0.9`); a value
    /// may be `env:VAR` or `file:PATH`, as with `--header`.
    fn from_str(raw: &str) -> Result<Self, String> {
        let shape = "expected NAME='Header: value[; Header: value]'";
        let (name, list) = raw.split_once('=').ok_or_else(|| format!("--variant: {shape}"))?;
        let name = name.trim();
        // Named by its name only: a value may be a credential.
        let what = format!("--variant `{name}`");
        check_name(name).map_err(|why| format!("{what}: variant name {why}"))?;
        let headers = header_list(list).into_iter().map(|h| read_header(h, &what)).collect::<Result<Vec<_>, _>>()?;
        if headers.is_empty() {
            return Err(format!("{what}: no headers; {shape}"));
        }
        Ok(Variant { name: name.to_string(), headers })
    }
}

/// Split `Header: value; Header: value` at each `;` that a header name and
/// its `:` follow (RFC 9110 §5.1: a name is a token).
fn header_list(list: &str) -> Vec<&str> {
    let starts_header = |rest: &str| {
        let rest = rest.trim_start();
        let name_end = rest.bytes().position(|b| !super::egress::is_tchar(b)).unwrap_or(rest.len());
        name_end > 0 && rest[name_end..].trim_start().starts_with(':')
    };
    let mut parts = Vec::new();
    let mut start = 0;
    for (i, _) in list.match_indices(';') {
        if starts_header(&list[i + 1..]) {
            parts.push(&list[start..i]);
            start = i + 1;
        }
    }
    parts.push(&list[start..]);
    parts.into_iter().filter(|h| !h.trim().is_empty()).collect()
}

/// `Name: value`, checked as the plugin's own headers are (no header that
/// frames or routes the request, no control characters).
pub fn parse_header(raw: &str, what: &str) -> Result<(String, String), String> {
    let (name, value) = raw.split_once(':').ok_or_else(|| format!("{what}: `{}` is not `Name: value`", raw.trim()))?;
    let (name, value) = (name.trim(), value.trim());
    if let Some(why) = super::egress::user_header_problem(name, value) {
        return Err(format!("{what}: header `{name}` {why}"));
    }
    Ok((name.to_string(), value.to_string()))
}

/// `--header 'Name: value'`; a value `env:VAR` or `file:PATH` is read from
/// there and registered as a secret (never shown).
pub fn parse_extra_header(raw: &str) -> Result<(String, String), String> {
    let what = format!("--header `{}`", raw.split_once(':').map_or(raw, |(n, _)| n).trim());
    read_header(raw, &what)
}

/// `Name: value` with an `env:VAR` or `file:PATH` value read and registered
/// as a secret, and a credential header's literal value registered too.
fn read_header(raw: &str, what: &str) -> Result<(String, String), String> {
    let (name, value) = parse_header(raw, what)?;
    let read = if let Some(var) = value.strip_prefix("env:") {
        std::env::var(var).map_err(|_| format!("{what}: environment variable `{var}` is not set (or not UTF-8)"))?
    } else if let Some(path) = value.strip_prefix("file:") {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{what}: cannot read file {path} ({e})"))?;
        text.trim_end_matches(['\r', '\n']).to_string()
    } else {
        // A credential typed literally is still kept out of what is shown.
        if crate::util::redact::is_credential_header(&name) {
            crate::util::redact::register_secret(&value);
        }
        return Ok((name, value));
    };
    crate::util::redact::register_secret(&read);
    match super::egress::user_header_problem(&name, &read) {
        Some(why) => Err(format!("{what}: the value read {why}")),
        None => Ok((name, read)),
    }
}

/// `Name: value` as shown (`config show`): the value of a credential header
/// written literally is `REDACTED`; `env:`/`file:` references are shown.
pub fn shown_header(raw: &str) -> String {
    match raw.split_once(':') {
        Some((name, value))
            if crate::util::redact::is_credential_header(name.trim())
                && !value.trim().starts_with("env:")
                && !value.trim().starts_with("file:") =>
        {
            format!("{}: REDACTED", name.trim())
        }
        _ => raw.to_string(),
    }
}

/// `NAME=Header: value; …` as shown, each header as [`shown_header`].
pub fn shown_variant(raw: &str) -> String {
    match raw.split_once('=') {
        Some((name, list)) => {
            let shown: Vec<String> = header_list(list).into_iter().map(|h| shown_header(h.trim())).collect();
            format!("{name}={}", shown.join("; "))
        }
        None => raw.to_string(),
    }
}

/// Set `extra` on a request's headers, replacing a header of the same name
/// the plugin set (the user's choice is the more specific).
pub fn apply_headers(headers: &mut Vec<(String, String)>, extra: &[(String, String)]) {
    for (name, value) in extra {
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        headers.push((name.clone(), value.clone()));
    }
}

/// The edges, variants and added headers of a run, and each edge's health;
/// empty (the default) for a run of one implicit edge and variant.
#[derive(Debug, Default)]
pub struct Routes {
    pub edges: Vec<Edge>,
    pub variants: Vec<Variant>,
    /// `--header`: added to every request.
    pub headers: Vec<(String, String)>,
    health: Vec<EdgeHealth>,
}

impl Routes {
    pub fn new(edges: Vec<Edge>, variants: Vec<Variant>, headers: Vec<(String, String)>) -> Self {
        let health = edges.iter().map(|_| EdgeHealth::default()).collect();
        Routes { edges, variants, headers, health }
    }

    /// Edges each pair is warmed at (1 without `--edge`).
    pub fn edge_count(&self) -> usize {
        self.edges.len().max(1)
    }

    /// Variants each pair is warmed in (1 without `--variant`).
    pub fn variant_count(&self) -> usize {
        self.variants.len().max(1)
    }

    pub fn edge_name(&self, index: usize) -> Option<&str> {
        self.edges.get(index).map(|e| e.name.as_str())
    }

    pub fn variant_name(&self, index: usize) -> Option<&str> {
        self.variants.get(index).map(|v| v.name.as_str())
    }

    /// The named edge's health (`None` without `--edge`).
    pub fn health(&self, index: usize) -> Option<&EdgeHealth> {
        self.health.get(index)
    }

    /// Add `--header` and the variant's headers to a request's.
    pub fn apply(&self, headers: &mut Vec<(String, String)>, variant: usize) {
        apply_headers(headers, &self.headers);
        if let Some(v) = self.variants.get(variant) {
            apply_headers(headers, &v.headers);
        }
    }
}

/// Whether an edge still answers, shared by every engine thread.
#[derive(Debug, Default)]
pub struct EdgeHealth {
    failures_in_row: AtomicU32,
    down: AtomicBool,
    why: Mutex<Option<String>>,
}

impl EdgeHealth {
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }

    /// Why the edge was marked down.
    pub fn why(&self) -> String {
        self.why.lock().unwrap_or_else(|p| p.into_inner()).clone().unwrap_or_default()
    }

    /// An answer came: the edge is up.
    pub fn answered(&self) {
        if self.failures_in_row.load(Ordering::Relaxed) != 0 {
            self.failures_in_row.store(0, Ordering::Relaxed);
        }
    }

    /// A connection attempt failed; true when this one marked the edge
    /// down (the caller logs it, once).
    pub fn failed(&self, reason: &str) -> bool {
        let n = self.failures_in_row.fetch_add(1, Ordering::Relaxed) + 1;
        if n < EDGE_DOWN_AFTER || self.down.load(Ordering::Relaxed) {
            return false;
        }
        let why = format!("{n} connection attempts in a row failed, the last: {reason}");
        *self.why.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
        !self.down.swap(true, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_edges() {
        let e: Edge = "fra=192.0.2.10:8443".parse().unwrap();
        assert_eq!((e.name.as_str(), e.addr.as_str(), e.port), ("fra", "192.0.2.10", Some(8443)));
        let e: Edge = "v6=[2001:db8::1]".parse().unwrap();
        assert_eq!((e.addr.as_str(), e.port, e.address()), ("2001:db8::1", None, "[2001:db8::1]".to_string()));
        let e: Edge = "pop=Edge.Example.net".parse().unwrap();
        assert_eq!(
            e.route_for("CDN.example.com").route("cdn.example.com", 443),
            Some(("edge.example.net".into(), 443))
        );
        for bad in ["fra", "=1.2.3.4", "fra=", "fra=1.2.3.4:0", "fra=2001:db8::1", "a b=1.2.3.4", "x=[::1"] {
            let e = bad.parse::<Edge>().unwrap_err();
            assert!(e.starts_with(&format!("--edge `{bad}`")) && !e.contains('\n'), "{e}");
        }
        let path = std::path::Path::new("edges.txt");
        let edges = parse_edges_file(path, "# POPs\nfra 192.0.2.10\n\nsyd [2001:db8::2]:443  # Sydney\n").unwrap();
        assert_eq!(edges.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["fra", "syd"]);
        let e = parse_edges_file(path, "fra 192.0.2.10\nsyd\n").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
        assert!(parse_edges_file(path, "# none\n").is_err());
        assert!(check_unique("--edge", ["a", "b", "a"]).unwrap_err().contains("`a`"));
    }

    #[test]
    fn parses_variants_and_headers() {
        let v: Variant = "phone=X-Device: phone; Accept: image/avif".parse().unwrap();
        assert_eq!(v.headers, [("X-Device".into(), "phone".into()), ("Accept".into(), "image/avif".into())]);
        // A `;` inside a value stays in it: real User-Agents, q-values, Client Hints.
        let ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)";
        let v: Variant =
            format!("ios=User-Agent: {ua}; Accept: text/html; q=0.9;Sec-CH-UA: \"A\";v=\"1\"").parse().unwrap();
        let want = [("User-Agent", ua), ("Accept", "text/html; q=0.9"), ("Sec-CH-UA", "\"A\";v=\"1\"")];
        assert_eq!(v.headers, want.map(|(n, v)| (n.to_string(), v.to_string())));
        // Values from the environment, as with --header; a missing one is named, not shown.
        // SAFETY: this test alone sets this variable.
        unsafe { std::env::set_var("PREWARM_TEST_VARIANT_TOKEN", "tok-123") };
        let v: Variant = "auth=Authorization: env:PREWARM_TEST_VARIANT_TOKEN".parse().unwrap();
        assert_eq!(v.headers, [("Authorization".to_string(), "tok-123".to_string())]);
        let e =
            "p=Authorization: Bearer LITERAL; X-K: env:PREWARM_TEST_NOT_SET_ANYWHERE".parse::<Variant>().unwrap_err();
        assert!(e.starts_with("--variant `p`") && !e.contains("LITERAL"), "{e}");
        for bad in ["phone", "phone=", "phone=Host: a", "phone=X-Y", "ph one=X: 1", "p=Proxy-Authorization: x"] {
            let e = bad.parse::<Variant>().unwrap_err();
            assert!(e.starts_with("--variant") && !e.contains('\n'), "{e}");
        }
        assert!(parse_extra_header("Transfer-Encoding: chunked").is_err());
        assert!(parse_extra_header("X-Env: env:PREWARM_TEST_NOT_SET_ANYWHERE").unwrap_err().contains("not set"));
        let mut headers = vec![("user-agent".to_string(), "plugin".to_string())];
        apply_headers(&mut headers, &[("User-Agent".into(), "Mozilla/5.0".into())]);
        assert_eq!(headers, [("User-Agent".to_string(), "Mozilla/5.0".to_string())]);
    }

    #[test]
    fn an_edge_goes_down_after_failures_in_a_row_only() {
        let h = EdgeHealth::default();
        for _ in 0..EDGE_DOWN_AFTER - 1 {
            assert!(!h.failed("connection refused"));
        }
        h.answered();
        for _ in 0..EDGE_DOWN_AFTER - 1 {
            assert!(!h.failed("connection refused"));
        }
        assert!(!h.is_down());
        assert!(h.failed("connection refused"));
        assert!(h.is_down() && !h.failed("again"));
        assert!(h.why().contains("connection refused"));
    }
}
