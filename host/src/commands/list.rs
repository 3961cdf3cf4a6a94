//! placeholder

use anyhow::Result;

pub fn run(_args: crate::cli::ListArgs) -> Result<crate::Exit> {
    anyhow::bail!("not yet")
}
