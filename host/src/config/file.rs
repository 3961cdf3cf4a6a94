//! The config file (`--config FILE`, `PREWARM_CONFIG`): TOML read with the
//! line of every key, each key checked against the flags of the commands
//! it applies to, each value turned into what the flag would be given.
//!
//! Shape: top-level keys apply to every command that has that flag; a
//! `[warm]`, `[list]`, `[validate]` or `[optimize]` table to that command
//! only, and wins over the top level. In either place, `[settings]` holds
//! plugin settings (`key = "value"`, `env:VAR` and `file:PATH` as for
//! `--set`) and `[derivatives.NAME]` tables (`width`, `height`, the rest
//! options for the plugin) or a `derivatives = [...]` list stand for
//! `--derivatives`.

use std::path::Path;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::ConfigError;

/// The commands a config file configures.
pub const COMMANDS: [&str; 4] = ["warm", "list", "validate", "optimize"];

/// What a flag takes, for checking a file's value against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A switch: `true` or `false`.
    Switch,
    /// One value.
    One,
    /// Any number of values (a repeatable flag).
    Many,
}

/// A value from the file as the flag would be given it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Given {
    Switch(bool),
    Values(Vec<String>),
}

/// One flag's value from the file.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The key, which is the flag's long name.
    pub key: String,
    pub given: Given,
    pub line: usize,
}

/// One plugin setting from a `[settings]` table.
#[derive(Debug, Clone)]
pub struct SettingEntry {
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// The values one table (the top level or a command's) gives.
#[derive(Debug, Clone, Default)]
pub struct Section {
    pub options: Vec<Entry>,
    pub settings: Vec<SettingEntry>,
}

/// A read and checked config file.
#[derive(Debug, Clone)]
pub struct FileConfig {
    top: Section,
    commands: Vec<(String, Section)>,
}

/// What a command's flag `key` takes, or `None` when it has no such flag.
pub type ShapeOf<'a> = &'a dyn Fn(&str, &str) -> Option<Shape>;

impl FileConfig {
    /// Read `path` and check every key; `shape_of(command, key)` says what
    /// each command's flags take.
    pub fn read(path: &Path, shape_of: ShapeOf) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Unreadable { path: path.display().to_string(), reason: e.to_string() })?;
        let reader = Reader { path, text: &text, shape_of };
        let root = DeTable::parse(&text).map_err(|e| {
            let line = e.span().map_or(1, |s| reader.line(s.start));
            reader.error(line, e.message().trim().to_string())
        })?;
        let mut top = Section::default();
        let mut commands = Vec::new();
        for (key, value) in root.get_ref() {
            let name: &str = key.get_ref();
            if let (true, Some(table)) = (COMMANDS.contains(&name), value.get_ref().as_table()) {
                commands.push((name.to_string(), reader.section(table, &[name], &format!(" in [{name}]"))?));
                continue;
            }
            reader.key(&mut top, key, value, &COMMANDS, "")?;
        }
        Ok(FileConfig { top, commands })
    }

    /// What the file gives `command`: its own table's keys over the top
    /// level's (settings key by key; `derivatives` as a whole).
    pub fn section(&self, command: &str, has: impl Fn(&str) -> bool) -> Section {
        let own = self.commands.iter().find(|(c, _)| c == command).map(|(_, s)| s);
        let mut out = Section::default();
        for entry in self.top.options.iter().filter(|e| has(&e.key)) {
            if !own.is_some_and(|o| o.options.iter().any(|e| e.key == entry.key)) {
                out.options.push(entry.clone());
            }
        }
        out.settings = self.top.settings.clone();
        if let Some(own) = own {
            out.options.extend(own.options.iter().cloned());
            for s in &own.settings {
                out.settings.retain(|t| t.key != s.key);
                out.settings.push(s.clone());
            }
        }
        if !has("set") {
            out.settings.clear();
        }
        out
    }
}

struct Reader<'a> {
    path: &'a Path,
    text: &'a str,
    shape_of: ShapeOf<'a>,
}

type Key<'i> = Spanned<std::borrow::Cow<'i, str>>;
type Value<'i> = Spanned<DeValue<'i>>;

