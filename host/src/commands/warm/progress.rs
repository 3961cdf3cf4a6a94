//! The warm's progress display on a terminal: pairs done, the rate and the
//! outcomes; once the total is known (a saved listing counted ahead, or any
//! listing the moment it ends) a bar, the total, the share done and an ETA;
//! until then, the objects listed so far. The recorder only bumps counters;
//! a ticker draws four times a second, so drawing never slows the run.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{HumanCount, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::ProgressMode;
use crate::listing::{self, Filters, ListingProgress, ListingSnapshot, ListingSource};
use crate::record::{Outcome, Record};
use crate::stats::Stats;
use crate::warm::Observer;

/// How often the line is drawn.
const TICK: Duration = Duration::from_millis(250);

pub(super) struct Progress {
    bar: Option<ProgressBar>,
    counts: Arc<Counts>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

/// What the recorder has seen, for the ticker.
#[derive(Debug, Default)]
struct Counts {
    done: AtomicU64,
    warm: AtomicU64,
    failed: AtomicU64,
    pending: AtomicU64,
}

impl Progress {
    /// A display for `mode` (`auto`: when stderr is a terminal); must be
    /// called inside the runtime (it spawns its ticker).
    pub(super) fn new(mode: ProgressMode, listing: Arc<ListingProgress>, derivatives: usize) -> Self {
        let show = match mode {
            ProgressMode::Always => true,
            ProgressMode::Never => false,
            ProgressMode::Auto => std::io::stderr().is_terminal(),
        };
        let counts = Arc::new(Counts::default());
        if !show {
            return Progress { bar: None, counts, ticker: None };
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4));
        bar.set_style(style("{spinner} {elapsed_precise} {msg}"));
        bar.enable_steady_tick(TICK);
        let ticker = tokio::spawn(tick(bar.clone(), counts.clone(), listing, derivatives as u64));
        Progress { bar: Some(bar), counts, ticker: Some(ticker) }
    }

    /// Count a saved listing ahead of the run, on a blocking thread, so the
    /// display has a total from the start; only when something shows it,
    /// and only a regular file (a pipe's lines belong to the run).
    pub(super) fn count_ahead(&self, source: &ListingSource, filters: &Filters, listing: &Arc<ListingProgress>) {
        let ListingSource::File(path) = source else { return };
        if self.bar.is_none() || !listing::countable(path) {
            return;
        }
        let (path, filters, listing) = (path.clone(), filters.clone(), listing.clone());
        // Not awaited: the count stops by itself once the listing has ended.
        drop(tokio::task::spawn_blocking(move || {
            if let Some(objects) = listing::count_saved(&path, &filters, &listing) {
                listing.set_counted(objects);
            }
        }));
    }

    pub(super) fn finish(&self) {
        if let Some(t) = &self.ticker {
            t.abort();
        }
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_spinner())
}

async fn tick(bar: ProgressBar, counts: Arc<Counts>, listing: Arc<ListingProgress>, derivatives: u64) {
    let mut with_bar = false;
    let mut interval = tokio::time::interval(TICK);
    loop {
        interval.tick().await;
        let status = Status {
            done: counts.done.load(Ordering::Relaxed),
            warm: counts.warm.load(Ordering::Relaxed),
            failed: counts.failed.load(Ordering::Relaxed),
            pending: counts.pending.load(Ordering::Relaxed),
            elapsed: bar.elapsed(),
            listing: listing.snapshot(),
            derivatives,
        };
        if let Some(total) = status.listing.pairs_total(derivatives) {
            if !with_bar {
                bar.set_style(style("{spinner} {elapsed_precise} [{bar:24}] {msg}"));
                with_bar = true;
            }
            bar.set_length(total);
            bar.set_position(status.done.min(total));
        }
        bar.set_message(status_line(&status));
    }
}

impl Observer for Progress {
    fn record(&mut self, _record: &Record, stats: &Stats) {
        if self.bar.is_some() {
            let c = &self.counts;
            c.done.store(stats.pairs, Ordering::Relaxed);
            c.warm.store(stats.count(Outcome::Warm), Ordering::Relaxed);
            c.failed.store(stats.count(Outcome::Failed), Ordering::Relaxed);
            c.pending.store(stats.count(Outcome::Pending), Ordering::Relaxed);
        }
    }
}

/// Everything one drawn line says.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Status {
    /// Pairs recorded.
    pub done: u64,
    pub warm: u64,
    pub failed: u64,
    pub pending: u64,
    /// Since the run started.
    pub elapsed: Duration,
    pub listing: ListingSnapshot,
    /// Derivatives per object.
    pub derivatives: u64,
}

