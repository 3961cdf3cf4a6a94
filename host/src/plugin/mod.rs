//! The plugin runtime: CDN strategies as sandboxed WebAssembly components.
//!
//! [`PluginRuntime`] owns the engine and loads a [`Plugin`] by built-in name
//! or path (checking its WIT version, caching its compilation);
//! [`Plugin::instantiate`] gives each worker its own [`PluginInstance`].
//! `sandbox` holds the limits and imports, `bindings` the generated code,
//! `settings` what the user sets and what of it may be shown.

mod bindings;
mod builtin;
mod cache;
mod error;
mod instance;
mod limiter;
mod runtime;
mod sandbox;
pub mod settings;
mod types;

pub use bindings::WIT_VERSION;
pub use builtin::GUEST_ARTIFACT_DIR;
pub use error::{PluginError, TrapKind};
pub use instance::PluginInstance;
pub use runtime::{Plugin, PluginRuntime, RuntimeOptions};
pub use sandbox::Limits;
pub use settings::Setting;
pub use types::*;
