//! One source through `prewarm optimize`: fetched through rclone into a
//! private work directory, probed, encoded (the worker's hardware encoder
//! first; when that fails, software, and the hardware verdict is marked in
//! the cache), the output verified with ffprobe, then uploaded under a
//! temporary name beside its destination, checked (size, and a checksum
//! where the remote has one) and moved into place. Nothing half-written is
//! ever at the final name, the original is only replaced (`--in-place`)
//! after the check, and the work directory and any temporary object are
//! removed on every way out, Ctrl-C included.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use super::encode::{self, Audio, EncodeJob, Fit, Quality, Resolution};
use super::ffmpeg::{self, Tools};
use super::hw::{Codec, Detector, Family, classify};
use super::probe::{self, MediaInfo};
use crate::listing::Object;
use crate::rclone::{Rclone, RcloneError};

/// Hash types rclone computes for local files, in order of preference.
const LOCAL_HASHES: &[&str] = &["md5", "sha1", "sha256", "crc32", "whirlpool"];

/// How one source ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Re-encoded, verified, uploaded (and the original replaced with --in-place).
    Optimized,
    /// The verified output was not smaller than the source: nothing uploaded.
    NotSmaller,
    /// Something failed; nothing was written at the destination.
    Failed,
    /// Ctrl-C stopped it; nothing was written at the destination.
    Interrupted,
    /// `--dry-run`: what would be done.
    Planned,
}

impl Outcome {
    pub const ALL: [Outcome; 5] =
        [Outcome::Optimized, Outcome::NotSmaller, Outcome::Failed, Outcome::Interrupted, Outcome::Planned];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Optimized => "optimized",
            Outcome::NotSmaller => "not_smaller",
            Outcome::Failed => "failed",
            Outcome::Interrupted => "interrupted",
            Outcome::Planned => "planned",
        }
    }
}

/// One results line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileResult {
    /// Path relative to the source root (and to the destination).
    pub path: String,
    /// Source size in bytes.
    pub size_before: u64,
    /// Output size in bytes, once encoded.
    pub size_after: Option<u64>,
    pub codec: Codec,
    /// The encoder whose output was kept (or planned).
    pub encoder: Option<String>,
    /// The hardware encoder that failed first, when software took over.
    pub fallback_from: Option<String>,
    /// Output frame size.
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Wall time for this source: fetch, encode, verify, upload.
    pub seconds: f64,
    pub outcome: Outcome,
    pub error: Option<String>,
}

/// An encoder a worker uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub name: String,
    pub family: Family,
}

/// What every source shares: resolved once for the run.
pub struct Plan {
    pub rclone: Rclone,
    pub tools: Tools,
    /// The remote the source paths are relative to.
    pub source_fs: String,
    /// Where outputs go (the source root with --in-place: the move over
    /// the original is then the replacement).
    pub dest_fs: String,
    pub codec: Codec,
    pub quality: Quality,
    pub resolution: Option<Resolution>,
    pub fit: Fit,
    pub audio: Audio,
    /// The software encoder for the codec, when this ffmpeg has one.
    pub software: Option<Choice>,
    /// Present when hardware detection ran: failures are marked there.
    pub detector: Option<Arc<Detector>>,
    pub render_node: Option<String>,
    pub encode_timeout: Duration,
    pub work_dir: PathBuf,
    /// The checksum both ends give, looked up once.
    pub hash_type: OnceCell<Option<String>>,
}

/// Why a source stopped early.
struct Stop {
    outcome: Outcome,
    error: String,
}

impl Stop {
    fn failed(error: impl Into<String>) -> Self {
        Stop { outcome: Outcome::Failed, error: error.into() }
    }

    fn rclone(what: &str, e: RcloneError) -> Self {
        match e {
            RcloneError::Cancelled => Stop::interrupted(),
            e => Stop::failed(format!("{what}: {e}")),
        }
    }

    fn interrupted() -> Self {
        Stop { outcome: Outcome::Interrupted, error: "interrupted".into() }
    }
}

/// Run one source to its end; never panics, always one result.
pub async fn optimize_one(plan: &Plan, object: &Object, choice: &Choice, cancel: &CancellationToken) -> FileResult {
    let started = Instant::now();
    let mut result = FileResult {
        path: object.path.clone(),
        size_before: object.size,
        size_after: None,
        codec: plan.codec,
        encoder: None,
        fallback_from: None,
        width: None,
        height: None,
        seconds: 0.0,
        outcome: Outcome::Optimized,
        error: None,
    };
    if let Err(stop) = run_steps(plan, object, choice, cancel, &mut result).await {
        result.outcome = stop.outcome;
        result.error = Some(crate::util::redact::redact_text(&stop.error));
    }
    result.seconds = started.elapsed().as_secs_f64();
    result
}

