//! `cloudflare-media`: Cloudflare Media Transformations,
//! `https://ZONE/cdn-cgi/media/<options>/<source>`.
//!
//! The source is the object's path on the zone (with an optional prefix) or
//! an absolute origin URL. Answers are read from `cf-cache-status` and
//! `cf-resized: err=...`; a body as large as the source is the untransformed
//! original (passthrough).

use prewarm_plugin_sdk::*;

/// Cloudflare's documented input limit for Media Transformations.
const MAX_SOURCE_BYTES: u64 = 100_000_000;

struct CloudflareMedia {
    base: String,
    source_prefix: String,
    origin: Option<String>,
    fit: String,
    extra: Vec<String>,
}

impl CloudflareMedia {
    /// `width=W,height=H,fit=F,...` written straight into `out`.
    fn push_options(&self, out: &mut String, d: &Derivative) -> Result<(), String> {
        use std::fmt::Write;
        let has = |key: &str| d.options.iter().any(|(k, _)| k == key);
        let start = out.len();
        let sep = |out: &mut String| {
            if out.len() > start {
                out.push(',');
            }
        };
        for (key, value) in [("width", d.width), ("height", d.height)] {
            if let Some(v) = value {
                if !(10..=2000).contains(&v) {
                    return Err(format!("derivative `{}`: {key} {v} is outside Cloudflare's 10-2000", d.name));
                }
                sep(out);
                let _ = write!(out, "{key}={v}");
            }
        }
        if !has("fit") {
            sep(out);
            out.push_str("fit=");
            out.push_str(&self.fit);
        }
        for (k, v) in &d.options {
            sep(out);
            let _ = write!(out, "{k}={v}");
        }
        for e in &self.extra {
            if !has(e.split('=').next().unwrap_or("")) {
                sep(out);
                out.push_str(e);
            }
        }
        Ok(())
    }
}

impl Strategy for CloudflareMedia {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "cloudflare-media".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Cloudflare Media Transformations (/cdn-cgi/media/<options>/<source>)".into(),
            settings: vec![
                setting("source-prefix", "Path prepended to each object path on the zone, e.g. `videos`", Some("")),
                setting(
                    "origin",
                    "Absolute origin URL; when set the source is <origin>/<path> instead of a path on the zone",
                    None,
                ),
                setting("fit", "Resize mode: contain, scale-down or cover", Some("contain")),
                setting(
                    "options",
                    "Extra transformation options for every derivative, e.g. `audio=false,duration=10s`",
                    None,
                ),
            ],
            default_derivatives: standard_derivatives(),
            limits: Limits { max_source_bytes: Some(MAX_SOURCE_BYTES) },
        }
    }

    fn configure(base_url: &str, s: &Settings) -> Result<Self, String> {
        let fit = s.choice("fit", &["contain", "scale-down", "cover"])?.unwrap_or("contain").to_string();
        let origin = match s.get("origin").filter(|o| !o.is_empty()) {
            Some(o) if o.starts_with("http://") || o.starts_with("https://") => Some(o.trim_end_matches('/').into()),
            Some(o) => {
                return Err(format!("setting `origin`: `{o}` is not an absolute http(s) URL"));
            }
            None => None,
        };
        let mut extra = Vec::new();
        for opt in s.get("options").unwrap_or("").split(',').map(str::trim).filter(|o| !o.is_empty()) {
            if !opt.contains('=') {
                return Err(format!("setting `options`: `{opt}` is not `key=value`"));
            }
            extra.push(opt.to_string());
        }
        Ok(Self {
            base: base_url.to_string(),
            source_prefix: s.get("source-prefix").unwrap_or("").trim_matches('/').to_string(),
            origin,
            fit,
            extra,
        })
    }

    fn response_headers(&self) -> Vec<String> {
        let mut h = standard_headers();
        h.push("cf-resized".into());
        h
    }

    fn warm_request(&self, object: &Object, d: &Derivative) -> Result<Request, String> {
        let mut url = String::with_capacity(self.base.len() + object.path.len() + 64);
        url.push_str(&self.base);
        url.push_str("/cdn-cgi/media/");
        self.push_options(&mut url, d)?;
        url.push('/');
        match &self.origin {
            Some(origin) => {
                url.push_str(origin);
                url.push('/');
            }
            None if !self.source_prefix.is_empty() => {
                push_encoded_path(&mut url, &self.source_prefix);
                url.push('/');
            }
            None => {}
        }
        push_encoded_path(&mut url, &object.path);
        Ok(get(url))
    }

    fn classify(&self, object: &Object, _d: &Derivative, r: &ResponseMeta) -> Verdict {
        if let Some(err) = r.header("cf-resized").filter(|v| v.contains("err=")) {
            let kind = if object.size > MAX_SOURCE_BYTES { FailureKind::TooLarge } else { FailureKind::TransformError };
            return Verdict::Failed(Failure {
                kind,
                message: format!("Cloudflare could not transform: cf-resized {err}"),
            });
        }
        match standard_verdict_with(object, r, &["cf-cache-status"]) {
            Verdict::Warm(info) => {
                if object.size > 0 && r.content_length() == Some(object.size) {
                    Verdict::Passthrough(info)
                } else {
                    Verdict::Warm(info)
                }
            }
            other => other,
        }
    }
}

register_strategy!(CloudflareMedia);
