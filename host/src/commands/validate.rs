//! `prewarm validate`: resolve the arguments (every check before the first
//! probe), then read every item through ffprobe/ffmpeg, `--jobs` at once,
//! writing one `--results-out` line per item as it finishes, and end with
//! the summary and the Markdown report. Sources (`--source`, optionally
//! with a saved `--listing` of it) are read through one loopback
//! `rclone serve http`; derivatives (`--results`) at the URLs the plugin
//! builds, as the warm did. Either way ffprobe and ffmpeg read through
//! prewarm's loopback relay ([`crate::media::relay`]), never upstream
//! themselves. Ctrl-C stops at once: the probes in flight are killed, what
//! finished is reported.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result};
use futures_util::StreamExt;
use tokio::sync::{OnceCell, mpsc};
use tokio_util::sync::CancellationToken;

use super::warm::{
    parse_base_url, parse_duration, parse_settings, resolve_derivatives, resolve_settings, source_and_filters,
};
use crate::cli::ValidateArgs;
use crate::listing::{self, Filters, ListingSource, Object, Shard};
use crate::media::facts::{self, Input};
use crate::media::ffmpeg::Tools;
use crate::media::relay::{self, Relay};
use crate::media::validate::{self as judge, Check, Depth, Examined, Expected, Inspector, ItemResult};
use crate::media::validate_report::Summary;
use crate::plugin::{
    Derivative, Method, ObjectRef, Plugin, PluginInstance, PluginRuntime, RuntimeOptions, WarmRequest,
};
use crate::rclone::Rclone;
use crate::rclone_serve::ServeHttp;
use crate::record::{Outcome, Record};
use crate::upload::Upload;
use crate::util::redact::redact_url;
use crate::warm::egress;
use crate::{Exit, usage};

pub fn run(args: ValidateArgs) -> Result<Exit> {
    let settled = Settled::from_args(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run_async(args, settled))
}

/// The arguments checked before anything starts.
struct Settled {
    depth: Depth,
    sample: Option<f64>,
    jobs: usize,
    timeout: std::time::Duration,
    mode: Mode,
    tools: Tools,
    upstream: relay::Upstream,
}

impl Settled {
    fn from_args(args: &ValidateArgs) -> Result<Self> {
        let depth = if args.deep { Depth::Deep } else { Depth::Seconds(parse_seconds(&args.decode)?) };
        let jobs = match args.jobs {
            Some(0) => return Err(usage("--jobs 0: must be at least 1")),
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(2, usize::from),
        };
        let mode = Mode::resolve(args)?;
        Ok(Settled {
            depth,
            sample: args.sample.as_deref().map(parse_fraction).transpose()?,
            jobs,
            timeout: parse_duration("--timeout", &args.timeout)?,
            tools: Tools::locate(args.ffmpeg.as_deref()).map_err(|e| usage(e.to_string()))?,
            upstream: relay::Upstream {
                client: Arc::new(super::warm::client_config(&args.route)?),
                policy: match &mode {
                    Mode::Derivatives { base_url, .. } => {
                        Some(Arc::new(egress::Policy::new(base_url, &args.allow_hosts).map_err(usage)?))
                    }
                    Mode::Sources => None,
                },
                header_timeout: parse_duration("--header-timeout", &args.header_timeout)?,
            },
            mode,
        })
    }
}

/// One thing to check.
struct Item {
    /// The source's path (for a derivative too).
    path: String,
    /// Its size, when a listing says it.
    size: Option<u64>,
    derivative: Option<DerivativeItem>,
}

struct DerivativeItem {
    name: String,
    url: String,
    headers: Vec<(String, String)>,
    expected: Expected,
}

/// Everything a check needs, shared by the checks in flight.
struct Checker {
    inspector: Inspector,
    serve: Option<Arc<ServeHttp>>,
    max_source_bytes: Option<u64>,
    /// Where derivative URLs may go (`--base-url`'s origin, `--allow-host`).
    policy: Option<Arc<egress::Policy>>,
    /// What ffprobe, ffmpeg and the sniff read through.
    relay: Relay,
    /// Source durations, each read once however many derivatives it has.
    durations: Mutex<HashMap<String, Arc<OnceCell<Option<f64>>>>>,
}

