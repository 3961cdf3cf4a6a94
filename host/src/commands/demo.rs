//! `prewarm demo`: a complete local run. It makes sample videos with
//! ffmpeg, and for each a rendition per derivative width (standing in for
//! the CDN's transforms), serves them with `rclone serve http` (the origin),
//! puts nginx with `proxy_cache` in front (the CDN), warms every derivative
//! with the `template` plugin, then warms again to show the cache hits.

use anyhow::{Context, Result};
use clap::Parser;

use crate::cli::{Cli, Command, DemoArgs};
use crate::{Exit, util::lab};

const SAMPLES: &[(&str, u32)] = &[
    ("intro.mp4", 2),
    ("trailers/launch trailer.mp4", 2),
    ("series/s01/épisode 1.mp4", 1),
    ("series/s01/episode #2.mp4", 1),
];

/// The template plugin's default derivatives: desktop, tablet, mobile.
const WIDTHS: [u32; 3] = [1920, 1280, 854];

pub fn run(args: DemoArgs) -> Result<Exit> {
    // The files are kept: the reports are what the demo is for.
    let dir = match args.dir {
        Some(d) => d,
        None => tempfile::Builder::new().prefix("prewarm-demo-").tempdir()?.keep(),
    };
    let media = dir.join("media");
    let originals = media.join("originals");
    eprintln!("prewarm demo: making {} sample videos and their renditions in {}", SAMPLES.len(), media.display());
    for (name, seconds) in SAMPLES {
        let original = originals.join(name);
        lab::make_sample_video(&original, *seconds, "1920x1080")?;
        for width in WIDTHS {
            lab::make_rendition(&original, &media.join(format!("renditions/{width}/{name}")), width)?;
        }
    }
    let rclone = lab::find_program("rclone").context("rclone not found: install it with `apt-get install rclone`")?;
    let origin = lab::start_origin(&rclone, &media)?;
    let cache = lab::start_cache(&dir.join("nginx"), &origin.url)?;
    eprintln!("origin (rclone serve http): {}\ncache  (nginx proxy_cache):  {}", origin.url, cache.url);

    let warm = |pass: &str| -> Result<Exit> {
        eprintln!("\n== {pass} ==");
        let out = dir.join(pass);
        let argv: Vec<String> = vec![
            "prewarm".into(),
            "warm".into(),
            "--source".into(),
            originals.display().to_string(),
            "--extensions".into(),
            "mp4,mov".into(),
            "--plugin".into(),
            "template".into(),
            "--base-url".into(),
            cache.url.clone(),
            "--set".into(),
            "url={base}/renditions/{width}/{path}".into(),
            "--set".into(),
            "cache-header=x-cache-status".into(),
            "--concurrency".into(),
            "4".into(),
            // A demo run again in the same --dir replaces its own files.
            "--overwrite".into(),
            "--results".into(),
            out.join("results.jsonl").display().to_string(),
            "--report".into(),
            out.join("summary.json").display().to_string(),
            "--markdown".into(),
            out.join("report.md").display().to_string(),
            "--html".into(),
            out.join("report.html").display().to_string(),
            "--capabilities-cache".into(),
            dir.join("capabilities.json").display().to_string(),
        ];
        let cli = Cli::try_parse_from(argv)?;
        let Command::Warm(args) = cli.command else { unreachable!("demo builds a warm command") };
        let exit = super::warm::run(*args)?;
        eprintln!("reports: {}", out.display());
        Ok(exit)
    };
    let first = warm("first-pass")?;
    let second = warm("second-pass")?;
    eprintln!("\nThe first pass made the cache fetch every derivative (MISS); the second was served from cache (HIT).");
    eprintln!("Open {} for the report with charts.", dir.join("first-pass/report.html").display());
    Ok(if first == Exit::Success && second == Exit::Success { Exit::Success } else { Exit::SomeFailed })
}
