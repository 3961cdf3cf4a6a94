//! The command line of `prewarm config show`: its own flags, then the
//! shown command's flags, passed through untouched.

use clap::{Args, Subcommand, ValueEnum};

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub command: ConfigCommand,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print each value a command would run with and where it came from
    /// (`flag`, `env PREWARM_X`, `file PATH:LINE`, `default`), secrets redacted.
    ///
    /// Takes the command's own flags after its own, as the command would
    /// (`--config FILE` among them); nothing is checked beyond their syntax.
    Show(ConfigShowArgs),
}

/// The command whose configuration `config show` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConfigTarget {
    Warm,
    List,
    Validate,
    Optimize,
}

#[derive(Debug, Args)]
pub struct ConfigShowArgs {
    /// JSON: `{"command", "config_file", "options": {FLAG: {"value", "source", ...}}, "settings": {...}}`.
    #[arg(long)]
    pub json: bool,
    /// Whose configuration to show.
    #[arg(long, value_enum, default_value_t = ConfigTarget::Warm)]
    pub command: ConfigTarget,
    /// The command's flags, as it would be given them (e.g. --config prewarm.toml --concurrency 8).
    #[arg(value_name = "FLAGS", trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<std::ffi::OsString>,
}
