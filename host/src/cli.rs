//! The command line as typed: clap derive structs, one per subcommand.
//! Validation and resolution into real objects happen in each command.

use std::path::PathBuf;

use clap::builder::Resettable;
use clap::{Args, Parser, Subcommand, ValueEnum};

mod config_show;
pub use config_show::{ConfigArgs, ConfigCommand, ConfigShowArgs, ConfigTarget};

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    /// A bar when stderr is a terminal.
    Auto,
    Always,
    Never,
}

#[derive(Debug, Args)]
pub struct WarmArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Settings from this TOML file (flags and PREWARM_* variables win; see README "Configuration file").
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Strategy: a built-in name (see `prewarm plugins list`) or a `.wasm` path.
    #[arg(long, value_name = "NAME|FILE.wasm")]
    pub plugin: String,
    /// The CDN's base URL, e.g. https://cdn.example.com.
    #[arg(long, value_name = "URL")]
    pub base_url: String,
    /// A plugin setting (repeatable); see `prewarm plugins inspect NAME`.
    /// `KEY=env:VAR` and `KEY=file:PATH` read the value from the
    /// environment or a file (keeps secrets out of `ps` and shell history);
    /// `KEY=raw:VALUE` takes a value that starts with `env:` or `file:`
    /// literally.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub settings: Vec<String>,
    /// Another origin plugin-built requests may reach besides --base-url's
    /// (repeatable): HOST (ports 80 and 443), HOST:PORT, or *.DOMAIN[:PORT].
    #[arg(long = "allow-host", value_name = "HOST[:PORT]")]
    pub allow_hosts: Vec<String>,
    /// Derivatives to warm (comma-separated, repeatable): names from the
    /// plugin's defaults, or NAME=WxH; options for the plugin after a colon
    /// belong to the last derivative of the value: `thumb=640x360:mode=frame,time=2s`.
    #[arg(long, value_name = "A,B,...")]
    pub derivatives: Vec<String>,
    /// Pairs (requests) in flight at once, about 2.3 KiB each; any number
    /// the open-files hard limit allows (10000 against a slow CDN is fine).
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub concurrency: usize,
    /// Slots of --concurrency reserved for small sources (the rest are shared).
    #[arg(long, value_name = "N")]
    pub workers_small: Option<usize>,
    /// Workers reserved for medium sources.
    #[arg(long, value_name = "N")]
    pub workers_medium: Option<usize>,
    /// Workers reserved for large sources.
    #[arg(long, value_name = "N")]
    pub workers_large: Option<usize>,
    /// Engine threads doing the HTTP and plugin work, each with its own
    /// plugin instance (default: one per core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    #[command(flatten)]
    pub request: RequestArgs,
    /// Cap on requests per second across all workers.
    #[arg(long, value_name = "N")]
    pub rate: Option<u32>,
    /// Results file (JSON lines, one per pair); a name ending in `.zst` is written zstd-compressed.
    #[arg(long, value_name = "FILE.jsonl", default_value = "prewarm-results.jsonl")]
    pub results: PathBuf,
    /// Skip pairs already warm in the results file, and append to it.
    #[arg(long)]
    pub resume: bool,
    /// Replace an existing results file (without this or --resume, an existing one is refused).
    #[arg(long, conflicts_with = "resume")]
    pub overwrite: bool,
    /// Print the planned requests without sending anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Progress bar.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
    /// Machine-readable end-of-run summary on stdout.
    #[arg(long)]
    pub json: bool,
    /// Prove it: ask the CDN again for each warm pair (HEAD, or a headers-only
    /// GET) and record its cache state; a warm pair that is not a hit exits 3.
    #[arg(long)]
    pub verify: bool,
    /// Warm sources over the plugin's declared size limit anyway (they are skipped by default).
    #[arg(long)]
    pub ignore_limits: bool,
    /// Summary JSON (schema in docs/summary-schema.md).
    #[arg(long, value_name = "FILE.json")]
    pub report: Option<PathBuf>,
    #[command(flatten)]
    pub render: RenderTargets,
    /// Prometheus Pushgateway base URL to PUT the metrics to.
    #[arg(long, value_name = "URL")]
    pub pushgateway: Option<String>,
    /// At the end, copy the results and reports to this rclone destination (through the managed rclone), so
    /// shards need no shared volume.
    #[arg(long, value_name = "REMOTE:PATH")]
    pub upload: Option<String>,
    /// Where detected per-host size capabilities are kept (default: user cache dir).
    #[arg(long, value_name = "FILE")]
    pub capabilities_cache: Option<PathBuf>,
    /// Warm every pair at this edge (point of presence), by name (repeatable): requests for the base URL's
    /// host connect to ADDR[:PORT] (the URL's port by default; IPv6 in brackets) with the URL's Host header
    /// and TLS name. Records and reports count per edge NAME; an edge whose connections keep failing is
    /// marked down and its remaining pairs fail as `edge_down`.
    #[arg(long = "edge", value_name = "NAME=ADDR[:PORT]")]
    pub edge: Vec<String>,
    /// Edges from a file: one `NAME ADDR[:PORT]` a line, `#` comments (adds to --edge).
    #[arg(long = "edges", value_name = "FILE")]
    pub edges_file: Option<PathBuf>,
    /// Warm every pair (at every edge) once more with these request headers, for a cache that keys on them
    /// (repeatable): NAME='Header: value[; Header: value]'. Records name the variant.
    #[arg(long = "variant", value_name = "NAME=HEADERS")]
    pub variant: Vec<String>,
    /// Add this header to every request of every plugin (repeatable): 'Name: value'; a value `env:VAR` or
    /// `file:PATH` is read from there and never shown. Host, Connection, Content-Length, Transfer-Encoding,
    /// TE, Upgrade, Keep-Alive and Proxy-* are refused.
    #[arg(long = "header", value_name = "'NAME: VALUE'")]
    pub header: Vec<String>,
    #[command(flatten)]
    pub scale: ScaleArgs,
}

