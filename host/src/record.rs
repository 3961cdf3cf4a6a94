//! The results file: one JSON line per (object, derivative) pair, written as
//! each pair completes and flushed at once, so a crash loses only the pairs
//! in flight; and `--resume`, which reads it back to skip pairs already warm.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::plugin::{CacheState, SizeMethod};
use crate::util::size::SizeClass;

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
    /// HTTP status of the last warm answer.
    pub status: Option<u16>,
    /// Warm requests sent for this pair (polls and retries included).
    pub attempts: u32,
    /// Request sent to headers received, of the last warm request.
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

/// Appends records, one flushed line each.
pub struct ResultsWriter {
    out: BufWriter<File>,
    path: PathBuf,
}

impl ResultsWriter {
    /// Create (truncate) or, when resuming, append.
    pub fn open(path: &Path, append: bool) -> std::io::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).write(true).append(append).truncate(!append).open(path)?;
        Ok(ResultsWriter { out: BufWriter::with_capacity(64 * 1024, file), path: path.to_path_buf() })
    }

    /// Append one line (buffered; see [`ResultsWriter::flush`]).
    pub fn write(&mut self, record: &Record) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, record)?;
        self.out.write_all(b"\n")
    }

    /// Push buffered lines to the file.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
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

/// Read an existing results file for `--resume`, and cut a partial last
/// line (left by a crash) so appended lines stay whole.
pub fn resume(path: &Path) -> std::io::Result<ResumeState> {
    resume_routes(path, false)
}

/// [`resume`] keyed by [`route_key`]: by edge too when `by_edge` (the run
/// names its edges; a record's `edge` is otherwise a `--connect-to`
/// address, not part of the pair).
pub fn resume_routes(path: &Path, by_edge: bool) -> std::io::Result<ResumeState> {
    let mut state = ResumeState::default();
    let Ok(file) = File::open(path) else {
        return Ok(state);
    };
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    let mut good_end = 0u64;
    let mut offset = 0u64;
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        offset += n as u64;
        if line.last() != Some(&b'\n') {
            // A torn final line.
            state.dropped += 1;
            break;
        }
        good_end = offset;
        state.lines += 1;
        match serde_json::from_slice::<ResumeLine>(&line) {
            Ok(r) if r.outcome == Outcome::Warm => {
                let edge = r.edge.as_deref().filter(|_| by_edge);
                state.warm.insert(route_key(&r.path, &r.derivative, edge, r.variant.as_deref()));
            }
            Ok(_) => {}
            Err(_) => state.dropped += 1,
        }
    }
    let file = OpenOptions::new().write(true).open(path)?;
    if file.metadata()?.len() > good_end {
        file.set_len(good_end)?;
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
}
