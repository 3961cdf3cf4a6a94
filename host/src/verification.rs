//! What `--verify` found, counted: per derivative how many warm pairs the
//! CDN answered as a hit when asked again, the CDN's reasons for the rest,
//! and the first few pairs that did not verify. Fixed memory whatever the
//! run's length, and mergeable across shards.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::plugin::CacheState;
use crate::record::Record;

/// Pairs that did not verify kept by name.
pub const NOT_HIT_KEPT: usize = 50;
/// Distinct (derivative, state, cache status) reasons kept; the rest are
/// counted under `other`.
const REASONS_KEPT: usize = 64;

/// Verify counts of one derivative.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyCounts {
    /// Warm pairs asked again.
    pub checked: u64,
    pub hit: u64,
    pub miss: u64,
    pub bypass: u64,
    pub unknown: u64,
}

impl VerifyCounts {
    fn add(&mut self, state: CacheState, n: u64) {
        self.checked += n;
        *match state {
            CacheState::Hit => &mut self.hit,
            CacheState::Miss => &mut self.miss,
            CacheState::Bypass => &mut self.bypass,
            CacheState::Unknown => &mut self.unknown,
        } += n;
    }

    fn merge(&mut self, o: &VerifyCounts) {
        self.checked += o.checked;
        self.hit += o.hit;
        self.miss += o.miss;
        self.bypass += o.bypass;
        self.unknown += o.unknown;
    }

    /// Hits over pairs checked, 0..=1.
    pub fn hit_ratio(&self) -> f64 {
        if self.checked == 0 { 0.0 } else { self.hit as f64 / self.checked as f64 }
    }
}

/// One reason pairs did not verify: the state and the CDN's own words.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NotHitReason {
    pub derivative: String,
    pub state: CacheState,
    /// The raw cache header of the verify answer (`BYPASS`, `DYNAMIC`...),
    /// or the error when the verify request failed.
    pub cache_status: Option<String>,
    pub count: u64,
}

/// A pair that did not verify as a hit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotHitPair {
    pub path: String,
    pub derivative: String,
    pub state: CacheState,
    pub cache_status: Option<String>,
}

/// Everything `--verify` counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyTally {
    pub per_derivative: BTreeMap<String, VerifyCounts>,
    /// Most frequent first when rendered.
    pub reasons: Vec<NotHitReason>,
    /// Pairs in this many reasons beyond the kept ones.
    pub other_reasons: u64,
    /// The first pairs that did not verify, at most [`NOT_HIT_KEPT`].
    pub not_hit: Vec<NotHitPair>,
}

impl VerifyTally {
    pub fn is_empty(&self) -> bool {
        self.per_derivative.is_empty()
    }

    /// Pairs checked that were not hits.
    pub fn not_hit_count(&self) -> u64 {
        self.per_derivative.values().map(|c| c.checked - c.hit).sum()
    }

    pub fn add(&mut self, r: &Record) {
        let Some(state) = r.verify_cache else { return };
        match self.per_derivative.get_mut(&r.derivative) {
            Some(c) => c.add(state, 1),
            None => {
                let mut c = VerifyCounts::default();
                c.add(state, 1);
                self.per_derivative.insert(r.derivative.clone(), c);
            }
        }
        if state == CacheState::Hit {
            return;
        }
        let status = r.verify_cache_status.as_deref().or(r.verify_error.as_deref());
        self.note_reason(&r.derivative, state, status, 1);
        if self.not_hit.len() < NOT_HIT_KEPT {
            self.not_hit.push(NotHitPair {
                path: r.path.clone(),
                derivative: r.derivative.clone(),
                state,
                cache_status: status.map(str::to_string),
            });
        }
    }

    fn note_reason(&mut self, derivative: &str, state: CacheState, status: Option<&str>, n: u64) {
        let kept = self.reasons.len();
        let found = self
            .reasons
            .iter_mut()
            .find(|x| x.derivative == derivative && x.state == state && x.cache_status.as_deref() == status);
        match found {
            Some(x) => x.count += n,
            None if kept < REASONS_KEPT => self.reasons.push(NotHitReason {
                derivative: derivative.to_string(),
                state,
                cache_status: status.map(str::to_string),
                count: n,
            }),
            None => self.other_reasons += n,
        }
    }

    pub fn merge(&mut self, o: &VerifyTally) {
        for (d, c) in &o.per_derivative {
            self.per_derivative.entry(d.clone()).or_default().merge(c);
        }
        for x in &o.reasons {
            self.note_reason(&x.derivative, x.state, x.cache_status.as_deref(), x.count);
        }
        self.other_reasons += o.other_reasons;
        let room = NOT_HIT_KEPT.saturating_sub(self.not_hit.len());
        self.not_hit.extend(o.not_hit.iter().take(room).cloned());
    }

    /// Reasons, most frequent first.
    pub fn reasons_by_count(&self) -> Vec<&NotHitReason> {
        let mut v: Vec<&NotHitReason> = self.reasons.iter().collect();
        v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.cmp(b)));
        v
    }
}

/// A plain-language hint for a state that is not a hit.
pub fn hint(state: CacheState) -> &'static str {
    match state {
        CacheState::Hit => "",
        CacheState::Bypass => {
            "the CDN will not cache this answer (BYPASS/DYNAMIC): check the origin's Cache-Control \
             (no-store, private), cookies, and the CDN's cache rules"
        }
        CacheState::Miss => {
            "still a miss right after warming: the answer was not stored (Cache-Control, Vary, a cache key \
             that changes per request, an object over the CDN's cacheable size, or another edge answered)"
        }
        CacheState::Unknown => "the verify answer named no cache state the plugin reads, or the verify request failed",
    }
}
