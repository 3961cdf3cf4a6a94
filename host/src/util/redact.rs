//! Keeping secrets out of logs, reports and errors: URL credentials and
//! credential-like query parameters are replaced before anything is shown,
//! and every value known to be a secret (a secret setting, a value read with
//! `env:`/`file:`, a credential header's value, a base URL's userinfo) is
//! registered once at start and scrubbed from whatever is shown, wherever it
//! turns up: results, reports, errors and every log line.

use std::io::Write;
use std::sync::{OnceLock, RwLock};

/// The secret values of this process. One process-wide list on purpose:
/// log lines are written far from where settings are parsed, and a secret
/// must not depend on every caller remembering to pass it along.
static SECRETS: OnceLock<RwLock<Vec<String>>> = OnceLock::new();

/// Shorter values are not scrubbed: they would blank out ordinary text.
const MIN_SECRET_LEN: usize = 4;

/// Remember `value` as a secret (and its percent-encoded form).
pub fn register_secret(value: &str) {
    let value = value.trim();
    if value.len() < MIN_SECRET_LEN {
        return;
    }
    // As a URL would carry it: everything but RFC 3986 unreserved encoded.
    const ENCODED: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
    let encoded = percent_encoding::utf8_percent_encode(value, ENCODED).to_string();
    let mut list = SECRETS.get_or_init(Default::default).write().unwrap_or_else(|p| p.into_inner());
    for v in [value.to_string(), encoded] {
        if !list.contains(&v) {
            super::argv::hide(&v);
            list.push(v);
        }
    }
    // Longest first, so a secret that contains another is cut whole.
    list.sort_by_key(|v| std::cmp::Reverse(v.len()));
}

/// `text` with every registered secret replaced by `REDACTED`.
pub fn scrub(text: String) -> String {
    let Some(list) = SECRETS.get() else { return text };
    let list = list.read().unwrap_or_else(|p| p.into_inner());
    let mut out = text;
    for secret in list.iter() {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), "REDACTED");
        }
    }
    out
}

/// Header names whose values are credentials (RFC 9110 §11.6.2, §11.7.2;
/// RFC 6265 `Cookie`), and names that say so.
pub fn is_credential_header(name: &str) -> bool {
    let n = name.trim().to_ascii_lowercase();
    matches!(n.as_str(), "authorization" | "proxy-authorization" | "cookie" | "set-cookie")
        || ["token", "key", "secret", "signature", "auth", "password", "session"].iter().any(|s| n.contains(s))
}

/// A setting value with the values of any `Name: value` credential headers
/// in it (`;` or line separated) registered and replaced by `REDACTED`.
pub fn redact_header_list(value: &str) -> String {
    let parts: Vec<String> = value
        .split(';')
        .map(|part| match part.split_once(':') {
            Some((name, v)) if is_credential_header(name) && !v.trim().is_empty() => {
                register_secret(v);
                format!("{name}: REDACTED")
            }
            _ => part.to_string(),
        })
        .collect();
    parts.join(";")
}

/// stderr for the log: every line scrubbed of registered secrets and URL
/// credentials before it is written.
#[derive(Clone, Copy, Default)]
pub struct ScrubbedStderr;

impl Write for ScrubbedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = redact_text(&String::from_utf8_lossy(buf));
        std::io::stderr().lock().write_all(text.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Query parameter names whose values are secrets.
const SECRET_PARAMS: &[&str] = &[
    "token",
    "access_token",
    "signature",
    "sig",
    "key",
    "apikey",
    "api_key",
    "password",
    "secret",
    "auth",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "policy",
    "hdnts",
    "hdntl",
    "verify",
];

/// A URL with its userinfo and secret query values replaced by `REDACTED`.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..].find(['/', '?', '#']).map(|i| rest_start + i).unwrap_or(out.len());
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            out.replace_range(rest_start..rest_start + at, "REDACTED");
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let (query, fragment) = match query.find('#') {
            Some(h) => (&query[..h], &query[h..]),
            None => (query, ""),
        };
        let redacted: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if SECRET_PARAMS.iter().any(|s| k.eq_ignore_ascii_case(s)) => {
                    format!("{k}=REDACTED")
                }
                _ => pair.to_string(),
            })
            .collect();
        out = format!("{head}{}{fragment}", redacted.join("&"));
    }
    scrub(out)
}

/// A setting or header value, hidden when its name says it is a secret.
pub fn redact_setting(name: &str, value: &str) -> String {
    let n = name.to_ascii_lowercase();
    let secret = ["token", "secret", "password", "pass", "key", "auth", "cookie", "signature", "credential"]
        .iter()
        .any(|s| n.contains(s));
    if secret {
        register_secret(value);
        "REDACTED".into()
    } else {
        redact_text(value)
    }
}

/// Redact every URL found in free text (error chains, log lines).
pub fn redact_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) =
        rest.find("http").filter(|&p| rest[p..].starts_with("http://") || rest[p..].starts_with("https://"))
    {
        out.push_str(&rest[..pos]);
        let end = rest[pos..]
            .find(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '`' || c == ')')
            .map(|e| pos + e)
            .unwrap_or(rest.len());
        out.push_str(&redact_url(&rest[pos..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    scrub(redact_query_params(&out))
}

/// Hide secret `?name=value` / `&name=value` pairs wherever they appear,
/// URL or not (templates, log lines).
fn redact_query_params(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut cuts: Vec<(usize, usize)> = Vec::new();
    for name in SECRET_PARAMS {
        for sep in ['?', '&'] {
            let needle = format!("{sep}{name}=");
            let mut from = 0;
            while let Some(pos) = lower[from..].find(&needle) {
                let start = from + pos + needle.len();
                let end = text[start..]
                    .find(|c: char| c == '&' || c == '#' || c.is_whitespace() || c == '"' || c == '\'' || c == ')')
                    .map_or(text.len(), |e| start + e);
                if &text[start..end] != "REDACTED" {
                    cuts.push((start, end));
                }
                from = end.max(start);
            }
        }
    }
    cuts.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end) in cuts {
        if start < at {
            continue;
        }
        out.push_str(&text[at..start]);
        out.push_str("REDACTED");
        at = end;
    }
    out.push_str(&text[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_userinfo_and_secret_params() {
        assert_eq!(
            redact_url("https://user:pw@cdn.example.com/a.mp4?w=1&token=abc#x"),
            "https://REDACTED@cdn.example.com/a.mp4?w=1&token=REDACTED#x"
        );
        assert_eq!(redact_url("http://cdn/a?imwidth=854"), "http://cdn/a?imwidth=854");
        assert_eq!(
            redact_text("failed: GET https://u:p@h/x?sig=1 (timeout)"),
            "failed: GET https://REDACTED@h/x?sig=REDACTED (timeout)"
        );
        assert_eq!(redact_text("{base}/{path}?token=abc&w={width}"), "{base}/{path}?token=REDACTED&w={width}");
    }

    #[test]
    fn registered_secrets_are_scrubbed_everywhere() {
        register_secret("s3cr3t-registered/value");
        assert_eq!(redact_text("error: s3cr3t-registered/value refused"), "error: REDACTED refused");
        assert_eq!(redact_url("https://cdn/x/s3cr3t-registered%2Fvalue/a.mp4"), "https://cdn/x/REDACTED/a.mp4");
        assert_eq!(
            redact_header_list("Accept: video/*; Authorization: Bearer hdr-tok-1; X-Api-Key: k-2-long"),
            "Accept: video/*; Authorization: REDACTED; X-Api-Key: REDACTED"
        );
        assert_eq!(redact_text("sent Bearer hdr-tok-1"), "sent REDACTED");
    }
}
