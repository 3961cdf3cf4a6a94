//! Hostile plugins: each misbehaviour ends in its own typed error within a
//! bounded time, the instance is rebuilt, and the host keeps serving other
//! calls. The hostile component is built from plugins/testing/hostile; the
//! version-mismatch and not-a-strategy components are inline WAT.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use prewarm::plugin::{Derivative, Limits, ObjectRef, Plugin, PluginError, PluginRuntime, RuntimeOptions, TrapKind};

fn hostile_wasm() -> PathBuf {
    PathBuf::from(prewarm::plugin::GUEST_ARTIFACT_DIR).join("hostile.wasm")
}

fn load(runtime: &PluginRuntime) -> Plugin {
    runtime.load(hostile_wasm().to_str().unwrap()).expect("hostile plugin loads")
}

fn d() -> Derivative {
    Derivative { name: "mobile".into(), width: Some(854), height: Some(640), options: vec![] }
}

/// Configure `mode`, call warm-request, return the error and how long it took.
fn misbehave(plugin: &Plugin, mode: &str) -> (PluginError, Duration) {
    let mut i = plugin.instantiate().unwrap();
    i.configure("http://127.0.0.1", &[("mode".into(), mode.into())]).unwrap();
    let started = Instant::now();
    let err = i.warm_request(ObjectRef { path: "a.mp4", size: 1 }, &d()).expect_err("hostile call must fail");
    let took = started.elapsed();
    // The same instance is rebuilt and answers the next call.
    assert!(i.size_methods(&d()).is_ok(), "instance not rebuilt after {mode}");
    (err, took)
}

fn trap_kind(err: &PluginError) -> TrapKind {
    match err {
        PluginError::Trap { kind, .. } => kind.clone(),
        other => panic!("expected a trap, got {other}"),
    }
}

#[test]
fn endless_loop_runs_out_of_fuel() {
    let runtime = PluginRuntime::new(RuntimeOptions::default()).unwrap();
    let plugin = load(&runtime);
    let (err, took) = misbehave(&plugin, "loop");
    assert_eq!(trap_kind(&err), TrapKind::OutOfFuel);
    assert_eq!(err.kind(), "plugin");
    assert!(err.to_string().contains("hostile") && err.to_string().contains("warm-request"), "{err}");
    assert!(took < Duration::from_secs(30), "took {took:?}");
}

#[test]
fn endless_loop_hits_the_deadline_when_fuel_is_plentiful() {
    let limits = Limits { fuel_per_call: u64::MAX / 2, call_deadline: Duration::from_millis(200), ..Limits::default() };
    let runtime = PluginRuntime::new(RuntimeOptions { limits, cache_dir: None }).unwrap();
    let (err, took) = misbehave(&load(&runtime), "loop");
    assert_eq!(trap_kind(&err), TrapKind::Deadline);
    assert!(took >= Duration::from_millis(200) && took < Duration::from_secs(30), "took {took:?}");
}

#[test]
fn memory_bomb_hits_the_memory_cap() {
    let runtime = PluginRuntime::new(RuntimeOptions::default()).unwrap();
    let (err, _) = misbehave(&load(&runtime), "memory");
    assert_eq!(trap_kind(&err), TrapKind::MemoryLimit, "{err}");
}

#[test]
fn huge_string_return_is_refused() {
    let runtime = PluginRuntime::new(RuntimeOptions::default()).unwrap();
    let (err, _) = misbehave(&load(&runtime), "huge-string");
    assert_eq!(trap_kind(&err), TrapKind::MemoryLimit, "{err}");
    // With room for the string, the host still refuses a 100 MB URL.
    let limits = Limits { memory_bytes: 512 << 20, ..Limits::default() };
    let roomy = PluginRuntime::new(RuntimeOptions { limits, cache_dir: None }).unwrap();
    let (err, _) = misbehave(&load(&roomy), "huge-string");
    match err {
        PluginError::BadOutput { message, .. } => assert!(message.contains("URL of"), "{message}"),
        PluginError::Trap { kind: TrapKind::OutOfFuel, .. } => {}
        other => panic!("expected the URL refused, got {other}"),
    }
}

