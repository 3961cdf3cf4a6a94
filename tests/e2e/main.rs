//! prewarm's end-to-end suites, one test binary: settings layered from a
//! config file, the environment and flags; the first-party plugins
//! and the sandbox through the real runtime, listing through real rclone,
//! warming through a real nginx cache, the transport against real servers
//! where they differ (lighttpd and nginx over HTTP/2, stock Varnish), a DNS
//! answer that changes mid-run,
//! faults through a scripted server,
//! the vendors' documented answers through a loopback server, kill and
//! resume, bad input through the real binary, what an operator should
//! never be surprised by, the video half (`hw`, `optimize`) with real
//! ffmpeg and rclone, and validation of sources and derivatives through
//! real ffprobe/ffmpeg; trust at prewarm's own edges (rclone children,
//! rclone secrets, `--resume`, the compiled-plugin cache, table and memory
//! limits, durations); long runs (checkpoints, live metrics, JSON logs,
//! incremental and bounded runs, zstd results) against a slow nginx.

mod answers;
mod bad_input;
mod completions_man;
mod config;
mod connect_to;
mod demo;
mod deploy;
mod dns;
mod edges;
mod egress;
mod faults;
mod listing;
mod media;
mod no_surprises;
mod plugins;
mod real_video;
mod reports;
mod resume;
mod sandbox;
mod scale;
mod servers;
mod trust;
mod trust_host;
mod validate;
mod vendors;
mod warm_cache;