async fn run_async(args: ValidateArgs, settled: Settled) -> Result<Exit> {
    let started = Instant::now();
    let Settled { depth, sample, jobs, timeout, mode, tools, upstream } = settled;
    let plugin = args.plugin.as_deref().map(load_plugin).transpose()?;
    let (source, filters, rclone) = match &args.source.source {
        Some(_) => {
            let (s, f, r) = source_and_filters(&args.source)?;
            (Some(s), f, r)
        }
        None => {
            let mut filters = Filters::from_args(&args.source)?;
            filters.shard = args.source.shard.as_deref().map(Shard::parse).transpose().map_err(usage)?;
            (None, filters, None)
        }
    };
    let upload = Upload::prepare(args.upload.as_deref(), &[Some(&args.results_out), args.markdown.as_deref()], || {
        Ok(Rclone::listed_or_from_args(rclone.clone(), &args.source)?)
    })?;
    let mut out = ResultsOut::create(&args.results_out)?;
    let serve = start_server(&args, rclone).await?;
    let (items, producer, input) = start_items(&args, &mode, plugin.as_ref(), source, filters, sample)?;
    // The sniff reads the relay only: no proxy, no redirect.
    let sniff = reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).build()?;
    let checker = Arc::new(Checker {
        inspector: Inspector { tools, client: sniff, timeout, depth },
        serve: serve.clone(),
        max_source_bytes: plugin.as_ref().and_then(|p| p.info().max_source_bytes),
        policy: upstream.policy.clone(),
        relay: Relay::start(upstream).context("starting the loopback relay")?,
        durations: Mutex::new(HashMap::new()),
    });
    let mode_name = if matches!(mode, Mode::Sources) { "sources" } else { "derivatives" };
    let mut summary = Summary::new(mode_name, input, args.results_out.display().to_string());

    let cancel = CancellationToken::new();
    let signals = tokio::spawn(watch_ctrl_c(cancel.clone(), serve.clone()));
    let checked = check_all(items, checker, jobs, &cancel, &mut out, &mut summary).await;
    signals.abort();
    if summary.interrupted {
        crate::media::ffmpeg::wait_killed(std::time::Duration::from_secs(2)).await;
    }
    let produced = producer.finish(summary.interrupted).await;
    if let Some(serve) = &serve {
        serve.stop();
    }
    checked?;
    summary.lines_skipped = *produced.as_ref().unwrap_or(&0);
    summary.elapsed_s = started.elapsed().as_secs_f64();
    out.finish()?;
    report(&args, &summary, upload.as_ref()).await?;
    produced.context("the input ended early; the items read before the error were checked and recorded")?;
    Ok(if summary.all_ok() { Exit::Success } else { Exit::SomeFailed })
}

fn load_plugin(spec: &str) -> Result<Plugin> {
    let runtime =
        PluginRuntime::new(RuntimeOptions { cache_dir: RuntimeOptions::default_cache_dir(), ..Default::default() })?;
    Ok(runtime.load(spec)?)
}

/// The loopback server over `--source`, when there is one. Started from the
/// thread running the command: on Linux rclone is killed when the thread
/// that spawned it ends, so never from a short-lived blocking-pool thread.
async fn start_server(args: &ValidateArgs, rclone: Option<Rclone>) -> Result<Option<Arc<ServeHttp>>> {
    let Some(remote) = &args.source.source else { return Ok(None) };
    let rclone = Rclone::listed_or_from_args(rclone, &args.source)?;
    Ok(Some(Arc::new(ServeHttp::start(&rclone, remote).await?)))
}

