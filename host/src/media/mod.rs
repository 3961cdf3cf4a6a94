//! The video half of prewarm: finding and running ffmpeg and ffprobe
//! ([`ffmpeg`]).

pub mod ffmpeg;

pub use ffmpeg::{MediaError, Output, Tools, run};
