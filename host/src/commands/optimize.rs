//! `prewarm optimize`: resolve the arguments (threshold, encoders, where
//! outputs go) before touching anything, stream the sources at or above the
//! threshold to a fixed set of workers (one per usable hardware encoder,
//! plus one in software, unless `--jobs`), record one line per source as it
//! ends and print the summary with the bytes saved. Ctrl-C stops the files
//! in progress cleanly; a second one quits at once.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;
use tokio::sync::{Mutex, OnceCell, mpsc};
use tokio_util::sync::CancellationToken;

use super::optimize_places::{self, TempCounts};
use crate::cli::{HwChoice, OptimizeArgs};
use crate::listing::{self, Object};
use crate::media::hw::{self, Codec, Detector, ENCODERS, Family};
use crate::media::optimize::{Choice, FileResult, Outcome, Plan, optimize_one};
use crate::media::scratch::RunDir;
use crate::media::{Tools, ffmpeg, hw_cache};
use crate::plugin::{PluginRuntime, RuntimeOptions};
use crate::rclone::Rclone;
use crate::upload::Upload;
use crate::util::size::{human, parse_size};
use crate::{Exit, usage};

/// The threshold when neither --threshold nor --plugin says.
const DEFAULT_THRESHOLD: u64 = 256 << 20;

pub fn run(args: OptimizeArgs) -> Result<Exit> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run_async(args))
}

/// The encoders the run may use.
struct Encoders {
    tools: Tools,
    detector: Option<Arc<Detector>>,
    hardware: Vec<Choice>,
    software: Option<Choice>,
    render_node: Option<String>,
}

async fn run_async(args: OptimizeArgs) -> Result<Exit> {
    let threshold = threshold(&args)?;
    let encode_timeout = super::warm::parse_duration("--encode-timeout", &args.encode_timeout)?;
    let stall_timeout = super::warm::parse_duration("--stall-timeout", &args.stall_timeout)?;
    if args.jobs == Some(0) {
        return Err(usage("--jobs 0: must be at least 1"));
    }
    // The threshold is applied after the listing: temporary objects of
    // any size must be seen to be swept.
    let (source, filters, listing_rclone) = super::warm::source_and_filters(&args.source)?;
    let (source_fs, dest_fs) = locations(&args)?;
    let rclone = Rclone::listed_or_from_args(listing_rclone, &args.source)?;
    if !args.in_place && optimize_places::same_place(&rclone, &source_fs, &dest_fs).await {
        return Err(usage(format!(
            "--dest {} is the source's own place ({}): use --in-place to replace the originals",
            crate::util::rclone_secrets::redact_remote(&dest_fs),
            crate::util::rclone_secrets::redact_remote(&source_fs)
        )));
    }
    let upload = Upload::prepare(args.upload.as_deref(), &[args.results.as_deref()], || Ok(rclone.clone()))?;
    let encoders = resolve_encoders(&args).await?;
    let mut choices: Vec<Choice> = encoders.hardware.clone();
    choices.extend(encoders.software.clone());
    if choices.is_empty() {
        return Err(usage(format!(
            "no usable {} encoder in {} (see `prewarm hw`)",
            args.codec.as_str(),
            encoders.tools.ffmpeg.display()
        )));
    }
    let jobs = args.jobs.unwrap_or(encoders.hardware.len() + 1);
    let work_dir = work_dir(&args)?;
    let mut results = Results::create(args.results.as_ref())?;
    let (run_dir, swept) = RunDir::create(&work_dir)
        .map_err(|e| usage(format!("--work-dir {}: cannot make a scratch directory: {e}", work_dir.display())))?;
    let temps = Arc::new(TempCounts::default());
    let dead = Arc::new(swept.dead);
    if !args.in_place && !args.dry_run {
        optimize_places::sweep_dest(&rclone, &dest_fs, &dead, &temps).await;
    }

    let (listed, listing_task) = listing::stream(source, filters);
    let sweeper = (!args.dry_run).then(|| (rclone.clone(), source_fs.clone()));
    let objects = optimize_places::sources(listed, threshold, sweeper, dead.clone(), temps.clone());
    if args.dry_run {
        return dry_run(objects, listing_task, &choices, args.codec, &mut results).await;
    }
    let can_tonemap = ffmpeg::has_filters(&encoders.tools, &["zscale", "tonemap"]).await;
    let plan = Arc::new(Plan {
        rclone: rclone.clone(),
        tools: encoders.tools,
        source_fs,
        dest_fs,
        in_place: args.in_place,
        replace_damaged: args.replace_damaged,
        codec: args.codec,
        quality: args.quality,
        resolution: args.resolution,
        fit: args.fit,
        audio: args.audio,
        can_tonemap,
        software: encoders.software,
        detector: encoders.detector,
        render_node: encoders.render_node,
        encode_timeout,
        stall_timeout,
        scratch: run_dir.path.clone(),
        run_tag: run_dir.tag.clone(),
        hash_type: OnceCell::new(),
    });
    let cancel = CancellationToken::new();
    let signals = tokio::spawn(watch_ctrl_c(cancel.clone(), rclone.clone()));
    let started = Instant::now();
    let mut summary = Summary { threshold, jobs, scratch_dirs_swept: swept.dirs, ..Summary::default() };
    let objects = Arc::new(Mutex::new(objects));
    run_workers(plan, objects.clone(), &choices, &cancel, &mut results, &mut summary).await?;
    signals.abort();
    summary.interrupted = cancel.is_cancelled();
    // After Ctrl-C the listing may end early: the sources not started are
    // counted, not recorded.
    drop(objects);
    let listing = listing_task.await?;
    summary.seconds = started.elapsed().as_secs_f64();
    summary.rclone_processes = rclone.processes_spawned();
    summary.results_file = args.results.as_ref().map(|p| p.display().to_string());
    drop(run_dir);
    if let Ok(totals) = &listing {
        summary.sources_listed = totals.seen;
    }
    summary.sources_selected = temps.selected.load(std::sync::atomic::Ordering::Relaxed);
    summary.temporary_objects_seen = temps.seen.load(std::sync::atomic::Ordering::Relaxed);
    summary.temporary_objects_swept = temps.swept.load(std::sync::atomic::Ordering::Relaxed);
    let uploaded = match &upload {
        Some(u) => u.run().await,
        None => Ok(()),
    };
    rclone.shutdown();
    print_summary(&summary, args.json)?;
    uploaded?;
    if !summary.interrupted {
        listing.context("the listing ended early; the sources listed before the error were handled and recorded")?;
    }
    let failed =
        [Outcome::Failed, Outcome::Damaged].iter().map(|o| summary.outcomes.get(o).copied().unwrap_or(0)).sum::<u64>();
    Ok(if failed > 0 || summary.interrupted { Exit::SomeFailed } else { Exit::Success })
}

