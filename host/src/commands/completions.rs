//! `prewarm completions SHELL`: the shell completion script, on stdout.

use std::io::Write;

use anyhow::Result;

use crate::Exit;

pub fn run(shell: clap_complete::Shell) -> Result<Exit> {
    let mut cmd = crate::cli::command();
    // Into memory first: clap_complete panics on a failed write, and a
    // closed stdout (`| head`) must end quietly, not with a panic.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "prewarm", &mut script);
    std::io::stdout().lock().write_all(&script)?;
    Ok(Exit::Success)
}
