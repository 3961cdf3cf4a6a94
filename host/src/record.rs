//! The results file: one JSON line per (object, derivative) pair, written as
//! each pair completes and flushed at once, so a crash loses only the pairs
//! in flight; and `--resume`, which reads it back to skip pairs already warm.
//! A name ending in `.zst` is written as zstd frames (`util::zstd_lines`).

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::plugin::{CacheState, SizeMethod};
use crate::util::size::SizeClass;
use crate::util::zstd_lines::{self, LinesOut};

/// How a pair ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Transformed and cached.
    Warm,
    /// Still transforming after the last poll.
    Pending,
    /// The CDN served the untransformed source.
    Passthrough,
    /// A permanent failure, or retries exhausted.
    Failed,
    /// Not attempted (over the CDN's limit, or the run was interrupted).
    Skipped,
}

impl Outcome {
    pub const ALL: [Outcome; 5] =
        [Outcome::Warm, Outcome::Pending, Outcome::Passthrough, Outcome::Failed, Outcome::Skipped];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Warm => "warm",
            Outcome::Pending => "pending",
            Outcome::Passthrough => "passthrough",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
        }
    }
}

/// One results line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// Object path, as listed.
    pub path: String,
    /// Derivative name.
    pub derivative: String,
    /// The warm URL, credentials redacted.
    pub url: Option<String>,
    pub outcome: Outcome,
    /// HTTP status of the last warm attempt (none when it got no answer).
    pub status: Option<u16>,
    /// Warm requests sent for this pair (polls and retries included).
    pub attempts: u32,
    /// Warm requests sent again at once because the server provably did
    /// not process them (REFUSED_STREAM, above a GOAWAY's last stream id,
    /// a reused connection closed before answering): not attempts.
    #[serde(default)]
    pub resent: u32,
    /// Request sent to headers received, of the last warm attempt.
    pub ttfb_ms: Option<f64>,
    /// Request sent to body done, of the last warm request.
    pub total_ms: Option<f64>,
    /// The whole pair, polls, retries and size checks included.
    pub elapsed_ms: f64,
    /// Body bytes read by warm requests.
    pub bytes_read: u64,
    /// Derivative size in bytes, when learned.
    pub size: Option<u64>,
    /// How the size was learned.
    pub size_method: Option<SizeMethod>,
    /// Body bytes read by size checks.
    pub size_check_bytes: u64,
    /// Source size in bytes.
    pub original_size: u64,
    pub size_class: SizeClass,
    /// Normalised cache state.
    pub cache: Option<CacheState>,
    /// The raw cache header value.
    pub cache_status: Option<String>,
    /// Every cache tier the answer listed, origin side first, the last
    /// being the one that answered (absent for one cache or none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cache_tiers: Vec<CacheState>,
    /// Failure kind: not_found, forbidden, timeout, connection_error, plugin...
    pub error_kind: Option<String>,
    /// One-line reason, credentials redacted.
    pub error: Option<String>,
    /// The CDN's job id of a transform still pending at the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// When the pair finished (RFC 3339).
    pub finished_at: String,
    /// `--verify`: the cache state when the warm URL was asked again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_cache: Option<CacheState>,
    /// `--verify`: the raw cache header of that answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_cache_status: Option<String>,
    /// `--verify`: why the verify request got no answer, if it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_error: Option<String>,
    /// The edge warmed: its `--edge` NAME; without `--edge`, the
    /// `ADDR:PORT` the last warm request connected to, when `--connect-to`
    /// routed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge: Option<String>,
    /// The `--variant` NAME whose headers this pair's requests carried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Record {
    /// A record of a pair not yet tried: outcome `skipped`, nothing measured.
    pub fn blank(path: &str, derivative: &str, original_size: u64, size_class: SizeClass) -> Self {
        Record {
            path: path.to_string(),
            derivative: derivative.to_string(),
            url: None,
            outcome: Outcome::Skipped,
            status: None,
            attempts: 0,
            resent: 0,
            ttfb_ms: None,
            total_ms: None,
            elapsed_ms: 0.0,
            bytes_read: 0,
            size: None,
            size_method: None,
            size_check_bytes: 0,
            original_size,
            size_class,
            cache: None,
            cache_status: None,
            cache_tiers: Vec::new(),
            error_kind: None,
            error: None,
            job_id: None,
            finished_at: String::new(),
            verify_cache: None,
            verify_cache_status: None,
            verify_error: None,
            edge: None,
            variant: None,
        }
    }
}

