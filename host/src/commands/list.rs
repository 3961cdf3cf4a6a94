//! `prewarm list`: stream the filtered listing to stdout (path and size, or
//! JSON), then a size summary: count and bytes per size class, and the
//! sources at or above a threshold (too big for the CDN to transform).

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Result;
use serde::Serialize;

use crate::cli::ListArgs;
use crate::listing::{self, Object};
use crate::util::size::{SizeClass, human, parse_size};
use crate::{Exit, usage};

/// Objects over the threshold kept by name; beyond that only counted.
const OVER_THRESHOLD_KEPT: usize = 1000;

#[derive(Debug, Default, Serialize)]
struct ClassTotals {
    count: u64,
    bytes: u64,
}

#[derive(Debug, Serialize)]
struct ListSummary {
    objects: u64,
    total_bytes: u64,
    size_classes: BTreeMap<SizeClass, ClassTotals>,
    small_below: u64,
    medium_below: u64,
    threshold: u64,
    over_threshold_count: u64,
    over_threshold_bytes: u64,
    /// The first objects at or above the threshold (at most 1000).
    over_threshold: Vec<Object>,
    objects_seen: u64,
    rclone_processes: u64,
    peak_rss_bytes: Option<u64>,
}

pub fn run(args: ListArgs) -> Result<Exit> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run_async(args))
}

async fn run_async(args: ListArgs) -> Result<Exit> {
    let threshold = parse_size(&args.threshold).map_err(|e| usage(format!("--threshold: {e}")))?;
    let classes = listing::size_classes(&args.source)?;
    let (source, filters, rclone) = super::warm::source_and_filters(&args.source)?;
    let (mut objects, task) = listing::stream(source, filters);

    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    let mut summary = ListSummary {
        objects: 0,
        total_bytes: 0,
        size_classes: SizeClass::ALL.iter().map(|c| (*c, ClassTotals::default())).collect(),
        small_below: classes.small_below,
        medium_below: classes.medium_below,
        threshold,
        over_threshold_count: 0,
        over_threshold_bytes: 0,
        over_threshold: Vec::new(),
        objects_seen: 0,
        rclone_processes: 0,
        peak_rss_bytes: None,
    };
    if args.json {
        write!(out, "{{\"objects\":[")?;
    }
    while let Some(object) = objects.recv().await {
        if !args.summary_only {
            if args.json {
                if summary.objects > 0 {
                    out.write_all(b",")?;
                }
                serde_json::to_writer(&mut out, &object)?;
            } else {
                writeln!(out, "{}\t{}", object.size, object.path)?;
            }
        }
        summary.objects += 1;
        summary.total_bytes += object.size;
        let class = summary.size_classes.entry(classes.class_of(object.size)).or_default();
        class.count += 1;
        class.bytes += object.size;
        if object.size >= threshold {
            summary.over_threshold_count += 1;
            summary.over_threshold_bytes += object.size;
            if summary.over_threshold.len() < OVER_THRESHOLD_KEPT {
                summary.over_threshold.push(object);
            }
        }
    }
    let totals = task.await??;
    summary.objects_seen = totals.seen;
    summary.rclone_processes = rclone.as_ref().map_or(0, |r| r.processes_spawned());
    summary.peak_rss_bytes = crate::util::memory::peak_rss_bytes();

    if args.json {
        write!(out, "],\"summary\":")?;
        serde_json::to_writer(&mut out, &summary)?;
        writeln!(out, "}}")?;
    } else {
        writeln!(
            out,
            "\n{} objects, {} ({} bytes); {} listed before filters",
            summary.objects,
            human(summary.total_bytes),
            summary.total_bytes,
            summary.objects_seen
        )?;
        let bounds = [
            format!("< {}", human(classes.small_below)),
            format!("< {}", human(classes.medium_below)),
            format!(">= {}", human(classes.medium_below)),
        ];
        for ((class, t), bound) in summary.size_classes.iter().zip(bounds) {
            writeln!(out, "  {:<7} {:<13} {:>9} objects  {:>12}", class.as_str(), bound, t.count, human(t.bytes))?;
        }
        writeln!(
            out,
            "{} objects at or above {} ({}):",
            summary.over_threshold_count,
            human(threshold),
            human(summary.over_threshold_bytes)
        )?;
        for o in &summary.over_threshold {
            writeln!(out, "  {}\t{}", human(o.size), o.path)?;
        }
        if summary.over_threshold_count > summary.over_threshold.len() as u64 {
            writeln!(out, "  … and {} more", summary.over_threshold_count - summary.over_threshold.len() as u64)?;
        }
        writeln!(out, "rclone processes: {}", summary.rclone_processes)?;
    }
    out.flush()?;
    Ok(Exit::Success)
}
