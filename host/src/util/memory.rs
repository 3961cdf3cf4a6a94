//! The process's peak resident memory, read from `/proc/self/status`
//! (`VmHWM`); reported in summaries so benchmarks and users can check the
//! memory goals. `None` where procfs is missing.

pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
