//! `video-resizer`: the video-resizer Cloudflare Worker,
//! `<base>/<path>?derivative=NAME` or `?imwidth=W`.
//!
//! A 202 with `X-Transform-Pending` means a container is still transforming
//! a large source: poll again. `X-Transform-Source: passthrough`, or a body
//! as large as the source, means the original was served untransformed.

use prewarm_plugin_sdk::*;

enum UrlFormat {
    Derivative,
    Imwidth,
}

struct VideoResizer {
    base: String,
    format: UrlFormat,
    poll_ms: u32,
}

impl Strategy for VideoResizer {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "video-resizer".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "The video-resizer Worker (?derivative=NAME or ?imwidth=W)".into(),
            settings: vec![
                setting(
                    "url-format",
                    "How derivatives are named in the URL: derivative or imwidth",
                    Some("derivative"),
                ),
                setting(
                    "poll-ms",
                    "Wait between polls of a pending transform, when the Worker gives none",
                    Some("2000"),
                ),
            ],
            default_derivatives: standard_derivatives(),
            limits: Limits { max_source_bytes: None },
        }
    }

    fn configure(base_url: &str, s: &Settings) -> Result<Self, String> {
        let format = match s.choice("url-format", &["derivative", "imwidth"])? {
            Some("imwidth") => UrlFormat::Imwidth,
            _ => UrlFormat::Derivative,
        };
        let poll = s.get("poll-ms").unwrap_or("2000");
        let poll_ms =
            poll.parse().map_err(|_| format!("setting `poll-ms`: `{poll}` is not a number of milliseconds"))?;
        Ok(Self { base: base_url.to_string(), format, poll_ms })
    }

    fn response_headers(&self) -> Vec<String> {
        let mut h = standard_headers();
        h.extend(["x-transform-pending".into(), "x-transform-source".into()]);
        h
    }

    fn warm_request(&self, object: &Object, d: &Derivative) -> Result<Request, String> {
        let url = format!("{}/{}", self.base, encode_path(&object.path));
        Ok(get(match self.format {
            UrlFormat::Derivative => with_query(&url, "derivative", &d.name),
            UrlFormat::Imwidth => {
                let w = d.width.ok_or_else(|| format!("derivative `{}` has no width for imwidth", d.name))?;
                with_query(&url, "imwidth", &w.to_string())
            }
        }))
    }

    fn classify(&self, object: &Object, _d: &Derivative, r: &ResponseMeta) -> Verdict {
        if r.status == 202 || r.header("x-transform-pending").is_some_and(|v| v != "false" && v != "0") {
            return Verdict::Pending(r.retry_after_ms().unwrap_or(self.poll_ms));
        }
        match standard_verdict_with(object, r, &["cf-cache-status", "x-cache"]) {
            Verdict::Warm(info) => {
                let mut info = info;
                if let Some(source) = r.header("x-transform-source") {
                    info.cache_status = Some(format!("{} ({source})", info.cache_status.unwrap_or_default()));
                }
                let passthrough = r.header("x-transform-source").is_some_and(|s| s.eq_ignore_ascii_case("passthrough"))
                    || (object.size > 0 && r.content_length() == Some(object.size));
                if passthrough { Verdict::Passthrough(info) } else { Verdict::Warm(info) }
            }
            other => other,
        }
    }
}

register_strategy!(VideoResizer);