/// The items to check, the task producing them, and how to name the input.
fn start_items(
    args: &ValidateArgs,
    mode: &Mode,
    plugin: Option<&Plugin>,
    source: Option<ListingSource>,
    mut filters: Filters,
    sample: Option<f64>,
) -> Result<(mpsc::Receiver<Item>, Producer, String)> {
    match mode {
        Mode::Sources => {
            let source = source.expect("sources mode has --source");
            let input = args.source.listing.clone().or(args.source.source.clone()).unwrap_or_default();
            let input = crate::util::rclone_secrets::redact_remote(&input);
            let limit = filters.limit.take();
            let (objects, task) = listing::stream(source, filters);
            Ok((sources(objects, sample, limit), Producer::Listing(task), input))
        }
        Mode::Derivatives { results, base_url, settings } => {
            let plugin = plugin.expect("derivatives mode has --plugin");
            let derivatives = resolve_derivatives(plugin, &args.derivatives)?;
            let settings: Vec<(String, String)> =
                resolve_settings(plugin, settings)?.into_iter().map(|s| (s.key, s.value)).collect();
            let mut instance = plugin.instantiate()?;
            instance.configure(base_url, &settings)?;
            let (tx, rx) = mpsc::channel(256);
            let reader = ResultsReader { path: results.clone(), instance, derivatives, filters, sample };
            Ok((rx, Producer::Results(tokio::spawn(reader.run(tx))), results.display().to_string()))
        }
    }
}

/// Check `jobs` items at once, recording each as it finishes, until the
/// items end or `cancel` fires; then the probes in flight are killed (by
/// dropping them).
async fn check_all(
    items: mpsc::Receiver<Item>,
    checker: Arc<Checker>,
    jobs: usize,
    cancel: &CancellationToken,
    out: &mut ResultsOut,
    summary: &mut Summary,
) -> Result<()> {
    let mut checks = Box::pin(
        futures_util::stream::unfold(items, |mut rx| async move { rx.recv().await.map(|i| (i, rx)) })
            .map(|item| {
                let checker = Arc::clone(&checker);
                async move { checker.check(item).await }
            })
            .buffer_unordered(jobs),
    );
    loop {
        tokio::select! {
            _ = cancel.cancelled() => {
                summary.interrupted = true;
                return Ok(());
            }
            next = checks.next() => match next {
                Some(item) => {
                    out.write(&item)?;
                    summary.add(&item);
                }
                None => return Ok(()),
            },
        }
    }
}

/// The Markdown report, the upload, and the summary on the terminal or as
/// JSON (last: a stdout closed by its reader must not stop the upload).
async fn report(args: &ValidateArgs, summary: &Summary, upload: Option<&Upload>) -> Result<()> {
    if let Some(path) = &args.markdown {
        crate::util::atomic_file::write(path, summary.markdown().as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let uploaded = match upload {
        Some(u) => {
            let done = u.run().await;
            u.shutdown();
            done
        }
        None => Ok(()),
    };
    if args.json {
        let mut stdout = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut stdout, summary)?;
        writeln!(stdout)?;
    } else {
        crate::util::logging::print(tracing::Level::INFO, &summary.text());
    }
    uploaded
}

/// What is being validated.
enum Mode {
    Sources,
    Derivatives { results: PathBuf, base_url: String, settings: Vec<(String, String)> },
}

impl Mode {
    fn resolve(args: &ValidateArgs) -> Result<Mode> {
        let Some(results) = &args.results else {
            for (given, flag) in [
                (args.base_url.is_some(), "--base-url"),
                (!args.settings.is_empty(), "--set"),
                (!args.allow_hosts.is_empty(), "--allow-host"),
                (!args.derivatives.is_empty(), "--derivatives"),
            ] {
                if given {
                    return Err(usage(format!("{flag} is only used with --results (checking derivatives)")));
                }
            }
            return match (&args.source.source, &args.source.listing) {
                (Some(_), _) => Ok(Mode::Sources),
                (None, Some(l)) => Err(usage(format!(
                    "--listing {l}: give --source REMOTE:PATH too, the remote the listing's paths are in"
                ))),
                (None, None) => Err(usage("give --source REMOTE:PATH (sources) or --results FILE.jsonl (derivatives)")),
            };
        };
        if let Some(l) = &args.source.listing {
            return Err(usage(format!(
                "--listing {l}: with --results, --source REMOTE:PATH alone says where the sources are"
            )));
        }
        if args.source.newer_than.is_some() {
            // A results file holds no ModTime to select by.
            return Err(usage("--newer-than selects from a listing; with --results, warm with it instead"));
        }
        if !results.is_file() {
            return Err(usage(format!("--results {}: no such file", results.display())));
        }
        let (Some(plugin), Some(base_url)) = (&args.plugin, &args.base_url) else {
            return Err(usage(
                "--results needs the warm's --plugin and --base-url (and its --set) to rebuild the derivative URLs",
            ));
        };
        let _ = plugin;
        Ok(Mode::Derivatives {
            results: results.clone(),
            base_url: parse_base_url(base_url)?,
            settings: parse_settings(&args.settings)?,
        })
    }
}

fn parse_seconds(raw: &str) -> Result<f64> {
    match raw.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s <= super::warm::MAX_DURATION.as_secs_f64() => Ok(s),
        _ => Err(usage(format!("--decode {raw}: expected seconds above 0 and at most 30 days (e.g. 2 or 0.5)"))),
    }
}

