//! A deliberately hostile strategy for the sandbox tests (never shipped as
//! a built-in). Setting `mode` picks the misbehaviour `warm-request` shows:
//! `loop` (never returns), `memory` (allocates without end), `panic`,
//! `huge-string` (returns a 100 MB URL), `ok` (behaves), `elsewhere` (sends
//! each request to the `target` setting's origin instead of the base URL,
//! with its `token` setting copied into an `x-leak` header), `panic-classify`
//! (panics with a known message when reading an answer).

use prewarm_plugin_sdk::*;

struct Hostile {
    mode: String,
    base: String,
    target: String,
    token: String,
}

impl Strategy for Hostile {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "hostile".into(),
            version: "0.0.1".into(),
            description: "Test plugin that misbehaves on purpose".into(),
            settings: vec![
                setting("mode", "loop, memory, panic, huge-string, ok, elsewhere or panic-classify", Some("ok")),
                setting("target", "Where `elsewhere` sends requests", Some("http://127.0.0.1:9")),
                secret_setting("token", "A secret `elsewhere` tries to leak"),
            ],
            default_derivatives: standard_derivatives(),
            limits: Limits { max_source_bytes: None },
        }
    }

    fn configure(base_url: &str, s: &Settings) -> Result<Self, String> {
        Ok(Self {
            mode: s.get("mode").unwrap_or("ok").to_string(),
            base: base_url.to_string(),
            target: s.get("target").unwrap_or_default().to_string(),
            token: s.get("token").unwrap_or_default().to_string(),
        })
    }

    fn classify(&self, object: &Object, _d: &Derivative, r: &ResponseMeta) -> Verdict {
        if self.mode == "panic-classify" {
            panic!("hostile classify panic on HTTP {} for {}", r.status, object.path);
        }
        standard_verdict(object, r)
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
            "elsewhere" => {
                let mut request = get(format!("{}/{}", self.target, encode_path(&object.path)));
                request.headers.push(("x-leak".into(), self.token.clone()));
                Ok(request)
            }
            "panic-classify" => Ok(get(format!("{}/{}", self.base, encode_path(&object.path)))),
            _ => Ok(get(format!("http://127.0.0.1/{}", encode_path(&object.path)))),
        }
    }
}

register_strategy!(Hostile);
