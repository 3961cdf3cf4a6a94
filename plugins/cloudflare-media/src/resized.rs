//! `Cf-Resized: err=CODE`: what each Media Transformations error code
//! means and whether trying again can help, from Cloudflare's
//! troubleshooting page
//! <https://developers.cloudflare.com/stream/transform-videos/troubleshooting/>.
//! The HTTP status of such an answer is not documented; the code decides.

use prewarm_plugin_sdk::{Failure, FailureKind, Object, Retry, Verdict};

/// The code in a `Cf-Resized` value such as `err=9402`, if it reports one.
pub fn err_code(value: &str) -> Option<u32> {
    let digits = &value[value.find("err=")? + 4..];
    let end = digits.find(|c: char| !c.is_ascii_digit()).unwrap_or(digits.len());
    digits[..end].parse().ok()
}

/// The verdict for error `code` on `object`; `limit` is the size a source
/// must stay under.
pub fn verdict(code: u32, object: &Object, limit: u64) -> Verdict {
    use FailureKind::*;
    let retry =
        |what: &str| Verdict::Retryable(Retry { reason: format!("cf-resized err={code}: {what}"), after_ms: None });
    let fail = |kind, what: &str| Verdict::Failed(Failure { kind, message: format!("cf-resized err={code}: {what}") });
    match code {
        9504 => retry("the origin could not be reached (down or overloaded)"),
        9509 => retry("the origin answered with a 5xx status"),
        9517 | 9523 => retry("Cloudflare internal error"),
        9404 => fail(NotFound, "the video does not exist at the origin, or the source URL is wrong"),
        9408 => fail(Forbidden, "the origin answered 4xx and may be denying access to the video"),
        9401 => fail(ClientError, "options missing or invalid"),
        9406 | 9419 => fail(ClientError, "the source URL is not HTTPS, or has spaces or unescaped Unicode"),
        9407 => fail(ClientError, "the origin's domain name could not be looked up; check its DNS"),
        9412 => fail(ClientError, "the origin answered with something that is not a video (an HTML page?)"),
        9402 if object.size >= limit => fail(TooLarge, "the source is not under Cloudflare's 100 MB input limit"),
        9402 => fail(
            TransformError,
            "the origin did not answer as Media Transformations needs: it must answer HEAD and Range requests with Content-Range",
        ),
        _ => fail(TransformError, "Cloudflare could not transform the source"),
    }
}
