//! `prewarm warm`: resolve the arguments into a [`WarmPlan`] (every check
//! before the first request), run it with a progress display and Ctrl-C
//! handling, then print the summary and write the reports.

mod progress;
mod scale;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio_util::sync::CancellationToken;

use crate::cli::{SourceArgs, WarmArgs};
use crate::listing::{self, Filters, ListingProgress, ListingSource, Shard};
use crate::plugin::{Derivative, Plugin, PluginRuntime, RuntimeOptions};
use crate::rclone::Rclone;
use crate::report::text::plural;
use crate::report::{self, RunInfo};
use crate::upload::Upload;
use crate::util::redact::redact_url;
use crate::warm::{self, WarmPlan, http::Timeouts};
use crate::{Exit, usage};

pub fn run(args: WarmArgs) -> Result<Exit> {
    // This thread lists, dispatches and records; the requests run on the
    // engine threads (`warm::run`).
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(run_async(args))
}

/// Open files each request in flight may hold beyond the rest of the run's
/// (results, reports, rclone's pipes, the plugin cache).
const FILES_BESIDE_REQUESTS: u64 = 256;

/// `--concurrency`: at least 1, and no more requests in flight than the
/// open-files limit allows (raised to its hard limit first).
fn check_concurrency(concurrency: usize) -> Result<()> {
    if concurrency == 0 {
        return Err(usage("--concurrency 0: must be at least 1"));
    }
    let limit = crate::util::nofile::raise_to_hard_limit();
    let most = limit.saturating_sub(FILES_BESIDE_REQUESTS);
    if concurrency as u64 > most {
        return Err(usage(format!(
            "--concurrency {concurrency}: more requests in flight than the open-files limit ({limit}) allows; at \
             most {most} here (raise the hard limit: `ulimit -Hn`, systemd LimitNOFILE, or the container's nofile \
             ulimit)"
        )));
    }
    Ok(())
}

pub(crate) fn parse_settings(raw: &[String]) -> Result<Vec<(String, String)>> {
    raw.iter().map(|s| crate::plugin::settings::split(s).map_err(usage)).collect()
}

/// The settings' values for the plugin and what of them may be shown.
pub fn resolve_settings(plugin: &Plugin, pairs: &[(String, String)]) -> Result<Vec<crate::plugin::Setting>> {
    crate::plugin::settings::resolve(pairs, &plugin.info().settings).map_err(usage)
}

pub fn parse_base_url(raw: &str) -> Result<String> {
    let raw = raw.trim();
    let shown = redact_url(raw);
    let url = reqwest::Url::parse(raw).map_err(|e| usage(format!("--base-url `{shown}`: not a URL ({e})")))?;
    crate::util::redact::register_userinfo(url.username(), url.password());
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(usage(format!("--base-url `{shown}`: must be an http:// or https:// URL with a host")));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(usage(format!("--base-url `{shown}`: must not have a query or fragment")));
    }
    // Read as written, as plugins and the egress policy will: a backslash
    // or space is where URL readers disagree on the host.
    let prefix = format!("{}://", url.scheme());
    let written = match raw.get(..prefix.len()) {
        Some(p) if p.eq_ignore_ascii_case(&prefix) => &raw[prefix.len()..],
        _ => return Err(usage(format!("--base-url `{shown}`: write it as {prefix}host[:port][/path]"))),
    };
    let authority = &written[..written.find(['/', '?', '#']).unwrap_or(written.len())];
    if authority.contains(|c: char| c == '\\' || c.is_whitespace() || c.is_control()) {
        return Err(usage(format!(
            "--base-url `{shown}`: its host part holds a backslash, space or control character"
        )));
    }
    // `HTTP://` as `http://`: plugins build on the base as given.
    Ok(format!("{}://{}", url.scheme(), written.trim_end_matches('/')))
}

/// `--timeout` and `--header-timeout`.
pub fn request_timeouts(args: &crate::cli::RequestArgs) -> Result<Timeouts> {
    Ok(Timeouts {
        headers: parse_duration("--header-timeout", &args.header_timeout)?,
        total: parse_duration("--timeout", &args.timeout)?,
    })
}

