//! The small helpers that are no pipeline stage: atomic file writes, secret
//! redaction, human sizes, peak memory, the open-files limit, logging, plain or
//! zstd JSON-lines files, and the loopback lab the demo and the tests share.

pub mod atomic_file;
pub mod lab;
pub mod logging;
pub mod memory;
pub mod nofile;
pub mod redact;
pub mod size;
pub mod zstd_lines;
