//! The listing stage: objects streamed from one `rclone lsjson -R` child
//! process or a saved listing (file or stdin), parsed line by line, filtered
//! as they arrive and sent down a bounded channel, so memory never depends
//! on the number of objects.
//!
//! `--limit N` takes the first N objects in listing order that pass the
//! filters (not the largest N): a listing is never held whole.
//!
//! [`ListingProgress`] tells a progress display how far the listing has
//! got, and [`count_saved`] counts a saved listing ahead of the run, with
//! the run's own filters, so the display can show a total.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt as _, BufReader};
use tokio::sync::mpsc;

use crate::cli::SourceArgs;
use crate::rclone::{Rclone, RcloneError};
use crate::util::size::{SizeClasses, parse_size};

mod filters;
pub mod newer_than;
mod progress;
pub use filters::{Filters, Shard};
pub use progress::{ListingProgress, ListingSnapshot, count_saved, countable};

/// One source object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Object {
    /// Path relative to the listed root, `/`-separated, as rclone gives it.
    pub path: String,
    /// Size in bytes (0 when the backend does not know it).
    pub size: u64,
}

/// Longest listing line accepted; a longer one is an error, not a memory
/// blow-up.
const MAX_LINE: usize = 1 << 20;

/// How many parsed objects may wait between the listing and its consumer.
const CHANNEL_DEPTH: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum ListingError {
    #[error("listing {source_name} line {line}: {message}")]
    Malformed { source_name: String, line: u64, message: String },
    #[error("cannot read listing {source_name}: {error}")]
    Read { source_name: String, error: std::io::Error },
    #[error("{option}: {message}")]
    BadFilter { option: &'static str, message: String },
    #[error(transparent)]
    Rclone(#[from] RcloneError),
}

impl ListingError {
    /// Whether the listing failed on what the user gave (a malformed or
    /// unreadable listing, a bad filter, a source that is not there), not
    /// on a network or backend fault a retry may get past.
    pub fn is_usage(&self) -> bool {
        match self {
            ListingError::Rclone(e) => e.is_usage(),
            _ => true,
        }
    }
}

/// Where the listing comes from.
#[derive(Debug, Clone)]
pub enum ListingSource {
    /// `rclone lsjson -R` of a remote path.
    Rclone { rclone: Rclone, remote: String },
    /// A saved listing file.
    File(PathBuf),
    /// A saved listing on standard input.
    Stdin,
}

impl ListingSource {
    pub fn from_args(
        args: &SourceArgs,
        rclone: impl FnOnce() -> Result<Rclone, RcloneError>,
    ) -> Result<Self, ListingError> {
        match (&args.source, &args.listing) {
            (_, Some(l)) if l == "-" => Ok(ListingSource::Stdin),
            (_, Some(l)) => {
                let path = PathBuf::from(l);
                // Pipes (`--listing <(rclone lsjson ...)`) count as files.
                if !path.exists() || path.is_dir() {
                    return Err(ListingError::Read {
                        source_name: l.clone(),
                        error: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
                    });
                }
                Ok(ListingSource::File(path))
            }
            (Some(remote), None) => Ok(ListingSource::Rclone { rclone: rclone()?, remote: remote.clone() }),
            (None, None) => Err(ListingError::BadFilter {
                option: "--source",
                message: "give --source REMOTE:PATH or --listing FILE|-".into(),
            }),
        }
    }

    fn name(&self) -> String {
        match self {
            ListingSource::Rclone { remote, .. } => crate::util::rclone_secrets::redact_remote(remote),
            ListingSource::File(p) => p.display().to_string(),
            ListingSource::Stdin => "(stdin)".into(),
        }
    }
}

/// What the listing stage reports when it ends.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ListingTotals {
    /// Objects seen in the listing (files only).
    pub seen: u64,
    /// Objects that passed the filters and were sent on.
    pub selected: u64,
    /// Directory entries (`IsDir: true`), skipped.
    pub directories: u64,
    /// Folder markers (keys ending in `/`, which S3-style consoles create),
    /// skipped.
    pub folder_markers: u64,
    /// Selected paths listed again (Google Drive allows two files with one
    /// name): warmed once, the later entries ignored.
    pub duplicates: u64,
    /// Objects whose size the backend does not know (rclone's `Size: -1`),
    /// taken with size 0.
    pub unknown_size: u64,
    /// The consumer stopped taking objects, or the limit was reached.
    #[serde(skip)]
    pub stopped_early: bool,
}

/// Start streaming: returns the receiving end and the task that feeds it.
/// The task ends with the totals, or the first error (after which nothing
/// half-parsed has been sent).
pub fn stream(
    source: ListingSource,
    filters: Filters,
) -> (mpsc::Receiver<Object>, tokio::task::JoinHandle<Result<ListingTotals, ListingError>>) {
    stream_with_progress(source, filters, Arc::default())
}

/// [`stream`], keeping `progress` up to date as objects are listed.
pub fn stream_with_progress(
    source: ListingSource,
    filters: Filters,
    progress: Arc<ListingProgress>,
) -> (mpsc::Receiver<Object>, tokio::task::JoinHandle<Result<ListingTotals, ListingError>>) {
    let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
    let task = tokio::spawn(async move {
        let name = source.name();
        let sink = Sink { tx: &tx, progress: &progress };
        let result = match source {
            ListingSource::File(path) => match tokio::fs::File::open(&path).await {
                Ok(file) => pump(BufReader::with_capacity(64 * 1024, file), &name, &filters, sink).await,
                Err(error) => Err(ListingError::Read { source_name: name.clone(), error }),
            },
            ListingSource::Stdin => pump(BufReader::new(tokio::io::stdin()), &name, &filters, sink).await,
            ListingSource::Rclone { rclone, remote } => rclone_listing(&rclone, &remote, &name, &filters, sink).await,
        };
        // Whatever the ending, nothing more will be listed: the counts are final.
        progress.ended.store(true, Ordering::Release);
        result
    });
    (rx, task)
}

async fn rclone_listing(
    rclone: &Rclone,
    remote: &str,
    name: &str,
    filters: &Filters,
    sink: Sink<'_>,
) -> Result<ListingTotals, ListingError> {
    let mut child = rclone.lsjson(remote, filters.newer_than.map(newer_than::rclone_max_age).as_deref())?;
    let stdout = child.stdout();
    let pumped = pump(BufReader::with_capacity(64 * 1024, stdout), name, filters, sink).await;
    // When the limit stopped us early, rclone's exit is moot.
    let finished = child.finish(pumped.as_ref().is_ok_and(|t| t.stopped_early)).await;
    let totals = pumped?;
    finished?;
    Ok(totals)
}

/// Where [`pump`] sends objects, and the counters it keeps.
#[derive(Clone, Copy)]
struct Sink<'a> {
    tx: &'a mpsc::Sender<Object>,
    progress: &'a ListingProgress,
}

