//! One source through `prewarm optimize`: the output container checked
//! against the codec before anything is fetched, the source fetched
//! through rclone into this run's scratch directory ([`super::scratch`]),
//! read once ([`super::probe::Facts`]), refused in words when it is empty
//! or no video, planned ([`super::recipe`]), encoded with its progress
//! watched (the worker's hardware encoder first; when that fails,
//! software, and the hardware verdict is marked in the cache), the output
//! verified ([`super::verify`]), then published ([`super::publish`]):
//! nothing half-written is ever at the final name, and with `--in-place`
//! the original is replaced only if it is unchanged since it was fetched
//! and decoded without errors.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use super::container::{self, Container};
use super::encode::{self, Audio, EncodeJob, Fit, Quality, Resolution};
use super::facts::{self, Input, Unread};
use super::ffmpeg::{self, MediaError, Tools};
use super::hw::{Codec, Detector, Family, classify};
use super::probe::Facts;
use super::publish::{self, Published};
use super::recipe::{self, Recipe};
use crate::listing::Object;
use crate::rclone::{Rclone, RcloneError};

/// How long ffprobe and `idet` may take on one source.
const PROBE_TIMEOUT: Duration = Duration::from_secs(120);
/// Frames `idet` looks at when the stream does not say interlaced.
const IDET_FRAMES: u32 = 120;
/// Words in ffmpeg's stderr that say the source did not decode cleanly.
const DECODE_ERROR_TELLS: &[&str] = &[
    "error while decoding",
    "invalid nal",
    "concealing",
    "corrupt",
    "decode_slice",
    "missing reference",
    "invalid data found",
    "error splitting",
    "non-existing pps",
    "no frame!",
    "left block unavailable",
];

/// How one source ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Re-encoded, verified, uploaded (and the original replaced with --in-place).
    Optimized,
    /// The verified output was not smaller than the source: nothing uploaded.
    NotSmaller,
    /// `--in-place`: the original changed while it was encoded; it was kept.
    Changed,
    /// `--in-place`: the source decodes with errors; it was not replaced.
    Damaged,
    /// Something failed; nothing was written at the destination.
    Failed,
    /// Ctrl-C stopped it; nothing was written at the destination.
    Interrupted,
    /// `--dry-run`: what would be done.
    Planned,
}

impl Outcome {
    pub const ALL: [Outcome; 7] = [
        Outcome::Optimized,
        Outcome::NotSmaller,
        Outcome::Changed,
        Outcome::Damaged,
        Outcome::Failed,
        Outcome::Interrupted,
        Outcome::Planned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Optimized => "optimized",
            Outcome::NotSmaller => "not_smaller",
            Outcome::Changed => "changed",
            Outcome::Damaged => "damaged",
            Outcome::Failed => "failed",
            Outcome::Interrupted => "interrupted",
            Outcome::Planned => "planned",
        }
    }
}

/// Why a source failed, as a class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// Could not be fetched.
    Fetch,
    /// Zero bytes.
    Empty,
    /// Not a video ffmpeg can read (text, a cut-short container, no video stream).
    NotVideo,
    /// A codec/container pair or a source this ffmpeg cannot write.
    Unsupported,
    /// The encoder failed.
    Encode,
    /// The encode made no progress for `--stall-timeout` and was killed.
    Stalled,
    /// The output failed its checks.
    Verify,
    /// The upload, its check or the move failed.
    Upload,
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
    /// Output frame size (square pixels, upright).
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// What the encode did to the picture and sound, in words.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<String>,
    /// Wall time for this source: fetch, encode, verify, upload.
    pub seconds: f64,
    pub outcome: Outcome,
    /// The class of failure, when failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<FailureKind>,
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
    pub in_place: bool,
    /// `--replace-damaged`: replace in place even a source that decodes with errors.
    pub replace_damaged: bool,
    pub codec: Codec,
    pub quality: Quality,
    pub resolution: Option<Resolution>,
    pub fit: Fit,
    pub audio: Audio,
    /// This ffmpeg has `zscale` and `tonemap`.
    pub can_tonemap: bool,
    /// The software encoder for the codec, when this ffmpeg has one.
    pub software: Option<Choice>,
    /// Present when hardware detection ran: failures are marked there.
    pub detector: Option<Arc<Detector>>,
    pub render_node: Option<String>,
    pub encode_timeout: Duration,
    /// An encode with no progress for this long is killed.
    pub stall_timeout: Duration,
    /// This run's scratch directory and the tag its temporary objects carry.
    pub scratch: PathBuf,
    pub run_tag: String,
    /// The checksum both ends give, looked up once.
    pub hash_type: OnceCell<Option<String>>,
}

