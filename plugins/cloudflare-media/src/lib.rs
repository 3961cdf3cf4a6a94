//! `cloudflare-media`: Cloudflare Media Transformations,
//! `https://ZONE/cdn-cgi/media/<options>/<source>`.
//!
//! Follows <https://developers.cloudflare.com/stream/transform-videos/>
//! (URL form, options, the input limit), its troubleshooting page (the
//! `Cf-Resized: err=` codes, see [`resized`]) and its sources page (allowed
//! origins). `/cdn-cgi/media/` lives at the zone's root; the source is a full
//! URL by default (`https://ZONE/<base path>/<prefix>/<path>`), valid under
//! both the "absolute path or full URL" and the "full URL" wording of the
//! docs. A body as large as the source is the untransformed original
//! (passthrough).

mod options;
mod resized;

use options::Options;
use prewarm_plugin_sdk::*;

/// Inputs must be *less than* 100 MB ("Input video must be less than
/// 100MB"), so a source of exactly this size is too large.
const SOURCE_LIMIT: u64 = 100_000_000;

struct CloudflareMedia {
    /// `scheme://host[:port]` of the base URL: where `/cdn-cgi/media/` is.
    zone: String,
    /// What goes before each encoded object path in the source, ending in
    /// `/` unless empty: a full URL, or a path on the zone without its
    /// leading slash.
    source_base: String,
    /// `fit` and the `options` setting, checked, one value per key.
    options: Options,
    /// The origin's host when `origin` is set, for failure hints.
    origin_host: Option<String>,
    cache_headers: Vec<&'static str>,
}

impl CloudflareMedia {
    /// `width=W,height=H,<options>` written straight into `out`; a
    /// derivative's own options win over the settings, key by key.
    fn push_options(&self, out: &mut String, d: &Derivative) -> Result<(), String> {
        use std::fmt::{Display, Write};
        let start = out.len();
        let put = |out: &mut String, key: &str, value: &dyn Display| {
            if out.len() > start {
                out.push(',');
            }
            let _ = write!(out, "{key}={value}");
        };
        for (key, value) in [("width", d.width), ("height", d.height)] {
            if let Some(v) = value {
                if !(10..=2000).contains(&v) {
                    return Err(format!("derivative `{}`: {key} {v} is outside Cloudflare's 10-2000", d.name));
                }
                put(out, key, &v);
            }
        }
        let own = |key: &str| d.options.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        for (key, value) in self.options.iter() {
            put(out, key, &own(key).unwrap_or(value));
        }
        for (key, value) in d.options.iter().filter(|(k, _)| self.options.get(k).is_none()) {
            put(out, key, value);
        }
        Ok(())
    }

    /// A failure with the allowed-origins hint when the source is on
    /// another host, which Cloudflare refuses unless allowed.
    fn with_origin_hint(&self, verdict: Verdict) -> Verdict {
        match (verdict, &self.origin_host) {
            (Verdict::Failed(mut f), Some(host))
                if matches!(f.kind, FailureKind::Forbidden | FailureKind::ClientError | FailureKind::NotFound) =>
            {
                f.message.push_str(&format!(
                    " (with `origin` set, {host} must be an allowed source in the zone's Stream > Transformations > Sources)"
                ));
                Verdict::Failed(f)
            }
            (v, _) => v,
        }
    }
}

/// `scheme://authority` and the path (no trailing slash) of a base URL.
fn split_base(base_url: &str) -> Result<(&str, &str), String> {
    if base_url.contains(['?', '#']) {
        return Err("the base URL has a query or fragment; give scheme://host[/path]".into());
    }
    let after_scheme = base_url.find("://").map(|i| i + 3).unwrap_or(0);
    let root = base_url[after_scheme..].find('/').map(|i| after_scheme + i).unwrap_or(base_url.len());
    Ok((&base_url[..root], base_url[root..].trim_end_matches('/')))
}

