//! The `prewarm` binary: parse (flags over `PREWARM_*` over the config
//! file), set up logging, run, map the outcome to an
//! exit code (0 all warm, 3 some pairs failed, 2 usage or input error, 1
//! anything else); a stdout closed by its reader ends quietly, by SIGPIPE.
//! Panic messages, like every other line, pass the secret scrubber.

use prewarm::config::ParseError;

fn main() -> std::process::ExitCode {
    prewarm::util::redact::scrub_panic_messages();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    prewarm::util::argv::hide_evident_secrets(args.iter().map(|a| a.as_os_str()));
    let (cli, layered) = match prewarm::config::parse_cli(args) {
        Ok(parsed) => parsed,
        Err(ParseError::Clap(e)) => e.exit(),
        Err(ParseError::Config(e)) => {
            eprintln!("config error: {}", prewarm::util::redact::redact_text(&e.to_string()));
            return prewarm::Exit::Usage.into();
        }
    };
    prewarm::util::logging::init(cli.verbose, cli.log_format);
    match prewarm::run(cli) {
        Ok(code) => code.into(),
        Err(err) if prewarm::is_broken_pipe(&err) => prewarm::exit_for_broken_pipe(),
        Err(err) => {
            let code = prewarm::exit_code_for(&err);
            let message = format!("error: {}\n", layered.annotate(&format!("{err:#}")));
            prewarm::util::logging::print(tracing::Level::ERROR, &message);
            code.into()
        }
    }
}
