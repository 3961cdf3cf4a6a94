//! `--max-failures N|P%`: a run pointed at the wrong place stops instead
//! of failing every pair for hours. Engine threads count each finished pair
//! as it ends (atomics, no lock on the hot path); once the budget is spent
//! the run's stop token fires: the dispatcher takes no more pairs, pairs
//! not yet started are recorded `skipped` with kind `stopped` (so
//! `--resume` takes them up), and pairs in flight finish. The recorder
//! keeps one example per failure kind for the one-line reason.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio_util::sync::CancellationToken;

use crate::record::{Outcome, Record};

/// Pairs that must have finished before a share (`P%`) can stop a run:
/// two early failures out of three prove nothing.
pub const MIN_SAMPLE: u64 = 100;

/// How many failures stop the run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    Count(u64),
    /// A fraction of the pairs finished (0 < f <= 1), after [`MIN_SAMPLE`].
    Share(f64),
}

impl Limit {
    /// `50` or `20%`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let text = raw.trim();
        let bad = || format!("--max-failures {raw}: expected a count (50) or a share of the pairs (20%)");
        if let Some(p) = text.strip_suffix('%') {
            let p: f64 = p.trim().parse().map_err(|_| bad())?;
            if !(p > 0.0 && p <= 100.0) {
                return Err(format!("--max-failures {raw}: a share must be above 0% and at most 100%"));
            }
            return Ok(Limit::Share(p / 100.0));
        }
        match text.parse::<u64>() {
            Ok(0) => Err(format!("--max-failures {raw}: must be at least 1")),
            Ok(n) => Ok(Limit::Count(n)),
            Err(_) => Err(bad()),
        }
    }

    fn spent(self, failed: u64, finished: u64) -> bool {
        match self {
            Limit::Count(n) => failed >= n,
            Limit::Share(f) => finished >= MIN_SAMPLE && failed as f64 >= f * finished as f64,
        }
    }
}

/// The run's failure budget, shared by the engine threads and the recorder.
pub struct FailureBudget {
    limit: Limit,
    failed: AtomicU64,
    finished: AtomicU64,
    stop: CancellationToken,
    /// Failures counted per kind, with the first of each.
    examples: Mutex<BTreeMap<String, Example>>,
}

/// Failures of a kind counted, and the first one's URL (redacted) and
/// last status.
type Example = (u64, Option<String>, Option<u16>);

impl FailureBudget {
    /// A budget whose stop token is a child of the run's (Ctrl-C stops too).
    pub fn new(limit: Limit, cancel: &CancellationToken) -> Self {
        FailureBudget {
            limit,
            failed: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            stop: cancel.child_token(),
            examples: Mutex::default(),
        }
    }

    /// Count a finished pair (engine threads); spends the budget when due.
    /// Pairs that never sent a request (skipped) are not counted, nor an
    /// `edge_down` failure: a dead edge fails its own pairs at once and
    /// must not stop the other edges.
    pub fn note(&self, record: &Record) {
        if record.outcome == Outcome::Skipped {
            return;
        }
        let finished = self.finished.fetch_add(1, Ordering::Relaxed) + 1;
        if !counts(record) {
            return;
        }
        let failed = self.failed.fetch_add(1, Ordering::Relaxed) + 1;
        if self.limit.spent(failed, finished) {
            self.stop.cancel();
        }
    }

    /// Fires when the run must take no new pair.
    pub fn token(&self) -> &CancellationToken {
        &self.stop
    }

    /// Whether the budget (not Ctrl-C) stopped the run.
    pub fn spent(&self) -> bool {
        self.limit.spent(self.failed.load(Ordering::Relaxed), self.finished.load(Ordering::Relaxed))
    }

    /// Count each failure the budget counts by kind, keeping the first of
    /// each kind as its example (recorder).
    pub fn example(&self, record: &Record) {
        if !counts(record) {
            return;
        }
        let kind = record.error_kind.clone().unwrap_or_else(|| "unknown".into());
        let mut examples = self.examples.lock().unwrap_or_else(|p| p.into_inner());
        examples.entry(kind).or_insert_with(|| (0, record.url.clone(), record.status)).0 += 1;
    }

    /// `stopped after 50 failures: not_found (HTTP 404) for https://…`,
    /// naming the most common kind of the failures counted.
    pub fn reason(&self) -> String {
        let failed = self.failed.load(Ordering::Relaxed);
        let limit = match self.limit {
            Limit::Count(_) => String::new(),
            Limit::Share(f) => {
                let finished = self.finished.load(Ordering::Relaxed);
                format!(" of {finished} pairs (--max-failures {}%)", f * 100.0)
            }
        };
        let mut line = format!("stopped after {} failures{limit}", failed);
        let examples = self.examples.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((kind, (_, url, status))) = examples.iter().max_by_key(|(k, e)| (e.0, std::cmp::Reverse(*k))) {
            line.push_str(&format!(": {kind}"));
            if let Some(s) = status {
                line.push_str(&format!(" (HTTP {s})"));
            }
            if let Some(u) = url {
                line.push_str(&format!(" for {u}"));
            }
        }
        line
    }
}

/// Whether a record spends the budget: a failure other than `edge_down`.
fn counts(record: &Record) -> bool {
    record.outcome == Outcome::Failed && record.error_kind.as_deref() != Some("edge_down")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::size::SizeClass;

    fn failed(kind: &str, status: u16) -> Record {
        let mut r = Record::blank("a.mp4", "mobile", 1, SizeClass::Small);
        r.outcome = Outcome::Failed;
        r.error_kind = Some(kind.into());
        r.status = Some(status);
        r.url = Some(format!("https://cdn.example/{status}"));
        r
    }

    #[test]
    fn limits_parse_and_spend() {
        assert_eq!(Limit::parse("50"), Ok(Limit::Count(50)));
        assert_eq!(Limit::parse("20%"), Ok(Limit::Share(0.2)));
        assert!(Limit::parse("0").is_err());
        assert!(Limit::parse("150%").is_err());
        assert!(Limit::parse("lots").unwrap_err().contains("expected a count"));
        assert!(Limit::Count(3).spent(3, 3));
        assert!(!Limit::Share(0.5).spent(60, 99), "below the minimum sample");
        assert!(Limit::Share(0.5).spent(60, 100));
    }

    #[test]
    fn the_reason_names_the_most_common_kind_with_an_example() {
        let cancel = CancellationToken::new();
        let budget = FailureBudget::new(Limit::Count(3), &cancel);
        let ok = Record { outcome: Outcome::Warm, ..Record::blank("b.mp4", "mobile", 1, SizeClass::Small) };
        // Neither a pair never started nor a dead edge's failure spends it.
        let mut skipped = failed("stopped", 0);
        skipped.outcome = Outcome::Skipped;
        let down = failed("edge_down", 0);
        for r in [failed("server_error", 503), ok, skipped.clone(), down.clone(), skipped, down] {
            budget.example(&r);
            budget.note(&r);
        }
        for r in [failed("not_found", 404), failed("not_found", 405)] {
            budget.example(&r);
            assert!(!budget.token().is_cancelled());
            budget.note(&r);
        }
        assert!(budget.token().is_cancelled() && budget.spent() && !cancel.is_cancelled());
        assert_eq!(budget.reason(), "stopped after 3 failures: not_found (HTTP 404) for https://cdn.example/404");
    }
}
