//! The arguments of `warm` and `probe`: what to warm and how (requests,
//! routes to edges, long-run features), shared by the two where they mean
//! the same.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::{RenderTargets, SourceArgs};

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
