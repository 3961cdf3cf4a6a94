//! What the first-party strategies share beyond plain HTTP: the cache
//! headers read in a CDN's own order, the size a body really had (for
//! passthrough), and a poll wait that grows for long transforms.

use crate::{CACHE_HEADERS, Object, ResponseMeta, Settings};

/// Every cache header the SDK knows, with `own` (the CDN's own headers)
/// first and the rest in the SDK's order, each once.
pub fn cache_headers_own_first(own: &[&'static str]) -> Vec<&'static str> {
    let mut names = own.to_vec();
    names.extend(CACHE_HEADERS.iter().filter(|h| !own.contains(h)));
    names
}

/// The size of the representation an answer declares, by HTTP's rules
/// (the host applies the same ones to its own `warm-content-length`):
///
/// - 204 and 304 have no content, whatever their Content-Length says (RFC
///   9110 §15.3.5, §15.4.5): no size;
/// - a 206's Content-Length is the part's: the size is only its
///   `Content-Range` total (`bytes 0-99/1000` is 1000; `/*` tells none);
/// - a Content-Length beside Transfer-Encoding is overridden (RFC 9112
///   §6.3): not read;
/// - else the Content-Length (a HEAD's included: the size a GET would get).
pub fn declared_size(response: &ResponseMeta) -> Option<u64> {
    match response.status {
        204 | 304 => None,
        206 => content_range_total(response.header("content-range")?),
        _ if response.header("transfer-encoding").is_some() => None,
        _ => response.content_length(),
    }
}

/// The size of the body as served: [`declared_size`], else the bytes
/// counted when the whole body was read (a HEAD's missing body counts
/// nothing; neither does a 204's, 304's or 206's).
pub fn served_size(response: &ResponseMeta) -> Option<u64> {
    let counted = !matches!(response.status, 204 | 206 | 304) && response.body_complete && response.body_bytes > 0;
    declared_size(response).or(counted.then_some(response.body_bytes))
}

/// The complete length of a `Content-Range: bytes FIRST-LAST/TOTAL`
/// (RFC 9110 §14.4); `None` for `*` or a malformed value.
pub fn content_range_total(value: &str) -> Option<u64> {
    let (unit, rest) = value.trim().split_once(' ')?;
    let (_, total) = rest.rsplit_once('/')?;
    let total = total.trim();
    let digits = !total.is_empty() && total.bytes().all(|b| b.is_ascii_digit());
    (unit.eq_ignore_ascii_case("bytes") && digits).then(|| total.parse().ok()).flatten()
}

/// Whether the answer is exactly as large as the source: the tell of an
/// untransformed original (a transformed derivative of the same byte count
/// is vanishingly unlikely).
pub fn is_source_size(object: &Object, response: &ResponseMeta) -> bool {
    object.size > 0 && served_size(response) == Some(object.size)
}

/// The wait before poll number `attempt` (1-based, as in
/// [`ResponseMeta::attempt`]) of a long transform: `first_ms`, doubling up
/// to `cap_ms`, never less than the server's `Retry-After`.
pub fn poll_wait_ms(attempt: u32, first_ms: u32, cap_ms: u32, retry_after_ms: Option<u32>) -> u32 {
    let doubled = first_ms.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    doubled.min(cap_ms).max(retry_after_ms.unwrap_or(0))
}

/// A setting holding milliseconds, from 1 to `max`.
pub fn millis_setting(settings: &Settings, key: &str, max: u32) -> Result<u32, String> {
    let raw = settings.get(key).unwrap_or("");
    match raw.trim().parse::<u32>() {
        Ok(ms) if (1..=max).contains(&ms) => Ok(ms),
        _ => Err(format!("setting `{key}`: `{raw}` is not a number of milliseconds from 1 to {max}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, headers: &[(&str, &str)], body_bytes: u64) -> ResponseMeta {
        ResponseMeta {
            url: "https://cdn.example/a.mp4".into(),
            status,
            headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            body_bytes,
            body_complete: true,
            attempt: 1,
        }
    }

    #[test]
    fn sizes_follow_http() {
        let cl = [("content-length", "1000")];
        assert_eq!(served_size(&answer(200, &cl, 1000)), Some(1000));
        // No content in a 204 or 304, whatever Content-Length says.
        assert_eq!(served_size(&answer(204, &cl, 0)), None);
        assert_eq!(served_size(&answer(304, &cl, 0)), None);
        // A 206 tells the whole size only in its Content-Range.
        let part = [("content-length", "100"), ("content-range", "bytes 0-99/1000")];
        assert_eq!(served_size(&answer(206, &part, 100)), Some(1000));
        assert_eq!(served_size(&answer(206, &[("content-range", "bytes 0-99/*")], 100)), None);
        assert_eq!(served_size(&answer(206, &[("content-length", "100")], 100)), None);
        // Transfer-Encoding overrides Content-Length: the counted body.
        let both = [("transfer-encoding", "chunked"), ("content-length", "10")];
        assert_eq!(served_size(&answer(200, &both, 1000)), Some(1000));
        // A list of one repeated length; an invalid one is none.
        assert_eq!(served_size(&answer(200, &[("content-length", "1000, 1000")], 0)), Some(1000));
        assert_eq!(served_size(&answer(200, &[("content-length", "+1000")], 0)), None);
        // A HEAD's missing body counts nothing.
        assert_eq!(served_size(&answer(200, &[], 0)), None);
    }

    #[test]
    fn content_range_totals() {
        assert_eq!(content_range_total("bytes 0-0/12345"), Some(12345));
        assert_eq!(content_range_total("bytes */0"), Some(0));
        assert_eq!(content_range_total("bytes 0-0/*"), None);
        assert_eq!(content_range_total("bytes 0-0/+5"), None);
        assert_eq!(content_range_total("items 0-0/5"), None);
    }
}