impl Strategy for CloudflareMedia {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "cloudflare-media".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Cloudflare Media Transformations (/cdn-cgi/media/<options>/<source>); follows developers.cloudflare.com/stream/transform-videos/ and its troubleshooting and sources pages".into(),
            settings: vec![
                setting("source-prefix", "Path prepended to each object path on the zone, e.g. `videos`", Some("")),
                setting(
                    "source-form",
                    "How the source is written: `url` (https://ZONE/<base path>/<path>, valid in every version of the docs) or `path` (/<base path>/<path>); use what your pages request, since Cloudflare caches by URL",
                    Some("url"),
                ),
                setting(
                    "origin",
                    "Absolute origin URL (no query); the source becomes <origin>/<path>. It must be an allowed source in the zone's Stream > Transformations > Sources, or Cloudflare refuses it",
                    None,
                ),
                setting("fit", "Resize mode: contain, scale-down or cover (a `fit` in `options` wins)", Some("contain")),
                setting(
                    "options",
                    "More options for every derivative, each key once, checked against the docs: mode, time (0-10m), duration (1s-60s), fit, audio, format, filename; e.g. `audio=false,duration=10s`",
                    None,
                ),
            ],
            default_derivatives: standard_derivatives(),
            // The largest source Cloudflare takes: inputs must be under the limit.
            limits: Limits { max_source_bytes: Some(SOURCE_LIMIT - 1) },
        }
    }

    fn configure(base_url: &str, s: &Settings) -> Result<Self, String> {
        let (zone, base_path) = split_base(base_url)?;
        let mut options = Options::default();
        options.set("fit", s.choice("fit", &["contain", "scale-down", "cover"])?.unwrap_or("contain"));
        for (key, value) in Options::parse_setting(s.get("options").unwrap_or(""))?.iter() {
            options.set(key, value);
        }
        options.check_combination().map_err(|e| format!("setting `options`: {e}"))?;

        let mut source_base = String::new();
        let mut origin_host = None;
        match s.get("origin").filter(|o| !o.is_empty()) {
            // Not echoed: a query may hold a signature.
            Some(o) if o.contains(['?', '#']) => {
                return Err("setting `origin`: the URL has a query or fragment; Cloudflare takes a plain URL".into());
            }
            Some(o) if o.starts_with("http://") || o.starts_with("https://") => {
                if !base_path.is_empty() {
                    return Err(format!(
                        "setting `origin`: the base URL has a path ({base_path}) that the source would not use; give the base URL without it, or add it to `origin`"
                    ));
                }
                let origin = o.trim_end_matches('/');
                origin_host = Some(split_base(origin)?.0.split("://").nth(1).unwrap_or(origin).to_string());
                source_base.push_str(origin);
                source_base.push('/');
            }
            Some(o) => return Err(format!("setting `origin`: `{o}` is not an absolute http(s) URL")),
            None => match s.choice("source-form", &["url", "path"])? {
                Some("path") => source_base.push_str(base_path.trim_start_matches('/')),
                _ => {
                    source_base.push_str(zone);
                    source_base.push_str(base_path);
                }
            },
        }
        if !source_base.is_empty() && !source_base.ends_with('/') {
            source_base.push('/');
        }
        let prefix = s.get("source-prefix").unwrap_or("").trim_matches('/');
        if !prefix.is_empty() {
            push_encoded_path(&mut source_base, prefix);
            source_base.push('/');
        }
        Ok(Self {
            zone: zone.to_string(),
            source_base,
            options,
            origin_host,
            cache_headers: cache_headers_own_first(&["cf-cache-status"]),
        })
    }

    fn response_headers(&self) -> Vec<String> {
        let mut h = standard_headers();
        h.extend(self.cache_headers.iter().map(|s| s.to_string()));
        h.push("cf-resized".into());
        h.sort();
        h.dedup();
        h
    }

    fn warm_request(&self, object: &Object, d: &Derivative) -> Result<Request, String> {
        let mut url = String::with_capacity(self.zone.len() + self.source_base.len() + object.path.len() + 64);
        url.push_str(&self.zone);
        url.push_str("/cdn-cgi/media/");
        self.push_options(&mut url, d)?;
        url.push('/');
        url.push_str(&self.source_base);
        push_encoded_path(&mut url, &object.path);
        Ok(get(url))
    }

    fn classify(&self, object: &Object, _d: &Derivative, r: &ResponseMeta) -> Verdict {
        if let Some(code) = r.header("cf-resized").and_then(resized::err_code) {
            return self.with_origin_hint(resized::verdict(code, object, SOURCE_LIMIT));
        }
        match standard_verdict_with(object, r, &self.cache_headers) {
            Verdict::Warm(info) if is_source_size(object, r) => Verdict::Passthrough(info),
            other => self.with_origin_hint(other),
        }
    }
}

register_strategy!(CloudflareMedia);
