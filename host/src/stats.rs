//! Run statistics folded in one pass as records arrive, in fixed memory:
//! per derivative and size class, TTFB and total-time distributions
//! (HdrHistogram in microseconds, mergeable exactly) with Welford mean and
//! standard deviation; counts by outcome, failure kind, HTTP status and cache
//! state; bytes; size reduction; a bounded list of the slowest pairs.
//! The serialized form keeps the raw state, so summaries merge exactly.

pub mod routes;
mod timing;

pub use timing::{Timing, TimingSummary, Welford};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::overview::Overview;
use crate::record::{Outcome, Record};
use crate::util::size::{SizeClass, SizeClasses};
use crate::verification::VerifyTally;

/// How many of the slowest pairs are kept.
pub const SLOWEST_KEPT: usize = 20;

/// Size reduction of derivatives against their sources.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Reduction {
    /// Pairs whose derivative size and source size are known.
    pub count: u64,
    pub original_bytes: u64,
    pub derivative_bytes: u64,
    /// Percent smaller than the source, per pair.
    pub percent: Welford,
}

impl Reduction {
    fn add(&mut self, original: u64, size: u64) {
        if original == 0 {
            return;
        }
        self.count += 1;
        self.original_bytes += original;
        self.derivative_bytes += size;
        self.percent.add(100.0 * (1.0 - size as f64 / original as f64));
    }

    fn merge(&mut self, o: &Reduction) {
        self.count += o.count;
        self.original_bytes += o.original_bytes;
        self.derivative_bytes += o.derivative_bytes;
        self.percent.merge(&o.percent);
    }

    /// Overall percent saved, bytes-weighted.
    pub fn saved_percent(&self) -> f64 {
        if self.original_bytes == 0 {
            0.0
        } else {
            100.0 * (1.0 - self.derivative_bytes as f64 / self.original_bytes as f64)
        }
    }
}

/// One derivative × size class.
#[derive(Debug, Clone, Default)]
pub struct Group {
    pub count: u64,
    pub outcomes: BTreeMap<Outcome, u64>,
    pub ttfb: Timing,
    pub total: Timing,
    pub bytes_read: u64,
    pub reduction: Reduction,
}

impl Group {
    fn merge(&mut self, o: &Group) {
        self.count += o.count;
        for (k, v) in &o.outcomes {
            *self.outcomes.entry(*k).or_default() += v;
        }
        self.ttfb.merge(&o.ttfb);
        self.total.merge(&o.total);
        self.bytes_read += o.bytes_read;
        self.reduction.merge(&o.reduction);
    }
}

/// A slow pair worth naming in the report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SlowPair {
    pub path: String,
    pub derivative: String,
    pub elapsed_ms: f64,
    pub outcome: Outcome,
}

/// Everything counted in a run.
#[derive(Debug, Clone)]
pub struct Stats {
    pub size_classes: SizeClasses,
    pub pairs: u64,
    pub outcomes: BTreeMap<Outcome, u64>,
    pub groups: BTreeMap<(String, SizeClass), Group>,
    pub failures_by_kind: BTreeMap<String, u64>,
    pub failures_by_status: BTreeMap<u16, u64>,
    pub cache: BTreeMap<String, u64>,
    /// Pairs per edge address (`--connect-to`).
    pub edges: BTreeMap<String, u64>,
    /// Per edge (its `--edge` name, or the `--connect-to` address) and per
    /// `--variant`: warm, edge_down and verified hits.
    pub per_edge: BTreeMap<String, routes::RouteTally>,
    pub per_variant: BTreeMap<String, routes::RouteTally>,
    pub bytes_read: u64,
    pub size_check_bytes: u64,
    pub attempts: u64,
    /// Slowest pairs, slowest first, at most [`SLOWEST_KEPT`].
    pub slowest: Vec<SlowPair>,
    /// TTFB of every pair with a response, for the headline figures.
    pub ttfb_all: Timing,
    /// What `--verify` found.
    pub verify: VerifyTally,
    /// Cache states per derivative and the timeline, for the charts.
    pub overview: Overview,
}

