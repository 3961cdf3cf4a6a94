//! The run at a glance, for the report's charts: cache states per derivative,
//! and a timeline of the run (pairs, failures and 429 pauses over time).
//!
//! The timeline lives in fixed memory: at most [`MAX_BUCKETS`] buckets, the
//! first one second wide; when the run outgrows them, neighbours merge and
//! the width doubles, so a ten-hour run costs what a ten-minute one does.
//! Widths are always one second times a power of two, so two timelines merge
//! exactly (shards align at their own start).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::record::{Outcome, Record};

/// Most buckets a timeline holds.
pub const MAX_BUCKETS: usize = 120;

/// Width of a bucket before any coarsening.
const FIRST_BUCKET_MS: u64 = 1000;

/// What happened in one stretch of the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    /// Pairs finished (recorded) in this stretch.
    pub pairs: u64,
    /// Of those, pairs that ended `failed`.
    pub failed: u64,
    /// Run-wide pauses ordered by a 429 answer in this stretch.
    pub rate_limit_pauses: u64,
}

impl Bucket {
    fn add(&mut self, o: &Bucket) {
        self.pairs += o.pairs;
        self.failed += o.failed;
        self.rate_limit_pauses += o.rate_limit_pauses;
    }
}

/// The run over time: bucket `i` covers `[i, i + 1) × bucket_ms` from the
/// start of the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeline {
    /// Width of every bucket, milliseconds (1000 × a power of two).
    pub bucket_ms: u64,
    pub buckets: Vec<Bucket>,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline { bucket_ms: FIRST_BUCKET_MS, buckets: Vec::new() }
    }
}

impl Timeline {
    /// The bucket for `at` since the start, coarsening until it fits.
    fn slot(&mut self, at: Duration) -> &mut Bucket {
        let ms = u64::try_from(at.as_millis()).unwrap_or(u64::MAX);
        while ms / self.bucket_ms >= MAX_BUCKETS as u64 {
            self.coarsen();
        }
        let index = (ms / self.bucket_ms) as usize;
        if self.buckets.len() <= index {
            self.buckets.resize(index + 1, Bucket::default());
        }
        &mut self.buckets[index]
    }

    /// Halve the resolution: buckets 2i and 2i+1 become bucket i.
    fn coarsen(&mut self) {
        self.bucket_ms = self.bucket_ms.saturating_mul(2);
        let merged = self
            .buckets
            .chunks(2)
            .map(|pair| {
                let mut b = pair[0];
                if let Some(second) = pair.get(1) {
                    b.add(second);
                }
                b
            })
            .collect();
        self.buckets = merged;
    }

    /// A pair finished `at` after the start.
    pub fn add_pair(&mut self, at: Duration, outcome: Outcome) {
        let b = self.slot(at);
        b.pairs += 1;
        b.failed += u64::from(outcome == Outcome::Failed);
    }

    /// The CDN answered 429 and the run paused, `at` after the start.
    pub fn add_pause(&mut self, at: Duration) {
        self.slot(at).rate_limit_pauses += 1;
    }

    /// Add another timeline bucket by bucket, both measured from their own start.
    pub fn merge(&mut self, other: &Timeline) {
        let mut other = other.clone();
        while other.bucket_ms < self.bucket_ms {
            other.coarsen();
        }
        while self.bucket_ms < other.bucket_ms {
            self.coarsen();
        }
        if self.buckets.len() < other.buckets.len() {
            self.buckets.resize(other.buckets.len(), Bucket::default());
        }
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            mine.add(theirs);
        }
        while self.buckets.len() > MAX_BUCKETS {
            self.coarsen();
        }
    }

    /// Sum over every bucket.
    pub fn total(&self) -> Bucket {
        let mut t = Bucket::default();
        for b in &self.buckets {
            t.add(b);
        }
        t
    }
}

/// The overview kept beside the statistics (serialized inside them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overview {
    /// Per derivative, pairs per cache state (hit, miss, bypass, unknown).
    #[serde(default)]
    pub cache_by_derivative: BTreeMap<String, BTreeMap<String, u64>>,
    #[serde(default)]
    pub timeline: Timeline,
}

impl Overview {
    /// Fold in one record that finished `at` after the start of the run.
    pub fn add(&mut self, at: Duration, r: &Record) {
        self.timeline.add_pair(at, r.outcome);
        if let Some(cache) = r.cache {
            bump(self.cache_by_derivative.entry_ref(&r.derivative), cache.as_str());
        }
    }

    pub fn merge(&mut self, o: &Overview) {
        for (derivative, states) in &o.cache_by_derivative {
            let mine = self.cache_by_derivative.entry(derivative.clone()).or_default();
            for (state, n) in states {
                *mine.entry(state.clone()).or_default() += n;
            }
        }
        self.timeline.merge(&o.timeline);
    }
}

/// Look up by `&str`, allocating the key only for a new derivative.
trait EntryRef {
    fn entry_ref(&mut self, key: &str) -> &mut BTreeMap<String, u64>;
}

impl EntryRef for BTreeMap<String, BTreeMap<String, u64>> {
    fn entry_ref(&mut self, key: &str) -> &mut BTreeMap<String, u64> {
        if !self.contains_key(key) {
            self.insert(key.to_string(), BTreeMap::new());
        }
        self.get_mut(key).expect("inserted above")
    }
}

fn bump(map: &mut BTreeMap<String, u64>, key: &str) {
    match map.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            map.insert(key.to_string(), 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_run_stays_in_fixed_memory_and_loses_no_count() {
        let mut t = Timeline::default();
        // Ten hours, a pair every 3 s, every tenth failed, a pause each hour.
        for s in (0..36_000u64).step_by(3) {
            let outcome = if s % 30 == 0 { Outcome::Failed } else { Outcome::Warm };
            t.add_pair(Duration::from_secs(s), outcome);
            if s % 3600 == 0 {
                t.add_pause(Duration::from_secs(s));
            }
        }
        assert!(t.buckets.len() <= MAX_BUCKETS, "{} buckets", t.buckets.len());
        assert!(t.bucket_ms % 1000 == 0 && (t.bucket_ms / 1000).is_power_of_two());
        assert!(t.bucket_ms as usize * MAX_BUCKETS >= 36_000_000);
        assert_eq!(t.total(), Bucket { pairs: 12_000, failed: 1200, rate_limit_pauses: 10 });
    }

    #[test]
    fn timelines_merge_like_one_run() {
        let (mut short, mut long, mut both) = (Timeline::default(), Timeline::default(), Timeline::default());
        for s in 0..50u64 {
            short.add_pair(Duration::from_secs(s), Outcome::Warm);
            both.add_pair(Duration::from_secs(s), Outcome::Warm);
        }
        for s in 0..1000u64 {
            long.add_pair(Duration::from_millis(s * 700), Outcome::Failed);
            both.add_pair(Duration::from_millis(s * 700), Outcome::Failed);
        }
        short.merge(&long);
        assert_eq!(short, both);
    }
}
