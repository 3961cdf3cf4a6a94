//! Reading a CDN's cache state from its response headers, each header by its
//! own grammar, so every plugin gets the same truthful answer:
//!
//! - `Cache-Status` (RFC 9211): a Structured Field list (RFC 8941/9651) of
//!   caches, **origin side first**; the last member is the cache that
//!   answered. `hit` means it served from cache; `fwd=bypass` that it would
//!   not cache; any other `fwd` (`uri-miss`, `vary-miss`, `miss`, `stale`,
//!   `request`, `method`, `partial`) that it went forward: a miss. A value
//!   that does not parse reads as unknown (RFC 9651 §4.2: fail the whole
//!   field).
//! - `X-Cache`, `X-Cache-Remote`: comma-separated entries, one per tier, the
//!   rightmost being the cache that answered (Fastly with shielding:
//!   `MISS, HIT`; Varnish; Squid `MISS from host`; Akamai `TCP_MEM_HIT from
//!   a1-2-3-4 (AkamaiGHost/…)`; CloudFront `RefreshHit from cloudfront`).
//! - `CF-Cache-Status` (Cloudflare) and nginx's `X-Cache-Status`
//!   (`$upstream_cache_status`): one word.
//!
//! Words, case-insensitive: hit for `HIT*`, `REFRESHHIT`, `REDIRECTHIT`,
//! `REVALIDATED`, `UPDATING`, `STALE`; Akamai `TCP_*` tokens by whether
//! they end in HIT or MISS (`TCP_REFRESH_FAIL_HIT` is a stale hit,
//! `TCP_*DENY*`/`TCP_DENIED` not cached); miss for `MISS*`, `EXPIRED`;
//! bypass for `BYPASS`, `DYNAMIC`, `PASS`, `NONE`, `UNCACHEABLE`. Anything
//! else (CloudFront `Error`, `LimitExceeded`, `FunctionGeneratedResponse`)
//! says nothing about the cache: unknown.
//!
//! Without any of those, stock Varnish and plain `Age` still tell
//! ([`read_age_and_varnish`]): `X-Varnish` carries the request's id, and on
//! a hit also the id of the request that stored the object (two ids: hit,
//! one: miss; a comma-separated list, one entry per Varnish tier); else an
//! `Age` above 0 says the answer came from a cache (RFC 9111 §5.1), and an
//! `Age: 0` from a cache that `Via` names Varnish is a fresh fetch: a miss.

use std::convert::Infallible;

use sfv::visitor::{EntryVisitor, Ignored, InnerListVisitor, ItemVisitor, ListVisitor, ParameterVisitor};
use sfv::{BareItemFromInput, KeyRef, Parser};

use crate::CacheState;

/// The cache headers the SDK reads, in the order [`crate::standard_verdict`]
/// tries them: the standard first, then the vendors'.
pub const CACHE_HEADERS: &[&str] = &["cache-status", "cf-cache-status", "x-cache-status", "x-cache", "x-cache-remote"];

/// What one cache header says: the state of the cache that answered, and
/// every tier it lists (origin side first, the answering one last) when it
/// lists more than one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheReading {
    pub state: CacheState,
    pub tiers: Vec<CacheState>,
}

impl CacheReading {
    fn single(state: CacheState) -> Self {
        CacheReading { state, tiers: Vec::new() }
    }

    fn from_tiers(tiers: Vec<CacheState>) -> Self {
        let state = tiers.last().copied().unwrap_or(CacheState::Unknown);
        CacheReading { state, tiers: if tiers.len() > 1 { tiers } else { Vec::new() } }
    }
}

/// Read header `name`'s `value` by that header's grammar.
pub fn read_cache_header(name: &str, value: &str) -> CacheReading {
    if name.eq_ignore_ascii_case("cache-status") { read_cache_status(value) } else { read_tier_list(value) }
}