#[derive(Deserialize)]
struct LsjsonEntry {
    #[serde(rename = "Path")]
    path: String,
    #[serde(rename = "Size", default)]
    size: i64,
    #[serde(rename = "IsDir", default)]
    is_dir: bool,
    #[serde(rename = "ModTime", default)]
    mod_time: Option<String>,
}

/// One listing entry.
#[derive(Debug, PartialEq, Eq)]
pub enum Entry {
    /// An object to warm. `size_known` is false for rclone's `Size: -1`;
    /// `mod_time` is rclone's `ModTime`, when listed.
    Object { object: Object, size_known: bool, mod_time: Option<String> },
    /// A directory (`IsDir: true`), with its path.
    Directory(String),
    /// A zero-length key ending in `/`: a folder marker, not a video.
    FolderMarker(String),
}

/// What one listing line holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// Framing (`[`, `]`) or a blank line.
    Nothing,
    /// One entry: rclone's own layout, or JSON lines.
    One(Entry),
    /// A whole array on one line (`jq -c` output), up to the line limit.
    Many(Vec<Entry>),
}

fn entry(e: LsjsonEntry) -> Result<Entry, String> {
    if e.path.is_empty() {
        return Err("entry with an empty Path".into());
    }
    if e.is_dir {
        return Ok(Entry::Directory(e.path));
    }
    if e.path.ends_with('/') {
        return Ok(Entry::FolderMarker(e.path));
    }
    // rclone writes -1 when the backend cannot tell the size.
    let size_known = e.size >= 0;
    Ok(Entry::Object {
        object: Object { path: e.path, size: u64::try_from(e.size).unwrap_or(0) },
        size_known,
        mod_time: e.mod_time,
    })
}

