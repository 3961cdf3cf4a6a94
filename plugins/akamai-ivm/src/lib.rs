//! `akamai-ivm`: Akamai Image & Video Manager, `?imwidth=W` or
//! `?impolicy=NAME`.
//!
//! IVM answers the first request with the pristine file and transforms
//! offline, so a body as large as the source means "not yet": poll until the
//! derivative comes back, unless the source is over IVM's limit, where the
//! pristine file is all there will ever be (passthrough). The cache state is
//! read from `X-Cache`, which Akamai sends when asked with its debug Pragma.

use prewarm_plugin_sdk::*;

/// IVM does not transform sources above 256 MB.
const MAX_SOURCE_BYTES: u64 = 256_000_000;

struct AkamaiIvm {
    base: String,
    by_policy: bool,
    poll_ms: u32,
    debug_pragma: bool,
}

impl Strategy for AkamaiIvm {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "akamai-ivm".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Akamai Image & Video Manager (?imwidth=W or ?impolicy=NAME)".into(),
            settings: vec![
                setting(
                    "url-format",
                    "imwidth (width of the derivative) or impolicy (derivative name as policy)",
                    Some("imwidth"),
                ),
                setting("poll-ms", "Wait before asking again while IVM transforms offline", Some("5000")),
                setting(
                    "debug-pragma",
                    "Send Akamai's debug Pragma so X-Cache tells hits from misses (true/false)",
                    Some("true"),
                ),
            ],
            default_derivatives: standard_derivatives(),
            limits: Limits { max_source_bytes: Some(MAX_SOURCE_BYTES) },
        }
    }

    fn configure(base_url: &str, s: &Settings) -> Result<Self, String> {
        let by_policy = s.choice("url-format", &["imwidth", "impolicy"])? == Some("impolicy");
        let poll = s.get("poll-ms").unwrap_or("5000");
        let poll_ms =
            poll.parse().map_err(|_| format!("setting `poll-ms`: `{poll}` is not a number of milliseconds"))?;
        let debug_pragma = s.choice("debug-pragma", &["true", "false"])? != Some("false");
        Ok(Self { base: base_url.to_string(), by_policy, poll_ms, debug_pragma })
    }

    fn response_headers(&self) -> Vec<String> {
        standard_headers()
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
            request.headers.push(("Pragma".into(), "akamai-x-cache-on".into()));
        }
        Ok(request)
    }

    fn classify(&self, object: &Object, _d: &Derivative, r: &ResponseMeta) -> Verdict {
        match standard_verdict_with(object, r, &["x-cache", "cache-status"]) {
            Verdict::Warm(info) => {
                let pristine = object.size > 0 && r.content_length() == Some(object.size);
                match (pristine, object.size > MAX_SOURCE_BYTES) {
                    (true, true) => Verdict::Passthrough(info),
                    (true, false) => Verdict::Pending(self.poll_ms),
                    (false, _) => Verdict::Warm(info),
                }
            }
            other => other,
        }
    }
}

register_strategy!(AkamaiIvm);