/// Where sources are read and outputs written.
fn locations(args: &OptimizeArgs) -> Result<(String, String)> {
    let source_fs = match (&args.source.source, &args.root) {
        (Some(s), _) => s.clone(),
        (None, Some(root)) => root.clone(),
        (None, None) => return Err(usage("--listing needs --root REMOTE:PATH, the remote its paths are relative to")),
    };
    let dest_fs = match (&args.dest, args.in_place) {
        (_, true) => source_fs.clone(),
        (Some(d), false) => d.clone(),
        (None, false) => return Err(usage("give --dest REMOTE:PATH or --in-place")),
    };
    Ok((source_fs, dest_fs))
}

/// `summary.jobs` workers, worker i with the i-th encoder choice; results
/// recorded and shown as they come.
async fn run_workers(
    plan: Arc<Plan>,
    objects: Arc<Mutex<mpsc::Receiver<Object>>>,
    choices: &[Choice],
    cancel: &CancellationToken,
    results: &mut Results,
    summary: &mut Summary,
) -> Result<()> {
    let (done_tx, mut done_rx) = mpsc::channel::<FileResult>(summary.jobs);
    let workers: Vec<_> = (0..summary.jobs)
        .map(|i| {
            let choice = choices[i % choices.len()].clone();
            tokio::spawn(worker(plan.clone(), objects.clone(), choice, cancel.clone(), done_tx.clone()))
        })
        .collect();
    drop(done_tx);
    while let Some(result) = done_rx.recv().await {
        summary.add(&result);
        crate::util::logging::print(tracing::Level::INFO, &format!("{}\n", progress_line(summary, &result)));
        results.write(&result)?;
    }
    for w in workers {
        w.await?;
    }
    Ok(())
}

async fn worker(
    plan: Arc<Plan>,
    objects: Arc<Mutex<mpsc::Receiver<Object>>>,
    choice: Choice,
    cancel: CancellationToken,
    done: mpsc::Sender<FileResult>,
) {
    loop {
        if cancel.is_cancelled() {
            return;
        }
        let next = tokio::select! {
            o = async { objects.lock().await.recv().await } => o,
            _ = cancel.cancelled() => None,
        };
        let Some(object) = next else { return };
        let result = optimize_one(&plan, &object, &choice, &cancel).await;
        if done.send(result).await.is_err() {
            return;
        }
    }
}

