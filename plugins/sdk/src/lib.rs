//! The prewarm plugin SDK: write a CDN strategy as one Rust type.
//!
//! Implement [`Strategy`] and call [`register_strategy!`] once; build with
//! `cargo build --release --target wasm32-wasip2` and load the `.wasm` with
//! `prewarm warm --plugin path/to/plugin.wasm`. The generated WIT bindings
//! stay in [`wit`]; the types a strategy needs are re-exported here, with
//! helpers for what every strategy does: encode paths, read settings and
//! headers, and map plain HTTP answers to verdicts.

#[doc(hidden)]
pub mod wit {
    wit_bindgen::generate!({
        path: "wit",
        world: "plugin",
        pub_export_macro: true,
        default_bindings_module: "prewarm_plugin_sdk::wit",
        export_macro_name: "export_strategy",
    });
}

mod cache_status;
mod vendor;

use std::any::Any;
use std::cell::RefCell;

pub use cache_status::{
    CACHE_HEADERS, CacheReading, read_age_and_varnish, read_cache_header, read_cache_status, read_tier_list,
};
pub use vendor::{
    cache_headers_own_first, content_range_total, declared_size, is_source_size, millis_setting, poll_wait_ms,
    served_size,
};

pub use wit::exports::prewarm::strategy::strategy::Guest as __Guest;
pub use wit::prewarm::strategy::log::Level;
pub use wit::prewarm::strategy::types::{
    BodyPolicy, CacheState, Derivative, Failure, FailureKind, HttpMethod, Limits, Object, PendingInfo, PluginInfo,
    Request, ResponseMeta, Retry, SettingInfo, SizeMethod, Verdict, WarmInfo,
};

/// A CDN strategy. One value is built by [`Strategy::configure`] and then
/// asked to plan requests and read answers for every (object, derivative).
pub trait Strategy: Sized + 'static {
    /// Name, version, settings, default derivatives and limits.
    fn info() -> PluginInfo;

    /// Build the strategy from the CDN base URL (no trailing slash) and the
    /// user's settings. Refuse unknown keys and bad values with one line.
    fn configure(base_url: &str, settings: &Settings) -> Result<Self, String>;

    /// The request that makes the CDN transform and cache `derivative`.
    fn warm_request(&self, object: &Object, derivative: &Derivative) -> Result<Request, String>;

    /// Response headers `classify` reads, lowercase; the host passes only
    /// these. Empty (the default) passes every header.
    fn response_headers(&self) -> Vec<String> {
        Vec::new()
    }

    /// Size methods, most preferred first.
    fn size_methods(&self, _derivative: &Derivative) -> Vec<SizeMethod> {
        vec![SizeMethod::WarmContentLength, SizeMethod::Head, SizeMethod::Range, SizeMethod::FullBody]
    }

    /// Read one answer. The default reads plain HTTP status codes and the
    /// standard cache headers; see [`standard_verdict`].
    fn classify(&self, object: &Object, _derivative: &Derivative, response: &ResponseMeta) -> Verdict {
        standard_verdict(object, response)
    }
}

/// Settings as given by the user, checked against the plugin's declared
/// keys so that a typo is an error, not a silent default.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pairs: Vec<(String, String)>,
}

impl Settings {
    /// Settings from raw pairs, refusing keys not declared in `info`.
    pub fn new(pairs: Vec<(String, String)>, declared: &[SettingInfo]) -> Result<Self, String> {
        for (key, _) in &pairs {
            if !declared.iter().any(|s| &s.key == key) {
                let known: Vec<&str> = declared.iter().map(|s| s.key.as_str()).collect();
                return Err(format!(
                    "unknown setting `{key}` (known: {})",
                    if known.is_empty() { "none".to_string() } else { known.join(", ") }
                ));
            }
        }
        let mut with_defaults = pairs;
        for s in declared {
            if let Some(default) = &s.default_value
                && !with_defaults.iter().any(|(k, _)| k == &s.key)
            {
                with_defaults.push((s.key.clone(), default.clone()));
            }
        }
        Ok(Self { pairs: with_defaults })
    }

