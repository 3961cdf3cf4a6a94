//! Loading plugins: built-in names or `.wasm` paths, the WIT version check,
//! and compiling them, through the on-disk cache of compiled components
//! ([`super::cache`]: private, each entry bound to its wasm and engine).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use wasmtime::component::{Component, types::ComponentItem};
use wasmtime::{Engine, Store};

use super::bindings::{self, PluginPre, STRATEGY_EXPORT, WIT_VERSION};
use super::builtin::BUILTIN_PLUGINS;
use super::cache::ComponentCache;
use super::error::PluginError;
use super::instance::PluginInstance;
use super::sandbox::{self, EpochTicker, Limits, StoreState};
use super::types::PluginInfo;

/// Options for the plugin runtime.
#[derive(Debug, Clone, Default)]
pub struct RuntimeOptions {
    /// Sandbox limits for every call and instance.
    pub limits: Limits,
    /// Where compiled components are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
}

impl RuntimeOptions {
    /// The default cache location: `$PREWARM_CACHE_DIR/components`, else the
    /// user's cache dir.
    pub fn default_cache_dir() -> Option<PathBuf> {
        std::env::var_os("PREWARM_CACHE_DIR")
            .map(PathBuf::from)
            .or_else(|| dirs::cache_dir().map(|d| d.join("prewarm")))
            .map(|d| d.join("components"))
    }
}

/// Shared engine and settings; loads plugins.
pub struct PluginRuntime {
    engine: Engine,
    options: RuntimeOptions,
    /// `None` without a cache directory, or when it cannot be trusted.
    cache: Option<ComponentCache>,
    _ticker: EpochTicker,
}

/// A loaded, checked plugin, ready to be instantiated once per worker.
#[derive(Clone)]
pub struct Plugin {
    pub(crate) inner: Arc<PluginShared>,
}

pub(crate) struct PluginShared {
    pub(crate) engine: Engine,
    pub(crate) pre: PluginPre<StoreState>,
    pub(crate) info: PluginInfo,
    pub(crate) name: Arc<str>,
    pub(crate) limits: Limits,
}

impl PluginRuntime {
    pub fn new(options: RuntimeOptions) -> Result<Self, PluginError> {
        let engine = sandbox::engine()
            .map_err(|e| PluginError::Load { plugin: "(engine)".into(), message: format!("{e:#}") })?;
        let ticker = EpochTicker::start(&engine);
        let cache = options.cache_dir.as_deref().and_then(|dir| {
            ComponentCache::open(dir, &engine)
                .inspect_err(|why| {
                    tracing::warn!("not using the compiled-plugin cache ({why}); compiling plugins in memory")
                })
                .ok()
        });
        Ok(PluginRuntime { engine, options, cache, _ticker: ticker })
    }

