//! The hardware detection cache: what the machine looks like to ffmpeg (the
//! [`Fingerprint`]: ffmpeg's binary and version, OS and kernel, GPU device
//! nodes and driver, the environment variables that steer drivers), and the
//! JSON file keeping the last verdicts under it. A file that does not parse,
//! belongs to another schema or another fingerprint is ignored (and later
//! rewritten, atomically); each verdict carries its own expiry.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::hw::EncoderStatus;

/// Bumped when the file's shape or meaning changes; older files are ignored.
pub const SCHEMA: u32 = 1;

/// The file name under the cache directory.
const FILE_NAME: &str = "hw.json";

/// Environment variables that change which driver or device ffmpeg uses.
const DRIVER_ENV: &[&str] = &[
    "LIBVA_DRIVER_NAME",
    "LIBVA_DRIVERS_PATH",
    "LIBVA_MESSAGING_LEVEL",
    "CUDA_VISIBLE_DEVICES",
    "CUDA_DEVICE_ORDER",
    "NVIDIA_VISIBLE_DEVICES",
    "NVIDIA_DRIVER_CAPABILITIES",
    "MFX_IMPL",
    "ONEVPL_SEARCH_PATH",
    "INTEL_MEDIA_RUNTIME",
    "DRI_PRIME",
    "VDPAU_DRIVER",
    "LD_LIBRARY_PATH",
    "DYLD_LIBRARY_PATH",
];

/// The ffmpeg binary as found on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BinaryId {
    /// The real path (symlinks resolved).
    pub path: PathBuf,
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: u128,
}

impl BinaryId {
    pub fn of(path: &Path) -> std::io::Result<Self> {
        let real = std::fs::canonicalize(path)?;
        let meta = std::fs::metadata(&real)?;
        let mtime_ns = meta.modified()?.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        Ok(BinaryId { path: real, size: meta.len(), mtime_ns })
    }
}

/// A render node and the PCI vendor of its GPU (`0x8086` Intel, `0x1002`
/// AMD, `0x10de` NVIDIA).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderNode {
    pub path: String,
    pub vendor: Option<String>,
}

/// Everything a verdict depends on; any change means probing again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub ffmpeg: BinaryId,
    /// The first line of `ffmpeg -version`.
    pub ffmpeg_version: String,
    pub os: String,
    pub arch: String,
    pub kernel: String,
    pub render_nodes: Vec<RenderNode>,
    /// `/dev/nvidia*` device nodes.
    pub nvidia_nodes: Vec<String>,
    pub nvidia_driver: Option<String>,
    /// Driver-steering environment variables that are set, sorted.
    pub env: Vec<(String, String)>,
}

impl Fingerprint {
    /// The machine as it is now; `version` is ffmpeg's `-version` line.
    pub fn current(ffmpeg: BinaryId, version: String) -> Fingerprint {
        Fingerprint {
            ffmpeg,
            ffmpeg_version: version,
            os: std::env::consts::OS.to_string(),
            arch: std::env::consts::ARCH.to_string(),
            kernel: kernel_release(),
            render_nodes: render_nodes(),
            nvidia_nodes: dev_nodes("nvidia"),
            nvidia_driver: nvidia_driver(),
            env: DRIVER_ENV.iter().filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v))).collect(),
        }
    }
}

fn kernel_release() -> String {
    #[cfg(unix)]
    {
        // SAFETY: uname(2) fills the zeroed struct we own; the release is
        // a NUL-terminated string within it.
        let mut name: libc::utsname = unsafe { std::mem::zeroed() };
        if unsafe { libc::uname(&mut name) } == 0 {
            let release = unsafe { std::ffi::CStr::from_ptr(name.release.as_ptr()) };
            return release.to_string_lossy().into_owned();
        }
    }
    String::new()
}

/// `/dev/<prefix>*`, sorted.
fn dev_nodes(prefix: &str) -> Vec<String> {
    let mut nodes: Vec<String> = std::fs::read_dir("/dev")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with(prefix))
                .map(|n| format!("/dev/{n}"))
                .collect()
        })
        .unwrap_or_default();
    nodes.sort();
    nodes
}

