//! Human sizes and size classes: `256MiB`, `1G`, and the small / medium /
//! large split used by filters, worker shares and reports.

use serde::{Deserialize, Serialize};

/// Parse `256MiB`, `1G`, `1.5GB`, `1024` (bytes).
pub fn parse_size(text: &str) -> Result<u64, String> {
    parse_size::Config::new()
        .with_binary()
        .parse_size(text.trim())
        .map_err(|e| format!("`{text}` is not a size ({e}); use e.g. 256MiB, 1G, 5000000"))
}

/// A byte count for people: `12.3 MiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{v:.1} {}", UNITS[unit]) }
}

/// Two sizes for people, told apart: human sizes, or exact bytes when
/// those print the same (`100,000,001 bytes` against `100,000,000 bytes`,
/// not `95.4 MiB` against `95.4 MiB`).
pub fn human_apart(a: u64, b: u64) -> (String, String) {
    let (ha, hb) = (human(a), human(b));
    if ha != hb || a == b {
        return (ha, hb);
    }
    (exact(a), exact(b))
}

/// `100,000,001 bytes`.
fn exact(bytes: u64) -> String {
    let digits = bytes.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 6);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out + " bytes"
}

/// Size class of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SizeClass {
    Small,
    Medium,
    Large,
}

impl SizeClass {
    pub const ALL: [SizeClass; 3] = [SizeClass::Small, SizeClass::Medium, SizeClass::Large];

    pub fn as_str(self) -> &'static str {
        match self {
            SizeClass::Small => "small",
            SizeClass::Medium => "medium",
            SizeClass::Large => "large",
        }
    }
}

/// Where small ends and large begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SizeClasses {
    /// Sources below this are small (default 50 MiB).
    pub small_below: u64,
    /// Sources below this (and not small) are medium (default 200 MiB).
    pub medium_below: u64,
}

impl Default for SizeClasses {
    fn default() -> Self {
        SizeClasses { small_below: 50 << 20, medium_below: 200 << 20 }
    }
}

impl SizeClasses {
    pub fn new(small_below: u64, medium_below: u64) -> Result<Self, String> {
        if small_below > medium_below {
            return Err(format!(
                "size classes: small ({}) must not be above medium ({})",
                human(small_below),
                human(medium_below)
            ));
        }
        Ok(SizeClasses { small_below, medium_below })
    }

    pub fn class_of(&self, size: u64) -> SizeClass {
        if size < self.small_below {
            SizeClass::Small
        } else if size < self.medium_below {
            SizeClass::Medium
        } else {
            SizeClass::Large
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_binary_and_decimal_suffixes() {
        assert_eq!(parse_size("256MiB").unwrap(), 256 << 20);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn sizes_that_print_alike_are_told_apart() {
        assert_eq!(human_apart(150 << 20, 100 << 20), ("150.0 MiB".into(), "100.0 MiB".into()));
        assert_eq!(human_apart(100_000_001, 100_000_000), ("100,000,001 bytes".into(), "100,000,000 bytes".into()));
        assert_eq!(human_apart(999, 998), ("999 B".into(), "998 B".into()));
        assert_eq!(human_apart(1 << 20, 1 << 20), ("1.0 MiB".into(), "1.0 MiB".into()));
        assert_eq!(exact(1_234), "1,234 bytes");
    }

    #[test]
    fn classes_split_at_thresholds() {
        let c = SizeClasses::default();
        assert_eq!(c.class_of(0), SizeClass::Small);
        assert_eq!(c.class_of((50 << 20) - 1), SizeClass::Small);
        assert_eq!(c.class_of(50 << 20), SizeClass::Medium);
        assert_eq!(c.class_of(200 << 20), SizeClass::Large);
    }
}
