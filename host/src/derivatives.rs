//! `--derivatives` as users write it: names of the plugin's defaults,
//! new ones as NAME=WIDTHxHEIGHT, and options for the plugin after a colon
//! (`thumb=640x360:mode=frame,time=2s`), which reach it in the
//! derivative's `options`. Values are comma-separated; in one value the
//! options belong to its last derivative and run to the value's end, so
//! `hd=1280x720,thumb=640x360:mode=frame,time=2s` is two derivatives. A
//! default's name with options keeps its size and overrides its options
//! key by key (`thumbnail:time=5s`).

use anyhow::Result;

use crate::plugin::{Derivative, Plugin};
use crate::usage;

/// The derivatives `wanted` names, against the plugin's defaults; all of
/// them when `wanted` is empty.
pub fn resolve(plugin: &Plugin, wanted: &[String]) -> Result<Vec<Derivative>> {
    let info = plugin.info();
    resolve_against(&info.name, &info.default_derivatives, wanted).map_err(usage)
}

/// [`resolve`] with the plugin's name and defaults given.
pub fn resolve_against(plugin: &str, defaults: &[Derivative], wanted: &[String]) -> Result<Vec<Derivative>, String> {
    if wanted.iter().all(|w| w.trim().is_empty()) {
        if defaults.is_empty() {
            return Err(format!("plugin `{plugin}` has no default derivatives: name them with --derivatives NAME=WxH"));
        }
        return Ok(defaults.to_vec());
    }
    let mut out: Vec<Derivative> = Vec::new();
    for value in wanted {
        for d in parse_value(value, plugin, defaults)? {
            if out.iter().any(|o| o.name == d.name) {
                return Err(format!("--derivatives: `{}` given twice", d.name));
            }
            out.push(d);
        }
    }
    Ok(out)
}

/// One `--derivatives` value: `a,b=WxH,c=WxH:opt=v,opt=v`.
fn parse_value(value: &str, plugin: &str, defaults: &[Derivative]) -> Result<Vec<Derivative>, String> {
    let (list, options) = match value.split_once(':') {
        Some((list, options)) => (list, Some(parse_options(value, options)?)),
        None => (value, None),
    };
    let items: Vec<&str> = list.split(',').map(str::trim).collect();
    if options.is_some() && items.last().is_none_or(|i| i.is_empty()) {
        return Err(format!("--derivatives `{value}`: options (after `:`) need a derivative before them"));
    }
    let mut out = Vec::new();
    let last = items.len() - 1;
    for (i, item) in items.into_iter().enumerate().filter(|(_, item)| !item.is_empty()) {
        let mut d = parse_item(item, plugin, defaults)?;
        if let (true, Some(options)) = (i == last, &options) {
            for (k, v) in options {
                match d.options.iter_mut().find(|(dk, _)| dk == k) {
                    Some(existing) => existing.1 = v.clone(),
                    None => d.options.push((k.clone(), v.clone())),
                }
            }
        }
        out.push(d);
    }
    Ok(out)
}

fn parse_options(value: &str, options: &str) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for option in options.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        let (k, v) = option
            .split_once('=')
            .filter(|(k, _)| !k.trim().is_empty())
            .ok_or_else(|| format!("--derivatives `{value}`: option `{option}` is not KEY=VALUE"))?;
        if out.iter().any(|(o, _)| o == k.trim()) {
            return Err(format!("--derivatives `{value}`: option `{}` given twice", k.trim()));
        }
        out.push((k.trim().to_string(), v.trim().to_string()));
    }
    if out.is_empty() {
        return Err(format!("--derivatives `{value}`: nothing after `:` (give KEY=VALUE options)"));
    }
    Ok(out)
}

/// `NAME` (a default) or `NAME=W[xH]` (a new derivative).
fn parse_item(item: &str, plugin: &str, defaults: &[Derivative]) -> Result<Derivative, String> {
    if let Some((name, dims)) = item.split_once('=') {
        let (width, height) = match dims.split_once(['x', 'X']) {
            Some((a, b)) => (a.parse().ok(), b.parse().ok()),
            None => (dims.parse().ok(), None),
        };
        let bad = width.is_none() || (dims.contains(['x', 'X']) && height.is_none());
        if name.trim().is_empty() || bad {
            return Err(format!(
                "--derivatives `{item}`: expected NAME or NAME=WIDTHxHEIGHT (e.g. hd=1280x720), options after `:`"
            ));
        }
        return Ok(Derivative { name: name.trim().to_string(), width, height, options: Vec::new() });
    }
    defaults.iter().find(|d| d.name == item).cloned().ok_or_else(|| {
        let known: Vec<&str> = defaults.iter().map(|d| d.name.as_str()).collect();
        format!(
            "--derivatives: `{item}` is not a derivative of `{plugin}` (known: {}; or define NAME=WxH)",
            known.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(name: &str, w: u32, h: u32, options: &[(&str, &str)]) -> Derivative {
        let options = options.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Derivative { name: name.into(), width: Some(w), height: Some(h), options }
    }

    fn defaults() -> Vec<Derivative> {
        vec![d("desktop", 1920, 1080, &[]), d("thumbnail", 640, 360, &[("mode", "frame"), ("time", "2s")])]
    }

    fn parse(values: &[&str]) -> Result<Vec<Derivative>, String> {
        resolve_against("p", &defaults(), &values.iter().map(|v| v.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn options_follow_the_last_derivative_of_a_value() {
        assert_eq!(
            parse(&["desktop,thumb=640x360:mode=frame,time=2s", "hd=1280"]).unwrap(),
            [
                d("desktop", 1920, 1080, &[]),
                d("thumb", 640, 360, &[("mode", "frame"), ("time", "2s")]),
                Derivative { name: "hd".into(), width: Some(1280), height: None, options: vec![] },
            ]
        );
        // A default keeps its size; its options are overridden key by key.
        assert_eq!(
            parse(&["thumbnail:time=5s,fit=cover"]).unwrap(),
            [d("thumbnail", 640, 360, &[("mode", "frame"), ("time", "5s"), ("fit", "cover")])]
        );
        assert_eq!(parse(&[]).unwrap(), defaults());
    }

    #[test]
    fn bad_values_say_what_is_wrong() {
        let err = |v: &str| parse(&[v]).unwrap_err();
        assert!(err("thumb=640x360:mode").contains("option `mode` is not KEY=VALUE"), "{}", err("thumb=640x360:mode"));
        assert!(err("desktop,:mode=frame").contains("need a derivative before them"));
        assert!(err("thumb=640x:mode=frame").contains("expected NAME or NAME=WIDTHxHEIGHT"));
        assert!(err("t=1x1:a=1,a=2").contains("option `a` given twice"));
        assert!(err("t=1x1:").contains("nothing after `:`"));
        assert!(err("nope:a=b").contains("`nope` is not a derivative of `p` (known: desktop, thumbnail"));
        assert!(parse(&["desktop", "desktop"]).unwrap_err().contains("`desktop` given twice"));
    }
}
