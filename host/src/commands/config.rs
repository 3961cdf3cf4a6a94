//! `prewarm config show`: each value a command would run with and where it
//! came from (`flag`, `env PREWARM_X`, `file PATH:LINE`, `default`).
//! Secrets stay hidden: settings the plugin declares secret and settings
//! whose names say credential show as `REDACTED`, `env:`/`file:` references
//! as written (never what they point to), URLs without their credentials.

use std::ffi::OsString;
use std::io::Write;

use anyhow::Result;
use clap::{Arg, ArgAction, ArgMatches};
use serde_json::{Map, Value};

use crate::Exit;
use crate::cli::{ConfigArgs, ConfigCommand, ConfigShowArgs, ConfigTarget};
use crate::config::{self, Origin, ParseError};
use crate::plugin::{PluginRuntime, RuntimeOptions, SettingInfo};
use crate::util::redact::redact_text;

pub fn run(args: ConfigArgs) -> Result<Exit> {
    match args.command {
        ConfigCommand::Show(show) => run_show(show),
    }
}

/// One shown value.
struct Row {
    key: String,
    value: Value,
    origin: Origin,
}

fn run_show(show: ConfigShowArgs) -> Result<Exit> {
    let target = match show.command {
        ConfigTarget::Warm => "warm",
        ConfigTarget::List => "list",
        ConfigTarget::Validate => "validate",
        ConfigTarget::Optimize => "optimize",
    };
    let argv: Vec<OsString> = ["prewarm", target].map(OsString::from).into_iter().chain(show.args).collect();
    let cmd = crate::cli::command();
    let layered = match config::resolve(&cmd, &argv, true) {
        Ok(layered) => layered,
        Err(ParseError::Clap(e)) => e.exit(),
        Err(ParseError::Config(e)) => {
            eprintln!("config error: {}", redact_text(&e.to_string()));
            return Ok(Exit::Usage);
        }
    };
    let (_, sub) = layered.matches.subcommand().expect("config show parses a subcommand");
    let sub_cmd = cmd.find_subcommand(target).expect("a known subcommand");
    let options: Vec<Row> = sub_cmd.get_arguments().filter_map(|arg| row(&layered, sub, arg)).collect();
    let settings = settings_rows(&layered, sub)?;
    // The command's own `--json`, given among its flags, asks for JSON too.
    let typed_json = sub_cmd.get_arguments().find(|a| a.get_id() == "json").and_then(|a| layered.origin(sub, a));
    let json = show.json || typed_json == Some(Origin::Flag);
    let file = layered.file.as_ref().map(|p| p.display().to_string());
    let mut out = std::io::stdout().lock();
    if json {
        let rows = |rows: &[Row]| -> Map<String, Value> {
            rows.iter()
                .map(|r| {
                    let mut m = Map::from_iter([("value".to_string(), r.value.clone())]);
                    m.extend(r.origin.to_json());
                    (r.key.clone(), Value::Object(m))
                })
                .collect()
        };
        let doc = serde_json::json!({
            "command": target, "config_file": file, "options": rows(&options), "settings": rows(&settings),
        });
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
    } else {
        writeln!(out, "prewarm {target}: flag > env PREWARM_* > file > default")?;
        writeln!(out, "config file: {}", file.as_deref().unwrap_or("none"))?;
        let all: Vec<(String, &Row)> = options
            .iter()
            .map(|r| (r.key.clone(), r))
            .chain(settings.iter().map(|r| (format!("settings.{}", r.key), r)))
            .collect();
        let width = all.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let vwidth = all.iter().map(|(_, r)| text(&r.value).len()).max().unwrap_or(0).min(60);
        for (key, r) in all {
            writeln!(out, "  {key:width$}  {:vwidth$}  {}", text(&r.value), r.origin)?;
        }
    }
    Ok(Exit::Success)
}

/// A flag's value and origin; `None` for flags without a value.
fn row(layered: &config::Layered, sub: &ArgMatches, arg: &Arg) -> Option<Row> {
    let long = arg.get_long().filter(|l| !matches!(*l, "config" | "set"))?;
    let origin = layered.origin(sub, arg)?;
    let raw: Vec<String> =
        sub.get_raw(arg.get_id().as_str())?.map(|v| redact_text(&shown(long, &v.to_string_lossy()))).collect();
    let scalar = |v: &String| match config::expects_number(arg) {
        Some(_) => {
            v.parse::<u64>().map(Value::from).or_else(|_| v.parse::<f64>().map(Value::from)).unwrap_or(v.clone().into())
        }
        None => Value::from(v.clone()),
    };
    let value = match arg.get_action() {
        ArgAction::SetTrue | ArgAction::SetFalse => {
            Value::Bool(sub.try_get_one::<bool>(arg.get_id().as_str()).ok().flatten().copied().unwrap_or(false))
        }
        ArgAction::Append => Value::Array(raw.iter().map(scalar).collect()),
        _ => raw.first().map_or(Value::Null, scalar),
    };
    Some(Row { key: long.to_string(), value, origin })
}

/// A value as `config show` shows it: a credential header's value, an
/// rclone secret (in a remote or a flag) replaced by `REDACTED`.
fn shown(long: &str, value: &str) -> String {
    use crate::util::rclone_secrets::{redact_flag, redact_remote};
    match long {
        "header" => crate::warm::routes::shown_header(value),
        "variant" => crate::warm::routes::shown_variant(value),
        "rclone-flag" => redact_flag(value),
        _ => redact_remote(value),
    }
}

/// `--set` values key by key, shown as written with secrets hidden.
fn settings_rows(layered: &config::Layered, sub: &ArgMatches) -> Result<Vec<Row>> {
    let Ok(Some(raw)) = sub.try_get_raw("settings") else { return Ok(Vec::new()) };
    let declared = declared_settings(sub)?;
    Ok(raw
        .filter_map(|v| {
            let (key, value) = v.to_str()?.split_once('=')?;
            let shown = crate::plugin::settings::shown_as_written(key.trim(), value, &declared);
            Some(Row { key: key.trim().to_string(), value: shown.into(), origin: layered.setting_origin(key.trim()) })
        })
        .collect())
}

/// What the chosen plugin declares (which settings are secret); nothing
/// when no plugin is chosen.
fn declared_settings(sub: &ArgMatches) -> Result<Vec<SettingInfo>> {
    let Ok(Some(plugin)) = sub.try_get_one::<String>("plugin") else { return Ok(Vec::new()) };
    let runtime =
        PluginRuntime::new(RuntimeOptions { cache_dir: RuntimeOptions::default_cache_dir(), ..Default::default() })?;
    Ok(runtime.load(plugin)?.info().settings.clone())
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(", "),
        Value::Null => "-".into(),
        v => v.to_string(),
    }
}