fn parse_fraction(raw: &str) -> Result<f64> {
    match raw.trim().parse::<f64>() {
        Ok(f) if f > 0.0 && f <= 1.0 => Ok(f),
        _ => Err(usage(format!("--sample {raw}: expected a fraction above 0 and at most 1 (e.g. 0.1)"))),
    }
}

/// Whether an item is in the `--sample`: a stable hash, so reruns check
/// the same items.
fn sampled(fraction: Option<f64>, path: &str, derivative: &str) -> bool {
    let Some(fraction) = fraction else { return true };
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in path.bytes().chain([0]).chain(derivative.bytes()) {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    ((hash >> 11) as f64 / (1u64 << 53) as f64) < fraction
}

/// Sources from the listing, sampled, then limited (the limit counts the
/// items checked).
fn sources(mut objects: mpsc::Receiver<Object>, sample: Option<f64>, limit: Option<u64>) -> mpsc::Receiver<Item> {
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(async move {
        let mut sent = 0u64;
        while let Some(o) = objects.recv().await {
            if limit.is_some_and(|l| sent >= l) {
                break;
            }
            if !sampled(sample, &o.path, "") {
                continue;
            }
            sent += 1;
            if tx.send(Item { path: o.path, size: Some(o.size), derivative: None }).await.is_err() {
                break;
            }
        }
    });
    rx
}

/// The task feeding items, and what it says when it ends.
enum Producer {
    Listing(tokio::task::JoinHandle<Result<listing::ListingTotals, listing::ListingError>>),
    Results(tokio::task::JoinHandle<Result<u64>>),
}

impl Producer {
    /// Results lines skipped, or the error that ended the input.
    async fn finish(self, interrupted: bool) -> Result<u64> {
        match self {
            Producer::Listing(task) if interrupted => {
                task.abort();
                Ok(0)
            }
            Producer::Listing(task) => {
                task.await??;
                Ok(0)
            }
            Producer::Results(task) if interrupted => {
                task.abort();
                Ok(0)
            }
            Producer::Results(task) => task.await?,
        }
    }
}

/// Reads a warm's results file line by line and turns each warm pair into
/// an item with its real URL, rebuilt by the plugin.
struct ResultsReader {
    path: PathBuf,
    instance: PluginInstance,
    derivatives: Vec<Derivative>,
    filters: Filters,
    sample: Option<f64>,
}

impl ResultsReader {
    async fn run(mut self, tx: mpsc::Sender<Item>) -> Result<u64> {
        let name = self.path.display().to_string();
        // Plain or `.jsonl.zst`.
        let mut lines =
            crate::util::zstd_lines::lines_in_background(&self.path).with_context(|| format!("cannot read {name}"))?;
        let (mut line_no, mut skipped, mut sent) = (0u64, 0u64, 0u64);
        while let Some(line) = lines.recv().await {
            let line = line.with_context(|| format!("cannot read {name}"))?;
            line_no += 1;
            if line.trim().is_empty() {
                continue;
            }
            let record: Record = serde_json::from_str(&line)
                .map_err(|e| usage(format!("--results {name} line {line_no}: not a prewarm results line ({e})")))?;
            let object = Object { path: record.path.clone(), size: record.original_size };
            if record.outcome != Outcome::Warm
                || !self.filters.accepts(&object)
                || !sampled(self.sample, &record.path, &record.derivative)
            {
                skipped += 1;
                continue;
            }
            if self.filters.limit.is_some_and(|l| sent >= l) {
                break;
            }
            let item = self.item(record).map_err(|e| e.context(format!("--results {name} line {line_no}")))?;
            sent += 1;
            if tx.send(item).await.is_err() {
                break;
            }
        }
        Ok(skipped)
    }

    fn item(&mut self, record: Record) -> Result<Item> {
        let Some(d) = self.derivatives.iter().find(|d| d.name == record.derivative) else {
            let known: Vec<&str> = self.derivatives.iter().map(|d| d.name.as_str()).collect();
            return Err(usage(format!(
                "derivative `{}` is not among {}: pass the warm's --derivatives",
                record.derivative,
                known.join(", ")
            )));
        };
        let request = self.instance.warm_request(ObjectRef { path: &record.path, size: record.original_size }, d)?;
        Ok(Item {
            path: record.path,
            size: None,
            derivative: Some(DerivativeItem {
                name: record.derivative,
                url: request.url,
                headers: request.headers,
                expected: Expected { width: d.width, height: d.height, size: record.size, source_duration_s: None },
            }),
        })
    }
}

impl Checker {
    async fn check(&self, item: Item) -> ItemResult {
        match item.derivative {
            None => self.check_source(item.path, item.size).await,
            Some(d) => self.check_derivative(item.path, d).await,
        }
    }

    /// The request for a source on the loopback server, with the header
    /// that opens it.
    fn source_request(&self, path: &str) -> Option<WarmRequest> {
        let serve = self.serve.as_ref()?;
        Some(WarmRequest {
            url: serve.url_for(path),
            method: Method::Get,
            headers: vec![("Authorization".into(), serve.authorization().to_string())],
            read_body: true,
        })
    }

    async fn check_source(&self, path: String, size: Option<u64>) -> ItemResult {
        let request = self.source_request(&path).expect("sources are served");
        if let Some(why) = egress::rewritten_path(&request.url) {
            let why = format!("the key cannot be addressed by a URL: its path holds {why}; nothing was sent");
            return ItemResult::new(path, None, None, refused_item(why));
        }
        let ticket = self.relay.open(request, false, &path);
        let input = Input { url: &ticket.url, shown: &path };
        let mut found = self.inspector.examine(&input, size).await;
        if found.verdict() != judge::Verdict::Unreadable {
            judge::check_source_limit(&mut found, size.unwrap_or(0), self.max_source_bytes);
        }
        ItemResult::new(path, None, None, found)
    }

    async fn check_derivative(&self, path: String, d: DerivativeItem) -> ItemResult {
        let shown = redact_url(&d.url);
        let mut request = WarmRequest { url: d.url, method: Method::Get, headers: d.headers, read_body: true };
        if let Some(Err(refused)) = self.policy.as_ref().map(|p| p.admit(&mut request, Some(&path))) {
            return ItemResult::new(path, Some(d.name), Some(shown), refused_item(refused.message));
        }
        let ticket = self.relay.open(request, true, &path);
        let input = Input { url: &ticket.url, shown: &shown };
        let mut expected = d.expected;
        let mut found = self.inspector.examine(&input, None).await;
        if let Some(why) = ticket.refusal() {
            return ItemResult::new(path, Some(d.name), Some(shown), refused_item(why));
        }
        if found.facts.is_some() {
            found.order = self.inspector.box_order(&input, &found).await;
            expected.source_duration_s = self.source_duration(&path).await;
            judge::check_derivative(&mut found, &expected);
        }
        let mut result = ItemResult::new(path, Some(d.name), Some(shown), found);
        result.expected_size = expected.size;
        result.source_duration_s = expected.source_duration_s;
        result
    }

    /// The source's duration through `--source`, read once per source.
    async fn source_duration(&self, path: &str) -> Option<f64> {
        self.serve.as_ref()?;
        let cell =
            Arc::clone(self.durations.lock().unwrap_or_else(|p| p.into_inner()).entry(path.to_string()).or_default());
        *cell
            .get_or_init(|| async {
                let ticket = self.relay.open(self.source_request(path)?, false, path);
                let input = Input { url: &ticket.url, shown: path };
                match facts::facts(&self.inspector.tools, &input, self.inspector.timeout).await {
                    Ok(f) => f.video_duration_s(),
                    Err(e) => {
                        tracing::warn!("source {path}: duration unknown, checked only that it is positive: {e:?}");
                        None
                    }
                }
            })
            .await
    }
}

/// An item whose URL is not sent: unreadable, with the reason.
fn refused_item(why: String) -> Examined {
    let mut found = Examined::default();
    found.problems.push(judge::Problem { check: Check::Fetch, detail: why });
    found
}

/// `--results-out`: one line per item, on disk as each ends (zstd when the
/// name ends in `.zst`, frames ended at least once a second).
struct ResultsOut {
    out: crate::util::zstd_lines::LinesOut,
}

impl ResultsOut {
    fn create(path: &Path) -> Result<Self> {
        let open = || -> std::io::Result<crate::util::zstd_lines::LinesOut> {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            crate::util::zstd_lines::LinesOut::open(path, false)
        };
        let out = open().map_err(|e| usage(format!("--results-out {}: cannot create it: {e}", path.display())))?;
        Ok(ResultsOut { out })
    }

    fn write(&mut self, item: &ItemResult) -> Result<()> {
        let w = self.out.writer()?;
        serde_json::to_writer(&mut *w, item)?;
        w.write_all(b"\n")?;
        self.out.flush()?;
        Ok(())
    }

    fn finish(mut self) -> Result<()> {
        self.out.end_frame()?;
        Ok(())
    }
}

async fn watch_ctrl_c(cancel: CancellationToken, serve: Option<Arc<ServeHttp>>) {
    // SIGTERM as Ctrl-C (a scheduler stopping the job).
    crate::util::child::interrupted().await;
    let message = "\nprewarm: interrupted; stopping the probes in flight (Ctrl-C again to quit now)\n";
    crate::util::logging::print(tracing::Level::WARN, message);
    cancel.cancel();
    crate::util::child::interrupted().await;
    // Exiting skips destructors: stop every child first.
    crate::media::ffmpeg::kill_all();
    if let Some(s) = &serve {
        s.stop();
    }
    std::process::exit(130);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_stable_and_about_the_fraction() {
        let picked = (0..10_000).filter(|i| sampled(Some(0.1), &format!("v/{i}.mp4"), "mobile")).count();
        assert!((800..1200).contains(&picked), "{picked}");
        assert!(sampled(None, "a", "b"));
        assert_eq!(sampled(Some(0.5), "a.mp4", "tablet"), sampled(Some(0.5), "a.mp4", "tablet"));
        assert!(parse_fraction("0").is_err() && parse_fraction("1.5").is_err() && parse_fraction("1").is_ok());
        assert!(parse_seconds("-1").is_err() && parse_seconds("nan").is_err() && parse_seconds("0.5").is_ok());
    }
}
