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

/// Shorter values are not scrubbed: they would blank out ordinary text. A
/// setting that is surely secret (declared so, or named like a credential)
/// is refused when shorter ([`check_secret_len`]); other short values (a
/// one-letter URL user) are still hidden where their place is known
/// (userinfo, a credential header's value) but not in free text.
pub const MIN_SECRET_LEN: usize = 4;

/// `Err` naming `what` when a secret value is too short to be scrubbed.
pub fn check_secret_len(what: &str, value: &str) -> Result<(), String> {
    let len = value.trim().len();
    if (1..MIN_SECRET_LEN).contains(&len) {
        return Err(format!(
            "{what}: a secret of {len} byte(s) is too short to keep out of logs and reports (at least \
             {MIN_SECRET_LEN}); use the real value"
        ));
    }
    Ok(())
}

/// Remember `value` as a secret. Its percent-encoded forms, whatever the
/// encoded set or the case of the hex digits (and `+` for a space), are
/// scrubbed too: see [`scrub`].
pub fn register_secret(value: &str) {
    let value = value.trim();
    if value.len() < MIN_SECRET_LEN {
        return;
    }
    let mut list = SECRETS.get_or_init(Default::default).write().unwrap_or_else(|p| p.into_inner());
    if !list.iter().any(|v| v == value) {
        super::argv::hide(value);
        list.push(value.to_string());
    }
    // Longest first, so a secret that contains another is cut whole.
    list.sort_by_key(|v| std::cmp::Reverse(v.len()));
}

/// A user name this long beside a password is taken for a key (an access
/// key id, a token) and hidden too.
const USER_AS_KEY: usize = 16;

/// Register the userinfo of a URL: the password (and a user name alone or
/// as long as a key) as written and percent-decoded, and the `Basic`
/// credentials (RFC 7617) a client would build of them.
pub fn register_userinfo(user: &str, password: Option<&str>) {
    use base64::Engine as _;
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
    let (user, password) = (decode(user), password.map(decode));
    // A user name beside a password is no secret, and a short one (`admin`,
    // `pairs`) scrubbed from every line would garble the output; alone, or
    // long enough to be a key, it is the credential.
    if password.is_none() || user.len() >= USER_AS_KEY {
        register_secret(&user);
    }
    if let Some(p) = &password {
        register_secret(p);
    }
    if !user.is_empty() || password.is_some() {
        let pair = format!("{user}:{}", password.as_deref().unwrap_or(""));
        register_secret(&base64::engine::general_purpose::STANDARD.encode(pair));
    }
}

/// `text` with every registered secret, literal or percent-encoded,
/// replaced by `REDACTED`.
pub fn scrub(text: String) -> String {
    let Some(list) = SECRETS.get() else { return text };
    let list = list.read().unwrap_or_else(|p| p.into_inner());
    let mut out = text;
    for secret in list.iter() {
        out = replace_encoded(out, secret.as_bytes());
    }
    out
}

/// Replace each run of `text` that spells `secret` with every byte either
/// as itself or as `%XX` (either case; `+` for a space).
fn replace_encoded(text: String, secret: &[u8]) -> String {
    let bytes = text.as_bytes();
    let hex = |b: &[u8]| std::str::from_utf8(b).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
    let match_at = |mut i: usize| -> Option<usize> {
        for &want in secret {
            match bytes.get(i)? {
                &b if b == want => i += 1,
                b'%' if bytes.get(i + 1..i + 3).and_then(hex) == Some(want) => i += 3,
                b'+' if want == b' ' => i += 1,
                _ => return None,
            }
        }
        Some(i)
    };
    let (mut out, mut copied, mut i) = (Vec::new(), 0, 0);
    while i < bytes.len() {
        match (bytes[i] == secret[0] || bytes[i] == b'%').then(|| match_at(i)).flatten() {
            Some(end) => {
                out.extend_from_slice(&bytes[copied..i]);
                out.extend_from_slice(b"REDACTED");
                (copied, i) = (end, end);
            }
            None => i += 1,
        }
    }
    if copied == 0 {
        return text;
    }
    out.extend_from_slice(&bytes[copied..]);
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
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

/// Send every panic message through the scrubber: the default hook writes
/// a panic's message to stderr as it is, past every redaction. The text has
/// the default hook's shape (thread, location, message, and the backtrace
/// when `RUST_BACKTRACE` asks for one); what follows the hook (unwinding,
/// the exit code) is unchanged.
pub fn scrub_panic_messages() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let location = info.location().map(|l| l.to_string());
        let backtrace = std::backtrace::Backtrace::capture();
        let text = panic_text(
            thread.name().unwrap_or("<unnamed>"),
            location.as_deref(),
            info.payload_as_str().unwrap_or("Box<dyn Any>"),
            (backtrace.status() == std::backtrace::BacktraceStatus::Captured).then_some(&backtrace),
        );
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }));
}

