//! One `warm-request` and one `classify` call on a warm plugin instance,
//! through the full sandbox (fuel, deadline, memory cap). Target: ≤ 2 µs
//! per call.

use criterion::{Criterion, criterion_group, criterion_main};
use prewarm::plugin::{Derivative, ObjectRef, PluginRuntime, ResponseMeta, RuntimeOptions};

fn plugin_calls(c: &mut Criterion) {
    let runtime = PluginRuntime::new(RuntimeOptions::default()).unwrap();
    let derivative = Derivative { name: "mobile".into(), width: Some(854), height: Some(640), options: vec![] };
    let object = ObjectRef { path: "videos/2024/launch trailer.mp4", size: 48_000_000 };
    let response = ResponseMeta {
        url: "https://cdn.example.com/x".into(),
        status: 200,
        headers: vec![
            ("content-type".into(), "video/mp4".into()),
            ("content-length".into(), "1234567".into()),
            ("cf-cache-status".into(), "HIT".into()),
            ("age".into(), "31".into()),
        ],
        body_bytes: 1_234_567,
        body_complete: true,
        attempt: 1,
    };
    for name in ["template", "cloudflare-media"] {
        let plugin = runtime.load(name).unwrap();
        let mut instance = plugin.instantiate().unwrap();
        instance.configure("https://cdn.example.com", &[]).unwrap();
        c.bench_function(&format!("{name}/warm-request"), |b| {
            b.iter(|| instance.warm_request(object, &derivative).unwrap())
        });
        c.bench_function(&format!("{name}/classify"), |b| {
            b.iter(|| instance.classify(object, &derivative, &response).unwrap())
        });
    }
}

criterion_group!(benches, plugin_calls);
criterion_main!(benches);
