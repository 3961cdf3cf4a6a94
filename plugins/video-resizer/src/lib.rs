//! `video-resizer`: the video-resizer Cloudflare Worker,
//! `<base>/<path>?derivative=NAME` or `?imwidth=W`.
//!
//! Follows the Worker as built: erfianugrah/video-resizer-2 (`docs/api.md`,
//! `docs/caching.md`, `src/handlers/transform.ts`, `src/params/derivatives.ts`,
//! `config/worker-config.json`) and v1, erfianugrah/video-resizer. What its
//! answers mean:
//! - 202 + `X-Transform-Pending: true` (+ `X-Job-Id`, `Retry-After: 10`): a
//!   container is transcoding a large source, which takes up to 10-20
//!   minutes: poll with a wait that grows from 10 s to a minute.
//! - `X-Derivative` (v1: `X-Video-Derivative`) names the derivative served:
//!   an unknown name falls back to another one and `imwidth` is mapped by
//!   breakpoints, so a different name means ours was never made.
//! - `X-R2-Stored: true`: the derivative is in the Worker's durable, global
//!   store; that is what warm means. `cf-cache-status` describes one data
//!   centre (and says HIT on the very request that transformed): kept as
//!   information.
//! - Passthrough: `X-Transform-Source: passthrough`, v1's
//!   `X-Fallback-Applied` / `X-Video-Too-Large`, or a body as large as the
//!   source. A stored passthrough is served again until the Worker's cache
//!   for that path is busted.
//! - 502 with the Worker's JSON error (`ALL_SOURCES_FAILED`): no origin has
//!   the source. Cloudflare's own 502 pages are HTML.

use prewarm_plugin_sdk::*;

enum UrlFormat {
    Derivative,
    Imwidth,
}

struct VideoResizer {
    base: String,
    format: UrlFormat,
    first_poll_ms: u32,
    max_poll_ms: u32,
    cache_headers: Vec<&'static str>,
}

/// The Worker's default derivatives (`config/worker-config.json`): the
/// three breakpoints and a 640×360 PNG frame at 2 s.
fn worker_derivatives() -> Vec<Derivative> {
    let mut all = standard_derivatives();
    let mut thumbnail = derivative("thumbnail", 640, 360);
    thumbnail.options = [("mode", "frame"), ("time", "2s"), ("format", "png"), ("fit", "cover")]
        .map(|(k, v)| (k.into(), v.into()))
        .into();
    all.push(thumbnail);
    all
}

fn header_is(r: &ResponseMeta, name: &str, value: &str) -> bool {
    r.header(name).is_some_and(|v| v.trim().eq_ignore_ascii_case(value))
}

fn fail(kind: FailureKind, message: String) -> Verdict {
    Verdict::Failed(Failure { kind, message })
}

impl VideoResizer {
    /// A 2xx answer: which derivative was served, whether it is the
    /// original, and whether the Worker stored it.
    fn read_success(&self, object: &Object, d: &Derivative, r: &ResponseMeta, mut info: WarmInfo) -> Verdict {
        if let Some(served) = r.header("x-derivative").or_else(|| r.header("x-video-derivative"))
            && served.trim() != d.name
        {
            let size = match (r.header("x-resolved-width"), r.header("x-resolved-height")) {
                (Some(w), Some(h)) => format!(" ({w}x{h})"),
                _ => String::new(),
            };
            return fail(
                FailureKind::ClientError,
                format!(
                    "asked for derivative `{}`, the Worker served `{}`{size}: it falls back for names it does not know and maps imwidth by breakpoints (854/1280)",
                    d.name,
                    served.trim()
                ),
            );
        }
        let source = r.header("x-transform-source");
        if let Some(source) = source {
            info.cache_status = Some(match info.cache_status {
                Some(status) => format!("{status} ({source})"),
                None => format!("({source})"),
            });
        }
        let passthrough = source.is_some_and(|s| s.eq_ignore_ascii_case("passthrough"))
            || header_is(r, "x-fallback-applied", "true")
            || header_is(r, "x-video-too-large", "true")
            || is_source_size(object, r);
        if passthrough {
            return Verdict::Passthrough(info);
        }
        if header_is(r, "x-r2-stored", "false") {
            return fail(
                FailureKind::Other,
                "the Worker served the derivative without storing it (X-R2-Stored: false)".into(),
            );
        }
        Verdict::Warm(info)
    }
}

