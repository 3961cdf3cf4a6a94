//! The on-disk cache of compiled plugins. A compiled component is native
//! code that wasmtime loads without checking it, so an entry is used only
//! when it is provably the one this user's prewarm wrote for these exact
//! wasm bytes and this engine:
//!
//! - the directory is created 0700 and must belong to the user and be
//!   writable by nobody else; otherwise the cache is bypassed with a
//!   warning (plugins are compiled in memory, a little slower, never loaded
//!   from a place someone else can write);
//! - an entry's name holds the SHA-256 of the wasm and of the engine's
//!   compatibility hash (wasmtime's version and every compilation setting);
//! - an entry starts with an HMAC-SHA256 of the wasm hash, the engine hash
//!   and the compiled bytes' hash, under a random per-user key kept beside the
//!   entries (`cache.key`, 0600). It is checked before wasmtime reads the
//!   entry: a copied, swapped or corrupt entry is recompiled and replaced,
//!   never run.

use std::hash::Hasher;
use std::io::Write;
use std::path::{Path, PathBuf};

use ring::hmac;
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The first bytes of an entry: format and version.
const MAGIC: &[u8; 8] = b"PWCWASM1";
/// The HMAC key's file, inside the cache directory.
const KEY_FILE: &str = "cache.key";
const KEY_LEN: usize = 32;

/// A cache directory checked to be the user's alone, with its key.
pub(crate) struct ComponentCache {
    dir: PathBuf,
    key: hmac::Key,
    engine_hash: [u8; 32],
}

impl ComponentCache {
    /// Open (creating it 0700) the cache in `dir` for `engine`. `Err` says
    /// why the cache cannot be trusted; the caller then compiles in memory.
    pub(crate) fn open(dir: &Path, engine: &Engine) -> Result<Self, String> {
        create_private_dir(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        check_private(dir, 0o022).map_err(|why| format!("{}: {why}", dir.display()))?;
        let key = read_or_create_key(&dir.join(KEY_FILE))?;
        let mut hasher = Sha256Hasher::default();
        std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
        Ok(ComponentCache {
            dir: dir.to_path_buf(),
            key: hmac::Key::new(hmac::HMAC_SHA256, &key),
            engine_hash: hasher.0.finalize().into(),
        })
    }

    fn entry(&self, wasm_hash: &[u8]) -> PathBuf {
        self.dir.join(format!("{}-{}.cwasm", hex::encode(wasm_hash), hex::encode(&self.engine_hash[..8])))
    }

    /// What the HMAC signs: the format, the wasm's hash, the engine's and
    /// the compiled bytes' (hashed first, so the check is one short
    /// constant-time `hmac::verify`).
    fn signed(&self, wasm_hash: &[u8], compiled: &[u8]) -> Vec<u8> {
        [MAGIC.as_slice(), wasm_hash, &self.engine_hash, &Sha256::digest(compiled)].concat()
    }

    /// The cached compilation of `wasm`, if there is one that checks out.
    pub(crate) fn load(&self, engine: &Engine, wasm: &[u8]) -> Option<Component> {
        let wasm_hash = Sha256::digest(wasm);
        let path = self.entry(&wasm_hash);
        // Read into memory rather than mmap the file: a cache file changed
        // under a live mapping would fault the whole process.
        let bytes = std::fs::read(&path).ok()?;
        let tag_len = hmac::HMAC_SHA256.digest_algorithm().output_len();
        let checked = bytes.strip_prefix(MAGIC.as_slice()).filter(|rest| rest.len() > tag_len).and_then(|rest| {
            let (tag, compiled) = rest.split_at(tag_len);
            hmac::verify(&self.key, &self.signed(&wasm_hash, compiled), tag).ok().map(|()| compiled)
        });
        let Some(compiled) = checked else {
            tracing::warn!("compiled plugin cache entry {} does not match its plugin: recompiling", path.display());
            return None;
        };
        // SAFETY: the bytes are, by the HMAC under this user's key, the ones
        // `store` wrote after this engine (same compatibility hash) compiled
        // exactly this wasm.
        match unsafe { Component::deserialize(engine, compiled) } {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::debug!("ignoring unusable cached component {}: {e:#}", path.display());
                None
            }
        }
    }