/// Why a source stopped early.
pub struct Stop {
    outcome: Outcome,
    kind: Option<FailureKind>,
    error: String,
}

impl Stop {
    fn failed(kind: FailureKind, error: impl Into<String>) -> Self {
        Stop { outcome: Outcome::Failed, kind: Some(kind), error: error.into() }
    }

    pub fn upload(error: impl Into<String>) -> Self {
        Stop::failed(FailureKind::Upload, error)
    }

    pub fn rclone(what: &str, e: RcloneError) -> Self {
        match e {
            RcloneError::Cancelled => Stop::interrupted(),
            e if what == "fetch" => Stop::failed(FailureKind::Fetch, format!("{what}: {e}")),
            e => Stop::upload(format!("{what}: {e}")),
        }
    }

    fn interrupted() -> Self {
        Stop { outcome: Outcome::Interrupted, kind: None, error: "interrupted".into() }
    }

    fn kept(outcome: Outcome, why: String) -> Self {
        Stop { outcome, kind: None, error: why }
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
        steps: Vec::new(),
        seconds: 0.0,
        outcome: Outcome::Optimized,
        kind: None,
        error: None,
    };
    // Dropped on every way out: the fetched source and the output go too.
    let work = tempfile::Builder::new().prefix("src-").tempdir_in(&plan.scratch);
    let outcome = match &work {
        Ok(work) => run_steps(plan, object, choice, work.path(), cancel, &mut result).await,
        Err(e) => Err(Stop::failed(FailureKind::Fetch, format!("cannot make a scratch directory: {e}"))),
    };
    if let Err(stop) = outcome {
        result.outcome = stop.outcome;
        result.kind = stop.kind;
        let mut error = stop.error;
        if let Ok(work) = &work {
            // Name the object, not the scratch copy.
            let dir = work.path().display().to_string();
            let ext = extension(&object.path);
            error = error
                .replace(&format!("{dir}/source{ext}"), &object.path)
                .replace(&format!("{dir}/output{ext}"), "the output")
                .replace(&dir, "the scratch directory");
        }
        result.error = Some(crate::util::redact::redact_text(&error));
    }
    result.seconds = started.elapsed().as_secs_f64();
    result
}

async fn run_steps(
    plan: &Plan,
    object: &Object,
    choice: &Choice,
    work: &Path,
    cancel: &CancellationToken,
    result: &mut FileResult,
) -> Result<(), Stop> {
    let ext = extension(&object.path);
    // A pair the muxer cannot write is refused before anything is fetched.
    if !ext.is_empty() {
        output_container(&object.path, None, plan.codec)?;
    }
    let (input, output) = (work.join(format!("source{ext}")), work.join(format!("output{ext}")));
    let work_fs = work.display().to_string();
    let fetched = match plan.in_place {
        true => publish::original_state(plan, &object.path).await?,
        false => None,
    };
    plan.rclone
        .copy_file_cancellable((&plan.source_fs, &object.path), (&work_fs, &file_name(&input)), cancel)
        .await
        .map_err(|e| Stop::rclone("fetch", e))?;
    let source_len = std::fs::metadata(&input).map(|m| m.len()).unwrap_or(object.size);
    result.size_before = source_len;
    if let Some(before) = &fetched
        && before.size != source_len
    {
        return Err(Stop::kept(Outcome::Changed, "the original changed while it was fetched".into()));
    }
    let facts = read_source(plan, &input, &object.path, source_len, cancel).await?;
    let container = output_container(&object.path, facts.format.as_deref(), plan.codec)?;
    let recipe = plan_encode(plan, &facts, &container, &input, &object.path, cancel).await?;
    result.steps = recipe.steps.clone();
    (result.width, result.height) = (Some(recipe.size.0), Some(recipe.size.1));

    let job = Job { input: &input, output: &output, facts: &facts, recipe: &recipe, container: &container };
    let (used, damage) = encode_with_fallback(plan, choice, &job, cancel, result).await?;
    result.encoder = Some(used.name);
    let out_len = std::fs::metadata(&output)
        .map_err(|e| Stop::failed(FailureKind::Verify, format!("the output vanished: {e}")))?
        .len();
    result.size_after = Some(out_len);
    if let Some(damage) = &damage {
        result.steps.push(format!("the source decodes with errors: {damage}"));
        if plan.in_place && !plan.replace_damaged {
            return Err(Stop::kept(
                Outcome::Damaged,
                format!(
                    "the source decodes with errors ({damage}); not replaced in place (--replace-damaged to do it)"
                ),
            ));
        }
    }
    if out_len >= source_len {
        result.outcome = Outcome::NotSmaller;
        return Ok(());
    }
    let local = (work_fs.as_str(), file_name(&output));
    match publish::publish(plan, &object.path, (local.0, &local.1), out_len, fetched.as_ref(), cancel).await? {
        Published::Moved => result.outcome = Outcome::Optimized,
        Published::Changed(why) => {
            return Err(Stop::kept(Outcome::Changed, format!("{why}; the new version was kept")));
        }
    }
    Ok(())
}

