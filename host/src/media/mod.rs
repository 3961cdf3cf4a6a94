//! The video half of prewarm: finding and running ffmpeg and ffprobe
//! ([`ffmpeg`]), the one reading of ffprobe's answer ([`probe`]) shared by
//! everything below, which encoders really work here ([`hw`], cached by
//! [`hw_cache`]); `prewarm optimize`: the output container ([`container`]),
//! what an encode does to a source ([`recipe`]) and how it is asked
//! ([`encode`]), the output's checks ([`verify`]), the scratch space and
//! temporary objects a later run sweeps ([`scratch`]), putting the output
//! in place ([`publish`]) and one source end to end ([`optimize`]);
//! `prewarm validate`: reading a media object by URL without downloading
//! it whole ([`facts`], [`boxes`]) through prewarm's loopback relay
//! ([`relay`]), what a viewer gets ([`viewer`]) and the
//! judgement ([`validate`], reported by [`validate_report`]).

pub mod boxes;
pub mod container;
pub mod encode;
pub mod facts;
pub mod ffmpeg;
pub mod hw;
pub mod hw_cache;
pub mod optimize;
pub mod probe;
pub mod publish;
pub mod recipe;
pub mod relay;
pub mod scratch;
pub mod validate;
pub mod validate_report;
pub mod verify;
pub mod viewer;

pub use ffmpeg::{MediaError, Output, Tools, run};
