//! A deliberately hostile strategy for the sandbox tests (never shipped as
//! a built-in). Setting `mode` picks the misbehaviour `warm-request` shows:
//! `loop` (never returns), `memory` (allocates without end), `panic`,
//! `huge-string` (returns a 100 MB URL), `ok` (behaves).

use prewarm_plugin_sdk::*;

struct Hostile {
    mode: String,
}

impl Strategy for Hostile {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "hostile".into(),
            version: "0.0.1".into(),
            description: "Test plugin that misbehaves on purpose".into(),
            settings: vec![setting("mode", "loop, memory, panic, huge-string or ok", Some("ok"))],
            default_derivatives: standard_derivatives(),
            limits: Limits { max_source_bytes: None },
        }
    }

    fn configure(_base_url: &str, s: &Settings) -> Result<Self, String> {
        Ok(Self { mode: s.get("mode").unwrap_or("ok").to_string() })
    }

    fn warm_request(&self, object: &Object, _d: &Derivative) -> Result<Request, String> {
        match self.mode.as_str() {
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "memory" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "panic" => panic!("hostile plugin panics on {}", object.path),
            "huge-string" => Ok(get("x".repeat(100 * 1024 * 1024))),
            _ => Ok(get(format!("http://127.0.0.1/{}", encode_path(&object.path)))),
        }
    }
}

register_strategy!(Hostile);
