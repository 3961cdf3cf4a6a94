//! Writing a file through a temporary file in the same directory and a
//! rename, so a reader (a scraper, another prewarm, a crash) never sees half
//! of it. Used by the reports, the compiled-plugin cache and the size
//! capabilities cache.

use std::path::Path;

/// Write `bytes` to `path` atomically, creating its directory.
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    // Created like any file the user writes (0666 less the umask), not
    // tempfile's private 0600: a report is meant to be read by others.
    let mut builder = tempfile::Builder::new();
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut tmp = builder.tempfile_in(dir)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_written_file_follows_the_umask_not_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        super::write(&path, b"{}").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        // SAFETY: umask only reads and sets this process's file mode mask.
        let umask = unsafe {
            let m = libc::umask(0o022);
            libc::umask(m);
            m
        };
        assert_eq!(mode, 0o666 & !(umask as u32));
        assert_eq!(std::fs::read(&path).unwrap(), b"{}");
    }
}