/// `/dev/dri/renderD*` with the vendor id sysfs gives for each.
pub fn render_nodes() -> Vec<RenderNode> {
    let mut nodes: Vec<RenderNode> = std::fs::read_dir("/dev/dri")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with("renderD"))
                .map(|n| RenderNode {
                    vendor: std::fs::read_to_string(format!("/sys/class/drm/{n}/device/vendor"))
                        .ok()
                        .map(|v| v.trim().to_string()),
                    path: format!("/dev/dri/{n}"),
                })
                .collect()
        })
        .unwrap_or_default();
    nodes.sort_by(|a, b| a.path.cmp(&b.path));
    nodes
}

fn nvidia_driver() -> Option<String> {
    std::fs::read_to_string("/sys/module/nvidia/version")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/driver/nvidia/version").ok()?.lines().next().map(String::from))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The cache file's content.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CacheFile {
    pub schema: u32,
    pub fingerprint: Fingerprint,
    pub encoders: Vec<EncoderStatus>,
}

/// Where the cache lives: `$PREWARM_CACHE_DIR/hw.json`, else the user's
/// cache directory (`~/.cache/prewarm/hw.json` on Linux).
pub fn default_path() -> Option<PathBuf> {
    std::env::var_os("PREWARM_CACHE_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| dirs::cache_dir().map(|d| d.join("prewarm")))
        .map(|d| d.join(FILE_NAME))
}

/// Read the cache; `None` when missing, unreadable, corrupt or of another
/// schema (the caller probes and rewrites it).
pub fn load(path: &Path) -> Option<CacheFile> {
    let bytes = std::fs::read(path).ok()?;
    let value: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!("ignoring the hardware cache {}: not JSON ({e})", path.display());
            return None;
        }
    };
    if value.get("schema").and_then(serde_json::Value::as_u64) != Some(u64::from(SCHEMA)) {
        tracing::info!("ignoring the hardware cache {}: another schema", path.display());
        return None;
    }
    serde_json::from_value(value)
        .map_err(|e| tracing::warn!("ignoring the hardware cache {}: {e}", path.display()))
        .ok()
}

/// Write the cache atomically; a failure is logged, not fatal (the next run
/// probes again).
pub fn store(path: &Path, file: &CacheFile) {
    let written = serde_json::to_vec_pretty(file)
        .map_err(std::io::Error::other)
        .and_then(|bytes| crate::util::atomic_file::write(path, &bytes));
    if let Err(e) = written {
        tracing::warn!("could not write the hardware cache {}: {e}", path.display());
    }
}

/// Seconds since the Unix epoch.
pub fn now_s() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_and_foreign_files_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hw.json");
        std::fs::write(&path, b"{ not json").unwrap();
        assert!(load(&path).is_none());
        std::fs::write(&path, br#"{"schema":0,"fingerprint":{},"encoders":[]}"#).unwrap();
        assert!(load(&path).is_none());
        std::fs::write(&path, br#"{"schema":1,"something":"else"}"#).unwrap();
        assert!(load(&path).is_none());
        let fp = Fingerprint::current(
            BinaryId { path: "/usr/bin/ffmpeg".into(), size: 1, mtime_ns: 2 },
            "ffmpeg version 5.1".into(),
        );
        store(&path, &CacheFile { schema: SCHEMA, fingerprint: fp.clone(), encoders: Vec::new() });
        assert_eq!(load(&path).unwrap().fingerprint, fp);
    }

    #[test]
    fn fingerprint_follows_driver_env_and_binary() {
        let id = BinaryId { path: "/x".into(), size: 1, mtime_ns: 2 };
        let a = Fingerprint::current(id.clone(), "v".into());
        let b = Fingerprint::current(BinaryId { mtime_ns: 3, ..id }, "v".into());
        assert_ne!(a, b);
        assert!(!a.kernel.is_empty() || !cfg!(unix));
    }
}