/// Appends records, one flushed line each (a zstd frame a second).
pub struct ResultsWriter {
    out: LinesOut,
    path: PathBuf,
}

impl ResultsWriter {
    /// Create (truncate) or, when resuming, append.
    pub fn open(path: &Path, append: bool) -> std::io::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        Ok(ResultsWriter { out: LinesOut::open(path, append)?, path: path.to_path_buf() })
    }

    /// Append one line (buffered; see [`ResultsWriter::flush`]).
    pub fn write(&mut self, record: &Record) -> std::io::Result<()> {
        let out = self.out.writer()?;
        serde_json::to_writer(&mut *out, record)?;
        out.write_all(b"\n")
    }

    /// Push buffered lines to the file (compressed: once a frame has been
    /// open a second).
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }

    /// Every line written so far on disk, whole (a zstd frame ended).
    pub fn sync(&mut self) -> std::io::Result<()> {
        self.out.end_frame()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A compact key for a (path, derivative) pair.
pub fn pair_key(path: &str, derivative: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    path.hash(&mut h);
    derivative.hash(&mut h);
    h.finish()
}

/// The key of a pair at a named edge and in a variant (`--edge`,
/// `--variant`); without either it is [`pair_key`].
pub fn route_key(path: &str, derivative: &str, edge: Option<&str>, variant: Option<&str>) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    path.hash(&mut h);
    derivative.hash(&mut h);
    if let Some(edge) = edge {
        (b'e', edge).hash(&mut h);
    }
    if let Some(variant) = variant {
        (b'v', variant).hash(&mut h);
    }
    h.finish()
}

/// What `--resume` found.
#[derive(Debug, Default)]
pub struct ResumeState {
    /// Pairs already warm (keys from [`pair_key`]).
    pub warm: HashSet<u64>,
    /// Lines read.
    pub lines: u64,
    /// Lines that could not be parsed (e.g. cut by a crash) and were dropped.
    pub dropped: u64,
}

#[derive(Deserialize)]
struct ResumeLine {
    path: String,
    derivative: String,
    outcome: Outcome,
    #[serde(default)]
    edge: Option<String>,
    #[serde(default)]
    variant: Option<String>,
}

/// Why `--resume` would not use a results file.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    /// Anything but a prewarm results file (a notes file, a JSON report):
    /// refused before a byte of it is changed.
    #[error(
        "--resume: {path} is not a prewarm results file (its first line is not a result record); it was left \
         unchanged: name the JSONL file an earlier warm wrote with --results"
    )]
    NotResults { path: String },
    #[error("cannot read results file {path} to resume: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Longest first line read to tell a results file (a record is far
/// shorter; anything longer is not one).
const MAX_FIRST_LINE: u64 = 1 << 20;