/// The output's container, refused with the reason when it cannot hold the codec.
fn output_container(path: &str, format: Option<&str>, codec: Codec) -> Result<Container, Stop> {
    let container = container::for_output(path, format).map_err(|e| Stop::failed(FailureKind::Unsupported, e))?;
    container.check(codec).map_err(|e| Stop::failed(FailureKind::Unsupported, e))?;
    Ok(container)
}

/// ffprobe's facts of the fetched source, or what is wrong with it in words.
async fn read_source(
    plan: &Plan,
    input: &Path,
    name: &str,
    len: u64,
    cancel: &CancellationToken,
) -> Result<Facts, Stop> {
    if len == 0 {
        return Err(Stop::failed(FailureKind::Empty, "empty (0 bytes): an upload that never finished"));
    }
    let url = input.display().to_string();
    let source = Input { url: &url, shown: name };
    let read = cancellable(cancel, facts::facts(&plan.tools, &source, PROBE_TIMEOUT)).await?;
    let facts = match read {
        Ok(facts) => facts,
        Err(Unread::Fetch(why) | Unread::Media(why)) => {
            let mut head = Vec::new();
            let _ = std::io::Read::read_to_end(
                &mut std::io::Read::take(
                    std::fs::File::open(input).map_err(|e| Stop::failed(FailureKind::Fetch, e.to_string()))?,
                    16,
                ),
                &mut head,
            );
            let what = if facts::looks_like_container(&head) {
                format!("not a readable video: the container starts but is cut short or damaged ({why})")
            } else {
                format!("not a video ({why})")
            };
            return Err(Stop::failed(FailureKind::NotVideo, what));
        }
    };
    if facts.video.is_none() {
        let what = if facts.audio_streams > 0 { "audio only" } else { "only a still picture or no picture at all" };
        return Err(Stop::failed(FailureKind::NotVideo, format!("not a video: no video stream ({what})")));
    }
    Ok(facts)
}

/// The recipe, with `idet` asked when the stream does not say interlaced.
async fn plan_encode(
    plan: &Plan,
    facts: &Facts,
    container: &Container,
    input: &Path,
    name: &str,
    cancel: &CancellationToken,
) -> Result<Recipe, Stop> {
    let video = facts.video.as_ref().expect("read_source checked the video stream");
    let found = if recipe::worth_detecting(video) {
        let url = input.display().to_string();
        let source = Input { url: &url, shown: name };
        let looks = facts::looks_interlaced(&plan.tools, &source, video.stream, IDET_FRAMES, PROBE_TIMEOUT);
        cancellable(cancel, looks).await?
    } else {
        false
    };
    let options = recipe::Options {
        resolution: plan.resolution,
        fit: plan.fit,
        audio: plan.audio,
        can_tonemap: plan.can_tonemap,
    };
    recipe::plan(facts, container, options, found).map_err(|e| {
        let kind = if e.starts_with("not a video") { FailureKind::NotVideo } else { FailureKind::Unsupported };
        Stop::failed(kind, e)
    })
}

/// One source's encode inputs.
struct Job<'a> {
    input: &'a Path,
    output: &'a Path,
    facts: &'a Facts,
    recipe: &'a Recipe,
    container: &'a Container,
}