fn panic_text(
    thread: &str,
    location: Option<&str>,
    message: &str,
    backtrace: Option<&dyn std::fmt::Display>,
) -> String {
    let at = location.map(|l| format!(" at {l}")).unwrap_or_default();
    let tail = match backtrace {
        Some(b) => format!("stack backtrace:\n{b}"),
        None => "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace".to_string(),
    };
    redact_text(&format!("thread '{thread}' panicked{at}:\n{message}\n{tail}\n"))
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
    // Schemes are case-insensitive (RFC 3986 §3.1): `HTTP://` too. ASCII
    // lowercasing keeps every byte offset.
    let lower = text.to_ascii_lowercase();
    let mut at = 0;
    while let Some(pos) = find_url(&lower[at..]).map(|p| at + p) {
        out.push_str(&text[at..pos]);
        let end = text[pos..]
            .find(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '`' || c == ')')
            .map(|e| pos + e)
            .unwrap_or(text.len());
        out.push_str(&redact_url(&text[pos..end]));
        at = end;
    }
    out.push_str(&text[at..]);
    scrub(redact_query_params(&out))
}

/// Where the first `http://` or `https://` of lowercased text starts.
fn find_url(lower: &str) -> Option<usize> {
    let (a, b) = (lower.find("http://"), lower.find("https://"));
    a.into_iter().chain(b).min()
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
    fn the_scrubber_sees_encoded_forms_and_uppercase_schemes() {
        register_secret("enc s3cret/åb:c");
        for shown in
            ["enc%20s3cret%2F%C3%A5b%3Ac", "enc+s3cret%2f%c3%a5b:c", "enc s3cret/%C3%A5b%3ac", "enc s3cret/åb:c"]
        {
            assert_eq!(scrub(format!("<{shown}>")), "<REDACTED>", "{shown}");
        }
        assert_eq!(scrub("enc s3cret/åb".into()), "enc s3cret/åb", "a part is no match");
        assert_eq!(
            redact_text("GET HTTP://u:pw@Host/x?Token=abc done"),
            "GET HTTP://REDACTED@Host/x?Token=REDACTED done"
        );
        // A short user name beside a password stays readable; alone it is the credential.
        register_userinfo("pairs", Some("pw-beside-pairs"));
        assert_eq!(scrub("235.6 pairs/s".into()), "235.6 pairs/s");
        assert_eq!(scrub("pw-beside-pairs".into()), "REDACTED");
        register_userinfo("lone-token-user", None);
        assert_eq!(scrub("lone-token-user".into()), "REDACTED");
        register_userinfo("alice%40corp", Some("pa%3Ass-word"));
        // base64("alice@corp:pa:ss-word"), as a client sends it in `Authorization: Basic`.
        assert_eq!(scrub("Basic YWxpY2VAY29ycDpwYTpzcy13b3Jk".into()), "Basic REDACTED");
        assert_eq!(scrub("pa:ss-word".into()), "REDACTED");
        assert!(check_secret_len("--set token", "abc").unwrap_err().contains("too short"));
        assert!(check_secret_len("--set token", "abcd").is_ok() && check_secret_len("--set token", "").is_ok());
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

    #[test]
    fn panic_messages_are_scrubbed() {
        register_secret("panic-secret-77");
        let text = panic_text("engine-1", Some("src/x.rs:1:2"), "bad value panic-secret-77", None);
        assert_eq!(
            text,
            "thread 'engine-1' panicked at src/x.rs:1:2:\nbad value REDACTED\nnote: run with `RUST_BACKTRACE=1` \
             environment variable to display a backtrace\n"
        );
    }
}
