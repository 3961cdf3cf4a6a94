//! The small helpers that are no pipeline stage: atomic file writes, secret
//! redaction (and secrets hidden in our own command line), human sizes, peak memory, the open-files limit, logging, and
//! the loopback lab the demo and the tests share.

pub mod argv;
pub mod atomic_file;
pub mod lab;
pub mod logging;
pub mod memory;
pub mod nofile;
pub mod redact;
pub mod size;
