//! The sandbox a plugin runs in: engine settings, per-call fuel and
//! deadline, the memory and table caps ([`super::limiter`]), and the
//! imports a plugin is given.
//!
//! Plugins get no capabilities. Rust's wasm32-wasip2 standard library links
//! a few WASI interfaces; the harmless ones are answered here (an empty
//! environment, deterministic randomness for hash maps) and every other
//! import, files, sockets, clocks, stdio included, is a function that traps.
//! No WASI implementation is linked at all, so there is nothing to grant by
//! mistake.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine};

use super::limiter::PluginLimiter;

/// Resource limits for every plugin call and instance.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Fuel (roughly, wasm instructions) one call may use.
    pub fuel_per_call: u64,
    /// Wall-clock backstop for one call.
    pub call_deadline: Duration,
    /// Cap on an instance's linear memory, in bytes: all its memories
    /// together ([`super::limiter`], which also caps tables and instances).
    pub memory_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { fuel_per_call: 50_000_000, call_deadline: Duration::from_secs(1), memory_bytes: 32 << 20 }
    }
}

/// How often the epoch advances; deadlines are counted in these ticks.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(5);

/// The engine every plugin shares.
pub(crate) fn engine() -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.consume_fuel(true);
    config.epoch_interruption(true);
    // Plugins are synchronous; the async machinery only slows calls down.
    config.concurrency_support(false);
    config.max_wasm_stack(512 * 1024);
    Engine::new(&config)
}

/// Advances the engine's epoch from a background thread until dropped.
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    pub(crate) fn start(engine: &Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (engine, flag) = (engine.clone(), stop.clone());
        std::thread::Builder::new()
            .name("prewarm-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .expect("spawn epoch thread");
        EpochTicker { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// What each plugin store holds.
pub(crate) struct StoreState {
    pub(crate) limits: PluginLimiter,
    pub(crate) plugin: Arc<str>,
    /// Log lines this instance may still send.
    pub(crate) log_budget: u32,
    /// The message of the panic under way, sent by the SDK's panic hook
    /// just before the trap; taken when the trap is reported.
    pub(crate) panic_message: Option<String>,
}

impl StoreState {
    pub(crate) fn new(plugin: Arc<str>, limits: &Limits) -> Self {
        StoreState { limits: PluginLimiter::new(limits.memory_bytes), plugin, log_budget: 10_000, panic_message: None }
    }
}

impl super::bindings::prewarm::strategy::types::Host for StoreState {}

impl super::bindings::prewarm::strategy::log::Host for StoreState {
    fn log(&mut self, level: super::bindings::prewarm::strategy::log::Level, message: String) {
        use super::bindings::prewarm::strategy::log::Level;
        if matches!(level, Level::Error) && message.starts_with(PANIC_PREFIX) {
            let text = crate::util::redact::redact_text(&super::bindings::one_line(&message[PANIC_PREFIX.len()..]));
            self.panic_message = Some(truncate(&text, MAX_PANIC_MESSAGE));
        }
        if self.log_budget == 0 {
            return;
        }
        self.log_budget -= 1;
        let message = crate::util::redact::redact_text(&super::bindings::one_line(&message));
        let plugin = &*self.plugin;
        match level {
            Level::Trace => tracing::trace!(target: "prewarm::plugin", plugin, "{message}"),
            Level::Debug => tracing::debug!(target: "prewarm::plugin", plugin, "{message}"),
            Level::Info => tracing::info!(target: "prewarm::plugin", plugin, "{message}"),
            Level::Warn => tracing::warn!(target: "prewarm::plugin", plugin, "{message}"),
            Level::Error => tracing::error!(target: "prewarm::plugin", plugin, "{message}"),
        }
        if self.log_budget == 0 {
            tracing::warn!(target: "prewarm::plugin", plugin, "log limit reached; further plugin logs dropped");
        }
    }
}

/// How the SDK's panic hook marks its log line (plugins/sdk `panic_hook`).
const PANIC_PREFIX: &str = "panicked: ";
/// The most of a panic message kept.
const MAX_PANIC_MESSAGE: usize = 1024;

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The linker for one component: the contract's imports, the harmless
/// WASI answers for the versions this component asks for, traps for the
/// rest.
pub(crate) fn linker(engine: &Engine, component: &Component) -> wasmtime::Result<Linker<StoreState>> {
    let mut linker = Linker::new(engine);
    super::bindings::Plugin::add_to_linker::<_, wasmtime::component::HasSelf<_>>(&mut linker, |s| s)?;
    let imports: Vec<String> = component.component_type().imports(engine).map(|(name, _)| name.to_string()).collect();
    for name in &imports {
        let interface = name.split('@').next().unwrap_or(name);
        match interface {
            "wasi:cli/environment" => {
                let mut i = linker.instance(name)?;
                i.func_wrap("get-environment", |_, (): ()| Ok((Vec::<(String, String)>::new(),)))?;
                i.func_wrap("get-arguments", |_, (): ()| Ok((Vec::<String>::new(),)))?;
                i.func_wrap("initial-cwd", |_, (): ()| Ok((None::<String>,)))?;
            }
            "wasi:cli/exit" => {
                let mut i = linker.instance(name)?;
                i.func_wrap("exit", |_, (_status,): (Result<(), ()>,)| -> wasmtime::Result<()> {
                    wasmtime::bail!("plugin called exit")
                })?;
            }
            "wasi:random/insecure-seed" => {
                let mut i = linker.instance(name)?;
                i.func_wrap("insecure-seed", |_, (): ()| Ok(((0x5eed_u64, 0x9e37_79b9_u64),)))?;
            }
            "wasi:random/random" | "wasi:random/insecure" => {
                // Deterministic bytes: plugins are pure functions and must
                // not behave differently run to run.
                let mut i = linker.instance(name)?;
                let (bytes_fn, u64_fn) = if interface == "wasi:random/random" {
                    ("get-random-bytes", "get-random-u64")
                } else {
                    ("get-insecure-random-bytes", "get-insecure-random-u64")
                };
                i.func_wrap(bytes_fn, deterministic_bytes)?;
                i.func_wrap(u64_fn, |_, (): ()| Ok((0x2545_f491_4f6c_dd1d_u64,)))?;
            }
            _ => {}
        }
    }
    linker.define_unknown_imports_as_traps(component)?;
    Ok(linker)
}

fn deterministic_bytes(_: wasmtime::StoreContextMut<'_, StoreState>, (len,): (u64,)) -> wasmtime::Result<(Vec<u8>,)> {
    let len = usize::try_from(len.min(4096)).unwrap_or(4096);
    Ok(((0..len).map(|n| (n as u8).wrapping_mul(167).wrapping_add(13)).collect(),))
}
