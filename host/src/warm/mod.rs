//! The warm stage. The dispatcher ([`run`]) reads the listing, expands each
//! object into its (object, derivative) pairs and routes them into bounded
//! per-size-class queues; a fixed pool of workers (each owning a plugin
//! instance) takes pairs, preferring its reserved class but never idling
//! while another class has work; results flow through one channel to the
//! recorder, which writes each line and folds it into the statistics.
//! Memory is bounded by the queue depths, whatever the listing's length.

pub mod egress;
pub mod http;
pub mod pacing;
pub mod sizing;
pub mod trace;
pub mod verify;
pub mod worker;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::listing::{self, Filters, ListingError, ListingSource, ListingTotals, Object};
use crate::plugin::{Derivative, Plugin};
use crate::record::{Record, ResultsWriter, pair_key};
use crate::size::{SizeClass, SizeClasses};
use crate::stats::Stats;
use worker::{Worker, WorkerContext};

/// One object and its class, shared by its pairs.
#[derive(Debug)]
pub struct Job {
    pub object: Object,
    pub class: SizeClass,
}

/// One pair: a job and the index of a derivative.
#[derive(Debug, Clone)]
pub struct SharedJob {
    pub job: Arc<Job>,
    pub derivative: usize,
}

/// Everything a warm run needs, resolved and validated.
pub struct WarmPlan {
    pub plugin: Plugin,
    pub base_url: String,
    pub settings: Vec<(String, String)>,
    pub derivatives: Vec<Derivative>,
    pub concurrency: usize,
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
    pub elapsed: std::time::Duration,
}

/// Told of every record as it is written (progress display).
pub trait Observer: Send {
    fn record(&mut self, record: &Record, stats: &Stats);
}

/// Run the warm: listing → dispatcher → workers → recorder.
pub async fn run(
    plan: WarmPlan,
    source: ListingSource,
    filters: Filters,
    cancel: CancellationToken,
    observer: &mut dyn Observer,
) -> anyhow::Result<RunOutcome> {
    let started = Instant::now();
    // Instances first: a plugin that cannot be configured fails the run
    // before any request.
    let mut instances = Vec::with_capacity(plan.concurrency);
    for _ in 0..plan.concurrency {
        let mut instance = plan.plugin.instantiate()?;
        instance.configure(&plan.base_url, &plan.settings)?;
        instances.push(instance);
    }
    let mut writer = ResultsWriter::open(&plan.results, plan.already_warm.is_some())
        .map_err(|e| anyhow::anyhow!("cannot write results file {}: {e}", plan.results.display()))?;

    let ctx = Arc::new(WorkerContext {
        client: http::client(plan.concurrency, plan.timeouts.headers)?,
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
    });

    let depth = (plan.concurrency * 2).clamp(16, 1024);
    let queues: Arc<[(async_channel::Sender<SharedJob>, async_channel::Receiver<SharedJob>); 3]> =
        Arc::new([async_channel::bounded(depth), async_channel::bounded(depth), async_channel::bounded(depth)]);
    let (results_tx, mut results_rx) = mpsc::channel::<Record>(depth);

    let mut workers = tokio::task::JoinSet::new();
    let preferences = worker_preferences(plan.concurrency, plan.reserved);
    for (n, (instance, preference)) in instances.into_iter().zip(preferences).enumerate() {
        let (queues, results_tx, ctx) = (queues.clone(), results_tx.clone(), ctx.clone());
        workers.spawn(async move {
            let mut worker = Worker::new(ctx, instance);
            while let Some(job) = next_job(&queues, preference, n).await {
                let record = worker.warm(&job).await;
                if results_tx.send(record).await.is_err() {
                    break;
                }
            }
        });
    }
    drop(results_tx);

    let (objects, listing_task) = listing::stream(source, filters);
    let dispatcher = tokio::spawn(dispatch(
        objects,
        queues.clone(),
        plan.size_classes,
        plan.derivatives.iter().map(|d| d.name.clone()).collect(),
        plan.already_warm,
        cancel.clone(),
    ));

    let mut stats = Stats::new(plan.size_classes);
    let results_path = plan.results.display().to_string();
    let io_error = |e: std::io::Error| anyhow::anyhow!("cannot write results file {results_path}: {e}");
    let mut unflushed = 0u32;
    while let Some(record) = results_rx.recv().await {
        writer.write(&record).map_err(io_error)?;
        unflushed += 1;
        // Flush whenever the recorder has caught up with the workers (and at
        // least every 64 lines under load): a crash then loses only lines of
        // pairs that were, in effect, still in flight.
        if unflushed >= 64 || results_rx.is_empty() {
            writer.flush().map_err(io_error)?;
            unflushed = 0;
        }
        stats.record(&record, started.elapsed());
        observer.record(&record, &stats);
    }
    writer.flush().map_err(io_error)?;
    while workers.join_next().await.is_some() {}
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
    Ok(RunOutcome {
        stats,
        listing,
        resumed_skips,
        listing_error,
        interrupted: cancel.is_cancelled(),
        elapsed: started.elapsed(),
    })
}

/// Which class each worker prefers: the reserved counts first, the rest
/// none (they rotate).
fn worker_preferences(concurrency: usize, reserved: [usize; 3]) -> Vec<Option<usize>> {
    let mut prefs = Vec::with_capacity(concurrency);
    for (class, &n) in reserved.iter().enumerate() {
        prefs.extend(std::iter::repeat_n(Some(class), n));
    }
    prefs.resize(concurrency, None);
    prefs.truncate(concurrency);
    prefs
}

/// Take the next pair: from the preferred class when it has one waiting,
/// else from whichever class has work; `None` when every queue is closed
/// and empty.
async fn next_job(
    queues: &[(async_channel::Sender<SharedJob>, async_channel::Receiver<SharedJob>); 3],
    preference: Option<usize>,
    n: usize,
) -> Option<SharedJob> {
    let first = preference.unwrap_or(n % 3);
    let order = [first, (first + 1) % 3, (first + 2) % 3];
    for &i in &order {
        if let Ok(job) = queues[i].1.try_recv() {
            return Some(job);
        }
    }
    let [a, b, c] = order.map(|i| &queues[i].1);
    tokio::select! {
        biased;
        Ok(job) = a.recv() => Some(job),
        Ok(job) = b.recv() => Some(job),
        Ok(job) = c.recv() => Some(job),
        else => None,
    }
}

async fn dispatch(
    mut objects: mpsc::Receiver<Object>,
    queues: Arc<[(async_channel::Sender<SharedJob>, async_channel::Receiver<SharedJob>); 3]>,
    classes: SizeClasses,
    derivative_names: Vec<String>,
    already_warm: Option<std::collections::HashSet<u64>>,
    cancel: CancellationToken,
) -> u64 {
    let mut resumed = 0u64;
    'objects: loop {
        let object = tokio::select! {
            o = objects.recv() => match o { Some(o) => o, None => break },
            _ = cancel.cancelled() => break,
        };
        let class = classes.class_of(object.size);
        let job = Arc::new(Job { object, class });
        for (derivative, name) in derivative_names.iter().enumerate() {
            if already_warm.as_ref().is_some_and(|w| w.contains(&pair_key(&job.object.path, name))) {
                resumed += 1;
                continue;
            }
            let queue = &queues[class as usize].0;
            tokio::select! {
                sent = queue.send(SharedJob { job: job.clone(), derivative }) => if sent.is_err() { break 'objects },
                _ = cancel.cancelled() => break 'objects,
            }
        }
    }
    for (tx, _) in queues.iter() {
        tx.close();
    }
    resumed
}
