//! `--checkpoint-every DUR` with `--upload REMOTE:PATH`: while a warm runs,
//! its results so far (and the summary so far, with `--report`) are
//! uploaded where the final files go, under the same names, so a run that
//! is killed (an evicted pod, `kill -9`) and started again with `--resume`
//! fetches its own checkpoint and re-requests only the pairs recorded after
//! it. Each checkpoint is atomic at the destination: the snapshot is
//! uploaded under a temporary name (`.NAME.checkpoint`), then moved onto
//! NAME, so a reader never sees half a file. The snapshot is taken with
//! every record whole on disk (a zstd frame ended) and copied aside before
//! the upload, so the upload reads a file that does not grow; one upload
//! runs at a time, and the final upload waits for it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::rclone::Rclone;
use crate::util::redact::redact_url;

/// Where a run's checkpoints go and what they hold.
pub struct Checkpoints {
    every: Duration,
    last: Instant,
    rclone: Rclone,
    dest: String,
    results: PathBuf,
    /// `--report`: the summary so far goes up too.
    report: Option<PathBuf>,
    /// The local copies being uploaded (a hidden directory beside the results).
    aside: PathBuf,
    upload: Option<tokio::task::JoinHandle<()>>,
    taken: u64,
}

impl Checkpoints {
    pub fn new(every: Duration, rclone: Rclone, dest: &str, results: &Path, report: Option<&Path>) -> Result<Self> {
        let results = std::path::absolute(results)?;
        let dir = results.parent().map(Path::to_path_buf).unwrap_or_default();
        let name = results.file_name().unwrap_or_default().to_string_lossy().to_string();
        Ok(Checkpoints {
            every,
            last: Instant::now(),
            rclone,
            dest: dest.to_string(),
            aside: dir.join(format!(".{name}.checkpoints")),
            results,
            report: report.map(std::path::absolute).transpose()?,
            upload: None,
            taken: 0,
        })
    }

    /// Called with the results file whole on disk (the recorder's tick):
    /// take a checkpoint when one is due and the last one is up.
    /// `summary` renders the summary so far, only when one is taken.
    pub fn tick(&mut self, summary: impl FnOnce() -> Vec<u8>) {
        if self.last.elapsed() < self.every || self.upload.as_ref().is_some_and(|u| !u.is_finished()) {
            return;
        }
        self.last = Instant::now();
        // The results file only grows: its first `len` bytes are this
        // checkpoint, whatever is appended while they are copied.
        let len = match self.results.metadata() {
            Ok(m) => m.len(),
            Err(e) => return tracing::warn!("checkpoint: cannot read {}: {e}", self.results.display()),
        };
        let report = self.report.as_ref().map(|p| (p.clone(), summary()));
        let (results, aside, rclone, dest) =
            (self.results.clone(), self.aside.clone(), self.rclone.clone(), self.dest.clone());
        self.taken += 1;
        let n = self.taken;
        self.upload = Some(tokio::spawn(async move {
            let copied = tokio::task::spawn_blocking({
                let aside = aside.clone();
                move || snapshot(&results, len, report.as_ref(), &aside)
            })
            .await;
            let names = match copied {
                Ok(Ok(names)) => names,
                Ok(Err(e)) => return tracing::warn!("checkpoint {n}: {e:#}"),
                Err(e) => return tracing::warn!("checkpoint {n}: {e}"),
            };
            let started = Instant::now();
            for name in names {
                if let Err(e) = put(&rclone, &aside, &name, &dest).await {
                    return tracing::warn!("checkpoint {n}: {e:#}");
                }
            }
            tracing::info!("checkpoint {n} uploaded to {} in {:?}", redact_url(&dest), started.elapsed());
        }));
    }

    /// Wait for the checkpoint in progress, so it cannot land after the
    /// final upload; then drop the local copies.
    pub async fn finish(mut self) {
        if let Some(upload) = self.upload.take() {
            let _ = upload.await;
        }
        let _ = std::fs::remove_dir_all(&self.aside);
    }
}

/// Copy the first `len` bytes of the results (and the summary bytes) into
/// `aside`, under their own names; returns those names.
fn snapshot(results: &Path, len: u64, report: Option<&(PathBuf, Vec<u8>)>, aside: &Path) -> Result<Vec<String>> {
    use std::io::Read;
    std::fs::create_dir_all(aside).with_context(|| format!("cannot create {}", aside.display()))?;
    let name = |p: &Path| p.file_name().unwrap_or_default().to_string_lossy().to_string();
    let mut names = vec![name(results)];
    let mut from = std::fs::File::open(results)?.take(len);
    let mut to = std::fs::File::create(aside.join(&names[0]))?;
    std::io::copy(&mut from, &mut to).with_context(|| format!("cannot copy {}", results.display()))?;
    if let Some((path, bytes)) = report {
        names.push(name(path));
        std::fs::write(aside.join(name(path)), bytes)?;
    }
    Ok(names)
}

/// Upload `dir/name` to `dest/.name.checkpoint`, then move it onto `dest/name`.
pub(crate) async fn put(rclone: &Rclone, dir: &Path, name: &str, dest: &str) -> Result<()> {
    let temp = format!(".{name}.checkpoint");
    let shown = redact_url(dest);
    rclone
        .copy_file(&dir.to_string_lossy(), name, dest, &temp)
        .await
        .map_err(|e| anyhow::anyhow!("cannot upload {name} to {shown}: {e}"))?;
    rclone
        .move_file(dest, &temp, name)
        .await
        .map_err(|e| anyhow::anyhow!("cannot move {temp} onto {name} at {shown}: {e}"))
}

/// `--resume` with no local results: fetch this run's own results file
/// from `dest` (its last checkpoint, or a finished run's upload) to
/// `results`. False when there is none there (the run starts fresh).
pub async fn fetch(rclone: &Rclone, dest: &str, results: &Path) -> Result<bool> {
    let results = std::path::absolute(results)?;
    let (Some(dir), Some(name)) = (results.parent(), results.file_name()) else { return Ok(false) };
    let name = name.to_string_lossy();
    let shown = redact_url(dest);
    let found = rclone
        .stat(dest, &name)
        .await
        .map_err(|e| anyhow::anyhow!("--resume: cannot look for a checkpoint {name} at {shown}: {e}"))?;
    if found.is_none() {
        return Ok(false);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    rclone
        .copy_file(dest, &name, &dir.to_string_lossy(), &name)
        .await
        .map_err(|e| anyhow::anyhow!("--resume: cannot fetch the checkpoint {name} from {shown}: {e}"))?;
    Ok(true)
}
