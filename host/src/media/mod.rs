//! The video half of prewarm: finding and running ffmpeg and ffprobe
//! ([`ffmpeg`]), what a file holds and whether an output is right
//! ([`probe`]), which encoders really work here ([`hw`], cached by
//! [`hw_cache`]), how an encode is asked ([`encode`]) and one source
//! through `prewarm optimize` ([`optimize`]); reading a media object by URL
//! without downloading it ([`facts`]), through prewarm's loopback relay
//! ([`relay`]), and judging it for `prewarm validate` ([`validate`],
//! reported by [`validate_report`]).

pub mod encode;
pub mod facts;
pub mod ffmpeg;
pub mod hw;
pub mod hw_cache;
pub mod optimize;
pub mod probe;
pub mod relay;
pub mod validate;
pub mod validate_report;

pub use ffmpeg::{MediaError, Output, Tools, run};