/// The hot-path client's settings: `--connect-to` rules and `--ca-file`.
pub fn client_config(args: &crate::cli::RouteArgs) -> Result<crate::warm::client::ClientConfig> {
    let rules = args.connect_to.iter().map(|r| r.parse().map_err(usage)).collect::<Result<Vec<_>>>()?;
    crate::warm::client::ClientConfig::new(rules, args.ca_file.as_deref()).map_err(|e| usage(e.to_string()))
}

/// The longest duration any flag or config value takes: far past any real
/// run, and far from where `Instant + Duration` overflows.
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);

/// A duration flag (`30s`, `2m`, `1h30m`): above zero, at most 30 days.
pub fn parse_duration(flag: &str, raw: &str) -> Result<Duration> {
    let d = humantime::parse_duration(raw)
        .map_err(|e| usage(format!("{flag} `{raw}`: not a duration ({e}); use e.g. 30s, 2m")))?;
    if d.is_zero() {
        return Err(usage(format!("{flag} `{raw}`: must be above zero")));
    }
    if d > MAX_DURATION {
        return Err(usage(format!("{flag} `{raw}`: longer than the 30 days (720h) a duration may be")));
    }
    Ok(d)
}

pub use crate::derivatives::resolve as resolve_derivatives;

/// The listing source and filters from the shared arguments.
pub fn source_and_filters(args: &SourceArgs) -> Result<(ListingSource, Filters, Option<Rclone>)> {
    let mut filters = Filters::from_args(args)?;
    if let Some(s) = &args.shard {
        filters.shard = Some(Shard::parse(s).map_err(usage)?);
    }
    let mut located = None;
    let source = ListingSource::from_args(args, || {
        let r = Rclone::from_args(args)?;
        located = Some(r.clone());
        Ok(r)
    })?;
    Ok((source, filters, located))
}

