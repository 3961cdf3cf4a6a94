//! The one place that sees the generated WIT bindings: `bindgen!`, the log
//! import, and the conversions between generated and domain types. Output
//! from a plugin is untrusted: every string and list is bounded here.

use super::error::PluginError;
use super::types as domain;

wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
});

use self::prewarm::strategy::types as wit;
pub(crate) use exports::prewarm::strategy::strategy as guest;

/// The WIT package version this host speaks.
pub const WIT_VERSION: &str = "0.2.0";
/// The export a strategy must have, without its version.
pub const STRATEGY_EXPORT: &str = "prewarm:strategy/strategy";

/// Longest URL a plugin may return.
const MAX_URL: usize = 16 * 1024;
/// Most request headers a plugin may add.
const MAX_HEADERS: usize = 64;
/// Longest header name or value.
const MAX_HEADER: usize = 8 * 1024;
/// Longest message kept from a plugin (errors, reasons, logs).
pub(crate) const MAX_MESSAGE: usize = 1024;

/// Cut a plugin's message to a readable single line.
pub(crate) fn one_line(message: &str) -> String {
    if message.len() <= MAX_MESSAGE && !message.chars().any(char::is_control) {
        return message.to_string();
    }
    let mut line: String = message.chars().take(MAX_MESSAGE).map(|c| if c.is_control() { ' ' } else { c }).collect();
    if message.len() > line.len() {
        line.push('…');
    }
    line
}

impl From<&domain::Derivative> for wit::Derivative {
    fn from(d: &domain::Derivative) -> Self {
        wit::Derivative { name: d.name.clone(), width: d.width, height: d.height, options: d.options.clone() }
    }
}

impl From<wit::Derivative> for domain::Derivative {
    fn from(d: wit::Derivative) -> Self {
        domain::Derivative { name: d.name, width: d.width, height: d.height, options: d.options }
    }
}

impl From<domain::ObjectRef<'_>> for wit::Object {
    fn from(o: domain::ObjectRef<'_>) -> Self {
        wit::Object { path: o.path.to_string(), size: o.size }
    }
}

/// The response as the plugin sees it: only the headers it asked for
/// (all when `wanted` is empty).
pub(crate) fn response_meta(r: &domain::ResponseMeta, wanted: &[String]) -> wit::ResponseMeta {
    let headers =
        r.headers.iter().filter(|(k, _)| wanted.is_empty() || wanted.iter().any(|w| w == k)).cloned().collect();
    wit::ResponseMeta {
        url: r.url.clone(),
        status: r.status,
        headers,
        body_bytes: r.body_bytes,
        body_complete: r.body_complete,
        attempt: r.attempt,
    }
}

impl From<wit::SizeMethod> for domain::SizeMethod {
    fn from(m: wit::SizeMethod) -> Self {
        match m {
            wit::SizeMethod::WarmContentLength => domain::SizeMethod::WarmContentLength,
            wit::SizeMethod::Head => domain::SizeMethod::Head,
            wit::SizeMethod::Range => domain::SizeMethod::Range,
            wit::SizeMethod::FullBody => domain::SizeMethod::FullBody,
        }
    }
}

impl From<wit::FailureKind> for domain::FailureKind {
    fn from(k: wit::FailureKind) -> Self {
        match k {
            wit::FailureKind::NotFound => domain::FailureKind::NotFound,
            wit::FailureKind::Forbidden => domain::FailureKind::Forbidden,
            wit::FailureKind::ClientError => domain::FailureKind::ClientError,
            wit::FailureKind::ServerError => domain::FailureKind::ServerError,
            wit::FailureKind::RateLimited => domain::FailureKind::RateLimited,
            wit::FailureKind::TooLarge => domain::FailureKind::TooLarge,
            wit::FailureKind::TransformError => domain::FailureKind::TransformError,
            wit::FailureKind::Other => domain::FailureKind::Other,
        }
    }
}

