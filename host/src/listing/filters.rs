//! What a run takes of a listing: video extensions, `--include`/`--exclude`
//! globs, `--min-size`/`--max-size`, `--newer-than`, `--shard I/N` (a
//! stable hash of each path) and `--limit`, applied to each object as it
//! arrives.

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::Serialize;

use super::{ListingError, Object, newer_than};
use crate::cli::SourceArgs;
use crate::util::size::parse_size;

/// `--shard I/N`: this copy takes the objects whose path hashes to I mod N.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Shard {
    /// Parse `I/N`, `auto/N` or `auto` (index from `JOB_COMPLETION_INDEX`,
    /// count from `N` or `PREWARM_SHARDS`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let env = |name: &str| -> Result<String, String> {
            std::env::var(name).map_err(|_| format!("--shard {text}: environment variable {name} is not set"))
        };
        let (index, count) = match text.split_once('/') {
            Some(("auto", n)) => (env("JOB_COMPLETION_INDEX")?, n.to_string()),
            Some((i, n)) => (i.to_string(), n.to_string()),
            None if text == "auto" => (env("JOB_COMPLETION_INDEX")?, env("PREWARM_SHARDS")?),
            None => return Err(format!("--shard {text}: expected I/N (e.g. 0/4) or auto")),
        };
        let index: u64 =
            index.trim().parse().map_err(|_| format!("--shard {text}: shard index `{index}` is not a number"))?;
        let count: u64 =
            count.trim().parse().map_err(|_| format!("--shard {text}: shard count `{count}` is not a number"))?;
        if count == 0 || index >= count {
            return Err(format!("--shard {text}: index must be below the count, and the count above 0"));
        }
        Ok(Shard { index, count })
    }

    /// Whether `path` belongs to this shard: FNV-1a, stable across runs,
    /// machines and versions.
    pub fn contains(&self, path: &str) -> bool {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for b in path.as_bytes() {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        hash % self.count == self.index
    }
}

/// The filters, applied while streaming.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    extensions: Vec<String>,
    min_size: Option<u64>,
    max_size: Option<u64>,
    include: Option<GlobSet>,
    exclude: Option<GlobSet>,
    pub limit: Option<u64>,
    pub shard: Option<Shard>,
    /// `--newer-than`: only objects whose ModTime is after this.
    pub newer_than: Option<std::time::SystemTime>,
}

fn globs(option: &'static str, patterns: &[String]) -> Result<Option<GlobSet>, ListingError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut builder = GlobSetBuilder::new();
    for p in patterns {
        let glob = globset::GlobBuilder::new(p)
            .literal_separator(true)
            .build()
            .or_else(|_| Glob::new(p))
            .map_err(|e| ListingError::BadFilter { option, message: format!("`{p}` is not a glob: {e}") })?;
        builder.add(glob);
    }
    builder.build().map(Some).map_err(|e| ListingError::BadFilter { option, message: e.to_string() })
}

impl Filters {
    pub fn from_args(args: &SourceArgs) -> Result<Self, ListingError> {
        let size = |option: &'static str, v: &Option<String>| -> Result<Option<u64>, ListingError> {
            v.as_deref()
                .map(|s| parse_size(s).map_err(|message| ListingError::BadFilter { option, message }))
                .transpose()
        };
        let filters = Filters {
            extensions: args
                .extensions
                .iter()
                .map(|e| e.trim().trim_start_matches('.').to_ascii_lowercase())
                .filter(|e| !e.is_empty())
                .collect(),
            min_size: size("--min-size", &args.min_size)?,
            max_size: size("--max-size", &args.max_size)?,
            include: globs("--include", &args.include)?,
            exclude: globs("--exclude", &args.exclude)?,
            limit: args.limit,
            shard: None,
            newer_than: args
                .newer_than
                .as_deref()
                .map(|raw| newer_than::parse(raw, std::time::SystemTime::now()))
                .transpose()
                .map_err(|message| ListingError::BadFilter { option: "--newer-than", message })?,
        };
        if let (Some(min), Some(max)) = (filters.min_size, filters.max_size)
            && min > max
        {
            return Err(ListingError::BadFilter { option: "--min-size", message: "is above --max-size".into() });
        }
        Ok(filters)
    }

    /// Take only objects of at least `min` bytes (as well as `--min-size`).
    pub fn at_least(&mut self, min: u64) {
        self.min_size = Some(self.min_size.map_or(min, |m| m.max(min)));
    }

    /// Whether an entry's ModTime passes `--newer-than` (always without it);
    /// an error when it is needed and missing or unreadable.
    pub fn accepts_modified(&self, mod_time: Option<&str>) -> Result<bool, String> {
        let Some(since) = self.newer_than else { return Ok(true) };
        let Some(text) = mod_time else {
            return Err("--newer-than needs each object's ModTime, and this entry has none (save the listing with \
                        `rclone lsjson -R`, without --no-modtime)"
                .into());
        };
        let modified = newer_than::parse_rfc3339(text).ok_or_else(|| format!("ModTime `{text}` is not RFC 3339"))?;
        Ok(modified >= since)
    }

    /// Whether `object` passes every filter but the limit.
    pub fn accepts(&self, object: &Object) -> bool {
        if !self.extensions.is_empty() {
            let name = object.path.rsplit('/').next().unwrap_or(&object.path);
            let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
            if !ext.is_some_and(|e| self.extensions.contains(&e)) {
                return false;
            }
        }
        if self.min_size.is_some_and(|m| object.size < m) || self.max_size.is_some_and(|m| object.size > m) {
            return false;
        }
        if self.include.as_ref().is_some_and(|g| !g.is_match(&object.path)) {
            return false;
        }
        if self.exclude.as_ref().is_some_and(|g| g.is_match(&object.path)) {
            return false;
        }
        self.shard.is_none_or(|s| s.contains(&object.path))
    }
}