    /// The value of `key` (the user's, else the declared default).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The value of `key`, which must be one of `allowed`.
    pub fn choice<'a>(&self, key: &str, allowed: &[&'a str]) -> Result<Option<&'a str>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => allowed
                .iter()
                .find(|a| a.eq_ignore_ascii_case(v))
                .map(|a| Some(*a))
                .ok_or_else(|| format!("setting `{key}`: `{v}` is not one of {}", allowed.join(", "))),
        }
    }
}

/// A declared setting.
pub fn setting(key: &str, description: &str, default: Option<&str>) -> SettingInfo {
    SettingInfo {
        key: key.into(),
        description: description.into(),
        default_value: default.map(Into::into),
        secret: false,
    }
}

/// A declared secret setting (a token, key or signing secret): the host
/// never shows its value anywhere.
pub fn secret_setting(key: &str, description: &str) -> SettingInfo {
    SettingInfo { key: key.into(), description: description.into(), default_value: None, secret: true }
}

/// A derivative with a width and height and no extra options.
pub fn derivative(name: &str, width: u32, height: u32) -> Derivative {
    Derivative { name: name.into(), width: Some(width), height: Some(height), options: Vec::new() }
}

/// The video-resizer breakpoints: desktop 1920×1080, tablet 1280×720,
/// mobile 854×640.
pub fn standard_derivatives() -> Vec<Derivative> {
    vec![derivative("desktop", 1920, 1080), derivative("tablet", 1280, 720), derivative("mobile", 854, 640)]
}

/// Still transforming: ask again after `after_ms`.
pub fn pending(after_ms: u32) -> Verdict {
    Verdict::Pending(PendingInfo { after_ms, job: None })
}

/// Still transforming as the CDN's job `job` (if it names one): ask again
/// after `after_ms`; a pair still pending at the end records the job.
pub fn pending_job(after_ms: u32, job: Option<&str>) -> Verdict {
    Verdict::Pending(PendingInfo { after_ms, job: job.map(|j| j.chars().take(256).collect()) })
}

/// A GET that reads the whole body: what warms a CDN cache.
pub fn get(url: String) -> Request {
    Request { url, method: HttpMethod::Get, headers: Vec::new(), body: BodyPolicy::ReadFull }
}

/// Characters kept as they are in a path segment: RFC 3986 unreserved and
/// the sub-delimiters that are legal in paths, except `+`: S3-compatible
/// origins read a raw `+` in a key's path as a space, so it is sent as
/// `%2B`. `/` separates segments and is never inside one.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b',')
    .remove(b';')
    .remove(b'=')
    .remove(b':')
    .remove(b'@');

/// Characters kept in a query value: unreserved only.
const QUERY_VALUE: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Percent-encode an object path segment by segment, keeping the `/`s and
/// the directory part. Leading slashes are dropped.
pub fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 8);
    push_encoded_path(&mut out, path);
    out
}

/// [`encode_path`] appending to `out`, without a temporary string.
pub fn push_encoded_path(out: &mut String, path: &str) {
    for (i, seg) in path.trim_start_matches('/').split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.extend(percent_encoding::utf8_percent_encode(seg, SEGMENT));
    }
}

/// Percent-encode a query parameter value.
pub fn encode_query_value(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, QUERY_VALUE).to_string()
}

/// The base name of a path (after the last `/`).
pub fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Append `key=value` to a URL, with `?` or `&` as needed.
pub fn with_query(url: &str, key: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{key}={}", encode_query_value(value))
}

impl ResponseMeta {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The Content-Length, if present and valid: digits only, or a list
    /// of one repeated number (`1000, 1000`, RFC 9112 §6.3).
    pub fn content_length(&self) -> Option<u64> {
        let mut found = None;
        for item in self.header("content-length")?.split(',') {
            let item = item.trim();
            if item.is_empty() || !item.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let n: u64 = item.parse().ok()?;
            if found.is_some_and(|f| f != n) {
                return None;
            }
            found = Some(n);
        }
        found
    }

