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
    fn options(&self, d: &Derivative) -> Result<String, String> {
        let mut opts = Vec::new();
        let has = |key: &str| d.options.iter().any(|(k, _)| k == key);
        let dims = [("width", d.width), ("height", d.height)];
        for (key, value) in dims {
            if let Some(v) = value {
                if !(10..=2000).contains(&v) {
                    return Err(format!(
                        "derivative `{}`: {key} {v} is outside Cloudflare's 10-2000",
                        d.name
                    ));
                }
                opts.push(format!("{key}={v}"));
            }
        }
        if !has("fit") {
            opts.push(format!("fit={}", self.fit));
        }
        for (k, v) in &d.options {
            opts.push(format!("{k}={v}"));
        }
        for e in &self.extra {
            let key = e.split('=').next().unwrap_or("");
            if !has(key) {
                opts.push(e.clone());
            }
        }
        Ok(opts.join(","))
    }
}

impl Strategy for CloudflareMedia {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "cloudflare-media".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Cloudflare Media Transformations (/cdn-cgi/media/<options>/<source>)"
                .into(),
            settings: vec![
                setting(
                    "source-prefix",
                    "Path prepended to each object path on the zone, e.g. `videos`",
                    Some(""),
                ),
                setting(
                    "origin",
                    "Absolute origin URL; when set the source is <origin>/<path> instead of a path on the zone",
                    None,
                ),
                setting(
                    "fit",
                    "Resize mode: contain, scale-down or cover",
                    Some("contain"),
                ),
                setting(
                    "options",
                    "Extra transformation options for every derivative, e.g. `audio=false,duration=10s`",
                    None,
                ),
            ],
            default_derivatives: standard_derivatives(),
            limits: Limits {
                max_source_bytes: Some(MAX_SOURCE_BYTES),
            },
        }
    }

    fn configure(base_url: &str, s: &Settings) -> Result<Self, String> {
        let fit = s
            .choice("fit", &["contain", "scale-down", "cover"])?
            .unwrap_or("contain")
            .to_string();
        let origin = match s.get("origin").filter(|o| !o.is_empty()) {
            Some(o) if o.starts_with("http://") || o.starts_with("https://") => {
                Some(o.trim_end_matches('/').into())
            }
            Some(o) => {
                return Err(format!(
                    "setting `origin`: `{o}` is not an absolute http(s) URL"
                ));
            }
            None => None,
        };
        let mut extra = Vec::new();
        for opt in s
            .get("options")
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
        {
            if !opt.contains('=') {
                return Err(format!("setting `options`: `{opt}` is not `key=value`"));
            }
            extra.push(opt.to_string());
        }
        Ok(Self {
            base: base_url.to_string(),
            source_prefix: s
                .get("source-prefix")
                .unwrap_or("")
                .trim_matches('/')
                .to_string(),
            origin,
            fit,
            extra,
        })
    }

    fn warm_request(&self, object: &Object, d: &Derivative) -> Result<Request, String> {
        let path = encode_path(&object.path);
        let source = match (&self.origin, self.source_prefix.is_empty()) {
            (Some(origin), _) => format!("{origin}/{path}"),
            (None, true) => path,
            (None, false) => format!("{}/{path}", encode_path(&self.source_prefix)),
        };
        Ok(get(format!(
            "{}/cdn-cgi/media/{}/{source}",
            self.base,
            self.options(d)?
        )))
    }

    fn classify(&self, object: &Object, _d: &Derivative, r: &ResponseMeta) -> Verdict {
        if let Some(err) = r.header("cf-resized").filter(|v| v.contains("err=")) {
            let kind = if object.size > MAX_SOURCE_BYTES {
                FailureKind::TooLarge
            } else {
                FailureKind::TransformError
            };
            return Verdict::Failed(Failure {
                kind,
                message: format!("Cloudflare could not transform: cf-resized {err}"),
            });
        }
        match standard_verdict(object, r) {
            Verdict::Warm(_) => {
                let info = cache_info(r, &["cf-cache-status"], r.content_length());
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
