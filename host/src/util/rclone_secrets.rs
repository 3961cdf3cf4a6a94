//! rclone's secrets where prewarm shows a source, remote or rclone flag:
//! the values of connection-string parameters
//! (`:s3,access_key_id=AK,secret_access_key=S:bucket/path`, rclone's
//! "connection strings") and of `--rclone-flag`s
//! (`--s3-secret-access-key=S`) are replaced by `REDACTED` and registered
//! with the process-wide scrubber ([`super::redact`]), so rclone's own
//! error lines and every log line lose them too.
//!
//! Which parameters are secret: every name rclone marks `IsPassword` (and,
//! on rclone 1.63 and later, `Sensitive`) in `rclone config providers`,
//! kept here as a list since asking rclone would cost a process where none
//! is running (`config show`), and any name that holds `key`, `secret`,
//! `pass`, `token`, `credential`, `sas`, `auth` or `header`.

use super::redact::register_secret;

/// Words that make a parameter or flag name secret.
/// `header` too: rclone's `--header`, `--header-download`, `--http-headers`
/// and the `headers` parameter carry `Authorization` and API keys.
const SECRET_WORDS: &[&str] = &["key", "secret", "pass", "token", "credential", "sas", "auth", "header"];

/// Names rclone marks as passwords or sensitive that hold none of
/// [`SECRET_WORDS`] (from `rclone config providers` of 1.60 and the
/// `Sensitive` options of later releases: OAuth client ids, B2, Azure and
/// NetStorage account ids, Swift tenants). User names are left shown: they
/// are no secret, and scrubbing a name like `root` from every line would
/// garble paths.
const SECRET_NAMES: &[&str] = &["client_id", "account", "tenant"];

/// Whether an rclone parameter (`secret_access_key`) or flag
/// (`--s3-secret-access-key`) carries a secret.
pub fn is_secret_name(name: &str) -> bool {
    let n = name.trim().trim_start_matches('-').to_ascii_lowercase().replace('-', "_");
    SECRET_WORDS.iter().any(|w| n.contains(w)) || SECRET_NAMES.iter().any(|s| n == *s || n.ends_with(&format!("_{s}")))
}

/// A source or remote (`remote:path`, `:backend,k=v:path`,
/// `remote,k=v:path`) with secret parameter values replaced by `REDACTED`
/// and registered as secrets. Anything else is returned as given.
pub fn redact_remote(remote: &str) -> String {
    let mut out = String::with_capacity(remote.len());
    let mut rest = remote;
    // Every parameter follows a `,` outside quotes; only values are quoted.
    while let Some(comma) = rest.find(',') {
        out.push_str(&rest[..=comma]);
        rest = &rest[comma + 1..];
        let key_end = rest.find(['=', ',', ':']).unwrap_or(rest.len());
        if !rest[key_end..].starts_with('=') {
            continue;
        }
        let key = &rest[..key_end];
        let (value, len) = parameter_value(&rest[key_end + 1..]);
        out.push_str(&rest[..=key_end]);
        if is_secret_name(key) && !is_switch(&value) {
            register(&value);
            out.push_str("REDACTED");
        } else {
            out.push_str(&rest[key_end + 1..key_end + 1 + len]);
        }
        rest = &rest[key_end + 1 + len..];
    }
    out.push_str(rest);
    out
}

/// A parameter value at the start of `text`: `(value unquoted, bytes
/// taken)`. rclone quotes a value with `"` or `'`, a doubled quote inside
/// standing for one; an unquoted value ends at `,` or `:`.
fn parameter_value(text: &str) -> (String, usize) {
    let Some(quote) = text.chars().next().filter(|c| *c == '"' || *c == '\'') else {
        let end = text.find([',', ':']).unwrap_or(text.len());
        return (text[..end].to_string(), end);
    };
    let mut value = String::new();
    let mut chars = text.char_indices().skip(1).peekable();
    while let Some((i, c)) = chars.next() {
        if c == quote {
            if chars.peek().is_some_and(|(_, n)| *n == quote) {
                chars.next();
                value.push(quote);
                continue;
            }
            return (value, i + 1);
        }
        value.push(c);
    }
    (value, text.len())
}