/// Encode and verify with `choice`; on failure of a hardware encoder, mark
/// it and do it again in software. Returns the encoder whose output stands
/// and the source's decode errors, if any.
async fn encode_with_fallback(
    plan: &Plan,
    choice: &Choice,
    job: &Job<'_>,
    cancel: &CancellationToken,
    result: &mut FileResult,
) -> Result<(Choice, Option<String>), Stop> {
    let hardware_marked = plan.detector.as_ref().is_some_and(|d| d.is_marked(&choice.name));
    let first = if choice.family != Family::Software && hardware_marked { None } else { Some(choice) };
    if let Some(first) = first {
        match encode_verified(plan, first, job, cancel).await? {
            Ok(damage) => return Ok((first.clone(), damage)),
            Err(e) if first.family == Family::Software || e.kind == FailureKind::Stalled => {
                return Err(Stop::failed(e.kind, e.message));
            }
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
        return Err(Stop::failed(
            FailureKind::Unsupported,
            format!("no software {} encoder in this ffmpeg to fall back to", plan.codec.as_str()),
        ));
    };
    match encode_verified(plan, software, job, cancel).await? {
        Ok(damage) => Ok((software.clone(), damage)),
        Err(e) => Err(Stop::failed(e.kind, e.message)),
    }
}

/// A failed encode or verification: its class, the message, and ffmpeg's
/// stderr to classify.
struct EncodeFailure {
    kind: FailureKind,
    message: String,
    stderr: String,
}

/// One encode and its verification; `Ok` carries the source's decode
/// errors, if ffmpeg reported any. The outer `Err` is Ctrl-C.
async fn encode_verified(
    plan: &Plan,
    choice: &Choice,
    job: &Job<'_>,
    cancel: &CancellationToken,
) -> Result<Result<Option<String>, EncodeFailure>, Stop> {
    let _ = std::fs::remove_file(job.output);
    let args = encode::ffmpeg_args(&EncodeJob {
        input: job.input,
        output: job.output,
        encoder: &choice.name,
        family: choice.family,
        quality: plan.quality,
        recipe: job.recipe,
        container: job.container,
        render_node: plan.render_node.as_deref(),
        version: &plan.tools.version,
    });
    let mut cmd = tokio::process::Command::new(&plan.tools.ffmpeg);
    cmd.args(args);
    tracing::debug!("encoding {} with {}", job.input.display(), choice.name);
    let ran = cancellable(cancel, ffmpeg::run_with_progress(cmd, plan.encode_timeout, plan.stall_timeout)).await?;
    let failure = |kind, message: String, stderr: String| Ok(Err(EncodeFailure { kind, message, stderr }));
    let out = match ran {
        Ok(out) if out.status.success() => out,
        Ok(out) => {
            return failure(
                FailureKind::Encode,
                format!("{} failed: {}", choice.name, out.error_line()),
                out.stderr_tail,
            );
        }
        Err(e @ MediaError::Stalled { .. }) => {
            let message = format!("{}: {e} (--stall-timeout)", choice.name);
            return failure(FailureKind::Stalled, message, e.to_string());
        }
        Err(e) => return failure(FailureKind::Encode, format!("{}: {e}", choice.name), e.to_string()),
    };
    let damage = decode_errors(&out.stderr_tail);
    let size = (job.recipe.size.0, job.recipe.size.1);
    match cancellable(cancel, super::verify::verify(&plan.tools, job.output, job.facts, size)).await? {
        Ok(()) => Ok(Ok(damage)),
        Err(e) => failure(FailureKind::Verify, format!("{} output rejected: {e}", choice.name), e),
    }
}

/// The first line of an encode's stderr that says the source did not decode.
fn decode_errors(stderr: &str) -> Option<String> {
    stderr
        .lines()
        .find(|l| {
            let lower = l.to_ascii_lowercase();
            DECODE_ERROR_TELLS.iter().any(|t| lower.contains(t))
        })
        .map(ffmpeg::error_line)
}

/// `.mp4` of `a/b.mp4` (lowercased; empty when there is none).
fn extension(path: &str) -> String {
    let name = path.rsplit('/').next().unwrap_or(path);
    match name.rsplit_once('.') {
        Some((stem, e)) if !stem.is_empty() => format!(".{}", e.to_ascii_lowercase()),
        _ => String::new(),
    }
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
    fn extensions_and_decode_errors() {
        assert_eq!(extension("a.b/c.MP4"), ".mp4");
        assert_eq!(extension("a.b/c"), "");
        assert_eq!(extension("a/.hidden"), "");
        let stderr = "[h264 @ 0x55d] error while decoding MB 3 7, bytestream -5\n[h264 @ 0x55d] concealing 200 DC\n";
        assert_eq!(decode_errors(stderr).as_deref(), Some("[h264] error while decoding MB 3 7, bytestream -5"));
        assert_eq!(decode_errors("Svt[info]: SVT [version]\n"), None);
    }
}
