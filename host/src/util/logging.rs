//! Logging through `tracing` to stderr: `-v` for info, `-vv` for debug,
//! `RUST_LOG` for anything finer. Colour only when stderr is a terminal and
//! `NO_COLOR` is unset or empty (https://no-color.org), so logs piped to a
//! file or another program carry no escape codes. `--log-format json`
//! writes one JSON object per line instead (time, level, target, message,
//! fields), secrets scrubbed from every string before it is encoded; the
//! end-of-run text that commands print on stderr goes through [`print`],
//! so under JSON every stderr line parses.

use std::io::{IsTerminal, Write};
use std::sync::OnceLock;

use tracing::field::{Field, Visit};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, format::Writer};
use tracing_subscriber::registry::LookupSpan;

use crate::cli::LogFormat;
use crate::util::redact::redact_text;

static FORMAT: OnceLock<LogFormat> = OnceLock::new();

pub fn init(verbose: u8, format: LogFormat) {
    let _ = FORMAT.set(format);
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(|| crate::util::redact::ScrubbedStderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(colour(std::io::stderr().is_terminal(), std::env::var_os("NO_COLOR")))
            .with_target(false)
            .try_init(),
        LogFormat::Json => builder.with_ansi(false).event_format(JsonLines).try_init(),
    };
}

/// Whether log lines are JSON objects.
pub fn json() -> bool {
    FORMAT.get() == Some(&LogFormat::Json)
}

/// Text meant for a person on stderr (a run's summary, a final error): as
/// is under text logs, one JSON log object (`message` holding the text,
/// `level` as given) under `--log-format json`.
pub fn print(level: tracing::Level, text: &str) {
    let text = redact_text(text);
    let mut err = std::io::stderr().lock();
    if json() {
        let line = serde_json::json!({
            "time": crate::record::now_rfc3339(), "level": level.as_str(), "target": "prewarm",
            "message": text.trim(), "fields": {},
        });
        let _ = writeln!(err, "{line}");
    } else {
        let _ = err.write_all(text.as_bytes());
    }
}

/// Whether to colour: on a terminal, unless `NO_COLOR` holds anything.
fn colour(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// `--log-format json`: `{"time","level","target","message","fields":{…}}`.
struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        let line = serde_json::json!({
            "time": crate::record::now_rfc3339(),
            "level": meta.level().as_str(),
            "target": meta.target(),
            "message": fields.message,
            "fields": fields.other,
        });
        writeln!(w, "{line}")
    }
}

/// An event's fields, every string scrubbed of secrets.
#[derive(Default)]
struct Fields {
    message: String,
    other: serde_json::Map<String, serde_json::Value>,
}

impl Fields {
    fn put(&mut self, field: &Field, value: serde_json::Value) {
        if field.name() == "message" {
            self.message = value.as_str().map(str::to_string).unwrap_or_else(|| value.to_string());
        } else {
            self.other.insert(field.name().to_string(), value);
        }
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, redact_text(&format!("{value:?}")).into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, redact_text(value).into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(super::colour(true, None));
        assert!(super::colour(true, Some("".into())));
        assert!(!super::colour(true, Some("1".into())));
        assert!(!super::colour(false, None));
    }

    #[test]
    fn fields_are_scrubbed_and_split_from_the_message() {
        use tracing::field::Visit;
        crate::util::redact::register_secret("s3cr3t-token-value");
        let mut fields = super::Fields::default();
        let cs = tracing::callsite::Identifier(&CALLSITE);
        let set = tracing::field::FieldSet::new(&["message", "url", "n"], cs);
        let mut it = set.iter();
        fields.record_str(&it.next().unwrap(), "asking https://u:s3cr3t-token-value@h/x");
        fields.record_str(&it.next().unwrap(), "https://h/?token=s3cr3t-token-value");
        fields.record_u64(&it.next().unwrap(), 7);
        assert!(!fields.message.contains("s3cr3t"), "{}", fields.message);
        assert!(!fields.other["url"].as_str().unwrap().contains("s3cr3t"));
        assert_eq!(fields.other["n"], 7);
    }

    struct Callsite;
    impl tracing::callsite::Callsite for Callsite {
        fn set_interest(&self, _: tracing::subscriber::Interest) {}
        fn metadata(&self) -> &tracing::Metadata<'_> {
            unimplemented!()
        }
    }
    static CALLSITE: Callsite = Callsite;
}
