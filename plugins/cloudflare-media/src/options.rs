//! Media Transformations options (`mode=video,time=5s,...`): parsed and
//! checked once at `configure` against the documented values and ranges,
//! so a typo fails before any request; one value per key.
//!
//! Source: <https://developers.cloudflare.com/stream/transform-videos/#options>
//! (mode, time 0-10m, duration 1s-60s, fit, width/height 10-2000, audio,
//! format jpg/png for frames and m4a for audio, filename).

/// Options as `key=value` pairs, one per key, in the order first written.
#[derive(Debug, Default, Clone)]
pub struct Options(Vec<(String, String)>);

impl Options {
    /// Set `key`; a later value replaces an earlier one in its place.
    pub fn set(&mut self, key: &str, value: &str) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value.to_string(),
            None => self.0.push((key.to_string(), value.to_string())),
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The `options` setting (`key=value,key=value`): every option checked,
    /// each key at most once. Width and height belong to each derivative.
    pub fn parse_setting(text: &str) -> Result<Options, String> {
        let mut out = Options::default();
        for opt in text.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            let (key, value) =
                opt.split_once('=').ok_or_else(|| format!("setting `options`: `{opt}` is not `key=value`"))?;
            let (key, value) = (key.trim(), value.trim());
            if key == "width" || key == "height" {
                return Err(format!(
                    "setting `options`: `{key}` comes from each derivative; size derivatives with --derivatives NAME=WxH"
                ));
            }
            if out.get(key).is_some() {
                return Err(format!("setting `options`: `{key}` is given twice; give each option once"));
            }
            check(key, value).map_err(|e| format!("setting `options`: {e}"))?;
            out.set(key, value);
        }
        Ok(out)
    }

    /// The rules between options: `format` must suit `mode`, and audio
    /// output cannot be silent.
    pub fn check_combination(&self) -> Result<(), String> {
        let mode = self.get("mode").unwrap_or("video");
        if let Some(format) = self.get("format") {
            let allowed: &[&str] = match mode {
                "frame" => &["jpg", "png"],
                "audio" => &["m4a"],
                _ => &[],
            };
            if !allowed.contains(&format) {
                return Err(match allowed {
                    [] => format!("`format={format}` applies only to mode=frame (jpg, png) or mode=audio (m4a)"),
                    _ => format!("`format={format}` with mode={mode}: use one of {}", allowed.join(", ")),
                });
            }
        }
        if mode == "audio" && self.get("audio") == Some("false") {
            return Err("`audio=false` with mode=audio: audio output cannot be silent".into());
        }
        Ok(())
    }
}

/// Check one option's value against the documented set or range.
pub fn check(key: &str, value: &str) -> Result<(), String> {
    let one_of = |allowed: &[&str]| {
        if allowed.contains(&value) {
            Ok(())
        } else {
            Err(format!("`{key}={value}`: expected one of {}", allowed.join(", ")))
        }
    };
    match key {
        "mode" => one_of(&["video", "frame", "spritesheet", "audio"]),
        "fit" => one_of(&["contain", "scale-down", "cover"]),
        "audio" => one_of(&["true", "false"]),
        "format" => one_of(&["jpg", "png", "m4a"]),
        "time" => in_range(key, value, 0.0, 600.0, "0s to 10m"),
        "duration" => in_range(key, value, 1.0, 60.0, "1s to 60s"),
        "width" | "height" => match value.parse::<u32>() {
            Ok(px) if (10..=2000).contains(&px) => Ok(()),
            _ => Err(format!("`{key}={value}`: expected 10 to 2000 pixels")),
        },
        "filename" if is_filename(value) => Ok(()),
        "filename" => {
            Err(format!("`filename={value}`: at most 120 letters, digits, `-` and `_`, with an optional `.extension`"))
        }
        _ => Err(format!(
            "`{key}` is not a Media Transformations option (mode, time, duration, fit, audio, format, filename)"
        )),
    }
}

/// `value` as a time string (`5s`, `2m`, `1.5s`) within `[min, max]` seconds.
fn in_range(key: &str, value: &str, min: f64, max: f64, range: &str) -> Result<(), String> {
    let seconds = if let Some(n) = value.strip_suffix('s') {
        n.parse::<f64>().ok()
    } else {
        value.strip_suffix('m').and_then(|n| n.parse::<f64>().ok()).map(|m| m * 60.0)
    };
    match seconds {
        Some(s) if s.is_finite() && (min..=max).contains(&s) => Ok(()),
        Some(_) => Err(format!("`{key}={value}`: outside the allowed {range}")),
        None => Err(format!("`{key}={value}`: expected a time such as 5s or 2m ({range})")),
    }
}

/// The documented pattern `^[a-zA-Z0-9-_]+.?[a-zA-Z0-9-_]+$`, read as an
/// optional dot between two names, at most 120 characters.
fn is_filename(value: &str) -> bool {
    let name = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let parts_ok = match value.split_once('.') {
        Some((stem, ext)) => name(stem) && name(ext),
        None => value.len() >= 2 && name(value),
    };
    value.len() <= 120 && parts_ok
}