/// The line beside the bar: with a total, `1,234 / 9,000 pairs · 13% ·
/// 120/s · ETA 1m 05s · …`; without one yet, `1,234 pairs done · 8,000
/// objects listed… · …`.
pub(super) fn status_line(s: &Status) -> String {
    let rate = s.done as f64 / s.elapsed.as_secs_f64().max(0.001);
    let mut parts = Vec::with_capacity(8);
    match s.listing.pairs_total(s.derivatives) {
        Some(total) => {
            parts.push(format!("{} / {} pairs", HumanCount(s.done), HumanCount(total)));
            if let Some(share) = (s.done.min(total) * 100).checked_div(total) {
                parts.push(format!("{share}%"));
            }
            parts.push(format!("{}/s", HumanCount(rate.round() as u64)));
            parts.push(eta(total.saturating_sub(s.done), rate));
        }
        None => {
            parts.push(format!("{} pairs done", HumanCount(s.done)));
            let l = &s.listing;
            parts.push(if l.selected == l.listed {
                format!("{} objects listed…", HumanCount(l.listed))
            } else {
                format!("{} objects listed ({} selected)…", HumanCount(l.listed), HumanCount(l.selected))
            });
            parts.push(format!("{}/s", HumanCount(rate.round() as u64)));
        }
    }
    if s.listing.pairs_skipped > 0 {
        parts.push(format!("{} already warm", HumanCount(s.listing.pairs_skipped)));
    }
    parts.push(format!("warm {} · failed {}", HumanCount(s.warm), HumanCount(s.failed)));
    if s.pending > 0 {
        parts.push(format!("pending {}", HumanCount(s.pending)));
    }
    parts.join(" · ")
}

/// `ETA 3m 12s` at the rate so far; unknown before the first pair.
fn eta(remaining: u64, rate: f64) -> String {
    if remaining == 0 {
        return "ETA 0s".into();
    }
    if !(rate.is_finite() && rate > 0.0) {
        return "ETA unknown".into();
    }
    let secs = (remaining as f64 / rate).ceil().min(u64::MAX as f64 / 2.0) as u64;
    format!("ETA {}", short_duration(secs))
}

/// Two units at most, the larger first: `45s`, `3m 12s`, `1h 05m`, `2d 03h`.
fn short_duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s:02}s"),
        (0, _, _) => format!("{h}h {m:02}m"),
        _ => format!("{d}d {h:02}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(done: u64, secs: u64, listing: ListingSnapshot) -> Status {
        Status { done, warm: done, elapsed: Duration::from_secs(secs), listing, derivatives: 3, ..Default::default() }
    }

    #[test]
    fn a_counted_listing_shows_total_share_and_eta() {
        // 3,000 objects × 3 derivatives; 1,500 pairs in 10 s: 150/s, 7,500 left, 50 s.
        let counted = ListingSnapshot { listed: 2000, selected: 1990, counted: Some(3000), ..Default::default() };
        let line = status_line(&status(1500, 10, counted));
        assert_eq!(line, "1,500 / 9,000 pairs · 16% · 150/s · ETA 50s · warm 1,500 · failed 0");
    }

    #[test]
    fn an_rclone_listing_shows_objects_listed_until_it_ends() {
        let listing = ListingSnapshot { listed: 8000, selected: 8000, ..Default::default() };
        let line = status_line(&Status { pending: 2, ..status(123_456, 100, listing) });
        assert_eq!(line, "123,456 pairs done · 8,000 objects listed… · 1,235/s · warm 123,456 · failed 0 · pending 2");
        assert!(!line.contains("ETA"), "{line}");
        let filtered = ListingSnapshot { listed: 8000, selected: 5000, ..Default::default() };
        assert!(status_line(&status(0, 1, filtered)).contains("8,000 objects listed (5,000 selected)…"));
        // The moment it ends, the selected objects are the total.
        let ended =
            ListingSnapshot { listed: 9000, selected: 6000, ended: true, counted: Some(7000), pairs_skipped: 0 };
        let line = status_line(&status(12_000, 100, ended));
        assert!(line.starts_with("12,000 / 18,000 pairs · 66% · 120/s · ETA 50s"), "{line}");
    }

    #[test]
    fn resumed_pairs_leave_the_total() {
        let listing = ListingSnapshot { selected: 100, ended: true, pairs_skipped: 120, ..Default::default() };
        let line = status_line(&status(90, 3, listing));
        assert!(line.starts_with("90 / 180 pairs · 50% · 30/s · ETA 3s · 120 already warm"), "{line}");
    }

    #[test]
    fn eta_reads_at_a_glance() {
        assert_eq!(eta(0, 0.0), "ETA 0s");
        assert_eq!(eta(10, 0.0), "ETA unknown");
        assert_eq!(eta(10, 3.0), "ETA 4s");
        assert_eq!(eta(192, 1.0), "ETA 3m 12s");
        assert_eq!(eta(3900, 1.0), "ETA 1h 05m");
        assert_eq!(eta(2 * 86_400 + 3 * 3600 + 59, 1.0), "ETA 2d 03h");
        assert_eq!(eta(u64::MAX, 1e-9), eta(u64::MAX, 1e-9), "no overflow");
        // More done than counted (a path listed twice): no share above 100%, no ETA below 0.
        let over = ListingSnapshot { counted: Some(1), ..Default::default() };
        assert!(status_line(&status(5, 1, over)).starts_with("5 / 3 pairs · 100% · 5/s · ETA 0s"));
    }
}