impl Reader<'_> {
    fn line(&self, offset: usize) -> usize {
        1 + self.text.as_bytes()[..offset.min(self.text.len())].iter().filter(|b| **b == b'\n').count()
    }

    fn error(&self, line: usize, message: String) -> ConfigError {
        ConfigError::At { path: self.path.display().to_string(), line, message }
    }

    fn section(&self, table: &DeTable, commands: &[&str], place: &str) -> Result<Section, ConfigError> {
        let mut section = Section::default();
        for (key, value) in table {
            self.key(&mut section, key, value, commands, place)?;
        }
        Ok(section)
    }

    /// The shape of `key` in the first of `commands` that has the flag.
    fn shape(&self, commands: &[&str], key: &str) -> Option<Shape> {
        commands.iter().find_map(|c| (self.shape_of)(c, key))
    }

    fn key(
        &self,
        section: &mut Section,
        key: &Key,
        value: &Value,
        commands: &[&str],
        place: &str,
    ) -> Result<(), ConfigError> {
        let (name, line) = (key.get_ref().as_ref(), self.line(key.span().start));
        let unknown = || self.error(line, format!("unknown key `{name}`{place}"));
        match name {
            "config" => return Err(self.error(line, "`config`: a config file cannot name another".into())),
            "set" => return Err(self.error(line, "`set`: give plugin settings in a [settings] table".into())),
            "settings" if self.shape(commands, "set").is_some() => {
                section.settings = self.settings(value)?;
                return Ok(());
            }
            "derivatives" if self.shape(commands, name).is_some() => {
                section.options.push(Entry { key: name.into(), given: self.derivatives(value)?, line });
                return Ok(());
            }
            _ => {}
        }
        let shape = self.shape(commands, name).ok_or_else(unknown)?;
        let given = self.given(name, shape, value.get_ref()).map_err(|m| self.error(line, m))?;
        section.options.push(Entry { key: name.into(), given, line });
        Ok(())
    }

    fn given(&self, key: &str, shape: Shape, value: &DeValue) -> Result<Given, String> {
        let found = |v: &DeValue| format!("found {} {}", article(v.type_str()), v.type_str());
        match (shape, value) {
            (Shape::Switch, DeValue::Boolean(b)) => Ok(Given::Switch(*b)),
            (Shape::Switch, v) => Err(format!("`{key}`: expected true or false, {}", found(v))),
            (Shape::One, v) => scalar(v)
                .map(|s| Given::Values(vec![s]))
                .ok_or_else(|| format!("`{key}`: expected one value (a string or a number), {}", found(v))),
            (Shape::Many, DeValue::Array(items)) => items
                .iter()
                .map(|i| scalar(i.get_ref()))
                .collect::<Option<Vec<_>>>()
                .map(Given::Values)
                .ok_or_else(|| format!("`{key}`: expected a list of strings or numbers")),
            (Shape::Many, v) => scalar(v)
                .map(|s| Given::Values(vec![s]))
                .ok_or_else(|| format!("`{key}`: expected a list of strings or numbers, {}", found(v))),
        }
    }

    fn settings(&self, value: &Value) -> Result<Vec<SettingEntry>, ConfigError> {
        let table = value.get_ref().as_table().ok_or_else(|| {
            self.error(self.line(value.span().start), "`settings`: expected a table of `key = \"value\"`".into())
        })?;
        table
            .iter()
            .map(|(k, v)| {
                let line = self.line(k.span().start);
                let value = scalar(v.get_ref()).ok_or_else(|| {
                    self.error(line, format!("setting `{}`: expected a string or a number", k.get_ref()))
                })?;
                Ok(SettingEntry { key: k.get_ref().to_string(), value, line })
            })
            .collect()
    }

    /// `derivatives = ["a", "b=WxH:opt=v"]`, or `[derivatives.NAME]` tables,
    /// as `--derivatives` values.
    fn derivatives(&self, value: &Value) -> Result<Given, ConfigError> {
        let line = self.line(value.span().start);
        match value.get_ref() {
            DeValue::Table(table) => {
                table.iter().map(|(name, d)| self.derivative(name, d)).collect::<Result<_, _>>().map(Given::Values)
            }
            v => self.given("derivatives", Shape::Many, v).map_err(|m| self.error(line, m)),
        }
    }

    /// `[derivatives.NAME]`: `width`, `height`, and options for the plugin.
    fn derivative(&self, name: &Key, value: &Value) -> Result<String, ConfigError> {
        let line = self.line(name.span().start);
        let name = name.get_ref();
        let table = value.get_ref().as_table().ok_or_else(|| {
            self.error(line, format!("`derivatives.{name}`: expected a table (width, height, options)"))
        })?;
        if name.is_empty() || name.contains([',', ':', '=']) {
            return Err(self.error(line, format!("`derivatives.{name}`: a name cannot hold `,`, `:` or `=`")));
        }
        let (mut width, mut height, mut options) = (None, None, Vec::new());
        for (k, v) in table {
            let line = self.line(k.span().start);
            let key = k.get_ref().as_ref();
            let value = scalar(v.get_ref()).filter(|s| !s.contains(',')).ok_or_else(|| {
                self.error(line, format!("`derivatives.{name}.{key}`: expected a string or a number without `,`"))
            })?;
            match key {
                "width" => width = Some(value),
                "height" => height = Some(value),
                _ if key.contains([',', ':', '=']) || key.is_empty() => {
                    return Err(self.error(line, format!("`derivatives.{name}`: bad option name `{key}`")));
                }
                _ => options.push(format!("{key}={value}")),
            }
        }
        let mut spec = match (width, height) {
            (Some(w), Some(h)) => format!("{name}={w}x{h}"),
            (Some(w), None) => format!("{name}={w}"),
            (None, Some(_)) => return Err(self.error(line, format!("`derivatives.{name}`: a height needs a width"))),
            (None, None) => name.to_string(),
        };
        if !options.is_empty() {
            spec.push(':');
            spec.push_str(&options.join(","));
        }
        Ok(spec)
    }
}