    /// Keep `compiled` (made by this engine from `wasm`) for the next run.
    pub(crate) fn store(&self, wasm: &[u8], compiled: &[u8]) {
        let wasm_hash = Sha256::digest(wasm);
        let tag = hmac::sign(&self.key, &self.signed(&wasm_hash, compiled));
        let mut bytes = Vec::with_capacity(MAGIC.len() + tag.as_ref().len() + compiled.len());
        for part in [MAGIC.as_slice(), tag.as_ref(), compiled] {
            bytes.extend_from_slice(part);
        }
        if let Err(e) = crate::util::atomic_file::write(&self.entry(&wasm_hash), &bytes) {
            tracing::debug!("could not cache compiled component in {}: {e}", self.dir.display());
        }
    }
}

/// A `std::hash::Hasher` that feeds SHA-256: wasmtime gives its engine
/// hash as `impl Hash`, and `DefaultHasher` is not stable across Rust
/// releases.
#[derive(Default)]
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// `Err` unless `path` belongs to this user and has none of the `forbidden`
/// mode bits.
fn check_private(path: &Path, forbidden: u32) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
        // SAFETY: geteuid(2) cannot fail and touches no memory.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != me {
            return Err(format!("owned by uid {}, not by this user (uid {me})", meta.uid()));
        }
        if meta.mode() & forbidden != 0 {
            return Err(format!(
                "mode {:03o} lets others {} it (chmod go-rwx)",
                meta.mode() & 0o777,
                if forbidden == 0o022 { "write" } else { "read or write" }
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = (path, forbidden);
    Ok(())
}

/// The per-user HMAC key: created once (random, 0600, published by a hard
/// link so two prewarm processes never read half a key), then read.
fn read_or_create_key(path: &Path) -> Result<Vec<u8>, String> {
    let shown = path.display();
    if !path.exists() {
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut tmp = tempfile::Builder::new().tempfile_in(dir).map_err(|e| format!("cannot create {shown}: {e}"))?;
        let mut key = [0u8; KEY_LEN];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key)
            .map_err(|_| format!("cannot make {shown}: no system randomness"))?;
        tmp.write_all(&key).and_then(|()| tmp.flush()).map_err(|e| format!("cannot write {shown}: {e}"))?;
        // Fails when another process made the key first: theirs is used.
        let _ = std::fs::hard_link(tmp.path(), path);
    }
    check_private(path, 0o077).map_err(|why| format!("{shown}: {why}"))?;
    let key = std::fs::read(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    if key.len() != KEY_LEN {
        return Err(format!("{shown}: not a key of {KEY_LEN} bytes (remove it to make a new one)"));
    }
    Ok(key)
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn the_cache_is_private_and_refuses_a_shared_directory() {
        let engine = crate::plugin::sandbox::engine().unwrap();
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join("a/components");
        let cache = ComponentCache::open(&dir, &engine).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(KEY_FILE)), 0o600);
        assert_eq!(std::fs::read(dir.join(KEY_FILE)).unwrap().len(), KEY_LEN);
        drop(cache);

        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let why = ComponentCache::open(&dir, &engine).err().expect("a world-writable cache is refused");
        assert!(why.contains("mode 777") && why.contains("write"), "{why}");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::set_permissions(dir.join(KEY_FILE), std::fs::Permissions::from_mode(0o644)).unwrap();
        let why = ComponentCache::open(&dir, &engine).err().expect("a readable key is refused");
        assert!(why.contains("cache.key"), "{why}");
    }

    #[test]
    fn an_entry_runs_only_for_its_own_wasm() {
        let engine = crate::plugin::sandbox::engine().unwrap();
        let home = tempfile::tempdir().unwrap();
        let cache = ComponentCache::open(home.path(), &engine).unwrap();
        let (a, b) = (wat::parse_str("(component)").unwrap(), wat::parse_str("(component (core module))").unwrap());
        for wasm in [&a, &b] {
            cache.store(wasm, &engine.precompile_component(wasm).unwrap());
            assert!(cache.load(&engine, wasm).is_some(), "a fresh entry loads");
        }
        let (ea, eb) = (cache.entry(&Sha256::digest(&a)), cache.entry(&Sha256::digest(&b)));
        std::fs::copy(&eb, &ea).unwrap();
        assert!(cache.load(&engine, &a).is_none(), "b's entry under a's name is not loaded");
        let mut flipped = std::fs::read(&eb).unwrap();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        std::fs::write(&eb, flipped).unwrap();
        assert!(cache.load(&engine, &b).is_none(), "a changed byte is caught");
        std::fs::write(&eb, b"garbage").unwrap();
        assert!(cache.load(&engine, &b).is_none());
    }
}
