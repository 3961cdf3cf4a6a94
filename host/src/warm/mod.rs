//! The warm stage ([`run`]). The dispatcher reads the listing, expands each
//! object into its (object, derivative) pairs and sends them in batches
//! into bounded per-size-class queues; `--threads` engine threads, each a
//! current-thread runtime with one plugin instance and one HTTP client,
//! keep their share of `--concurrency` pairs in flight, preferring reserved
//! classes but never idling while another class has work; finished records
//! come back in batches to the recorder, which writes each line whole and
//! folds it into the statistics. Memory is bounded by the queue depths and
//! the pairs in flight, whatever the listing's length.

pub mod budget;
pub mod client;
mod dispatch;
pub mod egress;
mod engine;
pub mod http;
pub mod pacing;
pub mod routes;
pub mod sizing;
pub mod trace;
pub mod verify;
pub mod worker;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::listing::{self, Filters, ListingError, ListingProgress, ListingSource, ListingTotals, Object};
use crate::plugin::{Derivative, Plugin};
use crate::record::{Record, ResultsWriter};
use crate::stats::Stats;
use crate::util::size::{SizeClass, SizeClasses};
use worker::{Worker, WorkerContext};

/// One object and its class, shared by its pairs.
#[derive(Debug)]
pub struct Job {
    pub object: Object,
    pub class: SizeClass,
}

/// One pair at one edge in one variant: a job and the indexes of a
/// derivative, an edge and a variant (0 without `--edge`, `--variant`).
#[derive(Debug, Clone)]
pub struct SharedJob {
    pub job: Arc<Job>,
    pub derivative: usize,
    pub edge: u16,
    pub variant: u16,
}

/// Everything a warm run needs, resolved and validated.
pub struct WarmPlan {
    pub plugin: Plugin,
    pub base_url: String,
    pub settings: Vec<(String, String)>,
    pub derivatives: Vec<Derivative>,
    pub concurrency: usize,
    /// Engine threads (at most `concurrency`).
    pub threads: usize,
    /// Workers reserved (preferring) small, medium, large sources.
    pub reserved: [usize; 3],
    pub timeouts: http::Timeouts,
    pub retries: u32,
    pub max_polls: u32,
    pub rate: Option<u32>,
    pub results: PathBuf,
    /// Pairs already warm, from `--resume`.
    pub already_warm: Option<std::collections::HashSet<u64>>,
    pub max_source_bytes: Option<u64>,
    pub size_classes: SizeClasses,
    pub capabilities_cache: Option<PathBuf>,
    /// `--verify`: ask each warm pair again and record its cache state.
    pub verify: bool,
    /// Where plugin-built requests may go (`--base-url`, `--allow-host`).
    pub policy: egress::Policy,
    /// Kept up to date for the progress display: objects listed, pairs skipped.
    pub listing_progress: Arc<ListingProgress>,
    /// What every engine thread's HTTP client is built from
    /// (`--connect-to`, `--ca-file`).
    pub client: Arc<client::ClientConfig>,
    /// `--max-failures`.
    pub budget: Option<Arc<budget::FailureBudget>>,
    /// `--metrics-listen`: pairs in flight, kept by the engine threads.
    pub live: Option<Arc<crate::report::live::Live>>,
    /// `--edge`, `--variant`, `--header`.
    pub routes: routes::Routes,
}

/// How the run went.
pub struct RunOutcome {
    pub stats: Stats,
    pub listing: ListingTotals,
    /// Pairs skipped because `--resume` found them warm.
    pub resumed_skips: u64,
    /// The listing's error, if it ended early.
    pub listing_error: Option<ListingError>,
    pub interrupted: bool,
    /// `--max-failures` stopped the run: why, in one line.
    pub stopped: Option<String>,
    pub elapsed: std::time::Duration,
}

/// Told of every record as it is written (progress display), and about
/// once a second with every record so far whole on disk (live metrics,
/// checkpoints).
pub trait Observer: Send {
    fn record(&mut self, record: &Record, stats: &Stats);
    fn tick(&mut self, _stats: &Stats, _elapsed: std::time::Duration) {}
}