/// `--rclone-flag` values with the values of secret flags replaced by
/// `REDACTED` and registered: `--name=value`, or `--name` followed by its
/// value as the next flag. Remotes given as flag values are redacted too.
pub fn redact_flags(flags: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(flags.len());
    let mut value_of_secret = false;
    for flag in flags {
        if std::mem::take(&mut value_of_secret) && !flag.starts_with('-') {
            register(flag);
            out.push("REDACTED".to_string());
            continue;
        }
        match flag.split_once('=') {
            Some((name, value)) if name.starts_with('-') && is_secret_name(name) && !is_switch(value) => {
                register(value);
                out.push(format!("{name}=REDACTED"));
            }
            Some((name, value)) => out.push(format!("{name}={}", redact_remote(value))),
            None => {
                value_of_secret = flag.starts_with("--") && is_secret_name(flag);
                out.push(redact_remote(flag));
            }
        }
    }
    out
}

/// Split `--rclone-flag`s into those for rclone's argv and the secret ones
/// for its environment: rclone reads every flag from `RCLONE_<NAME>` too
/// (`--s3-secret-access-key` from `RCLONE_S3_SECRET_ACCESS_KEY`), and an
/// environment, unlike argv, is readable only by its owner.
pub fn split_secret_flags(flags: &[String]) -> (Vec<String>, Vec<(String, String)>) {
    let env_name =
        |name: &str| format!("RCLONE_{}", name.trim_start_matches('-').to_ascii_uppercase().replace('-', "_"));
    let (mut argv, mut env) = (Vec::new(), Vec::new());
    let mut iter = flags.iter().peekable();
    while let Some(flag) = iter.next() {
        let secret = flag.starts_with("--") && flag.len() > 2;
        match flag.split_once('=') {
            Some((name, value)) if secret && is_secret_name(name) => env.push((env_name(name), value.to_string())),
            None if secret && is_secret_name(flag) && iter.peek().is_some_and(|v| !v.starts_with('-')) => {
                env.push((env_name(flag), iter.next().cloned().unwrap_or_default()));
            }
            _ => argv.push(flag.clone()),
        }
    }
    (argv, env)
}

/// A remote for an rclone child's argv, and the variables to set with it:
/// an on-the-fly backend with a secret parameter (`:s3,access_key_id=…,
/// secret_access_key=…:bucket/path`) becomes a remote rclone defines from
/// its environment (`RCLONE_CONFIG_<NAME>_TYPE=s3`,
/// `RCLONE_CONFIG_<NAME>_SECRET_ACCESS_KEY=…`, every parameter so) and is
/// named `<NAME>:bucket/path` in argv. Anything else is returned as given.
pub fn remote_for_argv(remote: &str) -> (String, Vec<(String, String)>) {
    if let Some(moved) = named_with_secrets(remote) {
        return moved;
    }
    on_the_fly(remote)
        .filter(|(_, params, _)| params.iter().any(|(k, _)| is_secret_name(k)))
        .map(|(backend, params, path)| {
            let digest = sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(remote));
            let name = format!("prewarm{}", hex::encode(&digest[..6]));
            let prefix = format!("RCLONE_CONFIG_{}_", name.to_ascii_uppercase());
            let mut env = vec![(format!("{prefix}TYPE"), backend.to_string())];
            for (key, value) in params {
                env.push((format!("{prefix}{}", key.to_ascii_uppercase().replace('-', "_")), value));
            }
            (format!("{name}:{path}"), env)
        })
        .unwrap_or_else(|| (remote.to_string(), Vec::new()))
}

