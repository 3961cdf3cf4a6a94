//! Pacing: the `--rate` cap shared by all workers, a run-wide pause when the
//! CDN answers 429 (so the run slows down instead of burning retries), and
//! exponential backoff with jitter for retries.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rand::Rng;
use tokio::time::Instant;

use crate::overview::Timeline;

/// Longest single wait prewarm accepts from a server or a plugin.
pub const MAX_WAIT: Duration = Duration::from_secs(300);

pub struct Pacer {
    limiter: Option<DefaultDirectRateLimiter>,
    /// The end of the current 429 pause, in nanoseconds from `started`
    /// (0: none). An atomic: every request of every thread reads it.
    paused_until: AtomicU64,
    /// When each pause began, for the report's timeline.
    pauses: Mutex<Timeline>,
    started: Instant,
}

impl Pacer {
    /// `started`: the start of the run, which the timeline of pauses counts from.
    pub fn new(rate_per_second: Option<u32>, started: std::time::Instant) -> Self {
        let limiter = rate_per_second.and_then(NonZeroU32::new).map(|r| RateLimiter::direct(Quota::per_second(r)));
        Pacer {
            limiter,
            paused_until: AtomicU64::new(0),
            pauses: Mutex::default(),
            started: Instant::from_std(started),
        }
    }

    /// Wait until a request may be sent.
    pub async fn ready(&self) {
        loop {
            let until = self.paused_until.load(Ordering::Relaxed);
            if until == 0 {
                break;
            }
            let until = self.started + Duration::from_nanos(until);
            if until <= Instant::now() {
                break;
            }
            tokio::time::sleep_until(until).await;
        }
        if let Some(l) = &self.limiter {
            l.until_ready().await;
        }
    }

    /// The CDN said "too many requests": hold every worker for `wait`.
    pub fn pause(&self, wait: Duration) {
        let now = Instant::now();
        self.pauses.lock().unwrap_or_else(|p| p.into_inner()).add_pause(now - self.started);
        let until = (now + wait.min(MAX_WAIT)).duration_since(self.started).as_nanos() as u64;
        self.paused_until.fetch_max(until.max(1), Ordering::Relaxed);
    }

    /// The pauses so far, timed from the start of the run.
    pub fn pauses(&self) -> Timeline {
        self.pauses.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Backoff before retry number `retry` (1-based): 250 ms doubling, capped at
/// 30 s, with full jitter between half and all of it; never less than what
/// the server or plugin asked for.
pub fn backoff(retry: u32, at_least: Option<Duration>) -> Duration {
    let base = Duration::from_millis(250).saturating_mul(1u32 << retry.saturating_sub(1).min(7));
    let capped = base.min(Duration::from_secs(30));
    let jittered = capped.mul_f64(rand::rng().random_range(0.5..=1.0));
    jittered.max(at_least.unwrap_or_default()).min(MAX_WAIT)
}

/// `Retry-After` as a duration: delta-seconds or an HTTP date.
pub fn retry_after(value: Option<&str>) -> Option<Duration> {
    let value = value?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs).min(MAX_WAIT));
    }
    let when = httpdate_parse(value)?;
    Some(when.duration_since(std::time::SystemTime::now()).unwrap_or_default().min(MAX_WAIT))
}

fn httpdate_parse(value: &str) -> Option<std::time::SystemTime> {
    humantime::parse_rfc3339_weak(value).ok().or_else(|| {
        // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
        let parts: Vec<&str> = value.split_whitespace().collect();
        if parts.len() != 6 {
            return None;
        }
        let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
            .iter()
            .position(|m| *m == parts[2])?
            + 1;
        let text = format!("{}-{month:02}-{:0>2}T{}Z", parts[3], parts[1], parts[4]);
        humantime::parse_rfc3339(&text).ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_respects_floor() {
        assert!(backoff(1, None) <= Duration::from_millis(250));
        assert!(backoff(4, None) >= Duration::from_millis(1000));
        assert!(backoff(30, None) <= Duration::from_secs(30));
        assert_eq!(backoff(1, Some(Duration::from_secs(5))), Duration::from_secs(5));
    }

    #[test]
    fn parses_retry_after_forms() {
        assert_eq!(retry_after(Some("3")), Some(Duration::from_secs(3)));
        assert_eq!(retry_after(Some("Sun, 06 Nov 1994 08:49:37 GMT")), Some(Duration::ZERO));
        assert_eq!(retry_after(Some("soon")), None);
        assert_eq!(retry_after(None), None);
    }
}