/// `--threshold`, else the plugin's declared limit, else 256 MiB.
fn threshold(args: &OptimizeArgs) -> Result<u64> {
    if let Some(t) = &args.threshold {
        return parse_size(t).map_err(|e| usage(format!("--threshold: {e}")));
    }
    let Some(spec) = &args.plugin else { return Ok(DEFAULT_THRESHOLD) };
    let runtime =
        PluginRuntime::new(RuntimeOptions { cache_dir: RuntimeOptions::default_cache_dir(), ..Default::default() })?;
    let plugin = runtime.load(spec)?;
    plugin.info().max_source_bytes.ok_or_else(|| {
        usage(format!("plugin `{}` declares no max source size: give --threshold SIZE", plugin.info().name))
    })
}

fn work_dir(args: &OptimizeArgs) -> Result<PathBuf> {
    let dir = args.work_dir.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&dir).map_err(|e| usage(format!("--work-dir {}: {e}", dir.display())))?;
    // rclone reads a relative path against its own working directory.
    std::fs::canonicalize(&dir).map_err(|e| usage(format!("--work-dir {}: {e}", dir.display())))
}

async fn resolve_encoders(args: &OptimizeArgs) -> Result<Encoders> {
    let explicit = args.ffmpeg.ffmpeg.clone();
    let codec = args.codec;
    let software_of = |built: &dyn Fn(&str) -> bool| {
        ENCODERS
            .iter()
            .find(|(name, c, f)| *f == Family::Software && *c == codec && built(name))
            .map(|(name, ..)| Choice { name: name.to_string(), family: Family::Software })
    };
    if args.hw == HwChoice::None {
        let tools = tokio::task::spawn_blocking(move || Tools::locate(explicit.as_deref())).await??;
        let built = hw::list_encoders(&tools).await?;
        let software = software_of(&|n| built.iter().any(|b| b == n));
        return Ok(Encoders { tools, detector: None, hardware: Vec::new(), software, render_node: None });
    }
    let detector = Arc::new(Detector::new(explicit, hw_cache::default_path(), false));
    let report = detector.report().await?.clone();
    let wanted = |f: Family| match args.hw {
        HwChoice::Auto => f != Family::Software,
        HwChoice::Nvenc => f == Family::Nvenc,
        HwChoice::Qsv => f == Family::Qsv,
        HwChoice::Vaapi => f == Family::Vaapi,
        HwChoice::Amf => f == Family::Amf,
        HwChoice::Videotoolbox => f == Family::Videotoolbox,
        HwChoice::None => false,
    };
    let of_codec = |e: &&hw::EncoderStatus| e.codec == codec && wanted(e.family);
    let hardware: Vec<Choice> = report
        .encoders
        .iter()
        .filter(of_codec)
        .filter(|e| e.usable)
        .map(|e| Choice { name: e.name.clone(), family: e.family })
        .collect();
    if args.hw != HwChoice::Auto && hardware.is_empty() {
        let why: Vec<String> = report
            .encoders
            .iter()
            .filter(of_codec)
            .map(|e| format!("{}: {}", e.name, e.reason.map_or("not usable", |r| r.as_str())))
            .collect();
        return Err(usage(format!(
            "--hw {}: no usable {} encoder of that kind here ({}); see `prewarm hw`",
            format!("{:?}", args.hw).to_lowercase(),
            codec.as_str(),
            if why.is_empty() { "none known".to_string() } else { why.join(", ") }
        )));
    }
    let software = software_of(&|n| report.status(n).is_some_and(|e| e.usable));
    let render_node = report.fingerprint.render_nodes.first().map(|n| n.path.clone());
    let tools =
        Tools { ffmpeg: report.ffmpeg.clone(), ffprobe: report.ffprobe.clone(), version: report.version.clone() };
    Ok(Encoders { tools, detector: Some(detector), hardware, software, render_node })
}

async fn dry_run(
    mut objects: mpsc::Receiver<Object>,
    task: tokio::task::JoinHandle<Result<listing::ListingTotals, listing::ListingError>>,
    choices: &[Choice],
    codec: Codec,
    results: &mut Results,
) -> Result<Exit> {
    let mut out = std::io::stdout().lock();
    let mut n = 0usize;
    while let Some(object) = objects.recv().await {
        let choice = &choices[n % choices.len()];
        n += 1;
        writeln!(out, "would optimize {} ({}) with {}", object.path, human(object.size), choice.name)?;
        results.write(&FileResult {
            path: object.path,
            size_before: object.size,
            size_after: None,
            codec,
            encoder: Some(choice.name.clone()),
            fallback_from: None,
            width: None,
            height: None,
            steps: Vec::new(),
            seconds: 0.0,
            outcome: Outcome::Planned,
            kind: None,
            error: None,
        })?;
    }
    let totals = task.await??;
    writeln!(out, "{n} of {} listed sources at or above the threshold", totals.seen)?;
    Ok(Exit::Success)
}