/// A named remote with secret overrides (`media,secret_access_key=…:path`):
/// the secrets move to the variables rclone reads for that remote
/// (`RCLONE_CONFIG_MEDIA_SECRET_ACCESS_KEY`; they take precedence over its
/// config file, as the overrides did), the other overrides stay.
fn named_with_secrets(remote: &str) -> Option<(String, Vec<(String, String)>)> {
    let comma = remote.find(',')?;
    let name = &remote[..comma];
    if name.is_empty() || name.contains([':', '/', '\\']) {
        return None;
    }
    // The same grammar as an on-the-fly backend's, the name in its place.
    let spec = format!(":{remote}");
    let (_, params, path) = on_the_fly(&spec)?;
    if !params.iter().any(|(k, _)| is_secret_name(k)) {
        return None;
    }
    // rclone's own mangling of a section name into a variable name.
    let prefix = format!("RCLONE_CONFIG_{}_", name.to_ascii_uppercase().replace('-', "_"));
    let (mut kept, mut env) = (name.to_string(), Vec::new());
    for (key, value) in params {
        if is_secret_name(&key) {
            env.push((format!("{prefix}{}", key.to_ascii_uppercase().replace('-', "_")), value));
        } else {
            kept.push_str(&format!(",{key}={}", quote(&value)));
        }
    }
    Some((format!("{kept}:{path}"), env))
}

