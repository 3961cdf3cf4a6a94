//! `prewarm completions SHELL`: the shell completion script, on stdout.

use anyhow::Result;
use clap::CommandFactory;

use crate::Exit;
use crate::cli::Cli;

pub fn run(shell: clap_complete::Shell) -> Result<Exit> {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "prewarm", &mut std::io::stdout().lock());
    Ok(Exit::Success)
}