/// RFC 9211 `Cache-Status`.
pub fn read_cache_status(value: &str) -> CacheReading {
    let mut members = Members::default();
    match Parser::new(value).parse_list_with_visitor(&mut members) {
        Ok(()) => CacheReading::from_tiers(members.states),
        Err(_) => CacheReading::single(CacheState::Unknown),
    }
}

/// `X-Cache`-style lists (and single words): the rightmost entry answered.
pub fn read_tier_list(value: &str) -> CacheReading {
    let tiers: Vec<CacheState> = value.split(',').filter(|e| !e.trim().is_empty()).map(read_word).collect();
    CacheReading::from_tiers(tiers)
}

/// The cache state from stock Varnish's `X-Varnish`, or from `Age` (with
/// `Via` to tell a Varnish miss), for an answer without a cache header;
/// with the raw value it was read from. `None` when they say nothing.
pub fn read_age_and_varnish(
    x_varnish: Option<&str>,
    age: Option<&str>,
    via: Option<&str>,
) -> Option<(CacheReading, String)> {
    if let Some(value) = x_varnish {
        let tiers: Vec<CacheState> = value
            .split(',')
            .map(|entry| {
                let ids: Vec<&str> = entry.split_ascii_whitespace().collect();
                let numeric = ids.iter().all(|id| id.bytes().all(|b| b.is_ascii_digit()));
                match ids.len() {
                    1 if numeric => CacheState::Miss,
                    2 if numeric => CacheState::Hit,
                    _ => CacheState::Unknown,
                }
            })
            .collect();
        if tiers.iter().any(|t| *t != CacheState::Unknown) {
            return Some((CacheReading::from_tiers(tiers), value.trim().to_string()));
        }
    }
    let age: u64 = age?.trim().parse().ok()?;
    let varnish = via.is_some_and(|v| v.to_ascii_lowercase().contains("varnish"));
    let state = match (age, varnish) {
        (0, true) => CacheState::Miss,
        (0, false) => return None,
        _ => CacheState::Hit,
    };
    Some((CacheReading::single(state), format!("Age: {age}")))
}

/// One entry: its first word decides (`Hit from cloudfront`,
/// `TCP_MISS from a23-…`, `HIT`).
fn read_word(entry: &str) -> CacheState {
    let word = entry.split_ascii_whitespace().next().unwrap_or("");
    let upper = word.to_ascii_uppercase();
    let w = upper.as_str();
    if let Some(tcp) = w.strip_prefix("TCP_") {
        return if tcp.contains("DENY") || tcp.contains("DENIED") {
            CacheState::Bypass
        } else if tcp.ends_with("MISS") {
            CacheState::Miss
        } else if tcp.ends_with("HIT") {
            CacheState::Hit
        } else {
            CacheState::Unknown
        };
    }
    match w {
        "REFRESHHIT" | "REDIRECTHIT" | "REVALIDATED" | "UPDATING" | "STALE" => CacheState::Hit,
        "EXPIRED" => CacheState::Miss,
        "BYPASS" | "DYNAMIC" | "PASS" | "NONE" | "UNCACHEABLE" => CacheState::Bypass,
        _ if w.starts_with("HIT") => CacheState::Hit,
        _ if w.starts_with("MISS") => CacheState::Miss,
        _ => CacheState::Unknown,
    }
}

/// Collects one state per list member.
#[derive(Default)]
struct Members {
    states: Vec<CacheState>,
}

impl<'de> ListVisitor<'de> for &mut Members {
    type Out = ();
    type Error = Infallible;

    fn entry(&mut self) -> Result<impl EntryVisitor<'de>, Self::Error> {
        Ok(Member { states: &mut self.states })
    }

    fn finish(self) -> Result<(), Self::Error> {
        Ok(())
    }
}

struct Member<'a> {
    states: &'a mut Vec<CacheState>,
}

