//! prewarm's end-to-end suites, one test binary: the first-party plugins
//! and the sandbox through the real runtime, listing through real rclone,
//! warming through a real nginx cache, faults through a scripted server,
//! kill and resume, bad input through the real binary, and the video half
//! (`hw`, `optimize`) with real ffmpeg and rclone.

mod answers;
mod bad_input;
mod demo;
mod faults;
mod listing;
mod media;
mod plugins;
mod reports;
mod resume;
mod sandbox;
mod trust;
mod warm_cache;