async fn run_async(args: WarmArgs) -> Result<Exit> {
    let base_url = parse_base_url(&args.base_url)?;
    let settings = parse_settings(&args.settings)?;
    let threads = match args.threads {
        Some(0) => return Err(usage("--threads 0: must be at least 1")),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, usize::from),
    };
    check_concurrency(args.concurrency)?;
    let reserved = [args.workers_small.unwrap_or(0), args.workers_medium.unwrap_or(0), args.workers_large.unwrap_or(0)];
    if reserved.iter().sum::<usize>() > args.concurrency {
        return Err(usage(format!(
            "--workers-small/medium/large add up to {}, more than --concurrency {}",
            reserved.iter().sum::<usize>(),
            args.concurrency
        )));
    }
    if args.rate == Some(0) {
        return Err(usage("--rate 0: must be at least 1 request per second"));
    }
    let timeouts = request_timeouts(&args.request)?;
    let client = std::sync::Arc::new(client_config(&args.request.route)?);
    let size_classes = listing::size_classes(&args.source)?;
    let policy = crate::warm::egress::Policy::new(&base_url, &args.allow_hosts).map_err(usage)?;
    let reports = report::Outputs::from_args(&args)?;
    let routes = routes(&args)?;

    let plugin_runtime =
        PluginRuntime::new(RuntimeOptions { cache_dir: RuntimeOptions::default_cache_dir(), ..Default::default() })?;
    let plugin = plugin_runtime.load(&args.plugin)?;
    let derivatives = resolve_derivatives(&plugin, &args.derivatives)?;
    let resolved = resolve_settings(&plugin, &settings)?;
    let shown_settings: Vec<(String, String)> = resolved.iter().map(|s| (s.key.clone(), s.shown.clone())).collect();
    let settings: Vec<(String, String)> = resolved.into_iter().map(|s| (s.key, s.value)).collect();
    // Settings are checked once here so a bad one stops the run before any
    // request.
    let mut probe = plugin.instantiate()?;
    probe.configure(&base_url, &settings)?;

    let (source, filters, rclone) = source_and_filters(&args.source)?;
    let outputs = [
        Some(args.results.as_path()),
        reports.json.as_deref(),
        reports.markdown.as_deref(),
        reports.html.as_deref(),
        reports.metrics_textfile.as_deref(),
    ];
    let upload = Upload::prepare(args.upload.as_deref(), &outputs, || {
        Ok(Rclone::listed_or_from_args(rclone.clone(), &args.source)?)
    })?;
    // `auto/N` resolved: the summary names the shard this run really was.
    let shard = filters.shard.map(|s| format!("{}/{}", s.index, s.count));

    if args.dry_run {
        return dry_run(probe, &derivatives, source, filters, args.json).await;
    }
    drop(probe);

    check_results_file(&args)?;
    let cancel = CancellationToken::new();
    let derivative_names: Vec<String> = derivatives.iter().map(|d| d.name.clone()).collect();
    let mut scale = scale::Scale::prepare(&args, &derivative_names, &cancel)?;
    let checkpoints = scale.checkpoints(&args, upload.as_ref())?;
    let (already_warm, prior) = if args.resume {
        let by_edge = !routes.edges.is_empty();
        let (warm, prior) = scale::resume(&args.results, by_edge, upload.as_ref(), size_classes, filters.shard).await?;
        (Some(warm), Some(prior))
    } else {
        (None, None)
    };

    let listing_progress = Arc::new(ListingProgress::default());
    let pairs_per_object = derivatives.len() * routes.edge_count() * routes.variant_count();
    let run_edges: Vec<String> = routes.edges.iter().map(|e| format!("{}={}", e.name, e.address())).collect();
    let run_variants: Vec<String> = routes.variants.iter().map(|v| v.name.clone()).collect();
    let plan = WarmPlan {
        max_source_bytes: if args.ignore_limits { None } else { plugin.info().max_source_bytes },
        plugin: plugin.clone(),
        base_url: base_url.clone(),
        settings: settings.clone(),
        derivatives: derivatives.clone(),
        concurrency: args.concurrency,
        threads,
        reserved,
        timeouts,
        retries: args.request.retries,
        max_polls: args.request.max_polls,
        rate: args.rate,
        results: args.results.clone(),
        already_warm,
        size_classes,
        capabilities_cache: args
            .capabilities_cache
            .clone()
            .or_else(|| RuntimeOptions::default_cache_dir().map(|d| d.with_file_name("capabilities.json"))),
        verify: args.verify,
        policy,
        listing_progress: listing_progress.clone(),
        client,
        budget: scale.budget.clone(),
        live: scale.live.clone(),
        routes,
    };

    let signals = tokio::spawn(watch_ctrl_c(cancel.clone(), rclone.clone()));
    let mut progress = progress::Progress::new(args.progress, listing_progress.clone(), pairs_per_object);
    progress.count_ahead(&source, &filters, &listing_progress);
    let started_at = crate::record::now_rfc3339();
    let metrics = scale.serve();
    let mut observer = scale::RunObserver {
        progress: &mut progress,
        live: scale.live.clone(),
        checkpoints,
        listing: listing_progress.clone(),
        derivatives: derivatives.len() as u64,
        prior: prior.as_ref(),
        info: RunInfo {
            started_at: started_at.clone(),
            plugin: plugin.info().name.clone(),
            plugin_version: plugin.info().version.clone(),
            base_url: redact_url(&base_url),
            settings: shown_settings.clone(),
            derivatives: derivative_names.clone(),
            concurrency: args.concurrency,
            source: args.source.source.clone().or(args.source.listing.clone()).unwrap_or_default(),
            shard: shard.clone(),
            results_file: args.results.display().to_string(),
            connect_to: args.request.route.connect_to.clone(),
            ..RunInfo::default()
        },
    };
    let outcome = warm::run(plan, source, filters, cancel, &mut observer).await;
    if let Some(c) = observer.checkpoints.take() {
        // The last checkpoint lands before the final upload, never after.
        c.finish().await;
    }
    progress.finish();
    signals.abort();
    if let Some(m) = metrics {
        m.abort();
    }
    let mut outcome = outcome?;
    if let Some(p) = &prior {
        outcome.stats.merge(p);
    }

    let info = RunInfo {
        started_at,
        finished_at: crate::record::now_rfc3339(),
        elapsed_s: outcome.elapsed.as_secs_f64(),
        plugin: plugin.info().name.clone(),
        plugin_version: plugin.info().version.clone(),
        base_url: redact_url(&base_url),
        settings: shown_settings,
        derivatives: derivatives.iter().map(|d| d.name.clone()).collect(),
        concurrency: args.concurrency,
        source: crate::util::rclone_secrets::redact_remote(
            &args.source.source.clone().or(args.source.listing.clone()).unwrap_or_default(),
        ),
        shard,
        objects_listed: outcome.listing.seen,
        objects_selected: outcome.listing.selected,
        duplicates: outcome.listing.duplicates,
        directories: outcome.listing.directories,
        folder_markers: outcome.listing.folder_markers,
        unknown_size: outcome.listing.unknown_size,
        resumed_skips: outcome.resumed_skips,
        interrupted: outcome.interrupted,
        rclone_processes: rclone.as_ref().map_or(0, Rclone::processes_spawned),
        results_file: args.results.display().to_string(),
        peak_rss_bytes: crate::util::memory::peak_rss_bytes(),
        connect_to: args.request.route.connect_to.clone(),
        stopped: outcome.stopped.clone(),
        edges: run_edges,
        variants: run_variants,
    };
    if !args.request.route.connect_to.is_empty() && outcome.stats.edges.is_empty() && outcome.stats.attempts > 0 {
        tracing::warn!(
            "no request matched --connect-to {}: each rule names the HOST:PORT of the URLs the plugin builds",
            args.request.route.connect_to.join(", --connect-to ")
        );
    }
    let summary = report::Summary::new(info, &outcome.stats);
    reports.write(&summary)?;
    let pushed = reports.push(&summary).await;
    let uploaded = match &upload {
        Some(u) => u.run().await,
        None => Ok(()),
    };
    if let Some(r) = &rclone {
        r.shutdown();
    }
    if let Some(u) = &upload {
        u.shutdown();
    }

    if args.json {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, &summary)?;
        writeln!(out)?;
    } else {
        crate::util::logging::print(tracing::Level::INFO, &report::text::render(&summary));
    }
    if let Some(reason) = &outcome.stopped {
        crate::util::logging::print(tracing::Level::WARN, &format!("prewarm: {reason}\n"));
    }
    pushed?;
    uploaded?;
    if let Some(e) = outcome.listing_error {
        return Err(anyhow::Error::new(e)
            .context("the listing ended early; the pairs listed before the error were warmed and recorded"));
    }
    Ok(if summary.not_warm().is_empty() && !outcome.interrupted { Exit::Success } else { Exit::SomeFailed })
}

