//! One file per subcommand; each resolves its arguments and runs.

pub mod demo;
pub mod hw;
pub mod list;
pub mod optimize;
pub mod plugin_new;
pub mod plugins;
pub mod probe;
pub mod report;
pub mod warm;
