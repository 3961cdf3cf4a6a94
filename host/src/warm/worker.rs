//! One engine thread's worker: its plugin instance and HTTP client, shared
//! by every pair the thread has in flight (plugin calls are short and
//! synchronous, so one instance serves them all; the instance is borrowed
//! only between awaits). For a pair it asks the plugin for the request,
//! sends it, hands the answer back for a verdict and acts on it (poll,
//! follow-up, retry with backoff, stop), then learns the size. Every pair
//! ends as exactly one [`Record`].

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::SharedJob;
use super::egress::Policy;
use super::http::{self, Body, Exchange, Timeouts, TransportError};
use super::pacing::{self, Pacer};
use super::routes::Routes;
use super::sizing::{Capabilities, Prober};
use super::trace::Step;
use super::verify;
use crate::plugin::{Derivative, ObjectRef, PluginInstance, SizeMethod, Verdict, WarmInfo, WarmRequest};
use crate::record::{Outcome, Record, now_rfc3339};
use crate::util::redact::redact_url;

/// Most follow-up requests one pair may take.
const MAX_FOLLOW_UPS: u32 = 10;
/// How long a request in flight may still take after Ctrl-C.
const INTERRUPT_GRACE: Duration = Duration::from_secs(3);
/// Most 429 answers one pair may absorb; they pause the run rather than
/// count as retries.
const MAX_RATE_LIMITED: u32 = 20;

/// What every thread's worker shares.
pub struct WorkerContext {
    pub pacer: Pacer,
    pub caps: Capabilities,
    pub timeouts: Timeouts,
    pub retries: u32,
    pub max_polls: u32,
    pub derivatives: Vec<Derivative>,
    pub max_source_bytes: Option<u64>,
    /// Ask each warm pair's URL again and record the cache state.
    pub verify: bool,
    /// Where plugin-built requests may go.
    pub policy: Policy,
    pub cancel: CancellationToken,
    /// `--max-failures`: counts finished pairs; once spent, pairs not yet
    /// started are recorded `stopped`.
    pub budget: Option<Arc<super::budget::FailureBudget>>,
    /// `--metrics-listen`: pairs in flight per derivative.
    pub live: Option<Arc<crate::report::live::Live>>,
    /// `--edge`, `--variant`, `--header`, and each edge's health.
    pub routes: Routes,
}

pub struct Worker {
    ctx: Arc<WorkerContext>,
    /// One client per edge (one in all without `--edge`): each edge's
    /// connections and route are its own.
    clients: Vec<http::Client>,
    plugin: RefCell<PluginInstance>,
    /// Size methods per derivative index, asked once.
    size_methods: RefCell<Vec<Option<Rc<[SizeMethod]>>>>,
    /// The steps of the pair, for `prewarm probe` (`None` in a warm run).
    pub trace: RefCell<Option<Vec<Step>>>,
}

/// The running state of one pair.
struct PairRun {
    started: Instant,
    record: Record,
    /// The last attempt's answer; `None` when it got none, so the record's
    /// status, TTFB and error all describe that same last attempt.
    last: Option<Exchange>,
}

impl PairRun {
    /// Retries ran out: failed, with how many attempts were made.
    fn gave_up(self, kind: &str, reason: &str) -> Record {
        let attempts = crate::report::text::plural(u64::from(self.record.attempts), "attempt");
        self.finish(Outcome::Failed, Some((kind, format!("{reason} (after {attempts})"))))
    }

    fn finish(mut self, outcome: Outcome, error: Option<(&str, String)>) -> Record {
        self.record.outcome = outcome;
        if let Some((kind, message)) = error {
            self.record.error_kind = Some(kind.to_string());
            self.record.error = Some(crate::util::redact::redact_text(&message));
        }
        if let Some(last) = &self.last {
            self.record.status = Some(last.meta.status);
            self.record.ttfb_ms = Some(ms(last.ttfb));
            self.record.total_ms = Some(ms(last.total));
            self.record.edge.clone_from(&last.edge);
        }
        self.record.elapsed_ms = ms(self.started.elapsed());
        self.record.finished_at = now_rfc3339();
        self.record
    }
}

/// How many times an attempt that failed with `kind` may be retried: a
/// protocol error (malformed head, invalid framing) comes back the same
/// way, so at most once.
fn retry_limit(kind: http::TransportKind, retries: u32) -> u32 {
    if kind == http::TransportKind::Protocol { retries.min(1) } else { retries }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// The error kind for a status when retries ran out.
fn exhausted_kind(status: Option<u16>) -> &'static str {
    match status {
        Some(429) => "rate_limited",
        Some(408) => "timeout",
        Some(s) if s >= 500 => "server_error",
        Some(s) if (200..300).contains(&s) => "truncated",
        _ => "unknown",
    }
}

