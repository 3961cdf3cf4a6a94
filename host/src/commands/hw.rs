//! `prewarm hw`: which encoders this ffmpeg was built with and which really
//! work here (proven by short encodes, or from the cache), with the reason
//! class and ffmpeg's own line for those that do not, and the best usable
//! encoder per codec.

use std::io::Write;

use anyhow::Result;

use crate::Exit;
use crate::cli::HwArgs;
use crate::media::hw::{Codec, Detector, HwReport};
use crate::media::hw_cache;

pub fn run(args: HwArgs) -> Result<Exit> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let detector = Detector::new(args.ffmpeg.ffmpeg.clone(), hw_cache::default_path(), args.refresh);
    let report = runtime.block_on(async {
        tokio::select! {
            r = detector.report() => r.cloned(),
            // Dropping the detection kills the probe's process group.
            _ = crate::util::child::interrupted() => Err(crate::media::MediaError::Failed {
                program: "hw".into(), message: "interrupted".into(),
            }),
        }
    })?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        write!(out, "{}", render(&report))?;
    }
    Ok(Exit::Success)
}

/// The human table.
pub fn render(report: &HwReport) -> String {
    let mut s = String::new();
    let source = if report.from_cache { "from cache" } else { "probed now" };
    s.push_str(&format!("{} ({}; {source})\n", report.version, report.ffmpeg.display()));
    for e in &report.encoders {
        let verdict = match (e.usable, e.reason) {
            (true, _) => "usable".to_string(),
            (false, Some(r)) => r.as_str().to_string(),
            (false, None) => "not usable".to_string(),
        };
        let line = e.error.as_deref().filter(|_| e.built_in).map(|l| format!("  {l}")).unwrap_or_default();
        s.push_str(&format!(
            "  {:<18} {:<5} {:<13} {verdict:<20}{line}\n",
            e.name,
            e.codec.as_str(),
            e.family.as_str()
        ));
    }
    s.push_str("best:");
    for codec in Codec::ALL {
        s.push_str(&format!(" {}={}", codec.as_str(), report.best.get(&codec).map_or("none", String::as_str)));
    }
    s.push('\n');
    s
}