/// Long runs: checkpoints, live metrics, a failure budget.
#[derive(Debug, Clone, Args)]
pub struct ScaleArgs {
    /// With --upload: every DUR (e.g. 1m), upload the results and summary so far there, atomically, so a run
    /// restarted with --resume continues from the last checkpoint.
    #[arg(long, value_name = "DUR", requires = "upload")]
    pub checkpoint_every: Option<String>,
    /// Serve Prometheus metrics at http://ADDR/metrics while the run lasts (e.g. 0.0.0.0:9464).
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics_listen: Option<String>,
    /// Stop once N pairs failed, or P% of them after at least 100 finished (e.g. 50, 20%): pairs not started
    /// are recorded skipped (`stopped`) for --resume, and the run exits 3.
    #[arg(long, value_name = "N|P%")]
    pub max_failures: Option<String>,
}

/// How long one request may take and how often a pair is tried again.
#[derive(Debug, Clone, Args)]
pub struct RequestArgs {
    /// Time limit for one request, headers and body (e.g. 30s, 5m).
    #[arg(long, default_value = "120s", value_name = "DUR")]
    pub timeout: String,
    /// Time limit for the connection and response headers.
    #[arg(long, default_value = "30s", value_name = "DUR")]
    pub header_timeout: String,
    /// Retries of a retryable failure per pair.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub retries: u32,
    /// Most polls of a pending transform per pair.
    #[arg(long, default_value_t = 30, value_name = "N")]
    pub max_polls: u32,
    #[command(flatten)]
    pub route: RouteArgs,
}

/// Where requests connect and which certificates are trusted (warm, probe, validate).
#[derive(Debug, Clone, Args)]
pub struct RouteArgs {
    /// Send requests for HOST:PORT to ADDR:PORT instead, keeping the Host header and TLS name (curl's
    /// --connect-to; repeatable, first match wins). Empty HOST or PORT on the left match any; empty ADDR
    /// or PORT on the right keep the URL's. IPv6 in brackets: `[2001:db8::1]`. Warms one edge of a CDN
    /// routed by DNS; results and summary name the edge.
    #[arg(long = "connect-to", value_name = "HOST:PORT:ADDR:PORT")]
    pub connect_to: Vec<String>,
    /// Also trust the CA certificates in this PEM file for https (a private CDN or test edge); the public
    /// web PKI roots stay trusted.
    #[arg(long, value_name = "FILE.pem", env = "PREWARM_CA_FILE")]
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// The object's path, relative to the listed root (as in a listing).
    #[arg(value_name = "PATH")]
    pub path: String,
    /// Strategy: a built-in name or a `.wasm` path.
    #[arg(long, value_name = "NAME|FILE.wasm")]
    pub plugin: String,
    /// The CDN's base URL.
    #[arg(long, value_name = "URL")]
    pub base_url: String,
    /// A plugin setting (repeatable; `env:VAR`, `file:PATH` as for warm).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub settings: Vec<String>,
    /// Only this derivative (a default's name or NAME=WxH, `:OPTIONS` as for warm; default: all the plugin's
    /// defaults).
    #[arg(long, value_name = "D")]
    pub derivative: Option<String>,
    /// The source's size in bytes (what a listing would say; e.g. 50MiB).
    #[arg(long, value_name = "BYTES")]
    pub size: Option<String>,
    /// Another origin the plugin may reach (repeatable), as for warm.
    #[arg(long = "allow-host", value_name = "HOST[:PORT]")]
    pub allow_hosts: Vec<String>,
    /// Ask again after a warm answer and show the cache state.
    #[arg(long)]
    pub verify: bool,
    #[command(flatten)]
    pub request: RequestArgs,
    /// Warm a source over the plugin's declared limit anyway.
    #[arg(long)]
    pub ignore_limits: bool,
    /// The steps and the record as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to put the demo's files (default: a new directory under the temp dir, kept).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

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