impl Stats {
    pub fn new(size_classes: SizeClasses) -> Self {
        Stats {
            size_classes,
            pairs: 0,
            outcomes: BTreeMap::new(),
            groups: BTreeMap::new(),
            failures_by_kind: BTreeMap::new(),
            failures_by_status: BTreeMap::new(),
            cache: BTreeMap::new(),
            edges: BTreeMap::new(),
            per_edge: BTreeMap::new(),
            per_variant: BTreeMap::new(),
            bytes_read: 0,
            size_check_bytes: 0,
            attempts: 0,
            slowest: Vec::new(),
            ttfb_all: Timing::default(),
            verify: VerifyTally::default(),
            overview: Overview::default(),
        }
    }

    /// Fold in a record that finished `at` after the start of the run.
    pub fn record(&mut self, r: &Record, at: std::time::Duration) {
        self.add(r);
        self.overview.add(at, r);
    }

    pub fn count(&self, outcome: Outcome) -> u64 {
        self.outcomes.get(&outcome).copied().unwrap_or(0)
    }

    pub fn add(&mut self, r: &Record) {
        self.pairs += 1;
        *self.outcomes.entry(r.outcome).or_default() += 1;
        self.bytes_read += r.bytes_read;
        self.size_check_bytes += r.size_check_bytes;
        self.attempts += u64::from(r.attempts);
        // Look up without allocating (there are only a few groups); the key
        // is cloned only for a new group.
        if !self.groups.keys().any(|(d, c)| *d == r.derivative && *c == r.size_class) {
            self.groups.insert((r.derivative.clone(), r.size_class), Group::default());
        }
        let group = self
            .groups
            .iter_mut()
            .find(|((d, c), _)| *d == r.derivative && *c == r.size_class)
            .map(|(_, g)| g)
            .expect("group inserted above");
        group.count += 1;
        *group.outcomes.entry(r.outcome).or_default() += 1;
        group.bytes_read += r.bytes_read;
        if let Some(ttfb) = r.ttfb_ms {
            group.ttfb.add_ms(ttfb);
            self.ttfb_all.add_ms(ttfb);
        }
        if let Some(total) = r.total_ms {
            group.total.add_ms(total);
        }
        if let (Some(size), Outcome::Warm) = (r.size, r.outcome) {
            group.reduction.add(r.original_size, size);
        }
        if matches!(r.outcome, Outcome::Failed | Outcome::Pending | Outcome::Skipped) {
            let kind = r.error_kind.as_deref().unwrap_or("unknown");
            match self.failures_by_kind.get_mut(kind) {
                Some(n) => *n += 1,
                None => {
                    self.failures_by_kind.insert(kind.to_string(), 1);
                }
            }
            if let Some(status) = r.status {
                *self.failures_by_status.entry(status).or_default() += 1;
            }
        }
        if let Some(cache) = r.cache {
            match self.cache.get_mut(cache.as_str()) {
                Some(n) => *n += 1,
                None => {
                    self.cache.insert(cache.as_str().to_string(), 1);
                }
            }
        }
        if let Some(edge) = &r.edge {
            match self.edges.get_mut(edge) {
                Some(n) => *n += 1,
                None => {
                    self.edges.insert(edge.clone(), 1);
                }
            }
        }
        if let Some(edge) = &r.edge {
            routes::add(&mut self.per_edge, edge, r);
        }
        if let Some(variant) = &r.variant {
            routes::add(&mut self.per_variant, variant, r);
        }
        self.verify.add(r);
        if self.slowest.len() < SLOWEST_KEPT || self.slowest.last().is_some_and(|s| s.elapsed_ms < r.elapsed_ms) {
            self.note_slow(SlowPair {
                path: r.path.clone(),
                derivative: r.derivative.clone(),
                elapsed_ms: r.elapsed_ms,
                outcome: r.outcome,
            });
        }
    }

    fn note_slow(&mut self, pair: SlowPair) {
        if self.slowest.len() == SLOWEST_KEPT && self.slowest.last().is_some_and(|s| s.elapsed_ms >= pair.elapsed_ms) {
            return;
        }
        let at = self.slowest.partition_point(|s| s.elapsed_ms >= pair.elapsed_ms);
        self.slowest.insert(at, pair);
        self.slowest.truncate(SLOWEST_KEPT);
    }

