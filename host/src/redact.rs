//! Keeping secrets out of logs, reports and errors: URL credentials and
//! credential-like query parameters are replaced before anything is shown.

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
    out
}

/// A setting or header value, hidden when its name says it is a secret.
pub fn redact_setting(name: &str, value: &str) -> String {
    let n = name.to_ascii_lowercase();
    let secret = ["token", "secret", "password", "pass", "key", "auth", "cookie", "signature", "credential"]
        .iter()
        .any(|s| n.contains(s));
    if secret { "REDACTED".into() } else { redact_text(value) }
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
    redact_query_params(&out)
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
}
