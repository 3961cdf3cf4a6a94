//! prewarm pre-warms CDN caches for video derivatives.
//!
//! The pipeline: `listing` streams objects from rclone or a saved listing
//! and filters them; `plugin` turns each (object, derivative) into the
//! request that warms it and reads the CDN's answers; `warm` runs them on
//! `--threads` engine threads, each a current-thread runtime with one plugin
//! instance and one HTTP client shared by all its pairs in flight; `record`
//! writes one results line per pair; `stats` and `report` summarise the run.
//! `checkpoint` uploads a long warm's results so far and fetches them
//! back for `--resume`. `media` is the video half (ffmpeg, hardware
//! encoders, optimize, validate). `config` layers the config file and `PREWARM_*` variables
//! under the flags; `commands` holds one file per subcommand; `util` the
//! small helpers that are no stage.

pub mod checkpoint;
pub mod cli;
pub mod commands;
pub mod config;
pub mod derivatives;
pub mod listing;
pub mod media;
pub mod overview;
pub mod plugin;
pub mod rclone;
pub mod rclone_serve;
pub mod record;
pub mod report;
pub mod stats;
pub mod upload;
pub mod util;
pub mod verification;
pub mod warm;

use std::process::ExitCode;

/// How a run ended, as the exit code users' scripts read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything warm.
    Success = 0,
    /// Anything else (I/O, internal errors).
    Other = 1,
    /// Usage or input error.
    Usage = 2,
    /// The run finished but some pairs failed.
    SomeFailed = 3,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

/// An error in what the user gave (flags, files, plugin settings): exit 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Shorthand for a usage error.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

/// The exit code for an error that ended the run.
pub fn exit_code_for(err: &anyhow::Error) -> Exit {
    if err.chain().any(|e| {
        e.is::<UsageError>()
            || e.is::<plugin::PluginError>()
            || e.downcast_ref::<listing::ListingError>().is_some_and(listing::ListingError::is_usage)
            || e.downcast_ref::<rclone::RcloneError>().is_some_and(rclone::RcloneError::is_usage)
            || e.is::<config::ConfigError>()
            || e.downcast_ref::<media::MediaError>()
                .is_some_and(|m| matches!(m, media::MediaError::NotFound { .. } | media::MediaError::TooOld { .. }))
    }) {
        Exit::Usage
    } else {
        Exit::Other
    }
}

/// Whether the run ended because its reader closed stdout
/// (`prewarm list --json | head -1`): not an error worth a message.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || e.downcast_ref::<serde_json::Error>()
                .is_some_and(|j| j.io_error_kind() == Some(std::io::ErrorKind::BrokenPipe))
    })
}

/// End the way Unix tools end when their reader goes away: killed by
/// SIGPIPE, quietly (a shell shows 141). Rust ignores SIGPIPE so that
/// writes fail instead; it is restored only here, at the very end.
pub fn exit_for_broken_pipe() -> ExitCode {
    #[cfg(unix)]
    // SAFETY: restoring a signal's default disposition and raising it
    // touches no memory; nothing runs after the signal.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::raise(libc::SIGPIPE);
    }
    ExitCode::from(141)
}

/// Run one command line.
pub fn run(cli: cli::Cli) -> anyhow::Result<Exit> {
    match cli.command {
        cli::Command::Plugins(args) => commands::plugins::run(args),
        cli::Command::List(args) => commands::list::run(*args),
        cli::Command::Warm(args) => commands::warm::run(*args),
        cli::Command::Demo(args) => commands::demo::run(args),
        cli::Command::Probe(args) => commands::probe::run(*args),
        cli::Command::Report(args) => commands::report::run(args),
        cli::Command::Completions { shell } => commands::completions::run(shell),
        cli::Command::Man { dir } => commands::man::run(dir.as_deref()),
        cli::Command::Hw(args) => commands::hw::run(args),
        cli::Command::Optimize(args) => commands::optimize::run(*args),
        cli::Command::Validate(args) => commands::validate::run(*args),
        cli::Command::Config(args) => commands::config::run(args),
    }
}
