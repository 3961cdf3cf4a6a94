//! How far a listing has got, for a progress display: counters the listing
//! stage bumps as it goes ([`ListingProgress`]), and [`count_saved`], which
//! counts a saved listing ahead of the run with the run's own filters so
//! the display can show a total and an ETA from the start.

use std::io::{BufRead, Read};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::{Entry, Filters, Line, MAX_LINE, parse_line};

/// Shared between the listing (which writes) and a display (which reads
/// whenever it likes); plain atomics, so the listing never waits for it.
#[derive(Debug)]
pub struct ListingProgress {
    /// Objects seen so far (files only, before the filters).
    pub(super) listed: AtomicU64,
    /// Objects that passed the filters and were sent on.
    pub(super) selected: AtomicU64,
    /// The listing has ended: `selected` is final.
    pub(super) ended: AtomicBool,
    /// Objects a saved listing holds after the filters, counted ahead;
    /// `NOT_COUNTED` until known.
    counted: AtomicU64,
    /// Pairs the run will not do although their object was selected
    /// (already warm, with `--resume`).
    pairs_skipped: AtomicU64,
}

const NOT_COUNTED: u64 = u64::MAX;

impl Default for ListingProgress {
    fn default() -> Self {
        ListingProgress {
            listed: AtomicU64::new(0),
            selected: AtomicU64::new(0),
            ended: AtomicBool::new(false),
            counted: AtomicU64::new(NOT_COUNTED),
            pairs_skipped: AtomicU64::new(0),
        }
    }
}

impl ListingProgress {
    /// A pair of a selected object that the run skips (`--resume`).
    pub fn skip_pair(&self) {
        self.pairs_skipped.fetch_add(1, Ordering::Relaxed);
    }

    /// Record the count from [`count_saved`].
    pub fn set_counted(&self, objects: u64) {
        self.counted.store(objects, Ordering::Release);
    }

    /// Whether the listing has ended (then counting ahead is moot).
    pub fn ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    pub fn snapshot(&self) -> ListingSnapshot {
        // `ended` first: once it reads true, `selected` is final.
        let ended = self.ended();
        let counted = self.counted.load(Ordering::Acquire);
        ListingSnapshot {
            listed: self.listed.load(Ordering::Relaxed),
            selected: self.selected.load(Ordering::Relaxed),
            ended,
            counted: (counted != NOT_COUNTED).then_some(counted),
            pairs_skipped: self.pairs_skipped.load(Ordering::Relaxed),
        }
    }
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListingSnapshot {
    pub listed: u64,
    pub selected: u64,
    pub ended: bool,
    /// The saved listing's count ahead of the run, once known.
    pub counted: Option<u64>,
    pub pairs_skipped: u64,
}

impl ListingSnapshot {
    /// The objects the run takes, once known: exact when the listing has
    /// ended, else the count ahead (which cannot see paths listed twice,
    /// warmed once: rare, and corrected when the listing ends).
    pub fn objects_total(&self) -> Option<u64> {
        if self.ended { Some(self.selected) } else { self.counted }
    }

    /// The pairs the run does, once known: the objects' pairs less those
    /// skipped as already warm (so far: `--resume` skips are learnt as the
    /// listing reaches them, and only lower the total).
    pub fn pairs_total(&self, derivatives: u64) -> Option<u64> {
        self.objects_total().map(|o| (o * derivatives).saturating_sub(self.pairs_skipped))
    }
}

/// Count the objects of a saved listing file that the run will take: the
/// same parsing, filters (shard included) and `--limit` as the listing
/// stage, without sending anything. Stops early, with `None`, once
/// `progress` says the real listing has ended (the count is moot) or on an
/// unreadable or malformed line (the run reports it).
pub fn count_saved(path: &Path, filters: &Filters, progress: &ListingProgress) -> Option<u64> {
    let file = std::fs::File::open(path).ok()?;
    let mut reader = std::io::BufReader::with_capacity(64 * 1024, file);
    let mut buf = Vec::with_capacity(1024);
    let mut selected = 0u64;
    loop {
        if filters.limit.is_some_and(|l| selected >= l) {
            return Some(selected);
        }
        buf.clear();
        let n = (&mut reader).take(MAX_LINE as u64 + 1).read_until(b'\n', &mut buf).ok()?;
        if n == 0 {
            return Some(selected);
        }
        if buf.len() > MAX_LINE || progress.ended() {
            return None;
        }
        let entries = match parse_line(std::str::from_utf8(&buf).ok()?).ok()? {
            Line::Nothing => continue,
            Line::One(e) => vec![e],
            Line::Many(many) => many,
        };
        for e in entries {
            if let Entry::Object { object, mod_time, .. } = e
                && filters.accepts_modified(mod_time.as_deref()).ok()?
                && filters.accepts(&object)
                && filters.limit.is_none_or(|l| selected < l)
            {
                selected += 1;
            }
        }
    }
}

/// Whether [`count_saved`] can read `path` without taking lines from the
/// run: a regular file, not a pipe (`--listing <(rclone lsjson ...)`).
pub fn countable(path: &Path) -> bool {
    path.metadata().is_ok_and(|m| m.is_file())
}