impl Worker {
    pub fn new(ctx: Arc<WorkerContext>, client: http::Client, plugin: PluginInstance) -> Self {
        Worker::with_clients(ctx, vec![client], plugin)
    }

    /// A worker with one client per edge, in the order of `ctx.routes`.
    pub fn with_clients(ctx: Arc<WorkerContext>, clients: Vec<http::Client>, plugin: PluginInstance) -> Self {
        let n = ctx.derivatives.len();
        Worker {
            ctx,
            clients,
            plugin: RefCell::new(plugin),
            size_methods: RefCell::new(vec![None; n]),
            trace: RefCell::new(None),
        }
    }

    /// A derivative's name by index.
    pub fn derivative_name(&self, index: usize) -> &str {
        &self.ctx.derivatives[index].name
    }

    /// A pair of derivative `index` starts (live metrics).
    pub fn started(&self, index: usize) {
        if let Some(live) = &self.ctx.live {
            live.pair_started(index);
        }
    }

    /// A pair of derivative `index` ended with `record` (live metrics, the
    /// failure budget).
    pub fn finished(&self, index: usize, record: &Record) {
        if let Some(live) = &self.ctx.live {
            live.pair_finished(index);
        }
        if let Some(budget) = &self.ctx.budget {
            budget.note(record);
        }
    }

    /// Record a step when tracing; free otherwise.
    fn note(&self, step: impl FnOnce() -> Step) {
        if let Some(steps) = self.trace.borrow_mut().as_mut() {
            steps.push(step());
        }
    }

    /// Name the edge and variant a pair's record belongs to.
    pub fn label(&self, record: &mut Record, shared: &SharedJob) {
        if let Some(name) = self.ctx.routes.edge_name(usize::from(shared.edge)) {
            record.edge = Some(name.to_string());
        }
        record.variant = self.ctx.routes.variant_name(usize::from(shared.variant)).map(str::to_string);
    }

    /// Warm one pair at its edge, in its variant.
    pub async fn warm(&self, shared: &SharedJob) -> Record {
        let mut record = self.warm_pair(shared).await;
        self.label(&mut record, shared);
        record
    }

    /// The failure of a pair whose edge is down, if it is.
    fn edge_down(&self, shared: &SharedJob) -> Option<(&'static str, String)> {
        let edge = usize::from(shared.edge);
        let health = self.ctx.routes.health(edge).filter(|h| h.is_down())?;
        let name = self.ctx.routes.edge_name(edge).unwrap_or_default();
        Some(("edge_down", format!("edge `{name}` is down: {}", health.why())))
    }

    /// Count a failed connection attempt against the pair's edge; the one
    /// that marks it down says so, once for the run.
    fn connection_failed(&self, shared: &SharedJob, kind: http::TransportKind, message: &str) {
        let edge = usize::from(shared.edge);
        let Some(health) = self.ctx.routes.health(edge) else { return };
        if matches!(kind, http::TransportKind::Connection | http::TransportKind::Timeout) && health.failed(message) {
            let e = &self.ctx.routes.edges[edge];
            tracing::warn!(
                "edge `{}` ({}) is down: {}; its remaining pairs are recorded failed (edge_down), the other edges go on",
                e.name,
                e.address(),
                health.why()
            );
        }
    }

