//! Plugin errors, in two layers kept apart: the sandbox failed (a trap, a
//! limit, a bad load) versus the strategy said no (its own `result` error).
//! Every error names the plugin.

use std::fmt;

/// Why a plugin call was stopped by the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrapKind {
    /// The call used up its fuel budget (an endless or very long loop).
    OutOfFuel,
    /// The call ran past its wall-clock deadline.
    Deadline,
    /// The plugin tried to grow its memory past the cap.
    MemoryLimit,
    /// The plugin tried to grow its tables past the cap.
    TableLimit,
    /// Any other trap (a panic, an `unreachable`, a denied import...).
    Other(String),
}

impl fmt::Display for TrapKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrapKind::OutOfFuel => f.write_str("ran out of fuel (endless loop?)"),
            TrapKind::Deadline => f.write_str("ran past its time limit"),
            TrapKind::MemoryLimit => f.write_str("exceeded its memory limit"),
            TrapKind::TableLimit => f.write_str("exceeded its table limit"),
            TrapKind::Other(m) => write!(f, "trapped: {m}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// No built-in plugin has this name and no file has this path.
    #[error("unknown plugin `{spec}`: not a built-in ({builtins}) and no such file")]
    Unknown { spec: String, builtins: String },

    /// The file could not be read or compiled as a component.
    #[error("plugin `{plugin}` could not be loaded: {message}")]
    Load { plugin: String, message: String },

    /// Built against another version of the WIT contract.
    #[error(
        "plugin `{plugin}` was built against prewarm:strategy@{found}, but this prewarm speaks \
         prewarm:strategy@{expected}; rebuild the plugin against wit/ of this prewarm"
    )]
    VersionMismatch { plugin: String, found: String, expected: String },

    /// The sandbox stopped a call.
    #[error("plugin `{plugin}` {version}: `{call}` {kind}")]
    Trap { plugin: String, version: String, call: &'static str, kind: TrapKind },

    /// The plugin panicked; its own message (first KiB), as the SDK's panic
    /// hook sent it.
    #[error("plugin `{plugin}` {version} panicked in {call}: {message}")]
    Panicked { plugin: String, version: String, call: &'static str, message: String },

    /// The strategy refused (its own error result).
    #[error("plugin `{plugin}`: {message}")]
    Refused { plugin: String, message: String },

    /// The plugin returned something the host will not use.
    #[error("plugin `{plugin}` {message}")]
    BadOutput { plugin: String, message: String },
}

impl PluginError {
    /// The `error_kind` recorded for a pair this error failed.
    pub fn kind(&self) -> &'static str {
        match self {
            PluginError::Refused { .. } => "plan",
            _ => "plugin",
        }
    }
}
