//! Plugin settings as the user gives them (`--set KEY=VALUE`): values read
//! from the environment (`env:VAR`) or a file (`file:PATH`) so secrets stay
//! out of `ps` and shell history, `raw:` for a value that starts with one of
//! those prefixes, and what may be shown of each. A value from `env:` or
//! `file:`, a setting the plugin declares `secret`, and one whose name says
//! it is a credential are never shown: they are registered with
//! [`crate::util::redact`] and replaced everywhere. A declared secret
//! shorter than [`redact::MIN_SECRET_LEN`] bytes is refused: it could not be
//! scrubbed from free text without blanking ordinary words.

use super::types::SettingInfo;
use crate::util::redact;

/// One resolved setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub key: String,
    /// What the plugin gets.
    pub value: String,
    /// What reports, logs and `config show` may print.
    pub shown: String,
}

/// Split `KEY=VALUE` (syntax only, before the plugin is known).
pub fn split(raw: &str) -> Result<(String, String), String> {
    match raw.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("--set `{}`: expected KEY=VALUE", redact::redact_text(raw))),
    }
}

/// Read where a value comes from: `(value, shown reference)`; the reference
/// is `None` for a literal value.
fn source(key: &str, raw: &str) -> Result<(String, Option<String>), String> {
    if let Some(var) = raw.strip_prefix("env:") {
        let value = std::env::var(var)
            .map_err(|_| format!("--set {key}=env:{var}: environment variable `{var}` is not set (or not UTF-8)"))?;
        return Ok((value, Some(format!("env:{var}"))));
    }
    if let Some(path) = raw.strip_prefix("file:") {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--set {key}=file:{path}: cannot read the file ({e})"))?;
        let value = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text);
        return Ok((value.to_string(), Some(format!("file:{path}"))));
    }
    Ok((raw.strip_prefix("raw:").unwrap_or(raw).to_string(), None))
}

/// Resolve every setting against what the plugin declares.
pub fn resolve(pairs: &[(String, String)], declared: &[SettingInfo]) -> Result<Vec<Setting>, String> {
    pairs
        .iter()
        .map(|(key, raw)| {
            let (value, reference) = source(key, raw)?;
            let declared_secret = declared.iter().any(|d| d.key == *key && d.secret);
            if declared_secret {
                // One or two bytes cannot be scrubbed from free text.
                redact::check_secret_len(&format!("--set {key} (a secret setting)"), &value)?;
            }
            let shown = if let Some(reference) = reference {
                redact::register_secret(&value);
                redact::redact_header_list(&value);
                // Header lists read from a file still show their names.
                if declared_secret { reference } else { format!("{reference} ({})", describe(&value)) }
            } else if declared_secret {
                redact::register_secret(&value);
                "REDACTED".to_string()
            } else {
                redact::redact_setting(key, &redact::redact_header_list(&value))
            };
            Ok(Setting { key: key.clone(), value, shown })
        })
        .collect()
}

/// How `config show` prints a setting it has not resolved: `env:` and
/// `file:` references as written (what they point to is never read), a
/// declared secret or a credential-like name as `REDACTED`.
pub fn shown_as_written(key: &str, raw: &str, declared: &[SettingInfo]) -> String {
    if raw.starts_with("env:") || raw.starts_with("file:") {
        return raw.to_string();
    }
    let literal = raw.strip_prefix("raw:").unwrap_or(raw);
    if declared.iter().any(|d| d.key == key && d.secret) {
        redact::register_secret(literal);
        return "REDACTED".to_string();
    }
    redact::redact_setting(key, &redact::redact_header_list(literal))
}

/// What may be said of a value read from a secret source: its length.
fn describe(value: &str) -> String {
    format!("{} bytes", value.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declared() -> Vec<SettingInfo> {
        vec![SettingInfo { key: "token".into(), description: String::new(), default_value: None, secret: true }]
    }

    #[test]
    fn values_come_from_env_file_or_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tok");
        std::fs::write(&file, "file-secret-4711\n").unwrap();
        // SAFETY: the test sets a variable no other test reads.
        unsafe { std::env::set_var("PREWARM_TEST_SETTING_SECRET", "env-secret-0815") };
        let pairs = vec![
            ("token".to_string(), format!("file:{}", file.display())),
            ("headers".to_string(), "env:PREWARM_TEST_SETTING_SECRET".to_string()),
            ("url".to_string(), "raw:env:not-a-variable".to_string()),
            ("fit".to_string(), "cover".to_string()),
        ];
        let s = resolve(&pairs, &declared()).unwrap();
        assert_eq!(s[0].value, "file-secret-4711");
        assert_eq!(s[0].shown, format!("file:{}", file.display()));
        assert_eq!(s[1].value, "env-secret-0815");
        assert_eq!(s[1].shown, "env:PREWARM_TEST_SETTING_SECRET (15 bytes)");
        assert_eq!(s[2].value, "env:not-a-variable");
        assert_eq!(s[3].shown, "cover");
        assert_eq!(redact::redact_text("x file-secret-4711 env-secret-0815"), "x REDACTED REDACTED");
        let short = resolve(&[("token".into(), "ab".into())], &declared()).unwrap_err();
        assert!(short.contains("--set token") && short.contains("too short"), "{short}");
        assert!(resolve(&[("fit".into(), "ab".into())], &declared()).is_ok(), "only secrets are held to it");
        let missing = resolve(&[("token".into(), "env:PREWARM_NO_SUCH_VAR".into())], &declared()).unwrap_err();
        assert!(missing.contains("PREWARM_NO_SUCH_VAR") && missing.contains("not set"), "{missing}");
    }

    #[test]
    fn shown_as_written_never_reads_or_shows_a_secret() {
        assert_eq!(shown_as_written("token", "env:CF_TOKEN", &declared()), "env:CF_TOKEN");
        assert_eq!(shown_as_written("token", "file:/run/secrets/t", &declared()), "file:/run/secrets/t");
        assert_eq!(shown_as_written("token", "declared-secret-3", &declared()), "REDACTED");
        assert_eq!(shown_as_written("api-key", "by-name-4", &[]), "REDACTED");
        assert_eq!(shown_as_written("fit", "cover", &declared()), "cover");
    }

    #[test]
    fn secrets_on_the_line_are_not_shown() {
        let pairs = vec![
            ("token".to_string(), "declared-secret-1".to_string()),
            ("headers".to_string(), "Authorization: Bearer line-secret-2; Accept: video/*".to_string()),
        ];
        let s = resolve(&pairs, &declared()).unwrap();
        assert_eq!(s[0].shown, "REDACTED");
        assert_eq!(s[1].shown, "Authorization: REDACTED; Accept: video/*");
        assert_eq!(s[1].value, "Authorization: Bearer line-secret-2; Accept: video/*");
    }
}