/// The shared queues of pairs, one per size class (small, medium, large),
/// carrying batches.
pub(crate) struct Queues {
    pub classes: [Queue; 3],
    /// Pairs a thread could not start once the listing had ended, given
    /// back so that a thread with free slots starts them now rather than
    /// after the holder's next free slot (a whole transform later).
    pub spill: std::sync::Mutex<Vec<SharedJob>>,
    /// Signalled when pairs are given back.
    pub spilled: tokio::sync::Notify,
}

/// One class's queue of batches.
pub(crate) type Queue = (async_channel::Sender<Vec<SharedJob>>, async_channel::Receiver<Vec<SharedJob>>);

/// Run the warm: listing → dispatcher → engine threads → recorder.
pub async fn run(
    plan: WarmPlan,
    source: ListingSource,
    filters: Filters,
    cancel: CancellationToken,
    observer: &mut dyn Observer,
) -> anyhow::Result<RunOutcome> {
    let started = Instant::now();
    let threads = plan.threads.clamp(1, plan.concurrency.max(1));
    // Instances first, one per thread: a plugin that cannot be configured
    // fails the run before any request.
    let mut instances = Vec::with_capacity(threads);
    for _ in 0..threads {
        let mut instance = plan.plugin.instantiate()?;
        instance.configure(&plan.base_url, &plan.settings)?;
        instances.push(instance);
    }
    let mut writer = ResultsWriter::open(&plan.results, plan.already_warm.is_some())
        .map_err(|e| anyhow::anyhow!("cannot write results file {}: {e}", plan.results.display()))?;

    let ctx = Arc::new(WorkerContext {
        pacer: pacing::Pacer::new(plan.rate, started),
        caps: sizing::Capabilities::load(plan.capabilities_cache.clone()),
        timeouts: plan.timeouts,
        retries: plan.retries,
        max_polls: plan.max_polls,
        derivatives: plan.derivatives.clone(),
        max_source_bytes: plan.max_source_bytes,
        verify: plan.verify,
        policy: plan.policy,
        cancel: cancel.clone(),
        budget: plan.budget.clone(),
        live: plan.live.clone(),
        routes: plan.routes,
    });
    let configs = edge_clients(&plan.client, &plan.base_url, &ctx.routes.edges);
    let edge_count = ctx.routes.edge_count();

    // Batches small enough that every thread gets work early, large enough
    // that a thread is woken once per batch, not per pair.
    let batch = (plan.concurrency / (threads * 4)).clamp(1, 64);
    // Pairs waiting per class: enough to keep every slot fed, few enough
    // that Ctrl-C has little queued to record as interrupted.
    let depth = ((plan.concurrency * 2).clamp(16, 65_536) / batch).max(threads);
    let queues = Arc::new(Queues {
        classes: std::array::from_fn(|_| async_channel::bounded(depth)),
        spill: std::sync::Mutex::default(),
        spilled: tokio::sync::Notify::new(),
    });
    let (results_tx, mut results_rx) = mpsc::channel::<Vec<Record>>(4 * threads);

    let mut engines = Vec::with_capacity(threads);
    for (index, (instance, share)) in
        instances.into_iter().zip(shares(plan.concurrency, plan.reserved, threads, edge_count)).enumerate()
    {
        let (ctx, queues, results_tx) = (ctx.clone(), queues.clone(), results_tx.clone());
        // Built on its thread: a client is the thread's own (`!Send`).
        let configs = configs.clone();
        let worker = move || {
            let clients = configs.into_iter().map(http::Client::new).collect();
            Worker::with_clients(ctx, clients, instance)
        };
        engines.push(engine::spawn(index, share, worker, queues, results_tx)?);
    }
    drop(results_tx);

    let (objects, listing_task) = listing::stream_with_progress(source, filters, plan.listing_progress.clone());
    let dispatcher = tokio::spawn(dispatch::run(
        objects,
        queues.clone(),
        dispatch::Dispatch {
            classes: plan.size_classes,
            derivative_names: plan.derivatives.iter().map(|d| d.name.clone()).collect(),
            edges: ctx.routes.edges.iter().map(|e| e.name.clone()).collect(),
            variants: ctx.routes.variants.iter().map(|v| v.name.clone()).collect(),
            already_warm: plan.already_warm,
            batch,
            // A spent --max-failures stops the dispatcher as Ctrl-C does.
            cancel: plan.budget.as_ref().map_or_else(|| cancel.clone(), |b| b.token().clone()),
            progress: plan.listing_progress,
        },
    ));

    let mut stats = Stats::new(plan.size_classes);
    let results_path = plan.results.display().to_string();
    let io_error = |e: std::io::Error| anyhow::anyhow!("cannot write results file {results_path}: {e}");
    let mut unflushed = 0usize;
    let mut second = tokio::time::interval(std::time::Duration::from_secs(1));
    second.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let batch = tokio::select! {
            batch = results_rx.recv() => match batch { Some(b) => b, None => break },
            _ = second.tick() => {
                writer.sync().map_err(io_error)?;
                observer.tick(&stats, started.elapsed());
                continue;
            }
        };
        for record in &batch {
            writer.write(record).map_err(io_error)?;
            stats.record(record, started.elapsed());
            observer.record(record, &stats);
            if let Some(b) = &plan.budget {
                b.example(record);
            }
        }
        unflushed += batch.len();
        // Flush whenever the recorder has caught up with the engine (and at
        // least every 256 lines under load): a crash then loses only lines
        // of pairs that were, in effect, still in flight.
        if unflushed >= 256 || results_rx.is_empty() {
            writer.flush().map_err(io_error)?;
            unflushed = 0;
        }
    }
    writer.sync().map_err(io_error)?;
    for engine in engines {
        if engine.join().is_err() {
            anyhow::bail!("an engine thread panicked; the results file holds every record it sent");
        }
    }
    stats.overview.timeline.merge(&ctx.pacer.pauses());
    let resumed_skips = dispatcher.await.unwrap_or(0);
    let (listing, listing_error) = match listing_task.await {
        Ok(Ok(totals)) => (totals, None),
        Ok(Err(e)) => (ListingTotals::default(), Some(e)),
        Err(e) => (
            ListingTotals::default(),
            Some(ListingError::Malformed { source_name: "listing".into(), line: 0, message: e.to_string() }),
        ),
    };
    if let Err(e) = ctx.caps.save() {
        tracing::warn!("could not save size capabilities: {e}");
    }
    let stopped = plan.budget.as_ref().filter(|b| b.spent()).map(|b| b.reason());
    Ok(RunOutcome {
        stats,
        listing,
        resumed_skips,
        listing_error,
        interrupted: cancel.is_cancelled(),
        stopped,
        elapsed: started.elapsed(),
    })
}