/// Most edges and variants of a run (pairs carry their indexes as `u16`).
const MOST_ROUTES: usize = 4096;

/// `--edge`, `--edges FILE`, `--variant` and `--header`, checked.
fn routes(args: &WarmArgs) -> Result<warm::routes::Routes> {
    use warm::routes::{Edge, Variant, check_unique, parse_edges_file, parse_extra_header};
    let mut edges = args.edge.iter().map(|e| e.parse::<Edge>().map_err(usage)).collect::<Result<Vec<_>>>()?;
    if let Some(path) = &args.edges_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| usage(format!("--edges {}: cannot read the file ({e})", path.display())))?;
        edges.extend(parse_edges_file(path, &text).map_err(usage)?);
    }
    check_unique("edge", edges.iter().map(|e| e.name.as_str())).map_err(usage)?;
    let variants = args.variant.iter().map(|v| v.parse::<Variant>().map_err(usage)).collect::<Result<Vec<_>>>()?;
    check_unique("--variant", variants.iter().map(|v| v.name.as_str())).map_err(usage)?;
    if edges.len() > MOST_ROUTES || variants.len() > MOST_ROUTES {
        return Err(usage(format!("at most {MOST_ROUTES} edges and {MOST_ROUTES} variants in one run")));
    }
    let headers = args.header.iter().map(|h| parse_extra_header(h).map_err(usage)).collect::<Result<Vec<_>>>()?;
    Ok(warm::routes::Routes::new(edges, variants, headers))
}

