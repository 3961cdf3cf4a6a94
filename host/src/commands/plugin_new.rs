//! `prewarm plugins new NAME [--dir DIR]`: a ready plugin crate that builds
//! anywhere with `cargo build --release --target wasm32-wasip2`. The SDK and
//! the WIT contract this prewarm speaks are written beside it (the SDK is
//! not published to a registry), so the crate needs nothing from this
//! repository.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::{Exit, usage};

const SDK_LIB: &str = include_str!("../../../plugins/sdk/src/lib.rs");
const SDK_CACHE_STATUS: &str = include_str!("../../../plugins/sdk/src/cache_status.rs");
const SDK_VENDOR: &str = include_str!("../../../plugins/sdk/src/vendor.rs");
const WIT: &str = include_str!("../../../plugins/sdk/wit/strategy.wit");

/// The new plugin's code: a working strategy to start from (`NAME` is
/// replaced by the plugin's name).
const LIB: &str = r#"//! The `NAME` prewarm strategy: `<base>/<path>?width=W&height=H`, warm when
//! the CDN answers 2xx (the SDK reads the status, the size and the cache
//! headers it knows; override `classify` to read your CDN's own).

use prewarm_plugin_sdk::*;

struct Strategy_ {
    base: String,
    width_param: String,
    token: Option<String>,
}

impl Strategy for Strategy_ {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "NAME".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "<base>/<path>?width=W&height=H".into(),
            settings: vec![
                setting("width-param", "Query parameter that carries the width", Some("width")),
                // A credential: prewarm never shows its value anywhere.
                secret_setting("token", "API token sent as `Authorization: Bearer …` (optional)"),
            ],
            default_derivatives: standard_derivatives(),
            limits: Limits { max_source_bytes: None },
        }
    }

    fn configure(base_url: &str, settings: &Settings) -> Result<Self, String> {
        Ok(Strategy_ {
            base: base_url.to_string(),
            width_param: settings.get("width-param").unwrap_or("width").into(),
            token: settings.get("token").map(String::from),
        })
    }

    fn warm_request(&self, object: &Object, d: &Derivative) -> Result<Request, String> {
        let width = d.width.ok_or("derivative has no width")?;
        let mut url = format!("{}/{}", self.base, encode_path(&object.path));
        url = with_query(&url, &self.width_param, &width.to_string());
        if let Some(height) = d.height {
            url = with_query(&url, "height", &height.to_string());
        }
        let mut request = get(url);
        if let Some(token) = &self.token {
            request.headers.push(("authorization".into(), format!("Bearer {token}")));
        }
        Ok(request)
    }
}

register_strategy!(Strategy_);
"#;

/// The SDK's manifest outside this repository's workspace. Its versions are
/// those of plugins/Cargo.toml; the test that builds a new plugin keeps them
/// honest.
const SDK_MANIFEST: &str = r#"[package]
name = "prewarm-plugin-sdk"
version = "0.2.0"
edition = "2024"
license = "Apache-2.0"
description = "Write prewarm CDN strategies: one trait and one macro over the prewarm:strategy WIT"
publish = false

[dependencies]
wit-bindgen = { version = "0.61", default-features = false, features = ["macros", "realloc"] }
percent-encoding = "2"
sfv = { version = "0.16", default-features = false }
"#;

fn manifest(name: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
prewarm-plugin-sdk = {{ path = "prewarm-plugin-sdk" }}

# A workspace of its own, so it builds wherever it is put.
[workspace]

[profile.release]
opt-level = 3
lto = true
codegen-units = 1
panic = "abort"
strip = true
"#
    )
}

fn readme(name: &str) -> String {
    let stem = name.replace('-', "_");
    format!(
        "# {name}\n\nA prewarm CDN strategy plugin. Edit `src/lib.rs` (the `Strategy` trait: `info`, \
         `configure`, `warm_request`, and optionally `classify`, `size_methods`, `response_headers`).\n\n\
         ```sh\nrustup target add wasm32-wasip2   # once\ncargo build --release --target wasm32-wasip2\n\
         prewarm plugins inspect target/wasm32-wasip2/release/{stem}.wasm\n\
         prewarm probe --plugin target/wasm32-wasip2/release/{stem}.wasm --base-url https://cdn.example.com videos/a.mp4\n\
         prewarm warm --plugin target/wasm32-wasip2/release/{stem}.wasm --base-url https://cdn.example.com --source remote:bucket\n```\n\n\
         `prewarm-plugin-sdk/` is the SDK and `prewarm-plugin-sdk/wit/strategy.wit` the contract of the prewarm \
         that wrote this crate (prewarm:strategy@{}); a newer prewarm writes a newer copy with `prewarm plugins new`.\n",
        crate::plugin::WIT_VERSION
    )
}

/// A plugin name as prewarm shows it: lowercase ASCII, digits and dashes.
fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(usage(format!(
            "plugins new `{name}`: a name is lowercase letters, digits and dashes, starting with a letter (e.g. acme-cdn)"
        )))
    }
}

pub fn run(name: &str, dir: Option<PathBuf>) -> Result<Exit> {
    check_name(name)?;
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    if dir.exists() && std::fs::read_dir(&dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
        return Err(usage(format!("plugins new: {} exists and is not empty; choose another --dir", dir.display())));
    }
    let lib = LIB.replace("NAME", name);
    let files: [(&str, String); 8] = [
        ("Cargo.toml", manifest(name)),
        ("README.md", readme(name)),
        ("src/lib.rs", lib),
        ("prewarm-plugin-sdk/Cargo.toml", SDK_MANIFEST.to_string()),
        ("prewarm-plugin-sdk/src/lib.rs", SDK_LIB.to_string()),
        ("prewarm-plugin-sdk/src/cache_status.rs", SDK_CACHE_STATUS.to_string()),
        ("prewarm-plugin-sdk/src/vendor.rs", SDK_VENDOR.to_string()),
        ("prewarm-plugin-sdk/wit/strategy.wit", WIT.to_string()),
    ];
    for (path, text) in &files {
        write(&dir, path, text)?;
    }
    writeln!(
        std::io::stdout(),
        "created {} ({name}): build it with\n  cd {} && cargo build --release --target wasm32-wasip2",
        dir.display(),
        dir.display()
    )?;
    Ok(Exit::Success)
}

fn write(dir: &Path, path: &str, text: &str) -> Result<()> {
    let full = dir.join(path);
    if let Some(parent) = full.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(&full, text).with_context(|| format!("cannot write {}", full.display()))
}
