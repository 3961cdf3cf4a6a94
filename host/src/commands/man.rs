//! `prewarm man [--dir DIR]`: man pages from the command line's own
//! definition (clap_mangen), one per subcommand (`prewarm-warm.1`,
//! `prewarm-plugins-inspect.1`…), each with the environment variables
//! prewarm reads.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

use crate::Exit;

/// The ENVIRONMENT section every page ends with (roff).
const ENVIRONMENT: &str = r#".SH ENVIRONMENT
.TP
\fBPREWARM_CACHE_DIR\fR
Where compiled plugins and detected size capabilities are cached (default: the user cache directory).
.TP
\fBPREWARM_CONFIG\fR
The config file (TOML), as \fB\-\-config\fR, for warm, list, validate and optimize.
.TP
\fBPREWARM_\fR\fIFLAG\fR
Every flag of warm, list, validate and optimize, upper case with \fB_\fR for \fB\-\fR (\fBPREWARM_BASE_URL\fR for \fB\-\-base\-url\fR; switches take 1/0, yes/no, true/false). A flag wins over its variable, which wins over the config file.
.TP
\fBPREWARM_SETTING_\fR\fIKEY\fR
The plugin setting \fIkey\fR (\fB_\fR read as \fB\-\fR), as \fB\-\-set\fR \fIkey\fR=\fIvalue\fR; a \fB\-\-set\fR of the same key wins, and it wins over the config file's [settings].
.TP
\fBPREWARM_RCLONE\fR
The rclone binary, as \fB\-\-rclone\fR.
.TP
\fBPREWARM_SHARDS\fR
The shard count for \fB\-\-shard auto\fR.
.TP
\fBJOB_COMPLETION_INDEX\fR
The shard index for \fB\-\-shard auto\fR and \fB\-\-shard auto/N\fR (set by a Kubernetes Indexed Job).
.TP
\fBRUST_LOG\fR
Log filter, finer than \fB\-v\fR.
.TP
\fBNO_COLOR\fR
When set and not empty, logs are never coloured (they are coloured only on a terminal anyway).
"#;

pub fn run(dir: Option<&Path>) -> Result<Exit> {
    // Building names each subcommand `prewarm-warm` (display) and
    // `prewarm warm` (synopsis).
    let mut cmd = crate::cli::command().disable_help_subcommand(true);
    cmd.build();
    match dir {
        None => render(&cmd, &mut std::io::stdout().lock())?,
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            write_pages(&cmd, dir)?;
        }
    }
    Ok(Exit::Success)
}

fn render(cmd: &clap::Command, out: &mut dyn Write) -> Result<()> {
    clap_mangen::Man::new(cmd.clone()).render(out)?;
    out.write_all(ENVIRONMENT.as_bytes())?;
    // This page's own variables, one per flag.
    for arg in cmd.get_arguments() {
        if let (Some(var), Some(long)) = (arg.get_env(), arg.get_long())
            && !ENVIRONMENT.contains(&format!("\\fB{}\\fR", var.to_string_lossy()))
        {
            let roff = |s: &str| s.replace('-', "\\-");
            writeln!(out, ".TP\n\\fB{}\\fR\nAs \\fB\\-\\-{}\\fR.", var.to_string_lossy(), roff(long))?;
        }
    }
    Ok(())
}

/// One page for `cmd`, then one per subcommand.
fn write_pages(cmd: &clap::Command, dir: &Path) -> Result<()> {
    let name = cmd.get_display_name().unwrap_or_else(|| cmd.get_name());
    let path = dir.join(format!("{name}.1"));
    let mut page = Vec::new();
    render(cmd, &mut page)?;
    crate::util::atomic_file::write(&path, &page).with_context(|| format!("cannot write {}", path.display()))?;
    for sub in cmd.get_subcommands() {
        write_pages(sub, dir)?;
    }
    Ok(())
}
