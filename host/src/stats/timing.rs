//! One timing distribution in fixed memory: an HdrHistogram of
//! microseconds (up to an hour) with a Welford mean and standard deviation,
//! both mergeable exactly, and its serialized form in the summary (the raw
//! state kept, base64 HdrHistogram V2, so summaries merge exactly).

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use serde::{Deserialize, Serialize};

/// Highest value the histograms track: one hour in microseconds.
const HIST_MAX: u64 = 3_600_000_000;

/// Mean and variance in one pass (Welford), mergeable (Chan et al.).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Welford {
    pub count: u64,
    pub mean: f64,
    pub m2: f64,
    pub min: f64,
    pub max: f64,
}

impl Welford {
    pub fn add(&mut self, x: f64) {
        if self.count == 0 {
            self.min = x;
            self.max = x;
        } else {
            self.min = self.min.min(x);
            self.max = self.max.max(x);
        }
        self.count += 1;
        let delta = x - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (x - self.mean);
    }

    pub fn merge(&mut self, other: &Welford) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = *other;
            return;
        }
        let n = (self.count + other.count) as f64;
        let delta = other.mean - self.mean;
        self.m2 += other.m2 + delta * delta * self.count as f64 * other.count as f64 / n;
        self.mean += delta * other.count as f64 / n;
        self.count += other.count;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// Population standard deviation.
    pub fn stddev(&self) -> f64 {
        if self.count < 2 { 0.0 } else { (self.m2 / self.count as f64).sqrt() }
    }
}

/// A distribution of durations in microseconds.
#[derive(Debug, Clone)]
pub struct Timing {
    hist: Histogram<u64>,
    welford: Welford,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            hist: Histogram::new_with_bounds(1, HIST_MAX, 3).expect("valid histogram bounds"),
            welford: Welford::default(),
        }
    }
}

impl Timing {
    pub fn add_ms(&mut self, ms: f64) {
        let us = (ms * 1000.0).round().max(1.0) as u64;
        self.hist.saturating_record(us.min(HIST_MAX));
        self.welford.add(ms);
    }

    pub fn merge(&mut self, other: &Timing) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.hist.add(&other.hist);
        self.welford.merge(&other.welford);
    }

    pub fn count(&self) -> u64 {
        self.welford.count
    }

    /// The q-quantile in milliseconds (0 when empty).
    pub fn quantile_ms(&self, q: f64) -> f64 {
        // A bucket's upper edge can lie above the largest value recorded:
        // no quantile is shown above the max.
        if self.count() == 0 { 0.0 } else { self.hist.value_at_quantile(q).min(self.hist.max()) as f64 / 1000.0 }
    }

    pub fn summary(&self) -> TimingSummary {
        let w = &self.welford;
        TimingSummary {
            count: w.count,
            mean_ms: w.mean,
            stddev_ms: w.stddev(),
            min_ms: if w.count == 0 { 0.0 } else { w.min },
            max_ms: if w.count == 0 { 0.0 } else { w.max },
            p50_ms: self.quantile_ms(0.50),
            p90_ms: self.quantile_ms(0.90),
            p95_ms: self.quantile_ms(0.95),
            p99_ms: self.quantile_ms(0.99),
            welford: *w,
            histogram: encode_hist(&self.hist),
        }
    }

    pub(super) fn from_summary(s: &TimingSummary) -> Result<Self, String> {
        Ok(Timing { hist: decode_hist(&s.histogram)?, welford: s.welford })
    }

    /// Counts per bucket for charts: (upper bound ms, count).
    pub fn buckets_ms(&self, buckets: usize) -> Vec<(f64, u64)> {
        if self.count() == 0 {
            return Vec::new();
        }
        let max = self.hist.max().max(1);
        let step = (max / buckets as u64).max(1);
        let mut out = Vec::with_capacity(buckets);
        for v in self.hist.iter_linear(step) {
            out.push((v.value_iterated_to() as f64 / 1000.0, v.count_since_last_iteration()));
        }
        out
    }
}

fn encode_hist(h: &Histogram<u64>) -> String {
    let mut buf = Vec::new();
    V2Serializer::new().serialize(h, &mut buf).expect("serialize histogram to memory");
    base64::engine::general_purpose::STANDARD.encode(buf)
}

fn decode_hist(text: &str) -> Result<Histogram<u64>, String> {
    let bytes =
        base64::engine::general_purpose::STANDARD.decode(text).map_err(|e| format!("bad histogram encoding: {e}"))?;
    let h: Histogram<u64> = Deserializer::new()
        .deserialize(&mut std::io::Cursor::new(bytes))
        .map_err(|e| format!("bad histogram: {e:?}"))?;
    let mut out = Histogram::new_with_bounds(1, HIST_MAX, 3).expect("valid bounds");
    out.add(&h).map_err(|e| format!("histogram out of range: {e:?}"))?;
    Ok(out)
}

/// A timing as written in the summary.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TimingSummary {
    pub count: u64,
    pub mean_ms: f64,
    pub stddev_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    /// Raw state for exact merges.
    pub welford: Welford,
    /// HdrHistogram V2, base64, microseconds.
    pub histogram: String,
}
