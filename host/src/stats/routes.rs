//! Counts per edge and per variant (`--edge`, `--connect-to`, `--variant`):
//! what each edge holds warm and, with `--verify`, how many of its warm
//! pairs it answered from cache. Exact and mergeable, so `report merge`
//! keeps edges apart.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::plugin::CacheState;
use crate::record::{Outcome, Record};

/// One edge's (or variant's) pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteTally {
    pub pairs: u64,
    pub warm: u64,
    /// Pairs failed, pending, passed through or skipped.
    pub not_warm: u64,
    /// Of those, pairs failed because the edge was down.
    #[serde(default)]
    pub edge_down: u64,
    /// `--verify`: warm pairs asked again, and of them the hits.
    #[serde(default)]
    pub verified: u64,
    #[serde(default)]
    pub verified_hit: u64,
}

impl RouteTally {
    pub fn add(&mut self, r: &Record) {
        self.pairs += 1;
        if r.outcome == Outcome::Warm {
            self.warm += 1;
        } else {
            self.not_warm += 1;
        }
        if r.error_kind.as_deref() == Some("edge_down") {
            self.edge_down += 1;
        }
        if let Some(state) = r.verify_cache {
            self.verified += 1;
            self.verified_hit += u64::from(state == CacheState::Hit);
        }
    }

    pub fn merge(&mut self, o: &RouteTally) {
        self.pairs += o.pairs;
        self.warm += o.warm;
        self.not_warm += o.not_warm;
        self.edge_down += o.edge_down;
        self.verified += o.verified;
        self.verified_hit += o.verified_hit;
    }

    /// Warm pairs of all pairs, 0 to 1.
    pub fn warm_ratio(&self) -> f64 {
        ratio(self.warm, self.pairs)
    }

    /// Verified hits of all pairs (a pair that was not warm is no hit),
    /// 0 to 1.
    pub fn verified_hit_ratio(&self) -> f64 {
        ratio(self.verified_hit, self.pairs)
    }
}

fn ratio(n: u64, of: u64) -> f64 {
    if of == 0 { 0.0 } else { n as f64 / of as f64 }
}

/// Add `r` to the tally of `key` in `map`.
pub fn add(map: &mut BTreeMap<String, RouteTally>, key: &str, r: &Record) {
    match map.get_mut(key) {
        Some(t) => t.add(r),
        None => {
            let mut t = RouteTally::default();
            t.add(r);
            map.insert(key.to_string(), t);
        }
    }
}

/// Fold `from` into `into`, key by key.
pub fn merge(into: &mut BTreeMap<String, RouteTally>, from: &BTreeMap<String, RouteTally>) {
    for (k, t) in from {
        into.entry(k.clone()).or_default().merge(t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::size::SizeClass;

    #[test]
    fn counts_warm_edge_down_and_verified_hits() {
        let mut map = BTreeMap::new();
        let mut warm = Record::blank("a.mp4", "mobile", 1, SizeClass::Small);
        warm.outcome = Outcome::Warm;
        warm.verify_cache = Some(CacheState::Hit);
        let mut down = Record::blank("a.mp4", "mobile", 1, SizeClass::Small);
        down.outcome = Outcome::Failed;
        down.error_kind = Some("edge_down".into());
        add(&mut map, "fra", &warm);
        add(&mut map, "syd", &down);
        let mut other = BTreeMap::new();
        add(&mut other, "fra", &warm);
        merge(&mut map, &other);
        assert_eq!(map["fra"], RouteTally { pairs: 2, warm: 2, verified: 2, verified_hit: 2, ..Default::default() });
        assert_eq!(map["syd"], RouteTally { pairs: 1, not_warm: 1, edge_down: 1, ..Default::default() });
        assert_eq!((map["fra"].warm_ratio(), map["syd"].verified_hit_ratio()), (1.0, 0.0));
    }
}
