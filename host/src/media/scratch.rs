//! What an optimize run leaves behind while it works, named so a later run
//! can recognise it and sweep it: one scratch directory per run,
//! `prewarm-optimize-<tag>` under `--work-dir`, holding a `lock` file the
//! live run keeps `flock`ed (the kernel drops the lock when the process
//! dies, `kill -9` included), and temporary objects beside their targets,
//! `dir/.name.prewarm-<tag>.tmp`, carrying the same tag. A run starts by
//! removing the scratch directories whose lock nobody holds; their tags are
//! dead, and temporary objects with a dead tag are deleted when listed
//! (they are never taken as sources).

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The name every run's scratch directory starts with.
const PREFIX: &str = "prewarm-optimize-";
/// A scratch directory without a lock file (an older prewarm's, or one
/// being created this instant) is swept only when older than this.
const UNLOCKED_GRACE: Duration = Duration::from_secs(3600);

/// This run's scratch directory, locked for the run's life and removed
/// when dropped.
#[derive(Debug)]
pub struct RunDir {
    pub tag: String,
    pub path: PathBuf,
    _lock: File,
}

/// What the sweep at the start found.
#[derive(Debug, Default)]
pub struct Swept {
    /// Scratch directories removed.
    pub dirs: u64,
    /// Tags of runs that are gone: their temporary objects are stale.
    pub dead: HashSet<String>,
}

impl RunDir {
    /// Sweep `work_dir` of dead runs' directories, then make and lock ours.
    pub fn create(work_dir: &Path) -> std::io::Result<(RunDir, Swept)> {
        let swept = sweep(work_dir);
        loop {
            let tag = new_tag();
            let path = work_dir.join(format!("{PREFIX}{tag}"));
            match std::fs::create_dir(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
                Ok(()) => {}
            }
            let lock = File::create(path.join("lock"))?;
            if !try_lock(&lock) {
                return Err(std::io::Error::other("cannot lock the scratch directory"));
            }
            return Ok((RunDir { tag, path, _lock: lock }, swept));
        }
    }

    /// A private directory for one source, removed when dropped.
    pub fn source_dir(&self) -> std::io::Result<tempfile::TempDir> {
        tempfile::Builder::new().prefix("src-").tempdir_in(&self.path)
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn new_tag() -> String {
    use rand::distr::{Alphanumeric, SampleString};
    Alphanumeric.sample_string(&mut rand::rng(), 8)
}

/// Take the lock without waiting; `false` when another process holds it.
fn try_lock(file: &File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: flock(2) on a descriptor we own; it touches no memory.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// Remove the scratch directories of runs that are gone.
fn sweep(work_dir: &Path) -> Swept {
    let mut swept = Swept::default();
    for entry in std::fs::read_dir(work_dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(tag) = name.strip_prefix(PREFIX) else { continue };
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let stale = match File::open(path.join("lock")) {
            Ok(lock) => try_lock(&lock),
            Err(_) => entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > UNLOCKED_GRACE)),
        };
        if stale && std::fs::remove_dir_all(&path).is_ok() {
            tracing::info!("removed the scratch directory of a run that is gone: {}", path.display());
            swept.dirs += 1;
            swept.dead.insert(tag.to_string());
        }
    }
    swept
}

/// `dir/.name.prewarm-<tag>.tmp`: beside the final name, so the move is a
/// rename on backends that have one.
pub fn temp_name(path: &str, tag: &str) -> String {
    match path.rsplit_once('/') {
        Some((dir, name)) => format!("{dir}/.{name}.prewarm-{tag}.tmp"),
        None => format!(".{path}.prewarm-{tag}.tmp"),
    }
}

/// The run tag of a temporary object's path, `None` for any other path.
pub fn temp_tag(path: &str) -> Option<&str> {
    let name = path.rsplit('/').next()?;
    let rest = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (_, tag) = rest.rsplit_once(".prewarm-")?;
    (!tag.is_empty() && tag.chars().all(|c| c.is_ascii_alphanumeric())).then_some(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_carry_the_run_tag() {
        let t = temp_name("a/b/c.mp4", "AbC12345");
        assert_eq!(t, "a/b/.c.mp4.prewarm-AbC12345.tmp");
        assert_eq!(temp_tag(&t), Some("AbC12345"));
        assert_eq!(temp_tag(&temp_name("c.mp4", "x1")), Some("x1"));
        assert_eq!(temp_tag("a/c.mp4"), None);
        assert_eq!(temp_tag("a/.c.mp4.tmp"), None);
    }

    #[test]
    fn a_dead_runs_directory_is_swept_and_a_live_one_kept() {
        let work = tempfile::tempdir().unwrap();
        let (live, _) = RunDir::create(work.path()).unwrap();
        // A run killed with -9: its directory stays, nobody holds its lock.
        let dead = work.path().join(format!("{PREFIX}DeadRun1"));
        std::fs::create_dir_all(dead.join("src-x")).unwrap();
        std::fs::write(dead.join("lock"), b"").unwrap();
        std::fs::write(dead.join("src-x/source.mp4"), b"partial").unwrap();
        let (second, swept) = RunDir::create(work.path()).unwrap();
        assert_eq!((swept.dirs, swept.dead.contains("DeadRun1")), (1, true));
        assert!(!dead.exists() && live.path.exists() && second.path.exists());
        let path = live.path.clone();
        drop(live);
        assert!(!path.exists(), "a run's directory outlived it");
    }
}
