//! The layering: a first parse without required flags tells which values
//! the command line and the environment set (clap's value sources); the
//! file's values for every other flag are then put in front of the user's
//! arguments, as if typed, and the line is parsed again for real. A file
//! value is dropped when the user set the flag, or a flag it conflicts
//! with (`--listing` given drops the file's `source`). Lists are replaced
//! whole; plugin settings key by key (flag, then `PREWARM_SETTING_<KEY>`,
//! then the file's `[settings]`).

use std::any::TypeId;
use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use clap::builder::{BoolishValueParser, Resettable};
use clap::error::{ContextKind, ContextValue};
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};

use super::file::{COMMANDS, FileConfig, Given, Section, Shape};
use super::{ConfigError, Origin, ParseError};

/// `PREWARM_SETTING_<KEY>` sets the plugin setting `key` (`_` read as `-`).
pub const SETTING_PREFIX: &str = "PREWARM_SETTING_";

/// Flags that take no `PREWARM_<FLAG>`: settings have one variable per key.
const NO_ENV: &[&str] = &["set"];

/// `PREWARM_<FLAG>`: `--base-url` is `PREWARM_BASE_URL`.
pub fn env_name(long: &str) -> String {
    format!("PREWARM_{}", long.to_ascii_uppercase().replace('-', "_"))
}

/// Every flag of warm, list, validate and optimize reads `PREWARM_<FLAG>`
/// unless it already names its variable (`--rclone`: `PREWARM_RCLONE`).
/// Switches read 1/0, yes/no, on/off and true/false there.
pub fn with_environment(cmd: Command) -> Command {
    COMMANDS.iter().fold(cmd, |cmd, name| {
        cmd.mut_subcommand(name, |sub| {
            sub.mut_args(|a| {
                let a = match a.get_action() {
                    ArgAction::SetTrue => a.value_parser(BoolishValueParser::new()),
                    _ => a,
                };
                match a.get_long() {
                    Some(long) if a.get_env().is_none() && !NO_ENV.contains(&long) => {
                        let var = env_name(long);
                        a.env(var)
                    }
                    _ => a,
                }
            })
        })
    })
}

/// A parsed command line and where its layered values came from.
#[derive(Debug)]
pub struct Layered {
    /// The whole command line's matches, file values included.
    pub matches: ArgMatches,
    /// The config file read, if any.
    pub file: Option<PathBuf>,
    /// Values the file gave, by arg id (clap counts them as typed).
    from_file: HashMap<String, Origin>,
    /// Settings the environment or the file gave, by key.
    settings: HashMap<String, Origin>,
    /// Flags (long names) and settings (`settings.KEY`) the file or the
    /// environment gave, for errors found after parsing.
    given: Vec<(String, Origin)>,
}

impl Layered {
    /// Where the value of `arg` in the subcommand's `sub` came from; `None`
    /// when it has none.
    pub fn origin(&self, sub: &ArgMatches, arg: &Arg) -> Option<Origin> {
        let id = arg.get_id().as_str();
        if let Some(o) = self.from_file.get(id) {
            return Some(o.clone());
        }
        Some(match sub.value_source(id)? {
            ValueSource::CommandLine => Origin::Flag,
            ValueSource::EnvVariable => {
                Origin::Env(arg.get_env().map(|v| v.to_string_lossy().into_owned()).unwrap_or_default())
            }
            _ => Origin::Default,
        })
    }

    /// Where the plugin setting `key` came from.
    pub fn setting_origin(&self, key: &str) -> Origin {
        self.settings.get(key).cloned().unwrap_or(Origin::Flag)
    }

    /// An error found after parsing, told with where the flag or setting it
    /// names came from when that was not the command line.
    pub fn annotate(&self, message: &str) -> String {
        let named = self.given.iter().find(|(name, _)| match name.strip_prefix("settings.") {
            Some(key) => message.contains(&format!("setting `{key}`")) || message.contains(&format!("--set {key}=")),
            None => [" ", ":", "=", "`"].iter().any(|end| message.contains(&format!("--{name}{end}"))),
        });
        match named {
            Some((name, origin)) => match name.strip_prefix("settings.") {
                Some(key) => format!("{message} (setting `{key}` from {origin})"),
                None => format!("{message} (--{name} from {origin})"),
            },
            None => message.to_string(),
        }
    }

    fn new(matches: ArgMatches, plan: Plan, sub_cmd: Option<&Command>) -> Self {
        let mut layered =
            Layered { matches, file: plan.file, from_file: plan.from_file, settings: plan.settings, given: Vec::new() };
        let (Some(sub_cmd), Some((_, sub))) = (sub_cmd, layered.matches.subcommand()) else { return layered };
        super::register_rclone_secrets(sub);
        let mut given: Vec<(String, Origin)> = sub_cmd
            .get_arguments()
            .filter_map(|a| Some((a.get_long()?.to_string(), layered.origin(sub, a)?)))
            .filter(|(_, o)| matches!(o, Origin::File { .. } | Origin::Env(_)))
            .collect();
        given.extend(layered.settings.iter().map(|(k, o)| (format!("settings.{k}"), o.clone())));
        layered.given = given;
        layered
    }
}

