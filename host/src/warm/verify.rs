//! `--verify`: after a pair ends warm, ask the CDN once more for the same
//! URL without a body (HEAD, or a GET stopped after the headers for a host
//! that refuses HEAD) and read the cache state through the plugin's own
//! `classify`, so "warm" is checked by the CDN's answer, not assumed.

use super::http::{self, Body};
use super::sizing::host_key;
use super::worker::WorkerContext;
use crate::plugin::{CacheState, Derivative, Method, ObjectRef, PluginInstance, Verdict, WarmRequest};
use crate::record::Record;

/// What the verify answer said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub cache: CacheState,
    pub cache_status: Option<String>,
    pub error: Option<String>,
}

impl Verified {
    fn unknown(error: String) -> Self {
        Verified { cache: CacheState::Unknown, cache_status: None, error: Some(error) }
    }

    /// Put what was found into the pair's record.
    pub fn fill(self, record: &mut Record) {
        record.verify_cache = Some(self.cache);
        record.verify_cache_status = self.cache_status;
        record.verify_error = self.error.map(|e| crate::util::redact::redact_text(&e));
    }
}

/// Ask once more for `request`'s URL and classify the answer.
pub async fn ask_again(
    ctx: &WorkerContext,
    client: &http::Client,
    plugin: &std::cell::RefCell<PluginInstance>,
    object: ObjectRef<'_>,
    derivative: &Derivative,
    request: &WarmRequest,
) -> Verified {
    let host = host_key(&request.url);
    let mut method = if ctx.caps.get(&host).head == Some(false) { Method::Get } else { Method::Head };
    loop {
        ctx.pacer.ready().await;
        let ask = WarmRequest { method, read_body: false, ..request.clone() };
        let mut exchange = match client.send(&ask, &[], Body::None, 1, ctx.timeouts).await {
            Ok(ex) => ex,
            Err(e) => return Verified::unknown(format!("verify request failed: {}", e.message)),
        };
        if method == Method::Head && matches!(exchange.meta.status, 405 | 501) {
            ctx.caps.update(&host, |c| c.head = Some(false));
            method = Method::Get;
            continue;
        }
        let mut plugin = plugin.borrow_mut();
        exchange.meta.headers = exchange.headers_for(plugin.wanted_headers());
        // A HEAD answer has no body by definition (RFC 9110 §9.3.2); the
        // plugin must not read it as cut short.
        exchange.meta.body_complete = true;
        return match plugin.classify(object, derivative, &exchange.meta) {
            Ok(Verdict::Warm(info) | Verdict::Passthrough(info)) => {
                Verified { cache: info.cache, cache_status: info.cache_status, error: None }
            }
            Ok(other) => {
                Verified::unknown(format!("verify answer HTTP {}: {}", exchange.meta.status, describe(&other)))
            }
            Err(e) => Verified::unknown(e.to_string()),
        };
    }
}

fn describe(v: &Verdict) -> String {
    match v {
        Verdict::Pending { .. } => "still transforming".into(),
        Verdict::FollowUp(_) => "redirected".into(),
        Verdict::Retryable { reason, .. } => reason.clone(),
        Verdict::Failed { message, .. } => message.clone(),
        Verdict::Warm(_) | Verdict::Passthrough(_) => "warm".into(),
    }
}