    /// Names of the built-in plugins.
    pub fn builtin_names() -> impl Iterator<Item = &'static str> {
        BUILTIN_PLUGINS.iter().map(|(name, _)| *name)
    }

    /// Load a built-in by name, or a component file by path.
    pub fn load(&self, spec: &str) -> Result<Plugin, PluginError> {
        if let Some((name, bytes)) = BUILTIN_PLUGINS.iter().find(|(name, _)| *name == spec) {
            return self.load_bytes(name, bytes);
        }
        let path = Path::new(spec);
        if path.is_file() {
            let bytes = std::fs::read(path).map_err(|e| PluginError::Load {
                plugin: spec.to_string(),
                message: format!("cannot read {}: {e}", path.display()),
            })?;
            return self.load_bytes(spec, &bytes);
        }
        Err(PluginError::Unknown {
            spec: spec.to_string(),
            builtins: Self::builtin_names().collect::<Vec<_>>().join(", "),
        })
    }

    /// Load a component from bytes (`label` names it in errors).
    pub fn load_bytes(&self, label: &str, bytes: &[u8]) -> Result<Plugin, PluginError> {
        let load_err = |message: String| PluginError::Load { plugin: label.to_string(), message };
        let component = self.compile(bytes).map_err(|e| load_err(format!("not a valid component: {e:#}")))?;
        let wit_version = check_version(&self.engine, &component, label)?;
        let linker = sandbox::linker(&self.engine, &component).map_err(|e| load_err(format!("{e:#}")))?;
        let pre = linker
            .instantiate_pre(&component)
            .and_then(PluginPre::new)
            .map_err(|e| load_err(format!("does not match the prewarm:strategy world: {e:#}")))?;
        // Ask `info` once, in a throwaway instance, under the same limits.
        let name: Arc<str> = Arc::from(label);
        let mut store = Store::new(&self.engine, StoreState::new(name, &self.options.limits));
        store.limiter(|s| &mut s.limits);
        let raw = PluginInstance::guarded(&mut store, &self.options.limits, label, "?", "info", |store| {
            let plugin = pre.instantiate(&mut *store)?;
            plugin.prewarm_strategy_strategy().call_info(store)
        })?;
        let info = bindings::info(raw, wit_version);
        Ok(Plugin {
            inner: Arc::new(PluginShared {
                engine: self.engine.clone(),
                pre,
                name: Arc::from(info.name.as_str()),
                info,
                limits: self.options.limits,
            }),
        })
    }

    /// Compile, or reuse the cached compilation of, a component.
    fn compile(&self, bytes: &[u8]) -> wasmtime::Result<Component> {
        let Some(cache) = &self.cache else {
            return Component::new(&self.engine, bytes);
        };
        if let Some(component) = cache.load(&self.engine, bytes) {
            return Ok(component);
        }
        let compiled = self.engine.precompile_component(bytes)?;
        // SAFETY: the bytes were produced just now by this engine.
        let component = unsafe { Component::deserialize(&self.engine, &compiled)? };
        cache.store(bytes, &compiled);
        Ok(component)
    }
}

/// Find the strategy export and check its WIT version is one this host
/// speaks: the same major, or for 0.x the same minor.
fn check_version(engine: &Engine, component: &Component, label: &str) -> Result<String, PluginError> {
    let ty = component.component_type();
    let exports: Vec<String> = ty
        .exports(engine)
        .filter(|(_, item)| matches!(item.ty, ComponentItem::ComponentInstance(_)))
        .map(|(name, _)| name.to_string())
        .collect();
    let Some(found) = exports.iter().find_map(|e| e.strip_prefix(STRATEGY_EXPORT).and_then(|v| v.strip_prefix('@')))
    else {
        return Err(PluginError::Load {
            plugin: label.to_string(),
            message: format!(
                "not a prewarm strategy: it exports no `{STRATEGY_EXPORT}` (exports: {})",
                if exports.is_empty() { "none".to_string() } else { exports.join(", ") }
            ),
        });
    };
    if !compatible(found, WIT_VERSION) {
        return Err(PluginError::VersionMismatch {
            plugin: label.to_string(),
            found: found.to_string(),
            expected: WIT_VERSION.to_string(),
        });
    }
    Ok(found.to_string())
}

fn compatible(found: &str, ours: &str) -> bool {
    let parts = |v: &str| v.split('.').map(|p| p.parse::<u64>().ok()).collect::<Vec<_>>();
    let (a, b) = (parts(found), parts(ours));
    match (a.as_slice(), b.as_slice()) {
        ([Some(0), Some(m1), Some(_)], [Some(0), Some(m2), Some(_)]) => m1 == m2,
        ([Some(maj1), Some(_), Some(_)], [Some(maj2), Some(_), Some(_)]) => maj1 == maj2 && *maj1 != 0,
        _ => false,
    }
}

impl Plugin {
    /// What the plugin says about itself.
    pub fn info(&self) -> &PluginInfo {
        &self.inner.info
    }

    /// A fresh instance in its own store: one per worker.
    pub fn instantiate(&self) -> Result<PluginInstance, PluginError> {
        PluginInstance::new(self.inner.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::compatible;

    #[test]
    fn version_compatibility() {
        assert!(compatible("0.1.0", "0.1.0"));
        assert!(compatible("0.1.3", "0.1.0"));
        assert!(!compatible("0.2.0", "0.1.0"));
        assert!(!compatible("1.0.0", "0.1.0"));
        assert!(compatible("1.4.0", "1.0.0"));
        assert!(!compatible("2.0.0", "1.0.0"));
        assert!(!compatible("garbage", "0.1.0"));
    }
}
