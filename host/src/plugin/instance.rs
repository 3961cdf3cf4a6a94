//! One plugin instance (its own store): the calls a worker makes, each under
//! a fuel budget and a deadline. A trap fails that call only; the instance is
//! then rebuilt from the pre-instantiated component and re-configured before
//! the next call.

use std::sync::Arc;

use wasmtime::Store;

use super::bindings::{self, guest};
use super::error::{PluginError, TrapKind};
use super::runtime::PluginShared;
use super::sandbox::{EPOCH_TICK, Limits, StoreState};
use super::types::{Derivative, ObjectRef, ResponseMeta, SizeMethod, Verdict, WarmRequest};

pub struct PluginInstance {
    shared: Arc<PluginShared>,
    store: Store<StoreState>,
    bindings: bindings::Plugin,
    /// The last accepted configuration, replayed after a rebuild.
    config: Option<(String, Vec<(String, String)>)>,
    /// Set after a trap: the instance must not be entered again.
    poisoned: bool,
    /// The headers `classify` reads (empty: all), asked after `configure`.
    wanted_headers: Vec<String>,
}

impl PluginInstance {
    pub(crate) fn new(shared: Arc<PluginShared>) -> Result<Self, PluginError> {
        let (store, bindings) = Self::fresh(&shared)?;
        Ok(PluginInstance { shared, store, bindings, config: None, poisoned: false, wanted_headers: Vec::new() })
    }

    fn fresh(shared: &PluginShared) -> Result<(Store<StoreState>, bindings::Plugin), PluginError> {
        let mut store = Store::new(&shared.engine, StoreState::new(shared.name.clone(), &shared.limits));
        store.limiter(|s| &mut s.limits);
        // Instantiation runs guest start code: same budget as a call.
        let bindings =
            Self::guarded(&mut store, &shared.limits, &shared.name, &shared.info.version, "instantiate", |s| {
                shared.pre.instantiate(s)
            })?;
        Ok((store, bindings))
    }

    /// The response headers `classify` reads (lowercase; empty: all).
    pub fn wanted_headers(&self) -> &[String] {
        &self.wanted_headers
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Run one guest call with a fresh fuel budget and deadline; turn a trap
    /// into a typed error.
    pub(crate) fn guarded<R>(
        store: &mut Store<StoreState>,
        limits: &Limits,
        plugin: &str,
        version: &str,
        call: &'static str,
        f: impl FnOnce(&mut Store<StoreState>) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        store.set_fuel(limits.fuel_per_call).ok();
        store.set_epoch_deadline(deadline_ticks(limits));
        f(store).map_err(|e| match store.data_mut().panic_message.take() {
            Some(message) => {
                PluginError::Panicked { plugin: plugin.to_string(), version: version.to_string(), call, message }
            }
            None => PluginError::Trap {
                plugin: plugin.to_string(),
                version: version.to_string(),
                call,
                kind: trap_kind(&e),
            },
        })
    }

    fn call<R>(
        &mut self,
        call: &'static str,
        f: impl FnOnce(&guest::Guest, &mut Store<StoreState>) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        if self.poisoned {
            self.rebuild()?;
        }
        let shared = &self.shared;
        let strategy = self.bindings.prewarm_strategy_strategy();
        let result = Self::guarded(&mut self.store, &shared.limits, &shared.name, &shared.info.version, call, |s| {
            f(strategy, s)
        });
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }

    /// Replace the poisoned instance and replay the configuration.
    fn rebuild(&mut self) -> Result<(), PluginError> {
        let (store, bindings) = Self::fresh(&self.shared)?;
        self.store = store;
        self.bindings = bindings;
        self.poisoned = false;
        if let Some((base, settings)) = self.config.clone() {
            self.configure(&base, &settings)?;
        }
        Ok(())
    }

    /// Validate and apply settings; a refusal names the plugin.
    pub fn configure(&mut self, base_url: &str, settings: &[(String, String)]) -> Result<(), PluginError> {
        let base = base_url.trim_end_matches('/').to_string();
        let result = self.call("configure", |g, s| g.call_configure(s, &base, settings))?;
        result.map_err(|message| PluginError::Refused {
            plugin: self.shared.name.to_string(),
            message: bindings::one_line(&message),
        })?;
        self.config = Some((base, settings.to_vec()));
        let mut wanted = self.call("response-headers", |g, s| g.call_response_headers(s))?;
        wanted.truncate(256);
        wanted.iter_mut().for_each(|h| h.make_ascii_lowercase());
        self.wanted_headers = wanted;
        Ok(())
    }

    /// The request that warms `derivative` of `object`.
    pub fn warm_request(&mut self, object: ObjectRef<'_>, derivative: &Derivative) -> Result<WarmRequest, PluginError> {
        let (o, d) = (object.into(), derivative.into());
        let result = self.call("warm-request", |g, s| g.call_warm_request(s, &o, &d))?;
        let name = &self.shared.name;
        let request = result.map_err(|message| PluginError::Refused {
            plugin: name.to_string(),
            message: bindings::one_line(&message),
        })?;
        bindings::request(name, request)
    }

    /// The size methods for `derivative`, most preferred first.
    pub fn size_methods(&mut self, derivative: &Derivative) -> Result<Vec<SizeMethod>, PluginError> {
        let d = derivative.into();
        let methods = self.call("size-methods", |g, s| g.call_size_methods(s, &d))?;
        let mut out: Vec<SizeMethod> = Vec::with_capacity(4);
        for m in methods.into_iter().map(SizeMethod::from) {
            if !out.contains(&m) {
                out.push(m);
            }
        }
        Ok(out)
    }

    /// Read one answer.
    pub fn classify(
        &mut self,
        object: ObjectRef<'_>,
        derivative: &Derivative,
        response: &ResponseMeta,
    ) -> Result<Verdict, PluginError> {
        let (o, d) = (object.into(), derivative.into());
        let r = bindings::response_meta(response, &self.wanted_headers);
        let verdict = self.call("classify", |g, s| g.call_classify(s, &o, &d, &r))?;
        bindings::verdict(&self.shared.name, verdict)
    }
}

fn deadline_ticks(limits: &Limits) -> u64 {
    (limits.call_deadline.as_micros() / EPOCH_TICK.as_micros()).max(1) as u64 + 1
}

fn trap_kind(e: &wasmtime::Error) -> TrapKind {
    match e.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::OutOfFuel) => return TrapKind::OutOfFuel,
        Some(wasmtime::Trap::Interrupt) => return TrapKind::Deadline,
        _ => {}
    }
    let text = format!("{e:#}");
    if text.contains("forcing trap when growing memory") || text.contains("memory limit") {
        return TrapKind::MemoryLimit;
    }
    if text.contains("table limit") {
        return TrapKind::TableLimit;
    }
    TrapKind::Other(bindings::one_line(text.lines().next().unwrap_or("unknown trap")))
}
