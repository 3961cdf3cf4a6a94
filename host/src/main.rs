//! The `prewarm` binary: parse, set up logging, run, map the outcome to an
//! exit code (0 all warm, 3 some pairs failed, 2 usage or input error, 1
//! anything else); a stdout closed by its reader ends quietly, by SIGPIPE.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = prewarm::cli::Cli::parse();
    prewarm::logging::init(cli.verbose);
    match prewarm::run(cli) {
        Ok(code) => code.into(),
        Err(err) if prewarm::is_broken_pipe(&err) => prewarm::exit_for_broken_pipe(),
        Err(err) => {
            let code = prewarm::exit_code_for(&err);
            eprintln!("error: {}", prewarm::redact::redact_text(&format!("{err:#}")));
            code.into()
        }
    }
}
