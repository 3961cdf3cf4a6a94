//! `prewarm completions SHELL`: the shell completion script, on stdout.

use anyhow::Result;

use crate::Exit;

pub fn run(shell: clap_complete::Shell) -> Result<Exit> {
    let mut cmd = crate::cli::command();
    clap_complete::generate(shell, &mut cmd, "prewarm", &mut std::io::stdout().lock());
    Ok(Exit::Success)
}
