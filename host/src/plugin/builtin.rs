//! The first-party plugins, compiled from `plugins/` by `build.rs` and
//! embedded in the binary.

include!(concat!(env!("OUT_DIR"), "/builtin_plugins.rs"));
