//! Secrets out of prewarm's own command line. `/proc/PID/cmdline` shows a
//! process's arguments to every user of the machine, so each value
//! registered as a secret ([`super::redact::register_secret`]: a secret
//! setting, a credential header's value, URL userinfo…) is overwritten in
//! place with `x`, in the memory the kernel reads `cmdline` from (written
//! through `/proc/self/mem`), as the mysql client does with `-pPASSWORD`.
//! Until the value is registered, early in start-up, it is visible: pass
//! secrets as `env:VAR` or `file:PATH` to keep them off the command line
//! entirely. Elsewhere than Linux this does nothing.

/// At start, before anything else runs: the secrets a command line shows by
/// their shape (a `--set` whose key or header names a credential, URL
/// userinfo) are registered, and so hidden, at once; the plugin's declared
/// secret settings follow when its settings are read.
pub fn hide_evident_secrets<'a>(args: impl IntoIterator<Item = &'a std::ffi::OsStr>) {
    use super::redact;
    let mut after_set = false;
    for arg in args {
        let Some(arg) = arg.to_str() else {
            after_set = false;
            continue;
        };
        let setting = if after_set { Some(arg) } else { arg.strip_prefix("--set=") };
        after_set = arg == "--set";
        if let Some((key, value)) = setting.and_then(|s| s.split_once('='))
            && !value.starts_with("env:")
            && !value.starts_with("file:")
        {
            let value = value.strip_prefix("raw:").unwrap_or(value);
            redact::redact_setting(key, &redact::redact_header_list(value));
        }
        if let Some((_, rest)) = arg.split_once("://")
            && let Some((userinfo, _)) = rest.split(['/', '?', '#']).next().and_then(|a| a.rsplit_once('@'))
        {
            let (user, password) = match userinfo.split_once(':') {
                Some((user, password)) => (user, Some(password)),
                None => (userinfo, None),
            };
            redact::register_userinfo(user, password);
        }
    }
}

/// Overwrite every occurrence of `secret` in this process's arguments.
pub fn hide(secret: &str) {
    #[cfg(target_os = "linux")]
    if let Err(e) = linux::hide(secret.as_bytes()) {
        tracing::debug!("could not hide a secret in the command line: {e}");
    }
    #[cfg(not(target_os = "linux"))]
    let _ = secret;
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io::{Read, Seek, SeekFrom, Write};

    /// `arg_start` and `arg_end`, fields 48 and 49 of `/proc/self/stat`
    /// (proc(5)): where the kernel reads `cmdline` from.
    fn arg_range() -> std::io::Result<(u64, u64)> {
        let stat = std::fs::read_to_string("/proc/self/stat")?;
        // Fields count from 1; `comm` (2) may hold spaces, so count after its `)`.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
        match (field(48), field(49)) {
            (Some(start), Some(end)) if start < end && end - start < 1 << 24 => Ok((start, end)),
            _ => Err(std::io::Error::other("no argument range in /proc/self/stat")),
        }
    }

    pub fn hide(secret: &[u8]) -> std::io::Result<()> {
        if secret.is_empty() {
            return Ok(());
        }
        let (start, end) = arg_range()?;
        let mut mem = std::fs::OpenOptions::new().read(true).write(true).open("/proc/self/mem")?;
        let mut args = vec![0u8; (end - start) as usize];
        mem.seek(SeekFrom::Start(start))?;
        mem.read_exact(&mut args)?;
        let mut changed = false;
        let mut i = 0;
        while i + secret.len() <= args.len() {
            if &args[i..i + secret.len()] == secret {
                args[i..i + secret.len()].fill(b'x');
                changed = true;
                i += secret.len();
            } else {
                i += 1;
            }
        }
        if changed {
            mem.seek(SeekFrom::Start(start))?;
            mem.write_all(&args)?;
        }
        Ok(())
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn the_kernel_shows_the_overwritten_arguments() {
            // This test binary's own arguments: hide one and read them back.
            let cmdline = std::fs::read("/proc/self/cmdline").unwrap();
            let first = cmdline.split(|b| *b == 0).next().unwrap().to_vec();
            let name = std::path::Path::new(std::str::from_utf8(&first).unwrap()).file_name().unwrap();
            let secret = name.to_str().unwrap()[..4].to_string();
            super::hide(secret.as_bytes()).unwrap();
            let after = std::fs::read("/proc/self/cmdline").unwrap();
            assert_eq!(after.len(), cmdline.len(), "the length is kept");
            assert!(!after.windows(secret.len()).any(|w| w == secret.as_bytes()), "still there");
            assert!(after.windows(4).any(|w| w == b"xxxx"));
        }
    }
}
