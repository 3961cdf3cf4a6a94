//! `prewarm probe`: one object through the whole warm loop, every step
//! printed: each request (redacted), its answer and the headers the plugin
//! was shown, the plugin's verdicts, waits, retries, polls and follow-ups,
//! the size method that answered, the verify answer, and the results line a
//! warm would write. For plugin authors and operators debugging a CDN.

use std::io::Write;
use std::sync::Arc;

use anyhow::Result;
use tokio_util::sync::CancellationToken;

use super::warm::{parse_base_url, request_timeouts, resolve_derivatives, resolve_settings};
use crate::cli::ProbeArgs;
use crate::listing::Object;
use crate::plugin::{PluginRuntime, RuntimeOptions};
use crate::record::Outcome;
use crate::util::size::SizeClasses;
use crate::warm::http;
use crate::warm::trace::Step;
use crate::warm::worker::{Worker, WorkerContext};
use crate::warm::{Job, SharedJob, egress, pacing, sizing};
use crate::{Exit, usage};

pub fn run(args: ProbeArgs) -> Result<Exit> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(probe(args))
}

async fn probe(args: ProbeArgs) -> Result<Exit> {
    let base_url = parse_base_url(&args.base_url)?;
    let pairs: Vec<(String, String)> =
        args.settings.iter().map(|s| crate::plugin::settings::split(s).map_err(usage)).collect::<Result<_>>()?;
    let timeouts = request_timeouts(&args.request)?;
    let client = http::Client::new(Arc::new(super::warm::client_config(&args.request.route)?));
    let size = args.size.as_deref().map(crate::util::size::parse_size).transpose().map_err(usage)?.unwrap_or(0);
    let plugins =
        PluginRuntime::new(RuntimeOptions { cache_dir: RuntimeOptions::default_cache_dir(), ..Default::default() })?;
    let plugin = plugins.load(&args.plugin)?;
    let derivatives = resolve_derivatives(&plugin, &args.derivative.iter().cloned().collect::<Vec<_>>())?;
    let settings: Vec<(String, String)> =
        resolve_settings(&plugin, &pairs)?.into_iter().map(|s| (s.key, s.value)).collect();
    let mut instance = plugin.instantiate()?;
    instance.configure(&base_url, &settings)?;

    let ctx = Arc::new(WorkerContext {
        pacer: pacing::Pacer::new(None, std::time::Instant::now()),
        caps: sizing::Capabilities::load(None),
        timeouts,
        retries: args.request.retries,
        max_polls: args.request.max_polls,
        derivatives: derivatives.clone(),
        max_source_bytes: if args.ignore_limits { None } else { plugin.info().max_source_bytes },
        verify: args.verify,
        policy: egress::Policy::new(&base_url, &args.allow_hosts).map_err(usage)?,
        cancel: CancellationToken::new(),
        budget: None,
        live: None,
        routes: Default::default(),
    });
    let worker = Worker::new(ctx, client, instance);
    let job = Arc::new(Job {
        object: Object { path: args.path.clone(), size },
        class: SizeClasses::default().class_of(size),
    });
    let mut out = std::io::stdout().lock();
    let mut all_warm = true;
    let mut reports = Vec::new();
    for (index, derivative) in derivatives.iter().enumerate() {
        worker.trace.replace(Some(Vec::new()));
        let record = worker.warm(&SharedJob { job: job.clone(), derivative: index, edge: 0, variant: 0 }).await;
        let steps: Vec<Step> = worker.trace.take().unwrap_or_default();
        all_warm &= record.outcome == Outcome::Warm && record.verify_cache.is_none_or(|c| c.as_str() == "hit");
        if args.json {
            reports
                .push(serde_json::json!({ "derivative": derivatives[index].name, "steps": steps, "record": record }));
        } else {
            writeln!(out, "── {} / {}", args.path, derivative.name)?;
            for step in &steps {
                writeln!(out, "  {}", step.line())?;
            }
            writeln!(out, "  record   {}", serde_json::to_string(&record)?)?;
        }
    }
    if args.json {
        serde_json::to_writer_pretty(&mut out, &reports)?;
        writeln!(out)?;
    }
    Ok(if all_warm { Exit::Success } else { Exit::SomeFailed })
}