    /// `Retry-After` in milliseconds (delta-seconds form).
    pub fn retry_after_ms(&self) -> Option<u32> {
        let secs: u32 = self.header("retry-after")?.trim().parse().ok()?;
        Some(secs.saturating_mul(1000))
    }
}

/// The cache state a header value says, for callers that do not know the
/// header's name: an RFC 9211 list when it has parameters, else an
/// `X-Cache`-style list (see [`read_cache_header`]).
pub fn cache_state_of(value: &str) -> CacheState {
    if value.contains(';') { read_cache_status(value).state } else { read_tier_list(value).state }
}

/// The cache state from the first of `names` the response carries, each
/// read by its own grammar; without any of them, what stock Varnish and
/// `Age` say ([`read_age_and_varnish`]).
pub fn cache_info(response: &ResponseMeta, names: &[&str], size: Option<u64>) -> WarmInfo {
    for name in names {
        if let Some(v) = response.header(name) {
            let reading = read_cache_header(name, v);
            return WarmInfo { cache: reading.state, cache_status: Some(v.to_string()), tiers: reading.tiers, size };
        }
    }
    let (x_varnish, age, via) = (response.header("x-varnish"), response.header("age"), response.header("via"));
    match read_age_and_varnish(x_varnish, age, via) {
        Some((reading, raw)) => WarmInfo { cache: reading.state, cache_status: Some(raw), tiers: reading.tiers, size },
        None => WarmInfo { cache: CacheState::Unknown, cache_status: None, tiers: Vec::new(), size },
    }
}

/// The usual reading of an HTTP answer: 2xx warm (size by [`declared_size`],
/// cache from the common headers), a truncated body retryable, 408/429/5xx
/// retryable, 404/410 not found, 401/403 forbidden, 413 too large, other
/// 4xx client errors, anything else other.
pub fn standard_verdict(object: &Object, response: &ResponseMeta) -> Verdict {
    standard_verdict_with(object, response, CACHE_HEADERS)
}

/// [`standard_verdict`], reading the cache state from the first of
/// `cache_headers` the response carries.
pub fn standard_verdict_with(_object: &Object, response: &ResponseMeta, cache_headers: &[&str]) -> Verdict {
    let status = response.status;
    if (200..300).contains(&status) {
        if !response.body_complete {
            return Verdict::Retryable(Retry { reason: "body incomplete".into(), after_ms: None });
        }
        return Verdict::Warm(cache_info(response, cache_headers, declared_size(response)));
    }
    failure_verdict(response)
}

/// The verdict for a non-2xx answer, by status code.
pub fn failure_verdict(response: &ResponseMeta) -> Verdict {
    let status = response.status;
    let fail = |kind, what: &str| Verdict::Failed(Failure { kind, message: format!("HTTP {status}: {what}") });
    match status {
        408 | 425 | 429 | 500..=599 => {
            Verdict::Retryable(Retry { reason: format!("HTTP {status}"), after_ms: response.retry_after_ms() })
        }
        404 | 410 => fail(FailureKind::NotFound, "not found"),
        401 | 403 => fail(FailureKind::Forbidden, "forbidden"),
        413 => fail(FailureKind::TooLarge, "source too large"),
        400..=499 => fail(FailureKind::ClientError, "request refused"),
        301 | 302 | 303 | 307 | 308 => match response.header("location") {
            // Follow redirects as a browser would; the host bounds how many.
            Some(location) => Verdict::FollowUp(get(resolve_location(&response.url, location))),
            None => fail(FailureKind::Other, "redirect without a Location"),
        },
        300..=399 => fail(FailureKind::Other, "unexpected redirect"),
        _ => fail(FailureKind::Other, "unexpected status"),
    }
}

/// The headers [`standard_verdict`] reads, to start a
/// [`Strategy::response_headers`] list from.
pub fn standard_headers() -> Vec<String> {
    ["content-length", "content-range", "transfer-encoding", "retry-after", "location", "x-varnish", "age", "via"]
        .iter()
        .chain(CACHE_HEADERS)
        .map(|h| h.to_string())
        .collect()
}

