//! The plugin contract in the host's own terms: what the rest of prewarm
//! sees of a strategy. The generated WIT bindings never leave
//! `plugin::bindings`; these types do.

use serde::{Deserialize, Serialize};

/// Who a plugin is and what it accepts.
#[derive(Debug, Clone, Serialize)]
pub struct PluginInfo {
    /// Short unique name, e.g. `cloudflare-media`.
    pub name: String,
    /// The plugin's own version.
    pub version: String,
    /// One line saying what it covers.
    pub description: String,
    /// The WIT package version the plugin was built against.
    pub wit_version: String,
    /// Settings accepted through `--set`.
    pub settings: Vec<SettingInfo>,
    /// Derivatives warmed when the user names none.
    pub default_derivatives: Vec<Derivative>,
    /// Largest source the CDN transforms, in bytes.
    pub max_source_bytes: Option<u64>,
}

/// One setting a plugin accepts.
#[derive(Debug, Clone, Serialize)]
pub struct SettingInfo {
    pub key: String,
    pub description: String,
    pub default_value: Option<String>,
    /// A credential: its value is never shown.
    pub secret: bool,
}

/// One transformed rendition of a source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Derivative {
    pub name: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Strategy-specific options (`fit=cover`, `mode=frame`...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<(String, String)>,
}

/// A source object as plugins see it.
#[derive(Debug, Clone, Copy)]
pub struct ObjectRef<'a> {
    /// Path relative to the listed root, not encoded.
    pub path: &'a str,
    /// Source size in bytes.
    pub size: u64,
}

/// HTTP method of a planned request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Head,
}

/// A request a plugin asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WarmRequest {
    pub url: String,
    pub method: Method,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
    /// Read the body to its end (true) or stop after the headers.
    pub read_body: bool,
}

/// Ways to learn a derivative's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SizeMethod {
    /// The Content-Length of the warm answer.
    WarmContentLength,
    /// A HEAD request's Content-Length.
    Head,
    /// `Range: bytes=0-0` and the Content-Range total.
    Range,
    /// Counting a full body.
    FullBody,
}

impl SizeMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            SizeMethod::WarmContentLength => "warm-content-length",
            SizeMethod::Head => "head",
            SizeMethod::Range => "range",
            SizeMethod::FullBody => "full-body",
        }
    }
}

/// What the host saw in a response.
#[derive(Debug, Clone)]
pub struct ResponseMeta {
    pub url: String,
    pub status: u16,
    /// Header names lowercase, in the order received.
    pub headers: Vec<(String, String)>,
    pub body_bytes: u64,
    pub body_complete: bool,
    pub attempt: u32,
}

/// Normalised cache state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheState {
    Hit,
    Miss,
    Bypass,
    Unknown,
}

impl CacheState {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheState::Hit => "hit",
            CacheState::Miss => "miss",
            CacheState::Bypass => "bypass",
            CacheState::Unknown => "unknown",
        }
    }
}

/// Details of a warm or passthrough answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarmInfo {
    pub cache: CacheState,
    /// The raw header value the state came from.
    pub cache_status: Option<String>,
    /// Every cache tier the answer listed, origin side first (empty for
    /// one cache or none).
    pub tiers: Vec<CacheState>,
    /// Derivative size in bytes, when the answer told it.
    pub size: Option<u64>,
}

/// Kinds of permanent failure a plugin reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    NotFound,
    Forbidden,
    ClientError,
    ServerError,
    RateLimited,
    TooLarge,
    TransformError,
    Other,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::NotFound => "not_found",
            FailureKind::Forbidden => "forbidden",
            FailureKind::ClientError => "client_error",
            FailureKind::ServerError => "server_error",
            FailureKind::RateLimited => "rate_limited",
            FailureKind::TooLarge => "too_large",
            FailureKind::TransformError => "transform_error",
            FailureKind::Other => "other",
        }
    }
}

/// A plugin's reading of one answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Warm(WarmInfo),
    /// Still transforming; `job` is the CDN's id for it, if named.
    Pending {
        after_ms: u32,
        job: Option<String>,
    },
    FollowUp(WarmRequest),
    Passthrough(WarmInfo),
    Retryable {
        reason: String,
        after_ms: Option<u32>,
    },
    Failed {
        kind: FailureKind,
        message: String,
    },
}
