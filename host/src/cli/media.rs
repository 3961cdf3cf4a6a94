//! The arguments of the video half: `hw`, `optimize` and `validate`.

use std::path::PathBuf;

use clap::Args;
use clap::ValueEnum;
use clap::builder::Resettable;

use super::{RouteArgs, SourceArgs};

#[derive(Debug, Args)]
pub struct HwArgs {
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// Probe again, ignoring the cached verdicts.
    #[arg(long)]
    pub refresh: bool,
    #[command(flatten)]
    pub ffmpeg: FfmpegArgs,
}

/// Which ffmpeg to use.
#[derive(Debug, Clone, Args)]
pub struct FfmpegArgs {
    /// The ffmpeg binary (default: PREWARM_FFMPEG, else `ffmpeg` on PATH);
    /// ffprobe is taken from beside it, else from PATH.
    #[arg(long, value_name = "PATH")]
    pub ffmpeg: Option<PathBuf>,
}

/// `--hw`: which encoders `optimize` may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HwChoice {
    /// The usable hardware encoders (see `prewarm hw`), then software.
    Auto,
    /// Software only; no hardware detection runs.
    None,
    Nvenc,
    Qsv,
    Vaapi,
    Amf,
    Videotoolbox,
}

/// `prewarm optimize` on its own, so shared flags (`--upload`, `--config`)
/// can be added beside it.
#[derive(Debug, Args)]
pub struct OptimizeArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Settings from this TOML file (flags and PREWARM_* variables win; see README "Configuration file").
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The remote the `--listing` paths are relative to (with --listing;
    /// --source is that remote already).
    #[arg(long, value_name = "REMOTE:PATH", requires = "listing")]
    pub root: Option<String>,
    /// Re-encode sources at or above this size (default: the --plugin's
    /// max source size, else 256MiB).
    #[arg(long, value_name = "SIZE")]
    pub threshold: Option<String>,
    /// Take the default threshold from this plugin's declared limit.
    #[arg(long, value_name = "NAME|FILE.wasm")]
    pub plugin: Option<String>,
    /// Where the outputs go, under the same relative paths.
    #[arg(long, value_name = "REMOTE:PATH", conflicts_with = "in_place", required_unless_present = "in_place")]
    pub dest: Option<String>,
    /// Replace each original, only after its replacement is uploaded and verified.
    #[arg(long)]
    pub in_place: bool,
    /// Output video codec.
    #[arg(long, value_enum, default_value_t = crate::media::hw::Codec::H264)]
    pub codec: crate::media::hw::Codec,
    /// Quality, mapped per encoder (table in docs/optimize.md).
    #[arg(long, value_enum, default_value_t = crate::media::encode::Quality::Balanced)]
    pub quality: crate::media::encode::Quality,
    /// Fit the output in this box (never upscaled); default: keep the size.
    #[arg(long, value_enum)]
    pub resolution: Option<crate::media::encode::Resolution>,
    /// With --resolution: inside the box whole, or filling it and cropping.
    #[arg(long, value_enum, default_value_t = crate::media::encode::Fit::Contain)]
    pub fit: crate::media::encode::Fit,
    /// Audio: copied as is, re-encoded to AAC, or dropped.
    #[arg(long, value_enum, default_value_t = crate::media::encode::Audio::Copy)]
    pub audio: crate::media::encode::Audio,
    /// Encoders to use.
    #[arg(long, value_enum, default_value_t = HwChoice::Auto)]
    pub hw: HwChoice,
    /// Files in progress at once (default: one per usable hardware encoder, plus one).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Time limit for one file's encode (e.g. 2h).
    #[arg(long, default_value = "6h", value_name = "DUR")]
    pub encode_timeout: String,
    /// Where sources and outputs are kept while in progress (default: the temp dir).
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// Print what would be re-encoded, and with which encoder, without doing it.
    #[arg(long)]
    pub dry_run: bool,
    /// Results file (JSON lines, one per source).
    #[arg(long, value_name = "FILE.jsonl")]
    pub results: Option<PathBuf>,
    /// Machine-readable end-of-run summary on stdout.
    #[arg(long)]
    pub json: bool,
    /// At the end, copy the --results file to this rclone destination (not with --dry-run).
    #[arg(long, value_name = "REMOTE:PATH", requires = "results")]
    pub upload: Option<String>,
    #[command(flatten)]
    pub ffmpeg: FfmpegArgs,
    /// Kill an encode whose progress (frames, output time, size) stands still this long (e.g. 30s).
    #[arg(long, default_value = "60s", value_name = "DUR")]
    pub stall_timeout: String,
    /// With --in-place, replace even sources that decode with errors (default: recorded `damaged`, kept).
    #[arg(long, requires = "in_place")]
    pub replace_damaged: bool,
}
// The listing arguments are shared with `warm`, where `--source` is required
// and excludes `--listing`; here `--results` alone is enough, and a saved
// listing needs `--source` to say where its paths are.
#[derive(Debug, Args)]
// Size classes mean nothing to validate: hidden.
#[command(
    mut_arg("source", |a| a.required_unless_present(Resettable::Reset).conflicts_with(Resettable::Reset)),
    mut_arg("small_below", |a| a.hide(true)),
    mut_arg("medium_below", |a| a.hide(true))
)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Settings from this TOML file (flags and PREWARM_* variables win; see README "Configuration file").
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A results file from `prewarm warm`: check every warmed derivative (with --plugin and --base-url).
    #[arg(long, value_name = "FILE.jsonl")]
    pub results: Option<PathBuf>,
    /// The CDN strategy: sources above its size limit are flagged; with --results, the one the warm used.
    #[arg(long, value_name = "NAME|FILE.wasm")]
    pub plugin: Option<String>,
    /// With --results: the CDN's base URL the warm used.
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// With --results: a plugin setting the warm used (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub settings: Vec<String>,
    /// With --results: another origin the plugin may reach (repeatable), as for the warm.
    #[arg(long = "allow-host", value_name = "HOST[:PORT]")]
    pub allow_hosts: Vec<String>,
    /// With --results: the derivatives the warm used (as for warm: names, NAME=WxH, `:OPTIONS`).
    #[arg(long, value_name = "A,B,...")]
    pub derivatives: Vec<String>,
    /// With --results: how the warm reached the CDN (ffprobe and ffmpeg read through prewarm's relay).
    #[command(flatten)]
    pub route: RouteArgs,
    /// Time limit for the connection and response headers of each read of a derivative or source.
    #[arg(long, default_value = "30s", value_name = "DUR")]
    pub header_timeout: String,
    /// Decode the first SECONDS of every video (and its last second).
    #[arg(long, default_value = "2", value_name = "SECONDS")]
    pub decode: String,
    /// Decode every video whole instead (slow: reads every byte).
    #[arg(long)]
    pub deep: bool,
    /// Check only this fraction of the items (0 < F <= 1), the same ones every run.
    #[arg(long, value_name = "FRACTION")]
    pub sample: Option<String>,
    /// Items checked at once (default: one per core).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Time limit for each ffprobe or ffmpeg run (e.g. 30s, 5m).
    #[arg(long, default_value = "120s", value_name = "DUR")]
    pub timeout: String,
    /// One JSON line per item checked.
    #[arg(long, value_name = "FILE.jsonl", default_value = "prewarm-validate.jsonl")]
    pub results_out: PathBuf,
    /// Markdown report: the problems grouped by kind, with what to do.
    #[arg(long, value_name = "FILE.md")]
    pub markdown: Option<PathBuf>,
    /// The summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// At the end, copy the --results-out file and the --markdown report to this rclone destination.
    #[arg(long, value_name = "REMOTE:PATH")]
    pub upload: Option<String>,
    /// The ffmpeg binary (ffprobe is looked for beside it).
    #[arg(long, value_name = "PATH")]
    pub ffmpeg: Option<PathBuf>,
}
