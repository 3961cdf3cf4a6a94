//! placeholder

use anyhow::Result;

pub fn run(_args: crate::cli::DemoArgs) -> Result<crate::Exit> {
    anyhow::bail!("not yet")
}