/// A `Location` header resolved against the URL that was requested, by
/// RFC 3986 §5.2 (RFC 9110 §10.2.2 points there): absolute (any scheme, in
/// any case), scheme-relative (`//host/x`), absolute-path (`/x`), query
/// only (`?page=2`), fragment only, or a relative path with `.` and `..`
/// segments. The fragment is dropped: it is never sent. Backslashes are
/// kept as written, so the host's egress policy sees and refuses them.
pub fn resolve_location(request_url: &str, location: &str) -> String {
    let location = location.trim();
    let location = location.split('#').next().unwrap_or("");
    if has_scheme(location) {
        return location.to_string();
    }
    let (scheme, rest) = request_url.split_once("://").unwrap_or(("https", request_url));
    if let Some(net) = location.strip_prefix("//") {
        return format!("{scheme}://{net}");
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let after = &rest[authority.len()..];
    let after = after.split('#').next().unwrap_or("");
    let (base_path, base_query) = match after.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (after, None),
    };
    let (ref_path, ref_query) = match location.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (location, None),
    };
    let (path, query) = if ref_path.is_empty() {
        (base_path.to_string(), ref_query.or(base_query))
    } else if ref_path.starts_with('/') {
        (remove_dot_segments(ref_path), ref_query)
    } else {
        // Merge (§5.2.3): the base path up to its last `/`, then the reference.
        let dir = match base_path.rfind('/') {
            Some(i) => &base_path[..=i],
            None => "/",
        };
        (remove_dot_segments(&format!("{dir}{ref_path}")), ref_query)
    };
    let path = if path.is_empty() { "/".to_string() } else { path };
    match query {
        Some(q) => format!("{scheme}://{authority}{path}?{q}"),
        None => format!("{scheme}://{authority}{path}"),
    }
}

/// `scheme:` at the start (RFC 3986 §3.1: a letter, then letters, digits,
/// `+`, `-`, `.`).
fn has_scheme(reference: &str) -> bool {
    let Some((scheme, _)) = reference.split_once(':') else { return false };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// RFC 3986 §5.2.4 on an absolute path.
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match *segment {
            "." => {
                if last {
                    out.push("");
                }
            }
            ".." => {
                out.pop();
                if last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

/// Send a log line to the host's logs.
pub fn log(level: Level, message: &str) {
    wit::prewarm::strategy::log::log(level, message);
}

#[doc(hidden)]
pub mod __private {
    use super::*;

    /// Send a panic's message to the host before the trap, so the pair's
    /// error says what went wrong (the host reads the `panicked: ` prefix).
    /// Installed once per instance, at its first call.
    pub fn panic_hook() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            std::panic::set_hook(Box::new(|info| {
                let message = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "(no message)".to_string());
                let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
                log(Level::Error, &format!("panicked: {message}{at}"));
            }));
        });
    }

    thread_local! {
        static STATE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
    }

    fn with<T: Strategy, R>(f: impl FnOnce(&T) -> R) -> Result<R, String> {
        STATE.with(|s| {
            let s = s.borrow();
            match s.as_ref().and_then(|b| b.downcast_ref::<T>()) {
                Some(t) => Ok(f(t)),
                None => Err("plugin used before configure".to_string()),
            }
        })
    }

    pub fn info<T: Strategy>() -> PluginInfo {
        T::info()
    }

    pub fn configure<T: Strategy>(base_url: String, settings: Vec<(String, String)>) -> Result<(), String> {
        let settings = Settings::new(settings, &T::info().settings)?;
        let strategy = T::configure(base_url.trim_end_matches('/'), &settings)?;
        STATE.with(|s| *s.borrow_mut() = Some(Box::new(strategy)));
        Ok(())
    }

    pub fn warm_request<T: Strategy>(object: Object, derivative: Derivative) -> Result<Request, String> {
        with::<T, _>(|t| t.warm_request(&object, &derivative))?
    }

    pub fn response_headers<T: Strategy>() -> Vec<String> {
        with::<T, _>(|t| t.response_headers()).unwrap_or_default()
    }

    pub fn size_methods<T: Strategy>(derivative: Derivative) -> Vec<SizeMethod> {
        with::<T, _>(|t| t.size_methods(&derivative)).unwrap_or_default()
    }

    pub fn classify<T: Strategy>(object: Object, derivative: Derivative, response: ResponseMeta) -> Verdict {
        with::<T, _>(|t| t.classify(&object, &derivative, &response))
            .unwrap_or_else(|message| Verdict::Failed(Failure { kind: FailureKind::Other, message }))
    }
}