async fn run_steps(
    plan: &Plan,
    object: &Object,
    choice: &Choice,
    cancel: &CancellationToken,
    result: &mut FileResult,
) -> Result<(), Stop> {
    // Dropped on every way out: the fetched source and the output go too.
    let work = tempfile::Builder::new()
        .prefix("prewarm-optimize-")
        .tempdir_in(&plan.work_dir)
        .map_err(|e| Stop::failed(format!("cannot make a work directory in {}: {e}", plan.work_dir.display())))?;
    let ext = extension(&object.path);
    let (input, output) = (work.path().join(format!("source{ext}")), work.path().join(format!("output{ext}")));
    let work_fs = work.path().display().to_string();

    plan.rclone
        .copy_file_cancellable((&plan.source_fs, &object.path), (&work_fs, &file_name(&input)), cancel)
        .await
        .map_err(|e| Stop::rclone("fetch", e))?;
    let source_len = std::fs::metadata(&input).map(|m| m.len()).unwrap_or(object.size);
    result.size_before = source_len;
    let info = cancellable(cancel, probe::probe(&plan.tools, &input))
        .await?
        .map_err(|e| Stop::failed(format!("source unreadable: {e}")))?;
    let Some(frame) = info.video else { return Err(Stop::failed("source has no video stream")) };
    let size = encode::output_size(frame, plan.resolution, plan.fit);
    (result.width, result.height) = (Some(size.0), Some(size.1));

    let used = encode_with_fallback(plan, choice, &input, &output, &info, size, cancel, result).await?;
    result.encoder = Some(used.name);
    let out_len = std::fs::metadata(&output).map_err(|e| Stop::failed(format!("output vanished: {e}")))?.len();
    result.size_after = Some(out_len);
    if out_len >= source_len {
        result.outcome = Outcome::NotSmaller;
        return Ok(());
    }
    upload(plan, &object.path, &work_fs, &file_name(&output), out_len, cancel).await?;
    result.outcome = Outcome::Optimized;
    Ok(())
}

/// Encode and verify with `choice`; on failure of a hardware encoder, mark
/// it and do it again in software. Returns the encoder whose output stands.
#[allow(clippy::too_many_arguments)]
async fn encode_with_fallback(
    plan: &Plan,
    choice: &Choice,
    input: &Path,
    output: &Path,
    info: &MediaInfo,
    size: (u32, u32, bool),
    cancel: &CancellationToken,
    result: &mut FileResult,
) -> Result<Choice, Stop> {
    let hardware_marked = plan.detector.as_ref().is_some_and(|d| d.is_marked(&choice.name));
    let first = if choice.family != Family::Software && hardware_marked { None } else { Some(choice) };
    if let Some(first) = first {
        match encode_verified(plan, first, input, output, info, size, cancel).await? {
            Ok(()) => return Ok(first.clone()),
            Err(e) if first.family == Family::Software => return Err(Stop::failed(e.message)),
            Err(e) => {
                tracing::warn!("{}: {} failed ({}); encoding in software", result.path, first.name, e.message);
                if let Some(d) = &plan.detector {
                    d.mark_failed(&first.name, classify(first.family, &e.stderr, true), &e.message);
                }
                result.fallback_from = Some(first.name.clone());
            }
        }
    }
    let Some(software) = &plan.software else {
        return Err(Stop::failed(format!(
            "no software {} encoder in this ffmpeg to fall back to",
            plan.codec.as_str()
        )));
    };
    match encode_verified(plan, software, input, output, info, size, cancel).await? {
        Ok(()) => Ok(software.clone()),
        Err(e) => Err(Stop::failed(e.message)),
    }
}

/// A failed encode or verification: the message, and ffmpeg's stderr to
/// classify.
struct EncodeFailure {
    message: String,
    stderr: String,
}

/// One encode and its verification. The outer `Err` is Ctrl-C.
async fn encode_verified(
    plan: &Plan,
    choice: &Choice,
    input: &Path,
    output: &Path,
    info: &MediaInfo,
    size: (u32, u32, bool),
    cancel: &CancellationToken,
) -> Result<Result<(), EncodeFailure>, Stop> {
    let _ = std::fs::remove_file(output);
    let job = EncodeJob {
        input,
        output,
        encoder: &choice.name,
        family: choice.family,
        quality: plan.quality,
        source_size: info.video.unwrap_or((size.0, size.1)),
        out_size: size,
        audio: plan.audio,
        render_node: plan.render_node.as_deref(),
    };
    let mut cmd = tokio::process::Command::new(&plan.tools.ffmpeg);
    cmd.args(encode::ffmpeg_args(&job));
    tracing::debug!("encoding {} with {}", input.display(), choice.name);
    let ran = cancellable(cancel, ffmpeg::run(cmd, plan.encode_timeout)).await?;
    let out = match ran {
        Ok(out) if out.status.success() => out,
        Ok(out) => {
            return Ok(Err(EncodeFailure {
                message: format!("{} failed: {}", choice.name, out.error_line()),
                stderr: out.stderr_tail,
            }));
        }
        Err(e) => return Ok(Err(EncodeFailure { message: format!("{}: {e}", choice.name), stderr: e.to_string() })),
    };
    drop(out);
    match cancellable(cancel, probe::verify(&plan.tools, output, info, (size.0, size.1))).await? {
        Ok(()) => Ok(Ok(())),
        Err(e) => Ok(Err(EncodeFailure { message: format!("{} output rejected: {e}", choice.name), stderr: e })),
    }
}

