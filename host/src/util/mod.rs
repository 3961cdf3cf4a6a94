//! The small helpers that are no pipeline stage: atomic file writes, child
//! processes that die with prewarm, secret redaction (rclone's connection
//! strings and flags included, and secrets hidden in our own command line),
//! human sizes, peak memory, the open-files limit, logging, plain or zstd
//! JSON-lines files, and the loopback lab the demo and the tests share.

pub mod argv;
pub mod atomic_file;
pub mod child;
pub mod lab;
pub mod logging;
pub mod memory;
pub mod nofile;
pub mod rclone_secrets;
pub mod redact;
pub mod size;
pub mod zstd_lines;