/// Parse `argv` with the environment and the config file under it.
/// `lenient` skips the required-flag checks (for `config show`).
pub fn resolve(cmd: &Command, argv: &[OsString], lenient: bool) -> Result<Layered, ParseError> {
    // Conflicts wait for the last parse: a typed flag drops the value of a
    // flag it conflicts with from the environment, as from the file.
    let first = match relax(cmd.clone(), true).try_get_matches_from(argv) {
        Ok(m) => m,
        // The real command's answer: its help, or its error.
        Err(e) => return Err(blame_env(cmd, argv, cmd.clone().try_get_matches_from(argv).err().unwrap_or(e))),
    };
    let last = if lenient { relax(cmd.clone(), false) } else { cmd.clone() };
    let Some((name, sub)) = first.subcommand().filter(|(n, _)| COMMANDS.contains(n)) else {
        let matches = last.try_get_matches_from(argv)?;
        return Ok(Layered::new(matches, Plan::default(), None));
    };
    let sub_cmd = cmd.find_subcommand(name).expect("a parsed subcommand exists");
    let plan = Plan::new(cmd, sub_cmd, name, sub)?;
    let at = argv.iter().skip(1).position(|a| a == name).map_or(argv.len(), |i| i + 2);
    let spliced: Vec<OsString> =
        argv[..at].iter().cloned().chain(plan.args.iter().cloned()).chain(argv[at..].iter().cloned()).collect();
    let last = plan.env_dropped.iter().fold(last, |last, id| {
        last.mut_subcommand(name, |s| s.mut_arg(id, |a| a.env(Resettable::<clap::builder::OsStr>::Reset)))
    });
    let matches = last.try_get_matches_from(&spliced).map_err(|e| match plan.explain(sub_cmd, e) {
        ParseError::Clap(e) => blame_env(cmd, argv, e),
        told => told,
    })?;
    Ok(Layered::new(matches, plan, Some(sub_cmd)))
}

/// A clap error about a flag the user did not type comes from its
/// `PREWARM_<FLAG>` variable: say so.
fn blame_env(cmd: &Command, argv: &[OsString], e: clap::Error) -> ParseError {
    let Some(ContextValue::String(shown)) = e.get(ContextKind::InvalidArg) else { return e.into() };
    let flag = shown.split([' ', '=']).next().unwrap_or_default();
    let typed = argv.iter().filter_map(|a| a.to_str()).any(|a| a == flag || a.starts_with(&format!("{flag}=")));
    let var = cmd
        .get_subcommands()
        .flat_map(|s| s.get_arguments())
        .find(|a| a.get_long() == Some(flag.trim_start_matches('-')))
        .and_then(|a| a.get_env())
        .filter(|var| std::env::var_os(var).is_some());
    match (typed, var) {
        (false, Some(var)) => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default().trim_start_matches("error: ");
            ConfigError::Env { var: var.to_string_lossy().into_owned(), message: first.to_string() }.into()
        }
        _ => e.into(),
    }
}

/// The same command line without required flags (they may come from the
/// file) and, with `conflicts`, without conflicts.
fn relax(cmd: Command, conflicts: bool) -> Command {
    COMMANDS.iter().fold(cmd, |cmd, name| {
        cmd.mut_subcommand(name, |sub| {
            sub.mut_args(|a| {
                let a = a.required(false).required_unless_present(Resettable::Reset).requires(Resettable::Reset);
                if conflicts { a.conflicts_with(Resettable::Reset) } else { a }
            })
        })
    })
}

/// What a command's flag takes.
fn shape_of(cmd: &Command, command: &str, key: &str) -> Option<Shape> {
    let arg = find_long(cmd.find_subcommand(command)?, key)?;
    Some(match arg.get_action() {
        ArgAction::SetTrue | ArgAction::SetFalse => Shape::Switch,
        ArgAction::Append => Shape::Many,
        _ => Shape::One,
    })
}

fn find_long<'a>(cmd: &'a Command, long: &str) -> Option<&'a Arg> {
    cmd.get_arguments().find(|a| a.get_long() == Some(long))
}

fn conflict(cmd: &Command, a: &Arg, b: &Arg) -> bool {
    let names = |x: &Arg, y: &Arg| cmd.get_arg_conflicts_with(x).iter().any(|c| c.get_id() == y.get_id());
    names(a, b) || names(b, a)
}

/// What the number-typed flags expect, for errors about a file's value.
pub fn expects_number(arg: &Arg) -> Option<&'static str> {
    let t = arg.get_value_parser().type_id();
    let whole = [TypeId::of::<usize>(), TypeId::of::<u64>(), TypeId::of::<u32>(), TypeId::of::<u16>()];
    if whole.iter().any(|w| t == *w) {
        Some("a whole number")
    } else if t == TypeId::of::<f64>() {
        Some("a number")
    } else {
        None
    }
}