/// A results file is the history of a run: replacing one takes `--overwrite`
/// (continuing it takes `--resume`).
fn check_results_file(args: &WarmArgs) -> Result<()> {
    let path = &args.results;
    if args.resume || !path.metadata().is_ok_and(|m| m.len() > 0) {
        return Ok(());
    }
    let records = count_lines(path).with_context(|| format!("cannot read results file {}", path.display()))?;
    if args.overwrite {
        tracing::warn!("--overwrite: replacing {} ({})", path.display(), plural(records, "record"));
        return Ok(());
    }
    Err(usage(format!(
        "--results {}: already holds {} from an earlier run; use --resume to continue it, --overwrite to replace \
         it, or another --results file",
        path.display(),
        plural(records, "record")
    )))
}

fn count_lines(path: &std::path::Path) -> std::io::Result<u64> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let (mut buf, mut lines, mut last) = (vec![0u8; 64 * 1024], 0u64, b'\n');
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            // A last line without its newline still counts.
            return Ok(lines + u64::from(last != b'\n'));
        }
        lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
        last = buf[n - 1];
    }
}

async fn watch_ctrl_c(cancel: CancellationToken, rclone: Option<Rclone>) {
    // SIGTERM as Ctrl-C: a Kubernetes eviction then ends with every pair
    // in flight recorded, the reports written and the last checkpoint sent.
    crate::util::child::interrupted().await;
    let message = "\nprewarm: interrupted; finishing the pairs in flight (Ctrl-C again to quit now)\n";
    crate::util::logging::print(tracing::Level::WARN, message);
    cancel.cancel();
    crate::util::child::interrupted().await;
    // Exiting skips destructors: stop rclone's daemon first.
    if let Some(r) = &rclone {
        r.shutdown();
    }
    std::process::exit(130);
}

async fn dry_run(
    mut plugin: crate::plugin::PluginInstance,
    derivatives: &[Derivative],
    source: ListingSource,
    filters: Filters,
    json: bool,
) -> Result<Exit> {
    let (mut objects, task) = listing::stream(source, filters);
    let mut out = std::io::BufWriter::new(std::io::stdout());
    let mut failed = false;
    while let Some(object) = objects.recv().await {
        for d in derivatives {
            let planned = plugin.warm_request(crate::plugin::ObjectRef { path: &object.path, size: object.size }, d);
            match planned {
                Ok(r) if json => {
                    let headers: Vec<(String, String)> =
                        r.headers.iter().map(|(k, v)| (k.clone(), crate::util::redact::redact_setting(k, v))).collect();
                    serde_json::to_writer(
                        &mut out,
                        &serde_json::json!({
                            "path": object.path, "derivative": d.name, "method": r.method, "url": redact_url(&r.url), "headers": headers, "read_body": r.read_body,
                        }),
                    )?;
                    writeln!(out)?;
                }
                Ok(r) => {
                    let method = format!("{:?}", r.method).to_uppercase();
                    writeln!(out, "{method} {} [{}]", redact_url(&r.url), d.name)?
                }
                Err(e) => {
                    failed = true;
                    writeln!(out, "ERROR {} [{}]: {e}", object.path, d.name)?;
                }
            }
        }
    }
    out.flush()?;
    task.await??;
    Ok(if failed { Exit::SomeFailed } else { Exit::Success })
}

#[cfg(test)]
mod tests {
    use super::parse_base_url;

    #[test]
    fn base_urls_are_read_as_written_with_the_scheme_lowercased() {
        assert_eq!(parse_base_url(" HTTP://Cdn.Example:8080/v/ ").unwrap(), "http://Cdn.Example:8080/v");
        assert_eq!(parse_base_url("HttpS://cdn.example").unwrap(), "https://cdn.example");
        for bad in ["http://a\\b.example/x", "http:/cdn.example", "http:cdn.example", "ftp://cdn.example"] {
            let e = parse_base_url(bad).unwrap_err().to_string();
            assert!(e.starts_with("--base-url") && !e.contains('\n'), "{bad}: {e}");
        }
    }
}
