//! placeholder

use anyhow::Result;

pub fn run(_args: crate::cli::WarmArgs) -> Result<crate::Exit> {
    anyhow::bail!("not yet")
}
