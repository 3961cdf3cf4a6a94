//! `akamai-ivm`: Akamai Image & Video Manager, `?imwidth=W` or
//! `?impolicy=NAME`.
//!
//! Follows Akamai's "Best practices for pristine videos"
//! (<https://techdocs.akamai.com/ivm/docs/bp-videos>) and the IVM API's
//! enum values (<https://techdocs.akamai.com/ivm/reference/enum-values>):
//! video is optimized offline; the first request for a video URL serves the
//! pristine file and queues the job, and later requests serve the pristine
//! file too until the derivative is done. So a body as large as the source
//! means "not yet": poll with a growing wait. IVM optimizes only sources
//! under 256 MB, under 5 minutes and within 3,686,400 pixels (1920×1920);
//! over the size limit the pristine file is all there will ever be
//! (passthrough). Duration and pixels are not in the listing, so such a
//! source polls until `--max-polls` and ends `pending`. The cache state is
//! read from `X-Cache` / `X-Cache-Remote`, which Akamai sends when asked
//! with its debug Pragma.

use prewarm_plugin_sdk::*;

/// Pristine videos must be *less than* 256 MB.
const SOURCE_LIMIT: u64 = 256_000_000;

struct AkamaiIvm {
    base: String,
    by_policy: bool,
    first_poll_ms: u32,
    max_poll_ms: u32,
    debug_pragma: bool,
    cache_headers: Vec<&'static str>,
}

impl Strategy for AkamaiIvm {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "akamai-ivm".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Akamai Image & Video Manager (?imwidth=W or ?impolicy=NAME); follows techdocs.akamai.com/ivm/docs/bp-videos (offline, pristine first; under 256 MB, 5 min, 1920x1920 pixels)".into(),
            settings: vec![
                setting(
                    "url-format",
                    "imwidth (width of the derivative) or impolicy (derivative name as policy)",
                    Some("imwidth"),
                ),
                setting(
                    "poll-ms",
                    "First wait before asking again while IVM optimizes offline, ms; doubles each poll up to max-poll-ms",
                    Some("5000"),
                ),
                setting("max-poll-ms", "Longest wait between polls, ms (at most 300000)", Some("60000")),
                setting(
                    "debug-pragma",
                    "Send Akamai's debug Pragma so X-Cache and X-Cache-Remote tell hits from misses (true/false)",
                    Some("true"),
                ),
            ],
            default_derivatives: standard_derivatives(),
            // The largest source IVM optimizes: it must be under the limit.
            limits: Limits { max_source_bytes: Some(SOURCE_LIMIT - 1) },
        }
    }

    fn configure(base_url: &str, s: &Settings) -> Result<Self, String> {
        let by_policy = s.choice("url-format", &["imwidth", "impolicy"])? == Some("impolicy");
        let (first_poll_ms, max_poll_ms) =
            (millis_setting(s, "poll-ms", 300_000)?, millis_setting(s, "max-poll-ms", 300_000)?);
        if first_poll_ms > max_poll_ms {
            return Err(format!("setting `poll-ms`: {first_poll_ms} is above max-poll-ms ({max_poll_ms})"));
        }
        let debug_pragma = s.choice("debug-pragma", &["true", "false"])? != Some("false");
        Ok(Self {
            base: base_url.to_string(),
            by_policy,
            first_poll_ms,
            max_poll_ms,
            debug_pragma,
            cache_headers: cache_headers_own_first(&["x-cache", "x-cache-remote"]),
        })
    }

    fn response_headers(&self) -> Vec<String> {
        let mut h = standard_headers();
        h.extend(self.cache_headers.iter().map(|s| s.to_string()));
        h.sort();
        h.dedup();
        h
    }

    fn warm_request(&self, object: &Object, d: &Derivative) -> Result<Request, String> {
        let url = format!("{}/{}", self.base, encode_path(&object.path));
        let url = if self.by_policy {
            with_query(&url, "impolicy", &d.name)
        } else {
            let w = d.width.ok_or_else(|| format!("derivative `{}` has no width for imwidth", d.name))?;
            with_query(&url, "imwidth", &w.to_string())
        };
        let mut request = get(url);
        if self.debug_pragma {
            request.headers.push(("Pragma".into(), "akamai-x-cache-on, akamai-x-cache-remote-on".into()));
        }
        Ok(request)
    }

    fn classify(&self, object: &Object, _d: &Derivative, r: &ResponseMeta) -> Verdict {
        match standard_verdict_with(object, r, &self.cache_headers) {
            Verdict::Warm(info) if is_source_size(object, r) => {
                if object.size >= SOURCE_LIMIT {
                    Verdict::Passthrough(info)
                } else {
                    pending(poll_wait_ms(r.attempt, self.first_poll_ms, self.max_poll_ms, r.retry_after_ms()))
                }
            }
            other => other,
        }
    }
}

register_strategy!(AkamaiIvm);
