//! `prewarm report merge | render`: check that shard summaries make one
//! whole, combine them exactly, and render any summary again.

use anyhow::Result;

use std::collections::BTreeMap;

use crate::cli::{RenderTargets, ReportArgs, ReportCommand};
use crate::listing::Shard;
use crate::report::{Outputs, Summary};
use crate::stats::Stats;
use crate::{Exit, usage};

fn outputs(json: Option<std::path::PathBuf>, r: RenderTargets) -> Outputs {
    Outputs { json, markdown: r.markdown, html: r.html, metrics_textfile: r.metrics_textfile, ..Outputs::default() }
}

/// Check that shard summaries make one whole: one shard count, each index
/// once, and (unless `allow_missing`) every index present. Returns the
/// missing shards as `I/N`. Summaries without shards merge as they are.
pub fn check_shards(summaries: &[(String, Summary)], allow_missing: bool) -> Result<Vec<String>> {
    // One run merged twice would count its pairs twice, shards or not.
    let mut runs: BTreeMap<(&str, &str, &str), &str> = BTreeMap::new();
    for (name, s) in summaries {
        for run in &s.runs {
            let key = (run.started_at.as_str(), run.finished_at.as_str(), run.results_file.as_str());
            if let Some(other) = runs.insert(key, name) {
                return Err(usage(format!(
                    "report merge: the run started {} (results {}) is in both {other} and {name}; merge each run once",
                    run.started_at, run.results_file
                )));
            }
        }
    }
    let mut shards: Vec<(&str, Option<Shard>)> = Vec::new();
    for (name, s) in summaries {
        for run in &s.runs {
            let shard = match run.shard.as_deref() {
                Some(text) => Some(Shard::parse(text).map_err(|e| usage(format!("{name}: {e}")))?),
                None => None,
            };
            shards.push((name, shard));
        }
    }
    let Some((first_name, Some(first))) = shards.iter().find(|(_, s)| s.is_some()).copied() else {
        return Ok(Vec::new());
    };
    let mut seen: BTreeMap<u64, &str> = BTreeMap::new();
    for (name, shard) in &shards {
        let Some(shard) = shard else {
            return Err(usage(format!(
                "{name}: not a shard, while {first_name} is shard {}/{}",
                first.index, first.count
            )));
        };
        if shard.count != first.count {
            return Err(usage(format!(
                "{name}: shard {}/{} is from a different shard count than {first_name} ({}/{})",
                shard.index, shard.count, first.index, first.count
            )));
        }
        if let Some(other) = seen.insert(shard.index, name) {
            return Err(usage(format!(
                "shard {}/{} given twice: {other} and {name}; merge one summary per shard",
                shard.index, shard.count
            )));
        }
    }
    let missing: Vec<String> =
        (0..first.count).filter(|i| !seen.contains_key(i)).map(|i| format!("{i}/{}", first.count)).collect();
    if !missing.is_empty() && !allow_missing {
        return Err(usage(format!(
            "report merge: missing shard{} {}; give {}, or merge with --allow-missing",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", "),
            if missing.len() == 1 { "its summary" } else { "their summaries" }
        )));
    }
    Ok(missing)
}

/// Merge summaries: counts add, histograms and Welford states merge, runs
/// are listed side by side.
pub fn merge(summaries: &[(String, Summary)]) -> Result<Summary> {
    let Some((_, first)) = summaries.first() else {
        return Err(usage("report merge: no summaries given"));
    };
    let mut stats = Stats::from_summary(&first.stats).map_err(usage)?;
    let mut runs = first.runs.clone();
    for (name, s) in &summaries[1..] {
        if s.stats.size_classes != first.stats.size_classes {
            return Err(usage(format!(
                "{name}: size classes differ from {}; summaries must use the same --small-below/--medium-below",
                summaries[0].0
            )));
        }
        stats.merge(&Stats::from_summary(&s.stats).map_err(|e| usage(format!("{name}: {e}")))?);
        runs.extend(s.runs.iter().cloned());
    }
    let mut missing_shards: Vec<String> = summaries.iter().flat_map(|(_, s)| s.missing_shards.clone()).collect();
    missing_shards.sort();
    missing_shards.dedup();
    Ok(Summary { schema_version: first.schema_version, runs, stats: stats.to_summary(), missing_shards })
}

pub fn run(args: ReportArgs) -> Result<Exit> {
    match args.command {
        ReportCommand::Merge { inputs, allow_missing, output, render } => {
            let summaries = inputs
                .iter()
                .map(|p| Summary::read(p).map(|s| (p.display().to_string(), s)))
                .collect::<Result<Vec<_>>>()?;
            let missing = check_shards(&summaries, allow_missing)?;
            let mut merged = merge(&summaries)?;
            if !missing.is_empty() {
                tracing::warn!("merged without shard(s) {}: the report names them", missing.join(", "));
                merged.missing_shards = missing;
            }
            outputs(Some(output), render).write(&merged)?;
            crate::util::logging::print(tracing::Level::INFO, &crate::report::text::render(&merged));
        }
        ReportCommand::Render { input, render } => {
            let summary = Summary::read(&input)?;
            outputs(None, render).write(&summary)?;
        }
    }
    Ok(Exit::Success)
}
