//! Writing a file through a temporary file in the same directory and a
//! rename, so a reader (a scraper, another prewarm, a crash) never sees half
//! of it. Used by the reports, the compiled-plugin cache and the size
//! capabilities cache.

use std::path::Path;

/// Write `bytes` to `path` atomically, creating its directory.
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