    /// Fold another run's statistics into this one, exactly.
    pub fn merge(&mut self, o: &Stats) {
        self.pairs += o.pairs;
        for (k, v) in &o.outcomes {
            *self.outcomes.entry(*k).or_default() += v;
        }
        for (k, g) in &o.groups {
            self.groups.entry(k.clone()).or_default().merge(g);
        }
        for (k, v) in &o.failures_by_kind {
            *self.failures_by_kind.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &o.failures_by_status {
            *self.failures_by_status.entry(*k).or_default() += v;
        }
        for (k, v) in &o.cache {
            *self.cache.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &o.edges {
            *self.edges.entry(k.clone()).or_default() += v;
        }
        routes::merge(&mut self.per_edge, &o.per_edge);
        routes::merge(&mut self.per_variant, &o.per_variant);
        self.bytes_read += o.bytes_read;
        self.size_check_bytes += o.size_check_bytes;
        self.attempts += o.attempts;
        for s in &o.slowest {
            self.note_slow(s.clone());
        }
        self.ttfb_all.merge(&o.ttfb_all);
        self.verify.merge(&o.verify);
        self.overview.merge(&o.overview);
    }

    /// Groups rolled up per derivative (all size classes).
    pub fn by_derivative(&self) -> BTreeMap<String, Group> {
        let mut out: BTreeMap<String, Group> = BTreeMap::new();
        for ((d, _), g) in &self.groups {
            out.entry(d.clone()).or_default().merge(g);
        }
        out
    }

    /// Groups rolled up per size class (all derivatives).
    pub fn by_class(&self) -> BTreeMap<SizeClass, Group> {
        let mut out: BTreeMap<SizeClass, Group> = BTreeMap::new();
        for ((_, c), g) in &self.groups {
            out.entry(*c).or_default().merge(g);
        }
        out
    }

    /// The serializable form.
    pub fn to_summary(&self) -> StatsSummary {
        let group = |g: &Group| GroupSummary {
            count: g.count,
            outcomes: g.outcomes.iter().map(|(k, v)| (k.as_str().to_string(), *v)).collect(),
            ttfb: g.ttfb.summary(),
            total: g.total.summary(),
            bytes_read: g.bytes_read,
            reduction: g.reduction.clone(),
        };
        let mut groups = Vec::new();
        for ((d, c), g) in &self.groups {
            groups.push(GroupEntry { derivative: d.clone(), size_class: *c, stats: group(g) });
        }
        StatsSummary {
            size_classes: self.size_classes,
            pairs: self.pairs,
            outcomes: Outcome::ALL.iter().map(|o| (o.as_str().to_string(), self.count(*o))).collect(),
            per_derivative: self.by_derivative().iter().map(|(k, g)| (k.clone(), group(g))).collect(),
            per_size_class: self.by_class().iter().map(|(k, g)| (k.as_str().to_string(), group(g))).collect(),
            groups,
            failures_by_kind: self.failures_by_kind.clone(),
            failures_by_status: self.failures_by_status.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            cache: self.cache.clone(),
            edges: self.edges.clone(),
            per_edge: self.per_edge.clone(),
            per_variant: self.per_variant.clone(),
            bytes_read: self.bytes_read,
            size_check_bytes: self.size_check_bytes,
            attempts: self.attempts,
            slowest: self.slowest.clone(),
            ttfb: self.ttfb_all.summary(),
            verify: self.verify.clone(),
            overview: self.overview.clone(),
        }
    }

    /// Rebuild from the serializable form.
    pub fn from_summary(s: &StatsSummary) -> Result<Self, String> {
        let mut stats = Stats::new(s.size_classes);
        stats.pairs = s.pairs;
        for o in Outcome::ALL {
            if let Some(v) = s.outcomes.get(o.as_str()).filter(|v| **v > 0) {
                stats.outcomes.insert(o, *v);
            }
        }
        for e in &s.groups {
            let g = &e.stats;
            let mut outcomes = BTreeMap::new();
            for o in Outcome::ALL {
                if let Some(v) = g.outcomes.get(o.as_str()) {
                    outcomes.insert(o, *v);
                }
            }
            stats.groups.insert(
                (e.derivative.clone(), e.size_class),
                Group {
                    count: g.count,
                    outcomes,
                    ttfb: Timing::from_summary(&g.ttfb)?,
                    total: Timing::from_summary(&g.total)?,
                    bytes_read: g.bytes_read,
                    reduction: g.reduction.clone(),
                },
            );
        }
        stats.failures_by_kind = s.failures_by_kind.clone();
        for (k, v) in &s.failures_by_status {
            stats.failures_by_status.insert(k.parse().map_err(|_| format!("bad status `{k}`"))?, *v);
        }
        stats.cache = s.cache.clone();
        stats.edges = s.edges.clone();
        stats.per_edge = s.per_edge.clone();
        stats.per_variant = s.per_variant.clone();
        stats.bytes_read = s.bytes_read;
        stats.size_check_bytes = s.size_check_bytes;
        stats.attempts = s.attempts;
        stats.slowest = s.slowest.clone();
        stats.ttfb_all = Timing::from_summary(&s.ttfb)?;
        stats.verify = s.verify.clone();
        stats.overview = s.overview.clone();
        Ok(stats)
    }
}

/// A group as written in the summary.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupSummary {
    pub count: u64,
    pub outcomes: BTreeMap<String, u64>,
    pub ttfb: TimingSummary,
    pub total: TimingSummary,
    pub bytes_read: u64,
    pub reduction: Reduction,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupEntry {
    pub derivative: String,
    pub size_class: SizeClass,
    #[serde(flatten)]
    pub stats: GroupSummary,
}

/// The statistics part of the summary JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatsSummary {
    pub size_classes: SizeClasses,
    pub pairs: u64,
    pub outcomes: BTreeMap<String, u64>,
    /// Rolled up per derivative (derived; not used for merging).
    pub per_derivative: BTreeMap<String, GroupSummary>,
    /// Rolled up per size class (derived; not used for merging).
    pub per_size_class: BTreeMap<String, GroupSummary>,
    /// Every derivative × size class: the exact, mergeable state.
    pub groups: Vec<GroupEntry>,
    pub failures_by_kind: BTreeMap<String, u64>,
    pub failures_by_status: BTreeMap<String, u64>,
    pub cache: BTreeMap<String, u64>,
    /// Pairs per edge: its `--edge` name, or the address `--connect-to`
    /// routed requests to.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub edges: BTreeMap<String, u64>,
    /// Per edge (keys as `edges`): pairs, warm, not warm, edge_down,
    /// verified and verified hits.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub per_edge: BTreeMap<String, routes::RouteTally>,
    /// Per `--variant` name, counted as `per_edge`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub per_variant: BTreeMap<String, routes::RouteTally>,
    pub bytes_read: u64,
    pub size_check_bytes: u64,
    pub attempts: u64,
    pub slowest: Vec<SlowPair>,
    /// TTFB of every pair with a response.
    pub ttfb: TimingSummary,
    /// `--verify`: verified hits per derivative and the reasons for misses
    /// (absent when the run did not verify).
    #[serde(default, skip_serializing_if = "VerifyTally::is_empty")]
    pub verify: VerifyTally,
    /// `cache_by_derivative` and `timeline` (absent in older summaries).
    #[serde(flatten)]
    pub overview: Overview,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::CacheState;

    fn record(path: String, derivative: &str, ttfb_ms: f64, outcome: Outcome, size: u64) -> Record {
        Record {
            outcome,
            status: Some(if outcome == Outcome::Failed { 503 } else { 200 }),
            attempts: 1,
            ttfb_ms: Some(ttfb_ms),
            total_ms: Some(ttfb_ms * 2.0),
            elapsed_ms: ttfb_ms * 2.0,
            bytes_read: size,
            size: Some(size),
            cache: Some(CacheState::Miss),
            error_kind: (outcome == Outcome::Failed).then(|| "server_error".into()),
            ..Record::blank(&path, derivative, 4 * size, SizeClasses::default().class_of(4 * size))
        }
    }

    /// Deterministic pseudo-random samples (xorshift).
    fn samples(n: usize, seed: u64) -> Vec<f64> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % 5_000_000) as f64 / 1000.0 + 0.001
            })
            .collect()
    }

    fn exact_quantile(sorted: &[f64], q: f64) -> f64 {
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    }

    fn check_against_exact(values: &[f64]) {
        let mut t = Timing::default();
        for v in values {
            t.add_ms(*v);
        }
        let s = t.summary();
        assert_eq!(s.count, values.len() as u64);
        if values.is_empty() {
            assert_eq!((s.p50_ms, s.p99_ms, s.mean_ms, s.stddev_ms, s.max_ms), (0.0, 0.0, 0.0, 0.0, 0.0));
            return;
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        for (q, got) in [(0.5, s.p50_ms), (0.9, s.p90_ms), (0.95, s.p95_ms), (0.99, s.p99_ms), (1.0, s.max_ms)] {
            let want = exact_quantile(&sorted, q);
            // Three significant digits, microsecond resolution.
            assert!((got - want).abs() <= want * 0.001 + 0.001, "q{q}: got {got}, exact {want}");
        }
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        assert!((s.mean_ms - mean).abs() <= 1e-9 * mean.max(1.0), "mean {} vs {mean}", s.mean_ms);
        assert!((s.stddev_ms - var.sqrt()).abs() <= 1e-6 * var.sqrt().max(1.0), "sd {} vs {}", s.stddev_ms, var.sqrt());
        assert_eq!(s.min_ms, sorted[0]);
    }

    #[test]
    fn percentiles_and_moments_match_exact_values() {
        check_against_exact(&samples(10_000, 0x9e37_79b9_7f4a_7c15));
        check_against_exact(&(1..=5000).map(|i| i as f64 * 0.37).collect::<Vec<_>>());
        check_against_exact(&[42.5]);
        check_against_exact(&[]);
    }

    fn stats_of(records: &[Record]) -> Stats {
        let mut s = Stats::new(SizeClasses::default());
        for r in records {
            s.add(r);
        }
        s
    }

    fn dataset(n: usize, seed: u64) -> Vec<Record> {
        let derivatives = ["desktop", "tablet", "mobile"];
        samples(n, seed)
            .into_iter()
            .enumerate()
            .map(|(i, ms)| {
                let outcome = if i % 17 == 0 { Outcome::Failed } else { Outcome::Warm };
                record(format!("v/{seed}/{i}.mp4"), derivatives[i % 3], ms, outcome, (i as u64 % 100) * (1 << 20) + 1)
            })
            .collect()
    }

    #[test]
    fn merged_summaries_equal_the_summary_of_the_union() {
        let (a, b) = (dataset(3000, 7), dataset(2000, 11));
        let union: Vec<Record> = a.iter().chain(b.iter()).cloned().collect();
        // Through the serialized form, as `report merge` does.
        let mut merged = Stats::from_summary(&stats_of(&a).to_summary()).unwrap();
        merged.merge(&Stats::from_summary(&stats_of(&b).to_summary()).unwrap());
        let (m, u) = (merged.to_summary(), stats_of(&union).to_summary());

        assert_eq!(m.pairs, u.pairs);
        assert_eq!(m.outcomes, u.outcomes);
        assert_eq!(m.failures_by_kind, u.failures_by_kind);
        assert_eq!(m.failures_by_status, u.failures_by_status);
        assert_eq!(m.cache, u.cache);
        assert_eq!(m.bytes_read, u.bytes_read);
        assert_eq!(m.slowest, u.slowest);
        assert_eq!(m.groups.len(), u.groups.len());
        for (gm, gu) in m.groups.iter().zip(&u.groups) {
            assert_eq!(
                (&gm.derivative, gm.size_class, gm.stats.count),
                (&gu.derivative, gu.size_class, gu.stats.count)
            );
            // Histograms merge exactly.
            assert_eq!(gm.stats.ttfb.histogram, gu.stats.ttfb.histogram);
            assert_eq!(gm.stats.total.histogram, gu.stats.total.histogram);
            assert_eq!(gm.stats.ttfb.p99_ms, gu.stats.ttfb.p99_ms);
            assert!((gm.stats.ttfb.mean_ms - gu.stats.ttfb.mean_ms).abs() < 1e-9 * gu.stats.ttfb.mean_ms);
            assert!((gm.stats.ttfb.stddev_ms - gu.stats.ttfb.stddev_ms).abs() < 1e-6 * gu.stats.ttfb.stddev_ms);
            assert_eq!(gm.stats.reduction.original_bytes, gu.stats.reduction.original_bytes);
            assert_eq!(gm.stats.reduction.derivative_bytes, gu.stats.reduction.derivative_bytes);
        }
        assert_eq!(m.ttfb.histogram, u.ttfb.histogram);
    }

    #[test]
    fn size_reduction_is_folded_in_the_same_pass() {
        let s = stats_of(&[
            record("a".into(), "mobile", 1.0, Outcome::Warm, 25),
            record("b".into(), "mobile", 1.0, Outcome::Warm, 50),
        ]);
        let g = &s.by_derivative()["mobile"];
        assert_eq!(g.reduction.count, 2);
        assert_eq!((g.reduction.original_bytes, g.reduction.derivative_bytes), (300, 75));
        assert!((g.reduction.saved_percent() - 75.0).abs() < 1e-9);
        assert!((g.reduction.percent.mean - 75.0).abs() < 1e-9);
    }
}