    async fn warm_pair(&self, shared: &SharedJob) -> Record {
        let (job, index) = (&shared.job, shared.derivative);
        let client = &self.clients[usize::from(shared.edge).min(self.clients.len() - 1)];
        let ctx = self.ctx.clone();
        let derivative = &ctx.derivatives[index];
        let object = ObjectRef { path: &job.object.path, size: job.object.size };
        let mut run = PairRun {
            started: Instant::now(),
            record: Record::blank(&job.object.path, &derivative.name, job.object.size, job.class),
            last: None,
        };

        if ctx.budget.as_ref().is_some_and(|b| b.token().is_cancelled()) && !ctx.cancel.is_cancelled() {
            return run.finish(
                Outcome::Skipped,
                Some(("stopped", "not started: the run stopped at --max-failures (--resume takes it up)".into())),
            );
        }
        if let Some(max) = ctx.max_source_bytes.filter(|m| job.object.size > *m) {
            return run.finish(
                Outcome::Skipped,
                Some(("too_large", {
                    let (size, max) = crate::util::size::human_apart(job.object.size, max);
                    format!("source is {size}, over the CDN's {max} limit (use --ignore-limits to warm anyway)")
                })),
            );
        }

        let planned = self.plugin.borrow_mut().warm_request(object, derivative);
        let mut request = match planned {
            Ok(r) => r,
            Err(e) => return run.finish(Outcome::Failed, Some((e.kind(), e.to_string()))),
        };
        run.record.url = Some(redact_url(&request.url));
        self.note(|| Step::planned(&request));
        match ctx.policy.admit(&mut request, Some(&job.object.path)) {
            Err(refused) => return run.finish(Outcome::Failed, Some((refused.kind, refused.message))),
            // The record names the URL as sent.
            Ok(true) => run.record.url = Some(redact_url(&request.url)),
            Ok(false) => {}
        }
        // Checked when parsed, by the rules the plugin's own headers met.
        ctx.routes.apply(&mut request.headers, usize::from(shared.variant));

        let (mut retries, mut polls, mut follow_ups, mut rate_limited) = (0u32, 0u32, 0u32, 0u32);
        let (info, outcome) = loop {
            if ctx.cancel.is_cancelled() {
                return run.finish(
                    Outcome::Skipped,
                    Some(("interrupted", "run interrupted before this pair finished".into())),
                );
            }
            if let Some(down) = self.edge_down(shared) {
                return run.finish(Outcome::Failed, Some(down));
            }
            // A pair waiting its turn under --rate or a 429 pause has sent
            // nothing yet: Ctrl-C records it interrupted at once.
            tokio::select! {
                _ = ctx.pacer.ready() => {}
                _ = ctx.cancel.cancelled() => {
                    return run.finish(
                        Outcome::Skipped,
                        Some(("interrupted", "run interrupted before this pair's request was sent".into())),
                    );
                }
            }
            run.record.attempts += 1;
            self.note(|| Step::sent(&request, run.record.attempts));
            let body = if request.read_body { Body::Full } else { Body::None };
            let resent = Cell::new(0);
            let send = client.send_counted(&request, &[], body, run.record.attempts, ctx.timeouts, &resent);
            // After Ctrl-C a request in flight gets a short grace, not its
            // whole timeout, before the pair is recorded as interrupted.
            let interrupted = async {
                ctx.cancel.cancelled().await;
                tokio::time::sleep(INTERRUPT_GRACE).await;
            };
            let sent = tokio::select! {
                sent = send => sent,
                _ = interrupted => {
                    run.record.resent += resent.get();
                    return run.finish(Outcome::Skipped, Some(("interrupted", "run interrupted while this request was in flight".into())));
                }
            };
            run.record.resent += resent.get();
            let mut exchange = match sent {
                Ok(ex) => ex,
                Err(TransportError { kind, message }) => {
                    self.note(|| Step::TransportError { kind: kind.as_str().into(), message: message.clone() });
                    run.last = None;
                    self.connection_failed(shared, kind, &message);
                    if let Some(down) = self.edge_down(shared) {
                        return run.finish(Outcome::Failed, Some(down));
                    }
                    retries += 1;
                    if retries > retry_limit(kind, ctx.retries) {
                        return run.gave_up(kind.as_str(), &message);
                    }
                    // A cancelled wait ends at the loop's cancellation check.
                    self.wait(pacing::backoff(retries, None)).await;
                    continue;
                }
            };
            if let Some(health) = ctx.routes.health(usize::from(shared.edge)) {
                health.answered();
            }
            run.record.bytes_read += exchange.meta.body_bytes;
            let verdict = {
                let mut plugin = self.plugin.borrow_mut();
                exchange.meta.headers = exchange.headers_for(plugin.wanted_headers());
                plugin.classify(object, derivative, &exchange.meta)
            };
            self.note(|| Step::answer(&exchange));
            if let Ok(v) = &verdict {
                self.note(|| Step::verdict(v));
            }
            let body_error = exchange.body_error.clone();
            let status = exchange.meta.status;
            let retry_after = pacing::retry_after(exchange.header("retry-after"));
            run.last = Some(exchange);
            let verdict = match verdict {
                Ok(v) => v,
                Err(e) => return run.finish(Outcome::Failed, Some((e.kind(), e.to_string()))),
            };
            match verdict {
                Verdict::Warm(info) => break (info, Outcome::Warm),
                Verdict::Passthrough(info) => break (info, Outcome::Passthrough),
                Verdict::Failed { kind, message } => {
                    return run.finish(Outcome::Failed, Some((kind.as_str(), message)));
                }
                Verdict::Pending { after_ms, job } => {
                    polls += 1;
                    if polls > ctx.max_polls {
                        run.record.job_id = job;
                        return run.finish(
                            Outcome::Pending,
                            Some(("still_pending", format!("still transforming after {} polls", ctx.max_polls))),
                        );
                    }
                    let wait =
                        Duration::from_millis(u64::from(after_ms)).clamp(Duration::from_millis(10), pacing::MAX_WAIT);
                    self.wait(wait).await;
                }
                Verdict::FollowUp(mut next) => {
                    follow_ups += 1;
                    if follow_ups > MAX_FOLLOW_UPS {
                        return run.finish(
                            Outcome::Failed,
                            Some(("follow_ups", format!("more than {MAX_FOLLOW_UPS} follow-up requests"))),
                        );
                    }
                    if let Err(refused) = ctx.policy.admit(&mut next, None) {
                        return run.finish(Outcome::Failed, Some((refused.kind, refused.message)));
                    }
                    ctx.routes.apply(&mut next.headers, usize::from(shared.variant));
                    request = next;
                }
                Verdict::Retryable { reason, after_ms } => {
                    let asked = after_ms.map(|m| Duration::from_millis(u64::from(m))).or(retry_after);
                    if status == 429 {
                        rate_limited += 1;
                        let wait = pacing::backoff(rate_limited, asked);
                        ctx.pacer.pause(wait);
                        if rate_limited > MAX_RATE_LIMITED {
                            return run.finish(
                                Outcome::Failed,
                                Some((
                                    "rate_limited",
                                    format!("{reason}: still rate limited after {rate_limited} waits"),
                                )),
                            );
                        }
                        continue;
                    }
                    retries += 1;
                    let limit = body_error.as_ref().map_or(ctx.retries, |e| retry_limit(e.kind, ctx.retries));
                    if retries > limit {
                        let kind = match &body_error {
                            Some(e) if e.kind == http::TransportKind::Timeout => "timeout",
                            Some(e) if e.kind == http::TransportKind::Protocol => "protocol_error",
                            Some(_) => "truncated",
                            None => exhausted_kind(Some(status)),
                        };
                        let reason = body_error.map(|e| format!("{reason}: {}", e.message)).unwrap_or(reason);
                        return run.gave_up(kind, &reason);
                    }
                    self.wait(pacing::backoff(retries, asked)).await;
                }
            }
        };

        run.record.cache = Some(info.cache);
        run.record.cache_status = info.cache_status.clone();
        run.record.cache_tiers = info.tiers.clone();
        // Boxed: the size probes and the verify request are rarer, larger
        // futures; inlined, they would grow every pair's task (a pair in
        // flight is mostly this future).
        Box::pin(self.size(client, &mut run, index, &request, &info)).await;
        if ctx.verify && outcome == Outcome::Warm {
            let found = Box::pin(verify::ask_again(&ctx, client, &self.plugin, object, derivative, &request)).await;
            self.note(|| Step::Verify {
                cache: found.cache.as_str().into(),
                cache_status: found.cache_status.clone(),
                error: found.error.clone(),
            });
            found.fill(&mut run.record);
        }
        run.finish(outcome, None)
    }

