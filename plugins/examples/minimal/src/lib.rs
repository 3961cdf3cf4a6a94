//! The smallest complete prewarm strategy: `<base>/<width>/<path>`, warm
//! when the CDN says `x-cache: HIT` or `MISS`.

use prewarm_plugin_sdk::*;

struct Minimal {
    base: String,
}

impl Strategy for Minimal {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "minimal".into(),
            version: "0.1.0".into(),
            description: "Example: <base>/<width>/<path>".into(),
            settings: vec![],
            default_derivatives: standard_derivatives(),
            limits: Limits { max_source_bytes: None },
        }
    }

    fn configure(base_url: &str, _settings: &Settings) -> Result<Self, String> {
        Ok(Minimal { base: base_url.to_string() })
    }

    fn warm_request(&self, object: &Object, d: &Derivative) -> Result<Request, String> {
        let width = d.width.ok_or("derivative has no width")?;
        Ok(get(format!("{}/{width}/{}", self.base, encode_path(&object.path))))
    }
}

register_strategy!(Minimal);
