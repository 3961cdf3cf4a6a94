//! The video half of prewarm: finding and running ffmpeg and ffprobe
//! ([`ffmpeg`]); reading a media object by URL without downloading it
//! ([`facts`]) and judging it for `prewarm validate` ([`validate`], reported
//! by [`validate_report`]).

pub mod facts;
pub mod ffmpeg;
pub mod validate;
pub mod validate_report;

pub use ffmpeg::{MediaError, Output, Tools, run};
