//! Logging through `tracing` to stderr: `-v` for info, `-vv` for debug,
//! `RUST_LOG` for anything finer.

use tracing_subscriber::EnvFilter;

pub fn init(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| crate::redact::ScrubbedStderr)
        .with_target(false)
        .try_init();
}
