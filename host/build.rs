//! Builds the guest crates in `plugins/` for wasm32-wasip2 so the first-party
//! strategies can be embedded in the binary: a plain `cargo build -p prewarm`
//! gives a prewarm whose built-in plugins work.

use std::path::PathBuf;
use std::process::Command;

/// The first-party plugins: (name users type, crate artifact stem).
const BUILTINS: &[(&str, &str)] = &[
    ("cloudflare-media", "cloudflare_media"),
    ("video-resizer", "video_resizer"),
    ("akamai-ivm", "akamai_ivm"),
    ("template", "template"),
];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    let plugins = root.join("plugins");
    println!("cargo:rerun-if-changed={}", plugins.join("sdk").join("wit").display());
    for entry in [
        "Cargo.toml",
        "Cargo.lock",
        "sdk",
        "cloudflare-media",
        "video-resizer",
        "akamai-ivm",
        "template",
        "testing",
        "examples",
    ] {
        println!("cargo:rerun-if-changed={}", plugins.join(entry).display());
    }
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");

    // A target dir of its own: the outer cargo holds the lock on its own
    // dir, and a stable path keeps the guest build incremental.
    let target_root = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { root.join(p) })
        .unwrap_or_else(|| root.join("target"));
    let guest_target = target_root.join("wasm-plugins");

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&plugins)
        .args(["build", "--release", "--locked", "--target", "wasm32-wasip2"])
        .arg("--target-dir")
        .arg(&guest_target);
    // The outer build's flags and wrappers are for the host target (and
    // clippy); they must not leak into the guest build.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_PROFILE_RELEASE_DEBUG",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("could not run cargo to build the plugins");
    if !status.success() {
        panic!(
            "building the wasm plugins in {} failed (cargo's error is above); if the wasm32-wasip2 target is missing, run `rustup target add wasm32-wasip2`",
            plugins.display()
        );
    }

    let out_dir = guest_target.join("wasm32-wasip2").join("release");
    let mut table = String::from(
        "/// The first-party plugins: (name, component bytes).\npub(crate) const BUILTIN_PLUGINS: &[(&str, &[u8])] = &[\n",
    );
    for (name, stem) in BUILTINS {
        let wasm = out_dir.join(format!("{stem}.wasm"));
        assert!(wasm.exists(), "missing plugin artifact {}", wasm.display());
        table.push_str(&format!("    ({name:?}, include_bytes!({:?})),\n", wasm.display().to_string()));
    }
    table.push_str("];\n");
    table.push_str(&format!(
        "/// Where the guest build put its components (test fixtures live there too).\n#[allow(dead_code)]\npub const GUEST_ARTIFACT_DIR: &str = {:?};\n",
        out_dir.display().to_string()
    ));
    let dest = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("builtin_plugins.rs");
    std::fs::write(dest, table).unwrap();
}