/// Ctrl-C or SIGTERM: stop cleanly; a second one: kill the children, quit.
async fn watch_ctrl_c(cancel: CancellationToken, rclone: Rclone) {
    crate::util::child::interrupted().await;
    let message = "\nprewarm: interrupted; stopping the files in progress and cleaning up (Ctrl-C again to quit now)\n";
    crate::util::logging::print(tracing::Level::WARN, message);
    cancel.cancel();
    crate::util::child::interrupted().await;
    // Exiting skips destructors: stop the children first.
    ffmpeg::kill_all();
    rclone.shutdown();
    std::process::exit(130);
}

/// The results file, one line per source, on disk as each ends (zstd when
/// the name ends in `.zst`, a frame per line: sources take seconds each).
struct Results(Option<crate::util::zstd_lines::LinesOut>);

impl Results {
    fn create(path: Option<&PathBuf>) -> Result<Self> {
        let Some(path) = path else { return Ok(Results(None)) };
        let out = crate::util::zstd_lines::LinesOut::open(path, false)
            .map_err(|e| usage(format!("--results {}: {e}", path.display())))?;
        Ok(Results(Some(out)))
    }

    fn write(&mut self, result: &FileResult) -> Result<()> {
        if let Some(out) = &mut self.0 {
            let w = out.writer()?;
            serde_json::to_writer(&mut *w, result)?;
            w.write_all(b"\n")?;
            out.end_frame()?;
        }
        Ok(())
    }
}

/// The end-of-run summary.
#[derive(Debug, Default, Serialize)]
struct Summary {
    /// Sources in the listing, before filters.
    sources_listed: u64,
    /// Sources at or above the threshold (and through the other filters).
    sources_selected: u64,
    threshold: u64,
    jobs: usize,
    /// Sources per outcome.
    outcomes: BTreeMap<Outcome, u64>,
    /// Sizes of the optimized sources before and after, in bytes.
    bytes_before: u64,
    bytes_after: u64,
    bytes_saved: u64,
    /// Optimized sources per encoder used.
    encoders: BTreeMap<String, u64>,
    /// Sources where a hardware encoder failed and software took over.
    fallbacks: u64,
    seconds: f64,
    interrupted: bool,
    rclone_processes: u64,
    results_file: Option<String>,
    /// Scratch directories of runs that are gone, removed at the start.
    scratch_dirs_swept: u64,
    /// prewarm's own temporary objects listed (never sources), and those removed as stale.
    temporary_objects_seen: u64,
    temporary_objects_swept: u64,
}

impl Summary {
    fn add(&mut self, r: &FileResult) {
        *self.outcomes.entry(r.outcome).or_default() += 1;
        if r.fallback_from.is_some() {
            self.fallbacks += 1;
        }
        if r.outcome == Outcome::Optimized {
            let after = r.size_after.unwrap_or(r.size_before);
            self.bytes_before += r.size_before;
            self.bytes_after += after;
            self.bytes_saved += r.size_before.saturating_sub(after);
            *self.encoders.entry(r.encoder.clone().unwrap_or_default()).or_default() += 1;
        }
    }

    fn done(&self) -> u64 {
        self.outcomes.values().sum()
    }
}

fn progress_line(summary: &Summary, r: &FileResult) -> String {
    let sizes = match r.size_after {
        Some(after) => format!("{} -> {}", human(r.size_before), human(after)),
        None => human(r.size_before),
    };
    let encoder = r.encoder.as_deref().unwrap_or("-");
    let error = r.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default();
    format!(
        "[{}] {} {} ({sizes}, {encoder}, {:.1} s){error}",
        summary.done(),
        r.outcome.as_str(),
        r.path,
        Duration::from_secs_f64(r.seconds).as_secs_f64()
    )
}

fn print_summary(s: &Summary, json: bool) -> Result<()> {
    if json {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, s)?;
        writeln!(out)?;
        return Ok(());
    }
    let counts: Vec<String> =
        Outcome::ALL.iter().filter_map(|o| s.outcomes.get(o).map(|n| format!("{} {n}", o.as_str()))).collect();
    let line = format!(
        "{} of {} listed sources at or above {}: {}; saved {} ({} -> {}) in {:.1} s{}\n",
        s.sources_selected,
        s.sources_listed,
        human(s.threshold),
        if counts.is_empty() { "none".to_string() } else { counts.join(", ") },
        human(s.bytes_saved),
        human(s.bytes_before),
        human(s.bytes_after),
        s.seconds,
        if s.interrupted { " (interrupted)" } else { "" }
    );
    crate::util::logging::print(tracing::Level::INFO, &line);
    Ok(())
}