/// Export `$t` (a [`Strategy`]) as this component's strategy.
#[macro_export]
macro_rules! register_strategy {
    ($t:ty) => {
        struct __PrewarmStrategyExport;
        impl $crate::__Guest for __PrewarmStrategyExport {
            fn info() -> $crate::PluginInfo {
                $crate::__private::panic_hook();
                $crate::__private::info::<$t>()
            }
            fn configure(base_url: String, settings: Vec<(String, String)>) -> Result<(), String> {
                $crate::__private::panic_hook();
                $crate::__private::configure::<$t>(base_url, settings)
            }
            fn warm_request(object: $crate::Object, derivative: $crate::Derivative) -> Result<$crate::Request, String> {
                $crate::__private::warm_request::<$t>(object, derivative)
            }
            fn response_headers() -> Vec<String> {
                $crate::__private::response_headers::<$t>()
            }
            fn size_methods(derivative: $crate::Derivative) -> Vec<$crate::SizeMethod> {
                $crate::__private::size_methods::<$t>(derivative)
            }
            fn classify(
                object: $crate::Object,
                derivative: $crate::Derivative,
                response: $crate::ResponseMeta,
            ) -> $crate::Verdict {
                $crate::__private::classify::<$t>(object, derivative, response)
            }
        }
        $crate::wit::export_strategy!(__PrewarmStrategyExport with_types_in $crate::wit);
    };
}

#[cfg(test)]
mod tests {
    use super::resolve_location;

    #[test]
    fn locations_resolve_as_rfc_3986_says() {
        // RFC 3986 §5.4.1 and §5.4.2, base http://a/b/c/d;p?q (fragments dropped).
        let base = "http://a/b/c/d;p?q";
        for (reference, want) in [
            ("g", "http://a/b/c/g"),
            ("./g", "http://a/b/c/g"),
            ("g/", "http://a/b/c/g/"),
            ("/g", "http://a/g"),
            ("//g", "http://g"),
            ("?y", "http://a/b/c/d;p?y"),
            ("g?y", "http://a/b/c/g?y"),
            ("#s", "http://a/b/c/d;p?q"),
            ("g#s", "http://a/b/c/g"),
            ("", "http://a/b/c/d;p?q"),
            (".", "http://a/b/c/"),
            ("./", "http://a/b/c/"),
            ("..", "http://a/b/"),
            ("../g", "http://a/b/g"),
            ("../..", "http://a/"),
            ("../../g", "http://a/g"),
            ("../../../g", "http://a/g"),
            ("/./g", "http://a/g"),
            ("/../g", "http://a/g"),
            ("g.", "http://a/b/c/g."),
            ("..g", "http://a/b/c/..g"),
            ("./g/.", "http://a/b/c/g/"),
            ("g;x=1/../y", "http://a/b/c/y"),
        ] {
            assert_eq!(resolve_location(base, reference), want, "{reference}");
        }
        // Any scheme, in any case, is absolute; a backslash is left for the host's policy.
        assert_eq!(resolve_location(base, "HTTP://b/x"), "HTTP://b/x");
        assert_eq!(resolve_location("https://cdn/v/x.mp4", "\\\\evil/x"), "https://cdn/v/\\\\evil/x");
        assert_eq!(resolve_location("https://cdn/dir/x.mp4", "?page=2"), "https://cdn/dir/x.mp4?page=2");
    }
}
