//! Where a command's values come from: flags win over `PREWARM_*`
//! environment variables, which win over the config file, which wins over
//! the defaults. clap gives the first, second and last layers (its `env`
//! and its value sources); `layers` adds the file's values as if typed,
//! for exactly the flags neither the command line nor the environment set,
//! and remembers each one's origin for `prewarm config show`.

mod file;
mod layers;

use std::ffi::OsString;
use std::path::PathBuf;

pub use file::COMMANDS;
pub use layers::{Layered, SETTING_PREFIX, env_name, expects_number, resolve, with_environment};

/// A config file that cannot be used: exit 2, printed as `config error: …`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path} line {line}: {message}")]
    At { path: String, line: usize, message: String },
    #[error("{path}: cannot read the config file ({reason})")]
    Unreadable { path: String, reason: String },
    /// A `PREWARM_*` variable with a value its flag does not take.
    #[error("{var}: {message}")]
    Env { var: String, message: String },
}

/// Why a command line could not be turned into a run.
#[derive(Debug)]
pub enum ParseError {
    /// Usage errors, `--help` and `--version`: clap prints and exits.
    Clap(clap::Error),
    Config(ConfigError),
}

impl From<clap::Error> for ParseError {
    fn from(e: clap::Error) -> Self {
        ParseError::Clap(e)
    }
}

impl From<ConfigError> for ParseError {
    fn from(e: ConfigError) -> Self {
        ParseError::Config(e)
    }
}

/// Where one value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Flag,
    Env(String),
    File { path: PathBuf, line: usize },
    Default,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Flag => f.write_str("flag"),
            Origin::Env(var) => write!(f, "env {var}"),
            Origin::File { path, line } => write!(f, "file {}:{line}", path.display()),
            Origin::Default => f.write_str("default"),
        }
    }
}

impl Origin {
    /// `{"source": …}` plus where: the variable, or the file and line.
    pub fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        let source = match self {
            Origin::Flag => "flag",
            Origin::Env(var) => {
                m.insert("env".into(), var.clone().into());
                "env"
            }
            Origin::File { path, line } => {
                m.insert("file".into(), path.display().to_string().into());
                m.insert("line".into(), (*line).into());
                "file"
            }
            Origin::Default => "default",
        };
        m.insert("source".into(), source.into());
        m
    }
}

/// Register the secrets in rclone connection strings and flags
/// (`--source`, `--upload`, `--dest`, `--root`, `--rclone-flag`), from whichever
/// layer they came, before anything can show them.
fn register_rclone_secrets(sub: &clap::ArgMatches) {
    use crate::util::rclone_secrets::{redact_flags, redact_remote};
    let raw = |id: &str| -> Vec<String> {
        sub.try_get_raw(id)
            .ok()
            .flatten()
            .map(|v| v.map(|s| s.to_string_lossy().into_owned()).collect())
            .unwrap_or_default()
    };
    for id in ["source", "upload", "dest", "root"] {
        raw(id).iter().for_each(|r| drop(redact_remote(r)));
    }
    redact_flags(&raw("rclone_flags"));
}

/// The command line of this process, with the environment and the config
/// file layered under it, and where the values came from.
pub fn parse_cli(argv: impl IntoIterator<Item = OsString>) -> Result<(crate::cli::Cli, Layered), ParseError> {
    let argv: Vec<OsString> = argv.into_iter().collect();
    let layered = resolve(&crate::cli::command(), &argv, false)?;
    let cli = <crate::cli::Cli as clap::FromArgMatches>::from_arg_matches(&layered.matches)?;
    Ok((cli, layered))
}