impl Strategy for VideoResizer {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "video-resizer".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "The video-resizer Worker (?derivative=NAME or ?imwidth=W); follows erfianugrah/video-resizer-2 (docs/api.md, docs/caching.md) and v1 erfianugrah/video-resizer".into(),
            settings: vec![
                setting(
                    "url-format",
                    "How derivatives are named in the URL: derivative or imwidth (derivatives with options, like thumbnail, always use derivative=)",
                    Some("derivative"),
                ),
                setting(
                    "poll-ms",
                    "First wait before polling a pending (202) transform, ms; doubles each poll up to max-poll-ms, never under the Worker's Retry-After",
                    Some("10000"),
                ),
                setting("max-poll-ms", "Longest wait between polls, ms (at most 300000)", Some("60000")),
            ],
            default_derivatives: worker_derivatives(),
            limits: Limits { max_source_bytes: None },
        }
    }

    fn configure(base_url: &str, s: &Settings) -> Result<Self, String> {
        let format = match s.choice("url-format", &["derivative", "imwidth"])? {
            Some("imwidth") => UrlFormat::Imwidth,
            _ => UrlFormat::Derivative,
        };
        let (first_poll_ms, max_poll_ms) =
            (millis_setting(s, "poll-ms", 300_000)?, millis_setting(s, "max-poll-ms", 300_000)?);
        if first_poll_ms > max_poll_ms {
            return Err(format!("setting `poll-ms`: {first_poll_ms} is above max-poll-ms ({max_poll_ms})"));
        }
        Ok(Self {
            base: base_url.to_string(),
            format,
            first_poll_ms,
            max_poll_ms,
            cache_headers: cache_headers_own_first(&["x-cache-status", "cf-cache-status"]),
        })
    }

    fn response_headers(&self) -> Vec<String> {
        let mut h = standard_headers();
        h.extend(self.cache_headers.iter().map(|s| s.to_string()));
        h.extend(
            [
                "content-type",
                "x-transform-pending",
                "x-job-id",
                "x-transform-source",
                "x-derivative",
                "x-video-derivative",
                "x-resolved-width",
                "x-resolved-height",
                "x-r2-stored",
                "x-fallback-applied",
                "x-video-too-large",
            ]
            .map(String::from),
        );
        h.sort();
        h.dedup();
        h
    }

    fn warm_request(&self, object: &Object, d: &Derivative) -> Result<Request, String> {
        let url = format!("{}/{}", self.base, encode_path(&object.path));
        // imwidth only selects among the breakpoints; a derivative with its
        // own options (a frame, say) is reachable by name alone.
        Ok(get(match self.format {
            UrlFormat::Imwidth if d.options.is_empty() => {
                let w = d.width.ok_or_else(|| format!("derivative `{}` has no width for imwidth", d.name))?;
                with_query(&url, "imwidth", &w.to_string())
            }
            _ => with_query(&url, "derivative", &d.name),
        }))
    }

    fn classify(&self, object: &Object, d: &Derivative, r: &ResponseMeta) -> Verdict {
        if r.status == 202 || header_is(r, "x-transform-pending", "true") {
            if r.attempt == 1 {
                let job = r.header("x-job-id").unwrap_or("without a job id");
                log(Level::Info, &format!("{} ({}): transform pending, Worker job {job}", object.path, d.name));
            }
            let wait = poll_wait_ms(r.attempt, self.first_poll_ms, self.max_poll_ms, r.retry_after_ms());
            return pending_job(wait, r.header("x-job-id"));
        }
        if r.status == 502 && r.header("content-type").is_some_and(|t| t.trim_start().starts_with("application/json")) {
            return fail(
                FailureKind::NotFound,
                "HTTP 502 from the Worker (ALL_SOURCES_FAILED): no origin has the source".into(),
            );
        }
        match standard_verdict_with(object, r, &self.cache_headers) {
            Verdict::Warm(info) => self.read_success(object, d, r, info),
            other => other,
        }
    }
}

register_strategy!(VideoResizer);