/// A parameter value as rclone reads it back: quoted when it holds `,`, `:`
/// or a quote, a quote inside doubled.
fn quote(value: &str) -> String {
    if value.contains([',', ':', '"', '\'']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

/// Parameters of a connection string: `(key, value unquoted)`.
type Params = Vec<(String, String)>;

/// `:backend,k=v,…:path` split into the backend, its parameters (a bare
/// key is `true`) and the path.
fn on_the_fly(remote: &str) -> Option<(&str, Params, &str)> {
    let rest = remote.strip_prefix(':')?;
    let backend_end = rest.find([',', ':'])?;
    let (backend, mut rest) = rest.split_at(backend_end);
    let mut params = Vec::new();
    while let Some(p) = rest.strip_prefix(',') {
        let key_end = p.find(['=', ',', ':']).unwrap_or(p.len());
        let (value, used) = match p[key_end..].strip_prefix('=') {
            Some(v) => {
                let (value, len) = parameter_value(v);
                (value, key_end + 1 + len)
            }
            None => ("true".to_string(), key_end),
        };
        params.push((p[..key_end].to_string(), value));
        rest = &p[used..];
    }
    Some((backend, params, rest.strip_prefix(':')?))
}

/// One flag as shown (see [`redact_flags`]).
pub fn redact_flag(flag: &str) -> String {
    redact_flags(&[flag.to_string()]).pop().unwrap_or_default()
}

/// Whether a value is empty or a switch's `true`/`false` (`env_auth=true`):
/// no secret, and scrubbing such words from every output would garble it.
fn is_switch(value: &str) -> bool {
    let v = value.trim();
    v.is_empty() || v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false")
}

fn register(value: &str) {
    register_secret(value.trim());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::redact::redact_text;

    #[test]
    fn connection_string_secrets_are_hidden() {
        let shown = redact_remote(
            ":s3,provider=Other,access_key_id=AKID-t1,secret_access_key=SECRET-t1,endpoint=http://127.0.0.1:9:b/v",
        );
        assert_eq!(
            shown,
            ":s3,provider=Other,access_key_id=REDACTED,secret_access_key=REDACTED,endpoint=http://127.0.0.1:9:b/v"
        );
        assert_eq!(redact_text("failed on SECRET-t1 with AKID-t1"), "failed on REDACTED with REDACTED");
        // Quoted values, doubled quotes, a named remote, a switch.
        assert_eq!(
            redact_remote(r#"media,pass="p:w,""q""",env_auth,env_auth=true:dir/a b"#),
            "media,pass=REDACTED,env_auth,env_auth=true:dir/a b"
        );
        assert_eq!(redact_text(r#"x p:w,"q" y"#), "x REDACTED y");
        assert_eq!(redact_remote(":azureblob,sas_url='https://a/b?sv=1':c"), ":azureblob,sas_url=REDACTED:c");
        assert_eq!(redact_remote("remote:path/with,comma=1"), "remote:path/with,comma=1");
        assert_eq!(redact_remote("/local/dir"), "/local/dir");
    }

    #[test]
    fn secret_flags_are_hidden_in_both_forms() {
        let flags: Vec<String> = ["--s3-secret-access-key=FLAGSECRET-t2", "--fast-list", "--sftp-pass", "FLAGPASS-t2"]
            .map(String::from)
            .to_vec();
        assert_eq!(redact_flags(&flags), ["--s3-secret-access-key=REDACTED", "--fast-list", "--sftp-pass", "REDACTED"]);
        assert_eq!(redact_text("FLAGSECRET-t2 FLAGPASS-t2"), "REDACTED REDACTED");
        assert_eq!(
            redact_flag("--backup-dir=:s3,secret_access_key=BK-t2:old"),
            "--backup-dir=:s3,secret_access_key=REDACTED:old"
        );
        assert_eq!(redact_flag("--ask-password=false"), "--ask-password=false");
    }

    #[test]
    fn secret_flags_go_to_the_environment() {
        let flags: Vec<String> = ["--s3-secret-access-key=S1", "--fast-list", "--sftp-pass", "P2", "--ask-password"]
            .map(String::from)
            .to_vec();
        let (argv, env) = split_secret_flags(&flags);
        assert_eq!(argv, ["--fast-list", "--ask-password"]);
        assert_eq!(
            env,
            [("RCLONE_S3_SECRET_ACCESS_KEY".to_string(), "S1".to_string()), ("RCLONE_SFTP_PASS".into(), "P2".into())]
        );
    }

    #[test]
    fn on_the_fly_remotes_with_secrets_move_to_the_environment() {
        let (remote, env) = remote_for_argv(":s3,provider=Other,secret_access_key='a:b',env_auth:bucket/v a");
        let name = remote.strip_suffix(":bucket/v a").unwrap();
        assert!(name.starts_with("prewarm") && !remote.contains("a:b"), "{remote}");
        let prefix = format!("RCLONE_CONFIG_{}_", name.to_ascii_uppercase());
        let want: Vec<(String, String)> =
            [("TYPE", "s3"), ("PROVIDER", "Other"), ("SECRET_ACCESS_KEY", "a:b"), ("ENV_AUTH", "true")]
                .iter()
                .map(|(k, v)| (format!("{prefix}{k}"), v.to_string()))
                .collect();
        assert_eq!(env, want);
        assert_eq!(remote_for_argv(":s3,provider=Other,secret_access_key='a:b',env_auth:bucket/v a").0, remote);
        // A named remote's secret overrides move to the variables rclone
        // reads for that remote; its other overrides stay.
        let env = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert_eq!(remote_for_argv("media,pass=x:v"), ("media:v".into(), env(&[("RCLONE_CONFIG_MEDIA_PASS", "x")])));
        assert_eq!(
            remote_for_argv("my-s3,provider=Other,secret_access_key='a:b',region=x,y:bucket/v"),
            (
                "my-s3,provider=Other,region=x,y=true:bucket/v".into(),
                env(&[("RCLONE_CONFIG_MY_S3_SECRET_ACCESS_KEY", "a:b")])
            )
        );
        for plain in [":s3,provider=Other:b", "media:v", "media,region=x:v", "/local/dir", "/a,b:c", ":local:/x"] {
            assert_eq!(remote_for_argv(plain), (plain.to_string(), Vec::new()), "{plain}");
        }
    }

    #[test]
    fn names_rclone_marks_secret() {
        for name in ["pass", "password2", "key_file_pass", "library_key", "client_secret", "sas_url", "token"] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in ["--b2-account", "client_id", "--azureblob-tenant", "--s3-session-token", "--header", "headers"] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in ["provider", "endpoint", "region", "--fast-list", "bucket_acl", "chunk_size"] {
            assert!(!is_secret_name(name), "{name}");
        }
    }
}