/// A string, number or boolean as the command line would spell it.
fn scalar(value: &DeValue) -> Option<String> {
    match value {
        DeValue::String(s) => Some(s.to_string()),
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok().map(|n| n.to_string()),
        DeValue::Float(f) => f.as_str().parse::<f64>().ok().map(|n| n.to_string()),
        DeValue::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shapes(command: &str, key: &str) -> Option<Shape> {
        match (command, key) {
            (_, "concurrency") if command != "list" => Some(Shape::One),
            (_, "json") => Some(Shape::Switch),
            (_, "include") => Some(Shape::Many),
            ("warm" | "validate", "set" | "derivatives") => Some(Shape::Many),
            ("list", "threshold") => Some(Shape::One),
            _ => None,
        }
    }

    fn read(text: &str) -> Result<FileConfig, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, text).unwrap();
        FileConfig::read(&path, &shapes)
    }

    fn err(text: &str) -> String {
        read(text).unwrap_err().to_string()
    }

    #[test]
    fn command_tables_win_over_the_top_level() {
        let f = read(
            "concurrency = 7\ninclude = [\"a/**\", \"b/**\"]\n[settings]\nurl = \"u1\"\ntoken = \"env:T\"\n\
             [warm]\nconcurrency = 9\n[warm.settings]\nurl = \"u2\"\n[list]\nthreshold = \"1MB\"\n",
        )
        .unwrap();
        let warm = f.section("warm", |k| shapes("warm", k).is_some());
        let got: Vec<(&str, &Given, usize)> = warm.options.iter().map(|e| (e.key.as_str(), &e.given, e.line)).collect();
        assert_eq!(
            got,
            [
                ("include", &Given::Values(vec!["a/**".into(), "b/**".into()]), 2),
                ("concurrency", &Given::Values(vec!["9".into()]), 7),
            ]
        );
        let settings: Vec<(&str, &str, usize)> =
            warm.settings.iter().map(|s| (s.key.as_str(), s.value.as_str(), s.line)).collect();
        assert_eq!(settings, [("token", "env:T", 5), ("url", "u2", 9)]);
        let list = f.section("list", |k| shapes("list", k).is_some());
        assert_eq!(list.options.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(), ["include", "threshold"]);
        assert!(list.settings.is_empty(), "list takes no settings");
    }

    #[test]
    fn derivative_tables_become_derivatives_values() {
        let f = read(
            "[derivatives.desktop]\n[derivatives.thumb]\nwidth = 640\nheight = 360\nmode = \"frame\"\ntime = \"2s\"\n\
             [validate]\nderivatives = [\"mobile\", \"hd=1280x720\"]\n",
        )
        .unwrap();
        let warm = f.section("warm", |k| shapes("warm", k).is_some());
        assert_eq!(
            warm.options[0].given,
            Given::Values(vec!["desktop".into(), "thumb=640x360:mode=frame,time=2s".into()])
        );
        let validate = f.section("validate", |k| shapes("validate", k).is_some());
        assert_eq!(validate.options.len(), 1);
        assert_eq!(validate.options[0].given, Given::Values(vec!["mobile".into(), "hd=1280x720".into()]));
    }

    #[test]
    fn unknown_keys_and_wrong_types_name_the_line() {
        assert!(err("concurrency = 1\n\nnope = 1\n").ends_with("p.toml line 3: unknown key `nope`"));
        assert!(err("[list]\nconcurrency = 4\n").ends_with("line 2: unknown key `concurrency` in [list]"));
        assert!(err("[probe]\nx = 1\n").ends_with("line 1: unknown key `probe`"));
        assert!(err("json = \"yes\"\n").ends_with("line 1: `json`: expected true or false, found a string"));
        assert!(
            err("concurrency = [1, 2]\n")
                .ends_with("line 1: `concurrency`: expected one value (a string or a number), found an array")
        );
        assert!(
            err("[warm]\n[warm.settings]\nurl = [1]\n")
                .ends_with("line 3: setting `url`: expected a string or a number")
        );
        assert!(err("[derivatives.t]\nheight = 3\n").ends_with("line 1: `derivatives.t`: a height needs a width"));
        assert!(err("[derivatives.t]\nwidth = 3\nfit = \"a,b\"\n").contains("line 3: `derivatives.t.fit`"));
        assert!(err("a = 1\na = 2\n").contains("line 2: duplicate key"), "{}", err("a = 1\na = 2\n"));
        let missing = FileConfig::read(Path::new("/nonexistent/p.toml"), &shapes).unwrap_err().to_string();
        assert!(missing.starts_with("/nonexistent/p.toml: cannot read"), "{missing}");
    }
}