fn cache_state(c: wit::CacheState) -> domain::CacheState {
    match c {
        wit::CacheState::Hit => domain::CacheState::Hit,
        wit::CacheState::Miss => domain::CacheState::Miss,
        wit::CacheState::Bypass => domain::CacheState::Bypass,
        wit::CacheState::Unknown => domain::CacheState::Unknown,
    }
}

/// Most cache tiers kept per answer.
const MAX_TIERS: usize = 16;

fn warm_info(w: wit::WarmInfo) -> domain::WarmInfo {
    domain::WarmInfo {
        cache: cache_state(w.cache),
        cache_status: w.cache_status.map(|s| one_line(&s)),
        tiers: w.tiers.into_iter().take(MAX_TIERS).map(cache_state).collect(),
        size: w.size,
    }
}

/// Check and convert a request a plugin returned.
pub(crate) fn request(plugin: &str, r: wit::Request) -> Result<domain::WarmRequest, PluginError> {
    let bad = |message: String| PluginError::BadOutput { plugin: plugin.to_string(), message };
    if r.url.len() > MAX_URL {
        return Err(bad(format!("returned a URL of {} bytes (limit {MAX_URL})", r.url.len())));
    }
    // Schemes are case-insensitive (RFC 3986 §3.1); the policy writes them lowercase.
    let scheme_is = |s: &str| r.url.get(..s.len()).is_some_and(|p| p.eq_ignore_ascii_case(s));
    if !(scheme_is("http://") || scheme_is("https://")) {
        return Err(bad(format!("returned `{}`, which is not an absolute http(s) URL", one_line(&r.url))));
    }
    if r.headers.len() > MAX_HEADERS {
        return Err(bad(format!("returned {} headers (limit {MAX_HEADERS})", r.headers.len())));
    }
    if let Some((name, _)) = r.headers.iter().find(|(n, v)| n.len() > MAX_HEADER || v.len() > MAX_HEADER) {
        return Err(bad(format!("returned an oversized header `{}`", one_line(name))));
    }
    Ok(domain::WarmRequest {
        url: r.url,
        method: match r.method {
            wit::HttpMethod::Get => domain::Method::Get,
            wit::HttpMethod::Head => domain::Method::Head,
        },
        headers: r.headers,
        read_body: matches!(r.body, wit::BodyPolicy::ReadFull),
    })
}

/// Check and convert a verdict.
pub(crate) fn verdict(plugin: &str, v: wit::Verdict) -> Result<domain::Verdict, PluginError> {
    Ok(match v {
        wit::Verdict::Warm(w) => domain::Verdict::Warm(warm_info(w)),
        wit::Verdict::Passthrough(w) => domain::Verdict::Passthrough(warm_info(w)),
        wit::Verdict::Pending(p) => domain::Verdict::Pending { after_ms: p.after_ms, job: p.job.map(|j| one_line(&j)) },
        wit::Verdict::FollowUp(r) => domain::Verdict::FollowUp(request(plugin, r)?),
        wit::Verdict::Retryable(r) => domain::Verdict::Retryable { reason: one_line(&r.reason), after_ms: r.after_ms },
        wit::Verdict::Failed(f) => domain::Verdict::Failed { kind: f.kind.into(), message: one_line(&f.message) },
    })
}

/// Convert `info`, bounding what is kept.
pub(crate) fn info(i: wit::PluginInfo, wit_version: String) -> domain::PluginInfo {
    domain::PluginInfo {
        name: one_line(&i.name),
        version: one_line(&i.version),
        description: one_line(&i.description),
        wit_version,
        settings: i
            .settings
            .into_iter()
            .take(256)
            .map(|s| domain::SettingInfo {
                key: one_line(&s.key),
                description: one_line(&s.description),
                default_value: s.default_value.map(|v| one_line(&v)),
                secret: s.secret,
            })
            .collect(),
        default_derivatives: i.default_derivatives.into_iter().take(256).map(Into::into).collect(),
        max_source_bytes: i.limits.max_source_bytes,
    }
}