    async fn size(
        &self,
        client: &http::Client,
        run: &mut PairRun,
        index: usize,
        request: &WarmRequest,
        info: &WarmInfo,
    ) {
        let Some(warm) = &run.last else { return };
        let methods = self.size_methods_of(index);
        let prober = Prober { client, caps: &self.ctx.caps, pacer: &self.ctx.pacer, timeouts: self.ctx.timeouts };
        let found = prober.resolve(request, &methods, warm, info).await;
        self.note(|| Step::Size {
            method: found.method.map(|m| m.as_str().to_string()),
            size: found.size,
            probes: found.requests,
            probe_bytes: found.bytes_moved,
        });
        run.record.size = found.size;
        run.record.size_method = found.method;
        run.record.size_check_bytes = found.bytes_moved;
    }

    /// The plugin's size methods for a derivative, asked once per thread.
    fn size_methods_of(&self, index: usize) -> Rc<[SizeMethod]> {
        let mut known = self.size_methods.borrow_mut();
        known[index]
            .get_or_insert_with(|| {
                self.plugin.borrow_mut().size_methods(&self.ctx.derivatives[index]).unwrap_or_default().into()
            })
            .clone()
    }

    /// Sleep unless the run is cancelled; false when cancelled.
    async fn wait(&self, d: Duration) -> bool {
        self.note(|| Step::Wait { ms: d.as_secs_f64() * 1e3 });
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = self.ctx.cancel.cancelled() => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn giving_up_names_the_attempts_in_good_english() {
        let run = |attempts| {
            let mut record = Record::blank("a.mp4", "mobile", 1, crate::util::size::SizeClass::Small);
            record.attempts = attempts;
            PairRun { started: Instant::now(), record, last: None }.gave_up("timeout", "no response headers")
        };
        let one = run(1);
        assert_eq!(one.outcome, Outcome::Failed);
        assert_eq!(one.error_kind.as_deref(), Some("timeout"));
        assert_eq!(one.error.as_deref(), Some("no response headers (after 1 attempt)"));
        assert_eq!(run(3).error.as_deref(), Some("no response headers (after 3 attempts)"));
    }
}
