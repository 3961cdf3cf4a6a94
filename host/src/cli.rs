//! The command line as typed: clap derive structs, one per subcommand
//! (`warm` and `probe` in [`warm`], the video half in [`media`]).
//! Validation and resolution into real objects happen in each command.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod config_show;
mod media;
mod warm;

pub use config_show::{ConfigArgs, ConfigCommand, ConfigShowArgs, ConfigTarget};
pub use media::{FfmpegArgs, HwArgs, HwChoice, OptimizeArgs, ValidateArgs};
pub use warm::{ProbeArgs, ProgressMode, RequestArgs, RouteArgs, ScaleArgs, WarmArgs};

#[derive(Debug, Parser)]
#[command(
    name = "prewarm",
    version,
    about = "Pre-warm CDN caches for video derivatives",
    propagate_version = true,
    args_override_self = true
)]
pub struct Cli {
    /// More logging (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Log lines as text, or one JSON object per line (time, level, target, message, fields) for log pipelines.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true, env = "PREWARM_LOG_FORMAT")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Warm every derivative of every listed object through the CDN.
    #[command(after_help = examples::WARM)]
    Warm(Box<WarmArgs>),
    /// Print the filtered listing with a size summary.
    #[command(after_help = examples::LIST)]
    List(Box<ListArgs>),
    /// List or inspect CDN strategy plugins.
    #[command(after_help = examples::PLUGINS)]
    Plugins(PluginsArgs),
    /// One object through the whole warm loop, every request, answer, verdict and wait shown.
    #[command(after_help = examples::PROBE)]
    Probe(Box<ProbeArgs>),
    /// Merge summaries from shards, or render a summary again.
    #[command(after_help = examples::REPORT)]
    Report(ReportArgs),
    /// A complete local run: sample videos, a loopback origin and cache, a warm, the report.
    #[command(after_help = examples::DEMO)]
    Demo(DemoArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    #[command(after_help = examples::COMPLETIONS)]
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Write man pages: one per subcommand into DIR, or prewarm(1) to stdout.
    #[command(after_help = examples::MAN)]
    Man {
        /// Directory for prewarm.1, prewarm-warm.1 and the rest (created if missing).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Which video encoders really work here, proven by short encodes (cached).
    #[command(after_help = examples::HW)]
    Hw(HwArgs),
    /// Re-encode sources too big for the CDN to transform, verified, through rclone.
    #[command(after_help = examples::OPTIMIZE)]
    Optimize(Box<OptimizeArgs>),
    /// Find broken sources before a warm (--source), or wrong derivatives after it (--results).
    #[command(after_help = examples::VALIDATE)]
    Validate(Box<ValidateArgs>),
    /// The effective configuration: config file < PREWARM_* environment < flags.
    #[command(after_help = examples::CONFIG)]
    Config(ConfigArgs),
}

/// The whole command line: the derive definition with the environment
/// layer (`PREWARM_<FLAG>` for every flag of warm, list, validate and
/// optimize). Parsing, `man` and `completions` all use this one.
pub fn command() -> clap::Command {
    crate::config::with_environment(<Cli as clap::CommandFactory>::command())
}

/// The examples that end each subcommand's `--help` (and man page).
mod examples {
    pub const WARM: &str = "Examples:
  prewarm warm --source s3:media/videos --extensions mp4 --plugin cloudflare-media \\
    --base-url https://www.example.com --set source-prefix=videos --results run.jsonl --html run.html
  prewarm warm --listing listing.json --plugin video-resizer --base-url https://videos.example.com --resume
  prewarm warm --listing listing.json --plugin akamai-ivm --base-url https://img.example.com --dry-run";
    pub const LIST: &str = "Examples:
  prewarm list --source s3:media/videos --extensions mp4,mov --threshold 100MB
  prewarm list --listing listing.json --shard 0/4 --summary-only
  prewarm list --source r2:bucket --json > objects.json";
    pub const PLUGINS: &str = "Examples:
  prewarm plugins list
  prewarm plugins inspect cloudflare-media
  prewarm plugins new acme-cdn --dir ./acme-cdn";
    pub const PROBE: &str = "Examples:
  prewarm probe videos/intro.mp4 --plugin cloudflare-media --base-url https://www.example.com --derivative mobile
  prewarm probe videos/intro.mp4 --plugin video-resizer --base-url https://videos.example.com --verify";
    pub const REPORT: &str = "Examples:
  prewarm report merge shard-*.json -o all.json --html all.html
  prewarm report render all.json --markdown all.md";
    pub const DEMO: &str = "Examples:
  prewarm demo
  prewarm demo --dir /tmp/prewarm-demo";
    pub const COMPLETIONS: &str = "Examples:
  prewarm completions bash > /etc/bash_completion.d/prewarm
  prewarm completions zsh > \"${fpath[1]}/_prewarm\"
  prewarm completions fish > ~/.config/fish/completions/prewarm.fish";
    pub const HW: &str = "Examples:
  prewarm hw
  prewarm hw --json --refresh
  prewarm hw --ffmpeg /opt/ffmpeg/bin/ffmpeg";
    pub const OPTIMIZE: &str = "Examples:
  prewarm optimize --source s3:media/videos --threshold 100MB --dest s3:media/optimized --dry-run
  prewarm optimize --source s3:media/videos --plugin cloudflare-media --in-place --codec h264 --resolution 1080p
  prewarm optimize --source s3:media/videos --threshold 256MiB --dest s3:media/small --hw none --results opt.jsonl";
    pub const VALIDATE: &str = "Examples:
  prewarm validate --source s3:media/videos --extensions mp4,mov --plugin cloudflare-media --markdown sources.md
  prewarm validate --results run.jsonl --plugin cloudflare-media --base-url https://www.example.com \\
    --set source-prefix=videos --source s3:media/videos --sample 0.1";
    pub const CONFIG: &str = "Examples:
  prewarm config show --config prewarm.toml
  PREWARM_CONCURRENCY=64 prewarm config show --json --config prewarm.toml --base-url https://cdn.example.com
  prewarm config show --command validate --config prewarm.toml";
    pub const MAN: &str = "Examples:
  prewarm man --dir /usr/local/share/man/man1
  prewarm man | man -l -";
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(subcommand)]
    pub command: ReportCommand,
}

/// Where to render a summary.
#[derive(Debug, Clone, Args)]
pub struct RenderTargets {
    /// Markdown performance and error report.
    #[arg(long, value_name = "FILE.md")]
    pub markdown: Option<PathBuf>,
    /// Self-contained HTML report with charts.
    #[arg(long, value_name = "FILE.html")]
    pub html: Option<PathBuf>,
    /// Prometheus textfile for node_exporter (written atomically).
    #[arg(long, value_name = "FILE.prom")]
    pub metrics_textfile: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Combine summaries (e.g. one per shard) exactly: counts add, histograms merge.
    ///
    /// Shard summaries are checked: all from the same shard count, each
    /// shard once, none missing (unless --allow-missing).
    Merge {
        /// Summary JSON files from `prewarm warm --report`.
        #[arg(required = true, num_args = 1..)]
        inputs: Vec<PathBuf>,
        /// Merge even when shards are missing; the report names them.
        #[arg(long)]
        allow_missing: bool,
        /// Where to write the merged summary.
        #[arg(short, long, value_name = "OUT.json")]
        output: PathBuf,
        #[command(flatten)]
        render: RenderTargets,
    },
    /// Render a summary as Markdown, HTML or a Prometheus textfile.
    Render {
        /// A summary JSON file.
        input: PathBuf,
        #[command(flatten)]
        render: RenderTargets,
    },
}

/// Where the objects come from, and which of them to take.
#[derive(Debug, Clone, Args)]
pub struct SourceArgs {
    /// An rclone remote and path (`s3:bucket/videos`, or a local directory).
    #[arg(long, value_name = "REMOTE:PATH", conflicts_with = "listing", required_unless_present = "listing")]
    pub source: Option<String>,
    /// A saved listing (`rclone lsjson` output or JSON lines); `-` for stdin.
    #[arg(long, value_name = "FILE|-")]
    pub listing: Option<String>,
    /// Only these extensions, comma-separated, case-insensitive (e.g. mp4,mov).
    #[arg(long, value_delimiter = ',', value_name = "EXT,...")]
    pub extensions: Vec<String>,
    /// Skip objects smaller than this (e.g. 1MiB).
    #[arg(long, value_name = "SIZE")]
    pub min_size: Option<String>,
    /// Skip objects larger than this (e.g. 2GiB).
    #[arg(long, value_name = "SIZE")]
    pub max_size: Option<String>,
    /// Only paths matching this glob (repeatable; `**` crosses directories).
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,
    /// Skip paths matching this glob (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Take at most N objects: the first N in listing order, after filters.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Only this shard of the listing: I/N (0-based), `auto/N` (index from JOB_COMPLETION_INDEX), or `auto`
    /// (count from PREWARM_SHARDS too).
    #[arg(long, value_name = "I/N|auto")]
    pub shard: Option<String>,
    /// Sources below this size are `small` (default 50MiB).
    #[arg(long, value_name = "SIZE", default_value = "50MiB")]
    pub small_below: String,
    /// Sources below this size (and not small) are `medium` (default 200MiB).
    #[arg(long, value_name = "SIZE", default_value = "200MiB")]
    pub medium_below: String,
    /// The rclone binary (default: `rclone` on PATH).
    #[arg(long, value_name = "PATH", env = "PREWARM_RCLONE")]
    pub rclone: Option<PathBuf>,
    /// rclone config file, passed as `--config`.
    #[arg(long, value_name = "FILE")]
    pub rclone_config: Option<PathBuf>,
    /// Extra flag for rclone (repeatable), e.g. --rclone-flag=--fast-list.
    #[arg(long = "rclone-flag", value_name = "FLAG", allow_hyphen_values = true)]
    pub rclone_flags: Vec<String>,
    /// Only objects modified since then, from the listing's ModTime: a duration back from now (30d, 12h) or a
    /// date (2026-11-01, 2026-11-01T06:00:00Z). With --source, rclone filters too (its --max-age).
    #[arg(long, value_name = "DUR|DATE")]
    pub newer_than: Option<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Settings from this TOML file (flags and PREWARM_* variables win; see README "Configuration file").
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Report sources at or above this size (too big for the CDN to transform).
    #[arg(long, value_name = "SIZE", default_value = "100MB")]
    pub threshold: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Only the summary, not every object.
    #[arg(long)]
    pub summary_only: bool,
}

#[derive(Debug, Args)]
pub struct PluginsArgs {
    #[command(subcommand)]
    pub command: PluginsCommand,
}

#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// The built-in plugins: name, version, WIT version, description.
    List {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Write a new plugin crate (SDK and WIT included) that builds anywhere
    /// with `cargo build --release --target wasm32-wasip2`.
    New {
        /// The plugin's name: lowercase letters, digits and dashes (e.g. acme-cdn).
        name: String,
        /// Where to write it (default: ./NAME); must not exist or be empty.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Settings, default derivatives, limits and size methods of a plugin.
    Inspect {
        /// A built-in name or a path to a `.wasm` component.
        plugin: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to put the demo's files (default: a new directory under the temp dir, kept).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}
