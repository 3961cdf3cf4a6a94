//! `prewarm plugins list | inspect`: what strategies there are and what
//! each accepts.

use std::io::Write;

use anyhow::Result;

use crate::Exit;
use crate::cli::{PluginsArgs, PluginsCommand};
use crate::plugin::{Derivative, PluginInfo, PluginRuntime, RuntimeOptions, SizeMethod, WIT_VERSION};

pub fn run(args: PluginsArgs) -> Result<Exit> {
    let runtime =
        PluginRuntime::new(RuntimeOptions { cache_dir: RuntimeOptions::default_cache_dir(), ..Default::default() })?;
    let mut out = std::io::stdout().lock();
    match args.command {
        PluginsCommand::New { name, dir } => return super::plugin_new::run(&name, dir),
        PluginsCommand::List { json } => {
            let infos = PluginRuntime::builtin_names()
                .map(|name| runtime.load(name).map(|p| p.info().clone()))
                .collect::<Result<Vec<_>, _>>()?;
            if json {
                serde_json::to_writer_pretty(&mut out, &infos)?;
                writeln!(out)?;
            } else {
                writeln!(out, "{:<18} {:<9} {:<6} DESCRIPTION", "NAME", "VERSION", "WIT")?;
                for i in &infos {
                    writeln!(out, "{:<18} {:<9} {:<6} {}", i.name, i.version, i.wit_version, i.description)?;
                }
                writeln!(
                    out,
                    "\nhost speaks prewarm:strategy@{WIT_VERSION}; load others with --plugin path/to/plugin.wasm"
                )?;
            }
        }
        PluginsCommand::Inspect { plugin, json } => {
            let loaded = runtime.load(&plugin)?;
            let info = loaded.info().clone();
            // Size methods may depend on settings; show those of the defaults.
            let mut instance = loaded.instantiate()?;
            let sizes: Option<Vec<(String, Vec<SizeMethod>)>> =
                instance.configure("https://cdn.example.com", &[]).ok().and_then(|_| {
                    info.default_derivatives
                        .iter()
                        .map(|d| instance.size_methods(d).ok().map(|m| (d.name.clone(), m)))
                        .collect()
                });
            if json {
                let value = serde_json::json!({ "plugin": info, "size_methods": sizes.map(|s| s.into_iter().collect::<std::collections::BTreeMap<_, _>>()) });
                serde_json::to_writer_pretty(&mut out, &value)?;
                writeln!(out)?;
            } else {
                print_inspect(&mut out, &info, sizes.as_deref())?;
            }
        }
    }
    Ok(Exit::Success)
}

fn dims(d: &Derivative) -> String {
    match (d.width, d.height) {
        (Some(w), Some(h)) => format!("{w}x{h}"),
        (Some(w), None) => format!("width {w}"),
        (None, Some(h)) => format!("height {h}"),
        (None, None) => "-".into(),
    }
}

fn print_inspect(
    out: &mut impl Write,
    info: &PluginInfo,
    sizes: Option<&[(String, Vec<SizeMethod>)]>,
) -> std::io::Result<()> {
    writeln!(out, "{} {} (prewarm:strategy@{})", info.name, info.version, info.wit_version)?;
    writeln!(out, "{}\n", info.description)?;
    writeln!(out, "Settings (--set KEY=VALUE):")?;
    if info.settings.is_empty() {
        writeln!(out, "  (none)")?;
    }
    for s in &info.settings {
        let default = s.default_value.as_deref().map(|d| format!(" [default: {d}]")).unwrap_or_default();
        writeln!(out, "  {:<16} {}{default}", s.key, s.description)?;
    }
    writeln!(out, "\nDefault derivatives:")?;
    for d in &info.default_derivatives {
        let opts: Vec<String> = d.options.iter().map(|(k, v)| format!("{k}={v}")).collect();
        writeln!(out, "  {:<12} {:<10} {}", d.name, dims(d), opts.join(","))?;
    }
    writeln!(out, "\nLimits:")?;
    match info.max_source_bytes {
        Some(max) => writeln!(out, "  max source size: {} ({max} bytes)", crate::util::size::human(max))?,
        None => writeln!(out, "  none declared")?,
    }
    writeln!(out, "\nSize methods (most preferred first):")?;
    match sizes {
        Some(list) => {
            for (name, methods) in list {
                let m: Vec<&str> = methods.iter().map(|m| m.as_str()).collect();
                writeln!(out, "  {:<12} {}", name, m.join(" > "))?;
            }
        }
        None => writeln!(out, "  (depend on settings this plugin requires)")?,
    }
    Ok(())
}
