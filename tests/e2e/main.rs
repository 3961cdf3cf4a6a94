//! prewarm's end-to-end suites, one test binary: the first-party plugins
//! and the sandbox through the real runtime, listing through real rclone,
//! warming through a real nginx cache, faults through a scripted server,
//! the vendors' documented answers through a loopback server, kill and
//! resume, and bad input through the real binary.

mod answers;
mod bad_input;
mod demo;
mod faults;
mod listing;
mod plugins;
mod reports;
mod resume;
mod sandbox;
mod trust;
mod vendors;
mod warm_cache;