/// One client configuration per edge: the run's, with the edge's route for
/// the base URL's host first (so the Host header and TLS name stay the
/// URL's); just the run's without `--edge`.
fn edge_clients(
    config: &Arc<client::ClientConfig>,
    base_url: &str,
    edges: &[routes::Edge],
) -> Vec<Arc<client::ClientConfig>> {
    let host = client::destination(base_url).map(|d| d.host).unwrap_or_default();
    if edges.is_empty() {
        return vec![config.clone()];
    }
    edges.iter().map(|e| Arc::new(config.with_first_route(e.route_for(&host)))).collect()
}

/// Each thread's slots and reserved slots: `concurrency` and `reserved`
/// split as evenly as they go.
fn shares(concurrency: usize, reserved: [usize; 3], threads: usize, edges: usize) -> Vec<engine::ThreadPlan> {
    let split = |n: usize, i: usize| n / threads + usize::from(i < n % threads);
    (0..threads)
        .map(|i| engine::ThreadPlan { slots: split(concurrency, i), reserved: reserved.map(|r| split(r, i)), edges })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::shares;

    #[test]
    fn shares_add_up() {
        let s = shares(10, [3, 0, 1], 4, 1);
        assert_eq!(s.iter().map(|t| t.slots).sum::<usize>(), 10);
        assert_eq!(s.iter().map(|t| t.reserved[0]).sum::<usize>(), 3);
        assert_eq!(s.iter().map(|t| t.reserved[2]).sum::<usize>(), 1);
        assert!(s.iter().all(|t| t.reserved.iter().sum::<usize>() <= t.slots));
    }
}