/// Parse one listing line: `[`, `]`, blank, one object (with or without
/// the trailing comma rclone writes), or a compact array of objects.
pub fn parse_line(line: &str) -> Result<Line, String> {
    let line = line.trim();
    let line = line.strip_suffix(',').unwrap_or(line).trim();
    if line.is_empty() || line == "[" || line == "]" {
        return Ok(Line::Nothing);
    }
    if line.starts_with('[') {
        let entries: Vec<LsjsonEntry> =
            serde_json::from_str(line).map_err(|e| format!("not an array of rclone lsjson objects ({e})"))?;
        return entries.into_iter().map(entry).collect::<Result<_, _>>().map(Line::Many);
    }
    let e: LsjsonEntry = serde_json::from_str(line).map_err(|e| format!("not an rclone lsjson object ({e})"))?;
    entry(e).map(Line::One)
}

/// Paths already sent on, to make a path listed twice one object. Keeps a
/// 64-bit SipHash-1-3 of each selected path in 4096 sorted arrays that grow
/// by an eighth at a time: about 11 bytes an object (BENCHMARKS.md), and
/// growing one array never holds two copies of the whole set. Two different
/// paths share a hash with odds near n²/2⁶⁵ (1 in 37 million at a million
/// objects).
struct SeenPaths {
    segments: Vec<Vec<u64>>,
}

/// How many sorted arrays the hashes are spread over.
const SEGMENTS: usize = 4096;

impl Default for SeenPaths {
    fn default() -> Self {
        SeenPaths { segments: vec![Vec::new(); SEGMENTS] }
    }
}

impl SeenPaths {
    /// True the first time `path` is offered.
    fn first(&mut self, path: &str) -> bool {
        use std::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        path.hash(&mut h);
        let hash = h.finish();
        let segment = &mut self.segments[(hash >> 52) as usize];
        match segment.binary_search(&hash) {
            Ok(_) => false,
            Err(at) => {
                if segment.len() == segment.capacity() {
                    segment.reserve_exact((segment.len() / 8).max(4));
                }
                segment.insert(at, hash);
                true
            }
        }
    }
}

