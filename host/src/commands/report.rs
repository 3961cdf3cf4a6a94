//! `prewarm report merge | render`: combine shard summaries exactly and
//! render any summary again.

use anyhow::Result;

use crate::cli::{RenderTargets, ReportArgs, ReportCommand};
use crate::report::{Outputs, Summary};
use crate::stats::Stats;
use crate::{Exit, usage};

fn outputs(json: Option<std::path::PathBuf>, r: RenderTargets) -> Outputs {
    Outputs { json, markdown: r.markdown, html: r.html, metrics_textfile: r.metrics_textfile, ..Outputs::default() }
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
    Ok(Summary { schema_version: first.schema_version, runs, stats: stats.to_summary() })
}

pub fn run(args: ReportArgs) -> Result<Exit> {
    match args.command {
        ReportCommand::Merge { inputs, output, render } => {
            let summaries = inputs
                .iter()
                .map(|p| Summary::read(p).map(|s| (p.display().to_string(), s)))
                .collect::<Result<Vec<_>>>()?;
            let merged = merge(&summaries)?;
            outputs(Some(output), render).write(&merged)?;
            eprint!("{}", crate::report::text::render(&merged));
        }
        ReportCommand::Render { input, render } => {
            let summary = Summary::read(&input)?;
            outputs(None, render).write(&summary)?;
        }
    }
    Ok(Exit::Success)
}