impl<'de> EntryVisitor<'de> for Member<'_> {
    type Error = Infallible;

    fn item(self) -> Result<impl ItemVisitor<'de>, Self::Error> {
        Ok(self)
    }

    fn inner_list(self) -> Result<impl InnerListVisitor<'de>, Self::Error> {
        // Not a cache member; it still takes its place in the order.
        self.states.push(CacheState::Unknown);
        Ok(Ignored)
    }
}

impl<'de> ItemVisitor<'de> for Member<'_> {
    type Out = ();
    type Error = Infallible;

    /// The bare item is the cache's name; only its parameters matter.
    fn bare_item(self, _name: BareItemFromInput<'de>) -> Result<impl ParameterVisitor<'de, Out = ()>, Self::Error> {
        Ok(Params { states: self.states, hit: false, fwd: None })
    }
}

struct Params<'a> {
    states: &'a mut Vec<CacheState>,
    hit: bool,
    fwd: Option<bool>,
}

impl<'de> ParameterVisitor<'de> for Params<'_> {
    type Out = ();
    type Error = Infallible;

    fn parameter(&mut self, key: &'de KeyRef, value: BareItemFromInput<'de>) -> Result<(), Self::Error> {
        match (key.as_str(), value) {
            ("hit", BareItemFromInput::Boolean(b)) => self.hit = b,
            // `fwd` is a token; `bypass` says the cache chose not to serve
            // or store this answer.
            ("fwd", BareItemFromInput::Token(t)) => self.fwd = Some(t.as_str() == "bypass"),
            _ => {}
        }
        Ok(())
    }

    fn finish(self) -> Result<(), Self::Error> {
        self.states.push(match (self.hit, self.fwd) {
            (true, _) => CacheState::Hit,
            (false, Some(true)) => CacheState::Bypass,
            (false, Some(false)) => CacheState::Miss,
            (false, None) => CacheState::Unknown,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CacheState::{Bypass, Hit, Miss, Unknown};

    fn state(name: &str, value: &str) -> CacheState {
        read_cache_header(name, value).state
    }

    #[test]
    fn rfc9211_last_member_answered() {
        // RFC 9211 §2 and §3 examples.
        assert_eq!(state("cache-status", "ExampleCache; hit"), Hit);
        assert_eq!(state("cache-status", "ExampleCache; fwd=uri-miss"), Miss);
        assert_eq!(state("cache-status", "ExampleCache; fwd=vary-miss; fwd-status=304"), Miss);
        assert_eq!(state("cache-status", "ExampleCache; fwd=uri-miss; stored"), Miss);
        assert_eq!(state("cache-status", "ExampleCache; fwd=bypass"), Bypass);
        assert_eq!(state("cache-status", "ExampleCache; hit; ttl=30; key=\"/a\""), Hit);
        assert_eq!(state("cache-status", "OriginCache; hit; ttl=1100, \"CDN Company Here\"; hit; ttl=545"), Hit);
        let r = read_cache_header("cache-status", "\"Shield, Inc\"; hit; ttl=3000, EdgeCDN; fwd=uri-miss; stored");
        assert_eq!(r, CacheReading { state: Miss, tiers: vec![Hit, Miss] });
        assert_eq!(state("cache-status", "Edge; fwd=stale; fwd-status=200; stored, Browser; hit"), Hit);
    }

    #[test]
    fn malformed_cache_status_is_unknown() {
        for bad in ["", "; hit", "a; hit,", "\"unterminated; hit", "a;;hit", "a; hit=?2", "(a b", "\u{1F600}"] {
            assert_eq!(state("cache-status", bad), Unknown, "{bad:?}");
        }
        assert_eq!(state("cache-status", "ExampleCache"), Unknown);
    }

    #[test]
    fn x_cache_rightmost_tier_answered() {
        // Fastly with shielding: shield first, edge last.
        assert_eq!(read_cache_header("x-cache", "MISS, HIT"), CacheReading { state: Hit, tiers: vec![Miss, Hit] });
        assert_eq!(read_cache_header("x-cache", "HIT, MISS"), CacheReading { state: Miss, tiers: vec![Hit, Miss] });
        assert_eq!(state("x-cache", "HIT"), Hit);
        assert_eq!(state("x-cache", "MISS from squid.example.net"), Miss);
        // Varnish and Fastly variants.
        assert_eq!(state("x-cache", "HIT-STALE"), Hit);
        assert_eq!(state("x-cache", "PASS"), Bypass);
    }

    #[test]
    fn cloudfront_phrases() {
        assert_eq!(state("x-cache", "Hit from cloudfront"), Hit);
        assert_eq!(state("x-cache", "RefreshHit from cloudfront"), Hit);
        assert_eq!(state("x-cache", "RedirectHit from cloudfront"), Hit);
        assert_eq!(state("x-cache", "Miss from cloudfront"), Miss);
        assert_eq!(state("x-cache", "Error from cloudfront"), Unknown);
        assert_eq!(state("x-cache", "LimitExceeded from cloudfront"), Unknown);
        assert_eq!(state("x-cache", "FunctionGeneratedResponse from cloudfront"), Unknown);
    }

    #[test]
    fn akamai_tcp_tokens() {
        let edge = "TCP_MEM_HIT from a23-45-67-89.deploy.akamaitechnologies.com (AkamaiGHost/22.1.0-1234) (-)";
        assert_eq!(state("x-cache", edge), Hit);
        assert_eq!(state("x-cache", "TCP_MISS from a1.deploy.akamaitechnologies.com (AkamaiGHost/22.1.0) (-)"), Miss);
        assert_eq!(state("x-cache-remote", "TCP_REFRESH_MISS from a2 (AkamaiGHost/22.1.0) (-)"), Miss);
        assert_eq!(state("x-cache", "TCP_IMS_HIT from a3 (AkamaiGHost)"), Hit);
        assert_eq!(state("x-cache", "TCP_REFRESH_FAIL_HIT from a3"), Hit);
        assert_eq!(state("x-cache", "TCP_DENIED from a3"), Bypass);
    }

    #[test]
    fn stock_varnish_and_age() {
        let read = |x: Option<&str>, age: Option<&str>, via: Option<&str>| {
            read_age_and_varnish(x, age, via).map(|(r, raw)| (r.state, raw))
        };
        // Varnish 7 as shipped: a hit names two requests, a miss one.
        assert_eq!(read(Some("32770 3"), Some("12"), Some("1.1 varnish (Varnish/7.1)")), Some((Hit, "32770 3".into())));
        assert_eq!(read(Some("32770"), Some("0"), Some("1.1 varnish (Varnish/7.1)")), Some((Miss, "32770".into())));
        let tiers = read_age_and_varnish(Some("5 2, 9"), None, None).unwrap().0;
        assert_eq!(tiers, CacheReading { state: Miss, tiers: vec![Hit, Miss] });
        // X-Varnish stripped: Age decides; Age 0 is a miss only from Varnish.
        assert_eq!(read(None, Some("30"), None), Some((Hit, "Age: 30".into())));
        assert_eq!(read(None, Some("0"), Some("1.1 varnish (Varnish/7.1)")), Some((Miss, "Age: 0".into())));
        assert_eq!(read(None, Some("0"), None), None);
        assert_eq!(read(None, Some("soon"), None), None);
        assert_eq!(read(Some("junk value here"), None, None), None);
        assert_eq!(read(None, None, None), None);
    }

    #[test]
    fn one_word_headers() {
        for (v, s) in [
            ("HIT", Hit),
            ("MISS", Miss),
            ("EXPIRED", Miss),
            ("STALE", Hit),
            ("REVALIDATED", Hit),
            ("UPDATING", Hit),
            ("BYPASS", Bypass),
            ("DYNAMIC", Bypass),
            ("NONE", Bypass),
            ("weird", Unknown),
        ] {
            assert_eq!(state("cf-cache-status", v), s, "{v}");
            assert_eq!(state("x-cache-status", v), s, "{v}");
        }
    }
}
