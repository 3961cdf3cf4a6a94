//! What a long warm adds around the run (issue 23): the flags checked
//! before it (`--checkpoint-every`, `--metrics-listen`, `--max-failures`),
//! the checkpoint `--resume` fetches when the local results are missing,
//! and the observer that, once a second, publishes live metrics and takes
//! checkpoints beside the progress display.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use tokio_util::sync::CancellationToken;

use super::progress::Progress;
use crate::checkpoint::Checkpoints;
use crate::cli::WarmArgs;
use crate::listing::ListingProgress;
use crate::record::Record;
use crate::report::live::{self, Live};
use crate::report::{RunInfo, Summary};
use crate::stats::Stats;
use crate::upload::Upload;
use crate::usage;
use crate::util::size::SizeClasses;
use crate::warm::Observer;
use crate::warm::budget::{FailureBudget, Limit};

/// The scale flags, resolved before the run.
pub(super) struct Scale {
    pub budget: Option<Arc<FailureBudget>>,
    pub live: Option<Arc<Live>>,
    listener: Option<std::net::TcpListener>,
    every: Option<Duration>,
}

impl Scale {
    /// Check the flags (usage errors before any request); binds the metrics
    /// port now so a taken one fails the run at once.
    pub fn prepare(args: &WarmArgs, derivatives: &[String], cancel: &CancellationToken) -> Result<Self> {
        let s = &args.scale;
        let every =
            s.checkpoint_every.as_deref().map(|d| super::parse_duration("--checkpoint-every", d)).transpose()?;
        let budget = s
            .max_failures
            .as_deref()
            .map(|raw| Limit::parse(raw).map_err(usage))
            .transpose()?
            .map(|limit| Arc::new(FailureBudget::new(limit, cancel)));
        let listener = s.metrics_listen.as_deref().map(|a| live::bind(a).map_err(usage)).transpose()?;
        let live = listener.as_ref().map(|_| Arc::new(Live::new(derivatives.to_vec())));
        Ok(Scale { budget, live, listener, every })
    }

    /// Start serving `/metrics` (inside the runtime); the task ends with the run.
    pub fn serve(&mut self) -> Option<tokio::task::JoinHandle<()>> {
        let (live, listener) = (self.live.clone()?, self.listener.take()?);
        Some(tokio::spawn(live::serve(live, listener)))
    }

    /// Checkpoints to the `--upload` destination, when asked for.
    pub fn checkpoints(&self, args: &WarmArgs, upload: Option<&Upload>) -> Result<Option<Checkpoints>> {
        let (Some(every), Some(upload)) = (self.every, upload) else { return Ok(None) };
        let rclone = upload.rclone().clone();
        Checkpoints::new(every, rclone, upload.dest(), &args.results, args.report.as_deref()).map(Some)
    }
}

/// `--resume`: the pairs already warm and their statistics; with
/// `--upload` and no local results, the run's own checkpoint is fetched
/// first.
pub(super) async fn resume(
    results: &Path,
    by_edge: bool,
    upload: Option<&Upload>,
    classes: SizeClasses,
    shard: Option<crate::listing::Shard>,
) -> Result<(std::collections::HashSet<u64>, Stats)> {
    let missing = results.metadata().map_or(true, |m| m.len() == 0);
    if let Some(u) = upload.filter(|_| missing)
        && crate::checkpoint::fetch(u.rclone(), u.dest(), results).await?
    {
        tracing::warn!(
            "--resume: {} was missing; continuing from its checkpoint at {}",
            results.display(),
            crate::util::redact::redact_url(u.dest())
        );
    }
    let mut prior = Stats::new(classes);
    // A record of another shard's object: the file is another shard's (all
    // shards named one --results and one --upload), and resuming it would
    // count that shard's pairs as this one's.
    let mut foreign: Option<String> = None;
    let state = crate::record::resume_with(results, by_edge, |r| {
        if foreign.is_none() && shard.is_some_and(|s| !s.contains(&r.path)) {
            foreign = Some(r.path.clone());
        }
        prior.add(&r)
    })
    .map_err(|e| match e {
        crate::record::ResumeError::NotResults { .. } => crate::usage(e.to_string()),
        e => anyhow::Error::new(e).context(format!("cannot read results file {} to resume", results.display())),
    })?;
    if let (Some(path), Some(s)) = (foreign, shard) {
        return Err(crate::usage(format!(
            "--resume: {} holds `{path}`, an object of another shard than {}/{}: each shard needs its own \
             --results file name (deploy/kubernetes/job.yaml names them by the index)",
            results.display(),
            s.index,
            s.count
        )));
    }
    if state.dropped > 0 {
        tracing::warn!(
            "{}: dropped {} unreadable line(s); those pairs will be warmed again",
            results.display(),
            state.dropped
        );
    }
    Ok((state.warm, prior))
}

/// The progress display, live metrics and checkpoints, told of the run.
pub(super) struct RunObserver<'a> {
    pub progress: &'a mut Progress,
    pub live: Option<Arc<Live>>,
    pub checkpoints: Option<Checkpoints>,
    pub listing: Arc<ListingProgress>,
    pub derivatives: u64,
    /// What `--resume` found warm: part of every summary so far.
    pub prior: Option<&'a Stats>,
    /// The run's parameters, for the summary so far.
    pub info: RunInfo,
}

impl Observer for RunObserver<'_> {
    fn record(&mut self, record: &Record, stats: &Stats) {
        self.progress.record(record, stats);
    }

    fn tick(&mut self, stats: &Stats, elapsed: Duration) {
        if let Some(live) = &self.live {
            let expected = self.listing.snapshot().pairs_total(self.derivatives);
            live.publish(stats, elapsed, stats.pairs, expected);
        }
        let Some(checkpoints) = &mut self.checkpoints else { return };
        let (prior, info) = (self.prior, &self.info);
        checkpoints.tick(|| {
            let mut all = stats.clone();
            if let Some(p) = prior {
                all.merge(p);
            }
            let info = RunInfo {
                finished_at: crate::record::now_rfc3339(),
                elapsed_s: elapsed.as_secs_f64(),
                peak_rss_bytes: crate::util::memory::peak_rss_bytes(),
                ..info.clone()
            };
            serde_json::to_vec_pretty(&Summary::new(info, &all)).unwrap_or_default()
        });
    }
}
