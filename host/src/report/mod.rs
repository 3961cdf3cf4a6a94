//! Reports of a run, one file per format, each rendering a [`Summary`]:
//! the summary JSON itself (the exact, mergeable record of a run), text for
//! the terminal, Markdown, a self-contained HTML page, and Prometheus
//! metrics (textfile or Pushgateway, and live during a run).

mod charts;
mod edges;
pub mod html;
pub mod live;
pub mod markdown;
pub mod prometheus;
pub mod text;
pub mod verify;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::cli::WarmArgs;
use crate::record::Outcome;
use crate::stats::{Stats, StatsSummary};

/// Version of the summary JSON layout; bumped on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

/// The run's parameters, secrets redacted.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct RunInfo {
    pub started_at: String,
    pub finished_at: String,
    pub elapsed_s: f64,
    pub plugin: String,
    pub plugin_version: String,
    pub base_url: String,
    pub settings: Vec<(String, String)>,
    pub derivatives: Vec<String>,
    pub concurrency: usize,
    pub source: String,
    pub shard: Option<String>,
    pub objects_listed: u64,
    pub objects_selected: u64,
    /// Listing entries that were not objects to warm, and paths listed more
    /// than once (warmed once).
    #[serde(default)]
    pub duplicates: u64,
    #[serde(default)]
    pub directories: u64,
    #[serde(default)]
    pub folder_markers: u64,
    /// Objects whose size the backend could not tell (rclone `Size: -1`).
    #[serde(default)]
    pub unknown_size: u64,
    pub resumed_skips: u64,
    pub interrupted: bool,
    pub rclone_processes: u64,
    pub results_file: String,
    /// Peak resident memory of the prewarm process.
    #[serde(default)]
    pub peak_rss_bytes: Option<u64>,
    /// `--connect-to` rules of the run (`HOST:PORT:ADDR:PORT`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connect_to: Vec<String>,
    /// Why `--max-failures` stopped the run early, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// `--edge`s of the run, `NAME=ADDR[:PORT]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edges: Vec<String>,
    /// `--variant` names of the run (their headers are not shown).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<String>,
}

/// The summary JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub schema_version: u32,
    /// One entry per run (several after `report merge`).
    pub runs: Vec<RunInfo>,
    pub stats: StatsSummary,
    /// Shards (`I/N`) that `report merge --allow-missing` merged without.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_shards: Vec<String>,
}

impl Summary {
    pub fn new(run: RunInfo, stats: &Stats) -> Self {
        Summary {
            schema_version: SCHEMA_VERSION,
            runs: vec![run],
            stats: stats.to_summary(),
            missing_shards: Vec::new(),
        }
    }

    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read summary {}", path.display()))?;
        let summary: Summary = serde_json::from_slice(&bytes)
            .map_err(|e| crate::usage(format!("{}: not a prewarm summary ({e})", path.display())))?;
        if summary.schema_version != SCHEMA_VERSION {
            return Err(crate::usage(format!(
                "{}: summary schema_version {} is not {SCHEMA_VERSION}, the version this prewarm reads",
                path.display(),
                summary.schema_version
            )));
        }
        Ok(summary)
    }

    /// Pairs that are not warm, by outcome, in the order the README names
    /// them (failed, pending, passthrough; skipped only when a run was
    /// interrupted), then warm pairs `--verify` did not find cached; empty
    /// when every pair is warm. This decides exit 3.
    pub fn not_warm(&self) -> Vec<(&'static str, u64)> {
        // Skipped pairs (over the CDN's limit, or interrupted) are not warm
        // either: a run that skipped some never says "all warm".
        [Outcome::Failed, Outcome::Pending, Outcome::Passthrough, Outcome::Skipped]
            .into_iter()
            .map(|o| (o.as_str(), self.stats.outcomes.get(o.as_str()).copied().unwrap_or(0)))
            .chain(std::iter::once(("not verified", self.stats.verify.not_hit_count())))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// Wall-clock length of the run (of the longest run, after a merge).
    pub fn elapsed_s(&self) -> f64 {
        self.runs.iter().map(|r| r.elapsed_s).fold(0.0, f64::max)
    }
}

/// The report files a run was asked for.
#[derive(Debug, Default, Clone)]
pub struct Outputs {
    pub json: Option<PathBuf>,
    pub markdown: Option<PathBuf>,
    pub html: Option<PathBuf>,
    pub metrics_textfile: Option<PathBuf>,
    pub pushgateway: Option<String>,
    /// The Pushgateway `instance` label.
    pub instance: String,
}

impl Outputs {
    pub fn from_args(args: &WarmArgs) -> Result<Self> {
        if let Some(url) = &args.pushgateway {
            let shown = crate::util::redact::redact_url(url);
            let parsed = reqwest::Url::parse(url)
                .map_err(|e| crate::usage(format!("--pushgateway `{shown}`: not a URL ({e})")))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(crate::usage(format!("--pushgateway `{shown}`: must be an http(s) URL")));
            }
        }
        let host =
            std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "prewarm".into());
        Ok(Outputs {
            json: args.report.clone(),
            markdown: args.render.markdown.clone(),
            html: args.render.html.clone(),
            metrics_textfile: args.render.metrics_textfile.clone(),
            pushgateway: args.pushgateway.clone(),
            // The resolved shard (`auto/4` names a different one per pod), so
            // shards do not overwrite each other's group.
            instance: match args.source.shard.as_deref().map(crate::listing::Shard::parse).transpose() {
                Ok(Some(shard)) => format!("{host}-shard-{}-of-{}", shard.index, shard.count),
                Ok(None) => host,
                Err(e) => return Err(crate::usage(e)),
            },
        })
    }

    /// Push to the Pushgateway, if one was given.
    pub async fn push(&self, summary: &Summary) -> Result<()> {
        match &self.pushgateway {
            Some(url) => prometheus::push(url, &self.instance, summary).await,
            None => Ok(()),
        }
    }

    /// Write every requested file.
    pub fn write(&self, summary: &Summary) -> Result<()> {
        let write = |path: &Option<PathBuf>, render: &dyn Fn() -> Result<Vec<u8>>| -> Result<()> {
            if let Some(path) = path {
                crate::util::atomic_file::write(path, &render()?)
                    .with_context(|| format!("cannot write report {}", path.display()))?;
            }
            Ok(())
        };
        write(&self.json, &|| Ok(serde_json::to_vec_pretty(summary)?))?;
        write(&self.markdown, &|| Ok(markdown::render(summary).into_bytes()))?;
        write(&self.html, &|| Ok(html::render(summary).into_bytes()))?;
        let previous = self.metrics_textfile.as_deref().and_then(prometheus::previous_success);
        write(&self.metrics_textfile, &|| Ok(prometheus::render(summary, previous)))?;
        Ok(())
    }
}