/// Upload under a temporary name beside `path`, check it, move it in.
async fn upload(
    plan: &Plan,
    path: &str,
    work_fs: &str,
    local: &str,
    len: u64,
    cancel: &CancellationToken,
) -> Result<(), Stop> {
    let temp = temp_name(path);
    let copied = plan.rclone.copy_file_cancellable((work_fs, local), (&plan.dest_fs, &temp), cancel).await;
    let checked = match copied {
        Ok(()) => check_upload(plan, work_fs, local, &temp, len).await,
        Err(e) => Err(Stop::rclone("upload", e)),
    };
    let moved = match checked {
        Ok(()) => {
            plan.rclone.move_file(&plan.dest_fs, &temp, path).await.map_err(|e| Stop::rclone("move into place", e))
        }
        Err(stop) => Err(stop),
    };
    if moved.is_err() {
        // Whatever the transfer left under the temporary name goes.
        if let Err(e) = plan.rclone.delete_file(&plan.dest_fs, &temp).await {
            tracing::warn!("could not remove the temporary upload {temp}: {e}");
        }
    }
    moved
}

async fn check_upload(plan: &Plan, work_fs: &str, local: &str, temp: &str, len: u64) -> Result<(), Stop> {
    let uploaded = plan.rclone.stat(&plan.dest_fs, temp).await.map_err(|e| Stop::rclone("check upload", e))?;
    if uploaded != Some(len) {
        return Err(Stop::failed(format!("upload check: {len} bytes sent, {uploaded:?} at the destination")));
    }
    let hash_type = plan
        .hash_type
        .get_or_init(|| async {
            let remote = plan.rclone.hash_types(&plan.dest_fs).await.unwrap_or_default();
            LOCAL_HASHES.iter().find(|h| remote.iter().any(|r| r == *h)).map(|h| h.to_string())
        })
        .await;
    if let Some(t) = hash_type {
        let there = plan.rclone.hash(&plan.dest_fs, temp, t).await.map_err(|e| Stop::rclone("check upload", e))?;
        // Some objects carry no hash (multipart uploads on S3): size only.
        if let Some(there) = there {
            let here = plan.rclone.hash(work_fs, local, t).await.map_err(|e| Stop::rclone("check upload", e))?;
            if here.as_deref() != Some(there.as_str()) {
                return Err(Stop::failed(format!("upload check: {t} differs ({here:?} here, {there} there)")));
            }
        }
    }
    Ok(())
}

/// `dir/.name.prewarm-<random>.tmp`: beside the final name, so the move is
/// a rename on backends that have one.
fn temp_name(path: &str) -> String {
    use rand::distr::{Alphanumeric, SampleString};
    let tag = Alphanumeric.sample_string(&mut rand::rng(), 8);
    match path.rsplit_once('/') {
        Some((dir, name)) => format!("{dir}/.{name}.prewarm-{tag}.tmp"),
        None => format!(".{path}.prewarm-{tag}.tmp"),
    }
}

/// `.mp4` of `a/b.mp4` (lowercased; empty when there is none).
fn extension(path: &str) -> String {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.rsplit_once('.').map(|(_, e)| format!(".{}", e.to_ascii_lowercase())).unwrap_or_default()
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Await `f` unless Ctrl-C comes first (then `f` is dropped, which kills
/// its ffmpeg).
async fn cancellable<T>(cancel: &CancellationToken, f: impl std::future::Future<Output = T>) -> Result<T, Stop> {
    tokio::select! {
        v = f => Ok(v),
        _ = cancel.cancelled() => Err(Stop::interrupted()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_sit_beside_the_target() {
        let t = temp_name("a/b/c.mp4");
        assert!(t.starts_with("a/b/.c.mp4.prewarm-") && t.ends_with(".tmp"), "{t}");
        assert!(temp_name("c.mp4").starts_with(".c.mp4.prewarm-"));
        assert_eq!(extension("a.b/c.MP4"), ".mp4");
        assert_eq!(extension("a.b/c"), "");
    }
}