#[test]
fn panic_is_a_trap_not_a_crash_and_says_why() {
    let runtime = PluginRuntime::new(RuntimeOptions::default()).unwrap();
    let (err, _) = misbehave(&load(&runtime), "panic");
    assert!(matches!(err, PluginError::Panicked { call: "warm-request", .. }), "{err}");
    assert_eq!(err.kind(), "plugin");
    assert!(
        err.to_string().starts_with("plugin `hostile` 0.0.1 panicked in warm-request: hostile plugin panics on a.mp4")
    );
}

#[test]
fn host_keeps_serving_other_plugins_after_traps() {
    let runtime = PluginRuntime::new(RuntimeOptions::default()).unwrap();
    let hostile = load(&runtime);
    let good = runtime.load("template").unwrap();
    let mut g = good.instantiate().unwrap();
    g.configure("http://cdn.example.com", &[]).unwrap();
    for mode in ["loop", "memory", "panic"] {
        misbehave(&hostile, mode);
        let url = g.warm_request(ObjectRef { path: "ok.mp4", size: 1 }, &d()).unwrap().url;
        assert_eq!(url, "http://cdn.example.com/ok.mp4?width=854&height=640");
    }
    // A behaving hostile instance works too.
    let mut fine = hostile.instantiate().unwrap();
    fine.configure("http://x", &[("mode".into(), "ok".into())]).unwrap();
    assert_eq!(
        fine.warm_request(ObjectRef { path: "a b.mp4", size: 1 }, &d()).unwrap().url,
        "http://127.0.0.1/a%20b.mp4"
    );
}

const OTHER_VERSION: &str = r#"
(component
  (instance $empty)
  (export "prewarm:strategy/strategy@9.0.0" (instance $empty))
)"#;

#[test]
fn plugin_built_against_another_wit_version_is_refused() {
    let runtime = PluginRuntime::new(RuntimeOptions::default()).unwrap();
    let bytes = wat::parse_str(OTHER_VERSION).unwrap();
    let err = runtime.load_bytes("old-plugin.wasm", &bytes).err().expect("refused");
    assert!(matches!(err, PluginError::VersionMismatch { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("9.0.0") && text.contains(prewarm::plugin::WIT_VERSION) && text.contains("rebuild"),
        "{text}"
    );

    let minor = wat::parse_str(OTHER_VERSION.replace("9.0.0", "0.1.0")).unwrap();
    // A plugin built against the contract before `secret` settings and
    // cache tiers (0.1.0) is refused with the same clear message.
    let old = runtime.load_bytes("old.wasm", &minor).err().expect("0.1.0 refused");
    assert!(old.to_string().contains("0.1.0") && old.to_string().contains("rebuild"), "{old}");
}

#[test]
fn non_plugins_are_refused_clearly() {
    let runtime = PluginRuntime::new(RuntimeOptions::default()).unwrap();
    let none = wat::parse_str("(component)").unwrap();
    let err = runtime.load_bytes("empty.wasm", &none).err().expect("refused");
    assert!(err.to_string().contains("not a prewarm strategy"), "{err}");
    let err = runtime.load_bytes("junk.wasm", b"definitely not wasm").err().expect("refused");
    assert!(err.to_string().contains("junk.wasm"), "{err}");
    let err = runtime.load("no-such-plugin").err().expect("refused");
    assert!(
        err.to_string().contains("unknown plugin `no-such-plugin`") && err.to_string().contains("cloudflare-media"),
        "{err}"
    );
}

#[test]
fn compiled_components_are_cached_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let options = RuntimeOptions { cache_dir: Some(dir.path().to_path_buf()), ..RuntimeOptions::default() };
    let runtime = PluginRuntime::new(options.clone()).unwrap();
    runtime.load("template").unwrap();
    let cached: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
        .collect();
    assert_eq!(cached.len(), 1, "one compiled component cached");
    // A second runtime loads from the cache and the plugin works.
    let again = PluginRuntime::new(options).unwrap().load("template").unwrap();
    let mut i = again.instantiate().unwrap();
    i.configure("http://c", &[]).unwrap();
    assert!(i.warm_request(ObjectRef { path: "x", size: 1 }, &d()).is_ok());
    // A corrupt cache entry is recompiled, not trusted.
    std::fs::write(cached[0].path(), b"garbage").unwrap();
    assert!(
        PluginRuntime::new(RuntimeOptions { cache_dir: Some(dir.path().to_path_buf()), ..RuntimeOptions::default() })
            .unwrap()
            .load("template")
            .is_ok()
    );
}
