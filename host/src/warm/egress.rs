//! What may leave the host: every URL a plugin built (warm requests,
//! follow-ups, and the size probes and verify requests derived from them) is
//! checked here before any connection is made.
//!
//! Addressable paths: a URL parser resolves dot segments (`.`, `..`, also
//! percent-encoded as `%2e`), reads `\` as `/` and drops tabs and newlines
//! (WHATWG URL Standard, "path state"; RFC 3986 §5.2.4). A URL whose path
//! holds one of those would be sent for another object than the one the
//! record names, so it is refused instead. Empty segments (`a//b`) are kept
//! as they are by every parser and are fine.

/// Why a URL is not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The record's `error_kind`.
    pub kind: &'static str,
    /// One line, without the URL's credentials.
    pub message: String,
}

/// Whether `url`'s path would be rewritten by URL rules; the reason if so.
pub fn rewritten_path(url: &str) -> Option<&'static str> {
    if url.bytes().any(|b| matches!(b, b'\t' | b'\n' | b'\r')) {
        return Some("a tab or line break, which URL parsers drop");
    }
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path_start = after_scheme.find('/')?;
    let path = &after_scheme[path_start..];
    let path = path.split(['?', '#']).next().unwrap_or(path);
    if path.contains('\\') {
        return Some("a backslash, which URL parsers read as `/`");
    }
    for segment in path.split('/') {
        if segment.len() > 6 || !segment.bytes().all(|b| b == b'.' || b == b'%' || b.is_ascii_alphanumeric()) {
            continue;
        }
        let decoded = segment.to_ascii_lowercase().replace("%2e", ".");
        if decoded == "." || decoded == ".." {
            return Some("a dot segment (`.` or `..`), which URL parsers resolve away");
        }
    }
    None
}

/// Check the URL planned for the object at `key`.
pub fn check_planned(url: &str, key: &str) -> Result<(), Refusal> {
    match rewritten_path(url) {
        None => Ok(()),
        Some(why) => Err(Refusal {
            kind: "unaddressable",
            message: format!(
                "object key `{}` cannot be addressed by a URL: its path holds {why}, so another object would be \
                 requested; nothing was sent",
                crate::redact::redact_text(key)
            ),
        }),
    }
}

/// Check a follow-up URL (one the plugin or the CDN named).
pub fn check_follow_up(url: &str) -> Result<(), Refusal> {
    match rewritten_path(url) {
        None => Ok(()),
        Some(why) => Err(Refusal {
            kind: "unaddressable",
            message: format!("follow-up `{}` not sent: its path holds {why}", crate::redact::redact_url(url)),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_in_every_spelling_are_refused() {
        for url in [
            "https://cdn.example.com/x/../real.mp4",
            "https://cdn.example.com/x/./real.mp4",
            "https://cdn.example.com/x/%2e%2e/real.mp4",
            "https://cdn.example.com/x/%2E./real.mp4",
            "https://cdn.example.com/x/.%2e/real.mp4",
            "https://cdn.example.com/x/%2e/real.mp4",
            "https://cdn.example.com/..",
            "https://cdn.example.com/a/..?w=1",
            "https://cdn.example.com/a\\..\\b.mp4",
            "https://cdn.example.com/a\tb.mp4",
        ] {
            assert!(rewritten_path(url).is_some(), "{url}");
        }
    }

    #[test]
    fn ordinary_paths_pass() {
        for url in [
            "https://cdn.example.com/2026/1//x.mp4",
            "https://cdn.example.com/a/...mp4",
            "https://cdn.example.com/a/.hidden/b.mp4",
            "https://cdn.example.com/a/%2e%2ex/b.mp4",
            "https://cdn.example.com/a/b.mp4?p=../x",
            "https://cdn.example.com/a/b.mp4#..",
            "https://cdn.example.com",
            "https://cdn.example.com/promo/sale%20%232%20(50%25%2Boff)%3F.mp4",
        ] {
            assert_eq!(rewritten_path(url), None, "{url}");
        }
    }
}
