//! Where `prewarm optimize` reads and writes: `--dest` refused when it
//! names the source's own place in any spelling (compared by where the two
//! point: canonical local paths, else rclone's remote name and resolved
//! root), and the sources as listed minus prewarm's own temporary objects,
//! which are never sources; those of runs that are gone are deleted as
//! they are listed.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

use crate::listing::{self, Filters, ListingSource, Object};
use crate::media::scratch;
use crate::rclone::Rclone;

/// A local path when `spec` names one without asking rclone: no remote
/// prefix, or the `:local:` backend.
fn plain_local(spec: &str) -> Option<PathBuf> {
    if let Some(rest) = spec.strip_prefix(":local:") {
        return Some(PathBuf::from(rest));
    }
    match spec.find(':') {
        // rclone takes `name:` as a remote only when the colon comes
        // before any slash.
        Some(colon) if !spec[..colon].contains('/') => None,
        _ => Some(PathBuf::from(spec)),
    }
}

/// The path made absolute and canonical as far as it exists (a `--dest`
/// may not exist yet): `a/./b//c/..` and symlinks resolved.
fn canonical(path: &Path) -> PathBuf {
    let absolute = clean(&std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()));
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(found) = std::fs::canonicalize(existing) {
            return rest.iter().rev().fold(found, |p: PathBuf, c| p.join(c));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return absolute,
        }
    }
}

/// `.` and `..` resolved by the text, as rclone does (Go's `filepath.Clean`):
/// `new/../videos` names `videos` even while `new` does not exist.
fn clean(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Where a remote spec points, as a comparable key.
async fn place(rclone: &Rclone, spec: &str) -> String {
    if let Some(path) = plain_local(spec) {
        return format!("local:{}", canonical(&path).display());
    }
    match rclone.fs_info(spec).await {
        Ok(Some(info)) if info.description.starts_with("Local file system at ") => {
            format!("local:{}", canonical(Path::new(&info.root)).display())
        }
        Ok(Some(info)) => format!("{}:{}", info.name, info.root.trim_matches('/')),
        // rclone cannot tell: compare the spellings, cleaned.
        _ => spec.trim_end_matches(['/', '.']).to_string(),
    }
}

/// Whether `--dest` names the source's own place.
pub async fn same_place(rclone: &Rclone, source: &str, dest: &str) -> bool {
    place(rclone, source).await == place(rclone, dest).await
}

/// Counts of the sweep, for the summary.
#[derive(Debug, Default)]
pub struct TempCounts {
    /// Temporary objects listed (never taken as sources).
    pub seen: AtomicU64,
    /// Those deleted as stale.
    pub swept: AtomicU64,
    /// Sources at or above the threshold.
    pub selected: AtomicU64,
}

/// The listed objects at or above `threshold`, without temporary objects;
/// those whose run is `dead` are deleted from `fs` as they come.
pub fn sources(
    mut listed: mpsc::Receiver<Object>,
    threshold: u64,
    rclone: Option<(Rclone, String)>,
    dead: Arc<HashSet<String>>,
    counts: Arc<TempCounts>,
) -> mpsc::Receiver<Object> {
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(async move {
        while let Some(object) = listed.recv().await {
            if let Some(tag) = scratch::temp_tag(&object.path) {
                counts.seen.fetch_add(1, Ordering::Relaxed);
                if dead.contains(tag)
                    && let Some((rclone, fs)) = &rclone
                {
                    sweep_one(rclone, fs, &object.path, &counts).await;
                }
                continue;
            }
            if object.size < threshold {
                continue;
            }
            counts.selected.fetch_add(1, Ordering::Relaxed);
            if tx.send(object).await.is_err() {
                break;
            }
        }
    });
    rx
}

async fn sweep_one(rclone: &Rclone, fs: &str, path: &str, counts: &TempCounts) {
    match rclone.delete_file(fs, path).await {
        Ok(()) => {
            counts.swept.fetch_add(1, Ordering::Relaxed);
            tracing::info!("removed the stale temporary object {path}");
        }
        Err(e) => tracing::warn!("could not remove the stale temporary object {path}: {e}"),
    }
}

/// With `--dest`, the temporary objects of dead runs sit there, not in the
/// source: list the destination for them (only when a dead run was found).
pub async fn sweep_dest(rclone: &Rclone, dest: &str, dead: &HashSet<String>, counts: &TempCounts) {
    if dead.is_empty() {
        return;
    }
    let source = ListingSource::Rclone { rclone: rclone.clone(), remote: dest.to_string() };
    let (mut objects, task) = listing::stream(source, Filters::default());
    while let Some(object) = objects.recv().await {
        if scratch::temp_tag(&object.path).is_some_and(|t| dead.contains(t)) {
            counts.seen.fetch_add(1, Ordering::Relaxed);
            sweep_one(rclone, dest, &object.path, counts).await;
        }
    }
    // A destination that does not exist yet has nothing to sweep.
    let _ = task.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_spellings_are_one_place() {
        assert_eq!(plain_local(":local:/src/dir"), Some(PathBuf::from("/src/dir")));
        assert_eq!(plain_local("/src/dir/."), Some(PathBuf::from("/src/dir/.")));
        assert_eq!(plain_local("s3:bucket/dir"), None);
        assert_eq!(plain_local("./a:b"), Some(PathBuf::from("./a:b")));
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        let same = canonical(&src);
        for spelling in
            [format!("{}/.", src.display()), format!("{}//", src.display()), format!("{}/../src", src.display())]
        {
            assert_eq!(canonical(Path::new(&spelling)), same, "{spelling}");
        }
        assert_eq!(canonical(&src.join("new/out")), same.join("new/out"));
        std::os::unix::fs::symlink(&src, dir.path().join("link")).unwrap();
        assert_eq!(canonical(&dir.path().join("link")), same);
    }
}