/// Whether `reader` starts like a results file: empty, or a first line that
/// parses as a record. A first line cut by a crash before its newline is
/// taken as a record when it starts as one (`{"path":`).
pub fn starts_with_record(reader: impl BufRead) -> std::io::Result<bool> {
    let mut line = Vec::new();
    reader.take(MAX_FIRST_LINE).read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Ok(true);
    }
    if line.last() != Some(&b'\n') {
        return Ok(line.starts_with(br#"{"path":"#));
    }
    Ok(serde_json::from_slice::<ResumeLine>(&line).is_ok())
}

/// Read an existing results file for `--resume`, and cut a partial last
/// line (left by a crash) so appended lines stay whole. A file that is not
/// a results file ([`is_results_file`]) is refused untouched.
pub fn resume(path: &Path) -> Result<ResumeState, ResumeError> {
    resume_with(path, false, |_| {})
}

/// Whether `path` is a results file, plain or zstd: [`starts_with_record`]
/// on its (decompressed) text. A zstd file whose first frame a crash cut
/// short is one when it starts with the zstd magic number (RFC 8878 §3.1.1).
fn is_results_file(path: &Path) -> std::io::Result<bool> {
    if !zstd_lines::is_zstd(path) {
        return starts_with_record(BufReader::new(File::open(path)?));
    }
    let mut magic = Vec::with_capacity(4);
    File::open(path)?.take(4).read_to_end(&mut magic)?;
    if magic.is_empty() {
        return Ok(true);
    }
    if magic != [0x28, 0xb5, 0x2f, 0xfd] {
        return Ok(false);
    }
    Ok(zstd_lines::open_lines(path).and_then(starts_with_record).unwrap_or(true))
}

/// [`resume`], handing each pair's warm record (the first, if a pair is
/// warm twice) to `warm`: the summary of a resumed run counts them, so a
/// shard's summary covers its whole results file and `report merge` of
/// resumed shards stays exact. A torn zstd frame is cut whole. Pairs are
/// keyed by [`route_key`]: by edge too when `by_edge` (the run names its
/// edges; a record's `edge` is otherwise a `--connect-to` address, not part
/// of the pair).
pub fn resume_with(path: &Path, by_edge: bool, warm: impl FnMut(Record)) -> Result<ResumeState, ResumeError> {
    let io = |source| ResumeError::Io { path: path.display().to_string(), source };
    if !path.exists() {
        return Ok(ResumeState::default());
    }
    if !is_results_file(path).map_err(io)? {
        return Err(ResumeError::NotResults { path: path.display().to_string() });
    }
    read_and_trim(path, by_edge, warm).map_err(io)
}

fn read_and_trim(path: &Path, by_edge: bool, mut warm: impl FnMut(Record)) -> std::io::Result<ResumeState> {
    let mut state = ResumeState::default();
    let scan = zstd_lines::scan(path, |line| match serde_json::from_slice::<ResumeLine>(line) {
        Ok(r) if r.outcome == Outcome::Warm => {
            let edge = r.edge.as_deref().filter(|_| by_edge);
            if state.warm.insert(route_key(&r.path, &r.derivative, edge, r.variant.as_deref()))
                && let Ok(record) = serde_json::from_slice::<Record>(line)
            {
                warm(record);
            }
        }
        Ok(_) => {}
        Err(_) => state.dropped += 1,
    })?;
    state.lines = scan.lines;
    state.dropped += u64::from(scan.torn);
    let file = OpenOptions::new().write(true).open(path)?;
    if file.metadata()?.len() > scan.good_end {
        file.set_len(scan.good_end)?;
    }
    Ok(state)
}

/// Now as RFC 3339 with milliseconds.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn record(path: &str, outcome: Outcome) -> Record {
        Record {
            outcome,
            status: Some(200),
            attempts: 1,
            ttfb_ms: Some(1.0),
            total_ms: Some(2.0),
            elapsed_ms: 2.0,
            bytes_read: 10,
            size: Some(10),
            size_method: Some(SizeMethod::WarmContentLength),
            cache: Some(CacheState::Miss),
            cache_status: Some("MISS".into()),
            finished_at: now_rfc3339(),
            ..Record::blank(path, "mobile", 100, SizeClass::Small)
        }
    }

    #[test]
    fn resume_keeps_warm_and_cuts_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        let mut w = ResultsWriter::open(&path, false).unwrap();
        w.write(&record("a.mp4", Outcome::Warm)).unwrap();
        w.write(&record("b.mp4", Outcome::Failed)).unwrap();
        w.flush().unwrap();
        drop(w);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"path":"c.mp4","deriv"#).unwrap();
        drop(f);
        let state = resume(&path).unwrap();
        assert!(state.warm.contains(&pair_key("a.mp4", "mobile")));
        assert!(!state.warm.contains(&pair_key("b.mp4", "mobile")));
        assert_eq!(state.dropped, 1);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.ends_with('\n'));
        assert_eq!(text.lines().count(), 2);
    }

    #[test]
    fn resume_refuses_what_is_not_a_results_file_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let pretty = serde_json::to_string_pretty(&record("a.mp4", Outcome::Warm)).unwrap();
        for text in ["first line\nimportant data without a newline", &pretty, "{}\n", "notes"] {
            let path = dir.path().join("notes.txt");
            std::fs::write(&path, text).unwrap();
            let err = resume(&path).unwrap_err();
            assert!(matches!(err, ResumeError::NotResults { .. }), "{text:?}: {err}");
            assert!(err.to_string().contains("notes.txt"), "{err}");
            assert_eq!(std::fs::read_to_string(&path).unwrap(), text, "left byte for byte");
        }
        // Empty, and a first record torn by a crash, are results files.
        for text in ["", r#"{"path":"a.mp4","deriv"#] {
            let path = dir.path().join("r.jsonl");
            std::fs::write(&path, text).unwrap();
            assert!(resume(&path).is_ok(), "{text:?}");
        }
    }
}