async fn pump<R: AsyncBufRead + Unpin>(
    mut reader: R,
    name: &str,
    filters: &Filters,
    sink: Sink<'_>,
) -> Result<ListingTotals, ListingError> {
    let mut totals = ListingTotals::default();
    let mut seen_paths = SeenPaths::default();
    let mut buf = Vec::with_capacity(1024);
    let mut line_no = 0u64;
    let mut flat = FlatListing::default();
    loop {
        buf.clear();
        let n = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .await
            .map_err(|error| ListingError::Read { source_name: name.to_string(), error })?;
        if n == 0 {
            flat.warn(name);
            return Ok(totals);
        }
        line_no += 1;
        let malformed =
            |message: String| ListingError::Malformed { source_name: name.to_string(), line: line_no, message };
        if buf.len() > MAX_LINE {
            return Err(malformed(format!("line longer than {MAX_LINE} bytes")));
        }
        let text = std::str::from_utf8(&buf).map_err(|_| malformed("not valid UTF-8".into()))?;
        let entries = match parse_line(text).map_err(malformed)? {
            Line::Nothing => continue,
            Line::One(e) => vec![e],
            Line::Many(many) => many,
        };
        for e in entries {
            let object = match e {
                Entry::Object { object, size_known, mod_time } => {
                    totals.unknown_size += u64::from(!size_known);
                    if !filters.accepts_modified(mod_time.as_deref()).map_err(malformed)? {
                        totals.seen += 1;
                        sink.progress.listed.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    object
                }
                Entry::Directory(_) => {
                    totals.directories += 1;
                    flat.note_directory();
                    continue;
                }
                Entry::FolderMarker(_) => {
                    totals.folder_markers += 1;
                    continue;
                }
            };
            flat.note_object(&object);
            totals.seen += 1;
            sink.progress.listed.fetch_add(1, Ordering::Relaxed);
            if !filters.accepts(&object) {
                continue;
            }
            if !seen_paths.first(&object.path) {
                if totals.duplicates == 0 {
                    tracing::warn!(
                        "listing {name} line {line_no}: `{}` is listed more than once; it is warmed once and the \
                         later entries are ignored (counted as duplicates in the summary)",
                        object.path
                    );
                }
                totals.duplicates += 1;
                continue;
            }
            if sink.tx.send(object).await.is_err() {
                // The consumer stopped (Ctrl-C, or it has all it wants).
                totals.stopped_early = true;
                return Ok(totals);
            }
            totals.selected += 1;
            sink.progress.selected.fetch_add(1, Ordering::Relaxed);
            if filters.limit.is_some_and(|l| totals.selected >= l) {
                totals.stopped_early = true;
                return Ok(totals);
            }
        }
    }
}

/// Spots a listing saved without `-R`: directory entries, and no path below
/// any of them, so only the top level would be warmed. Warned once, when the
/// listing ends (a listing stopped early by `--limit` proves nothing).
#[derive(Debug, Default)]
struct FlatListing {
    directories: u64,
    nested: bool,
}

impl FlatListing {
    fn note_directory(&mut self) {
        self.directories += 1;
    }

    fn note_object(&mut self, object: &Object) {
        self.nested |= object.path.contains('/');
    }

    fn is_flat(&self) -> bool {
        self.directories > 0 && !self.nested
    }

    fn warn(&self, name: &str) {
        if self.is_flat() {
            tracing::warn!(
                "listing {name} has {} and no path below any of them: it looks saved without -R (`rclone lsjson \
                 -R`), so only its top level is warmed",
                if self.directories == 1 {
                    "1 directory entry".to_string()
                } else {
                    format!("{} directory entries", self.directories)
                }
            );
        }
    }
}

/// Size classes from the arguments.
pub fn size_classes(args: &SourceArgs) -> Result<SizeClasses, ListingError> {
    let small = parse_size(&args.small_below)
        .map_err(|message| ListingError::BadFilter { option: "--small-below", message })?;
    let medium = parse_size(&args.medium_below)
        .map_err(|message| ListingError::BadFilter { option: "--medium-below", message })?;
    SizeClasses::new(small, medium).map_err(|message| ListingError::BadFilter { option: "--small-below", message })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rclone_framing() {
        assert_eq!(parse_line("[").unwrap(), Line::Nothing);
        assert_eq!(parse_line("]").unwrap(), Line::Nothing);
        let obj = |path: &str, size| Entry::Object {
            object: Object { path: path.into(), size },
            size_known: true,
            mod_time: None,
        };
        assert_eq!(
            parse_line(r#"{"Path":"a/b c.mp4","Name":"b c.mp4","Size":12,"IsDir":false},"#).unwrap(),
            Line::One(obj("a/b c.mp4", 12))
        );
        assert_eq!(
            parse_line(r#"{"Path":"dir","Size":-1,"IsDir":true}"#).unwrap(),
            Line::One(Entry::Directory("dir".into()))
        );
        assert_eq!(
            parse_line(r#"{"Path":"dir/","Size":0,"IsDir":false}"#).unwrap(),
            Line::One(Entry::FolderMarker("dir/".into()))
        );
        assert_eq!(
            parse_line(r#"{"Path":"doc.mp4","Size":-1}"#).unwrap(),
            Line::One(Entry::Object {
                object: Object { path: "doc.mp4".into(), size: 0 },
                size_known: false,
                mod_time: None
            })
        );
        assert_eq!(
            parse_line(r#"[{"Path":"a","Size":1},{"Path":"d","IsDir":true},{"Path":"b","Size":2}]"#).unwrap(),
            Line::Many(vec![obj("a", 1), Entry::Directory("d".into()), obj("b", 2)])
        );
        assert!(parse_line(r#"{"Path":"x", "Size": "#).is_err());
    }

    #[test]
    fn a_path_is_taken_once() {
        let mut seen = SeenPaths::default();
        assert!(seen.first("a/b.mp4"));
        assert!(seen.first("a/c.mp4"));
        assert!(!seen.first("a/b.mp4"));
        assert!(seen.first("a//b.mp4"));
    }

    #[test]
    fn a_listing_without_recursion_is_spotted() {
        let flat = |lines: &[&str]| {
            let mut f = FlatListing::default();
            for l in lines {
                match parse_line(l) {
                    Ok(Line::One(Entry::Directory(_))) => f.note_directory(),
                    Ok(Line::One(Entry::Object { object, .. })) => f.note_object(&object),
                    _ => {}
                }
            }
            f.is_flat()
        };
        let dir = r#"{"Path":"season 1","Name":"season 1","Size":-1,"IsDir":true},"#;
        let top = r#"{"Path":"intro.mp4","Name":"intro.mp4","Size":10,"IsDir":false},"#;
        let below = r#"{"Path":"season 1/e1.mp4","Name":"e1.mp4","Size":10,"IsDir":false},"#;
        assert!(flat(&["[", dir, top, "]"]));
        assert!(flat(&[r#"{"Path":"d", "IsDir" : true}"#]));
        assert!(!flat(&["[", dir, top, below, "]"]));
        assert!(!flat(&["[", top, "]"]));
    }

    #[test]
    fn shards_partition_paths() {
        let shards: Vec<Shard> = (0..4).map(|i| Shard { index: i, count: 4 }).collect();
        for n in 0..1000 {
            let path = format!("videos/{n}.mp4");
            assert_eq!(shards.iter().filter(|s| s.contains(&path)).count(), 1);
        }
        assert!(Shard::parse("4/4").is_err());
        assert_eq!(Shard::parse("1/4").unwrap(), Shard { index: 1, count: 4 });
    }

    /// The count ahead equals what the listing stage sends, whatever the
    /// filters: extensions, sizes, globs, shard, limit, directory entries,
    /// folder markers, a compact array line.
    #[tokio::test]
    async fn counting_ahead_matches_the_stream() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("listing.json");
        let mut text = String::from("[\n");
        for i in 0..300u64 {
            let ext = ["mp4", "MOV", "txt"][(i % 3) as usize];
            let line =
                format!(r#"{{"Path":"d{}/v{i}.{ext}","Name":"v{i}.{ext}","Size":{},"IsDir":false}},"#, i % 7, i * 10);
            text.push_str(&line);
            text.push('\n');
        }
        text.push_str("{\"Path\":\"d1\",\"Size\":-1,\"IsDir\":true},\n{\"Path\":\"d2/\",\"Size\":0},\n");
        text.push_str("[{\"Path\":\"x/a.mp4\",\"Size\":5000},{\"Path\":\"x/b.mp4\",\"Size\":-1}]\n]\n");
        std::fs::write(&path, text).unwrap();

        let args = |extra: &[&str]| {
            let cli = crate::cli::Cli::try_parse_from(
                ["prewarm", "list", "--listing", path.to_str().unwrap()].iter().copied().chain(extra.iter().copied()),
            )
            .unwrap();
            let crate::cli::Command::List(list) = cli.command else { unreachable!() };
            let mut filters = Filters::from_args(&list.source).unwrap();
            filters.shard = list.source.shard.as_deref().map(|s| Shard::parse(s).unwrap());
            filters
        };
        use clap::Parser as _;
        let cases: [&[&str]; 6] = [
            &[],
            &["--extensions", "mp4,mov"],
            &["--extensions", "mp4", "--min-size", "500", "--max-size", "2000"],
            &["--include", "d3/**", "--exclude", "**/*.txt"],
            &["--shard", "1/3", "--extensions", "mov"],
            &["--shard", "0/2", "--limit", "17"],
        ];
        for case in cases {
            let filters = args(case);
            let progress = Arc::new(ListingProgress::default());
            let counted = count_saved(&path, &filters, &progress).unwrap();
            let (mut rx, task) = stream_with_progress(ListingSource::File(path.clone()), filters, progress.clone());
            let mut streamed = 0u64;
            while rx.recv().await.is_some() {
                streamed += 1;
            }
            let totals = task.await.unwrap().unwrap();
            assert_eq!(counted, streamed, "{case:?}");
            assert!(counted > 0, "{case:?}: a case that selects nothing proves little");
            let seen = progress.snapshot();
            assert!(seen.ended, "{case:?}");
            assert_eq!((seen.selected, seen.listed), (totals.selected, totals.seen), "{case:?}");
            // Once the listing has ended, counting again is moot and stops.
            assert_eq!(count_saved(&path, &args(case), &progress), None, "{case:?}");
        }
    }
}
