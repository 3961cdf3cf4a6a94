//! One file per subcommand; each resolves its arguments and runs.

pub mod completions;
pub mod config;
pub mod demo;
pub mod hw;
pub mod list;
pub mod man;
pub mod optimize;
mod optimize_places;
pub mod plugin_new;
pub mod plugins;
pub mod probe;
pub mod report;
pub mod validate;
pub mod warm;