/// The file's and the environment's values to add, and their origins.
#[derive(Default)]
struct Plan {
    file: Option<PathBuf>,
    args: Vec<OsString>,
    from_file: HashMap<String, Origin>,
    /// Long flag name to the line that gave it, for errors.
    lines: HashMap<String, usize>,
    settings: HashMap<String, Origin>,
    /// Flags whose environment value a typed flag overrides by conflict.
    env_dropped: Vec<String>,
}

impl Plan {
    fn new(cmd: &Command, sub_cmd: &Command, name: &str, sub: &ArgMatches) -> Result<Plan, ConfigError> {
        let source = |a: &Arg| sub.value_source(a.get_id().as_str());
        let typed = |a: &Arg| source(a) == Some(ValueSource::CommandLine);
        let mut plan = Plan { file: sub.get_one::<PathBuf>("config").cloned(), ..Plan::default() };
        for arg in sub_cmd.get_arguments().filter(|a| source(a) == Some(ValueSource::EnvVariable)) {
            if sub_cmd.get_arguments().any(|o| typed(o) && conflict(sub_cmd, arg, o)) {
                plan.env_dropped.push(arg.get_id().to_string());
            }
        }
        let dropped = plan.env_dropped.clone();
        let explicit = |a: &Arg| {
            typed(a) || (source(a) == Some(ValueSource::EnvVariable) && !dropped.iter().any(|d| d == a.get_id()))
        };
        let section = match &plan.file {
            Some(path) => {
                FileConfig::read(path, &|c, k| shape_of(cmd, c, k))?.section(name, |k| find_long(sub_cmd, k).is_some())
            }
            None => Section::default(),
        };
        let path = plan.file.clone().unwrap_or_default();
        for entry in &section.options {
            let Some(arg) = find_long(sub_cmd, &entry.key) else { continue };
            if explicit(arg) || sub_cmd.get_arguments().any(|o| explicit(o) && conflict(sub_cmd, arg, o)) {
                continue;
            }
            match &entry.given {
                Given::Switch(on) => plan.args.extend(on.then(|| format!("--{}", entry.key).into())),
                Given::Values(values) => plan.args.extend(values.iter().map(|v| format!("--{}={v}", entry.key).into())),
            }
            plan.from_file.insert(arg.get_id().to_string(), Origin::File { path: path.clone(), line: entry.line });
            plan.lines.insert(entry.key.clone(), entry.line);
        }
        if let Some(set) = find_long(sub_cmd, "set") {
            let typed = if explicit(set) { sub.get_raw(set.get_id().as_str()) } else { None };
            plan.add_settings(typed.into_iter().flatten(), &section, &path);
        }
        Ok(plan)
    }

    /// Settings key by key: those typed stay, then `PREWARM_SETTING_<KEY>`
    /// for the keys left, then the file's for the keys still left.
    fn add_settings<'a>(&mut self, typed: impl Iterator<Item = &'a OsStr>, section: &Section, path: &Path) {
        let mut taken: HashSet<String> =
            typed.filter_map(|v| Some(v.to_str()?.split_once('=')?.0.trim().to_string())).collect();
        let from_file = section
            .settings
            .iter()
            .map(|s| (s.key.clone(), s.value.clone(), Origin::File { path: path.to_path_buf(), line: s.line }));
        for (key, value, origin) in env_settings().chain(from_file) {
            if taken.insert(key.clone()) {
                self.args.push(format!("--set={key}={value}").into());
                self.settings.insert(key, origin);
            }
        }
    }

    /// A clap error about a value from the file, told with its line.
    fn explain(&self, sub_cmd: &Command, e: clap::Error) -> ParseError {
        let Some(ContextValue::String(shown)) = e.get(ContextKind::InvalidArg) else { return e.into() };
        let flag = shown.split([' ', '=']).next().unwrap_or_default().trim_start_matches('-');
        let (Some(line), Some(path)) = (self.lines.get(flag), &self.file) else { return e.into() };
        let text = e.to_string();
        let first = text.lines().next().unwrap_or_default().trim_start_matches("error: ");
        let expected =
            find_long(sub_cmd, flag).and_then(expects_number).map(|x| format!(" (expected {x})")).unwrap_or_default();
        ConfigError::At {
            path: path.display().to_string(),
            line: *line,
            message: format!("`{flag}`: {first}{expected}"),
        }
        .into()
    }
}

/// `PREWARM_SETTING_<KEY>=VALUE` as (key, value, origin), by variable name.
fn env_settings() -> impl Iterator<Item = (String, String, Origin)> {
    let mut found: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let key = k.to_str()?.strip_prefix(SETTING_PREFIX)?.to_string();
            Some((key, v.into_string().ok()?))
        })
        .filter(|(k, _)| !k.is_empty())
        .collect();
    found.sort();
    found
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase().replace('_', "-"), v, Origin::Env(format!("{SETTING_PREFIX}{k}"))))
}
