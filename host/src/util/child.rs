//! Child processes that die with prewarm, and the signals that stop a run
//! (Ctrl-C, SIGTERM). On Linux each child is started with a
//! parent-death signal (`PR_SET_PDEATHSIG`, SIGKILL), so a `kill -9` or an
//! out-of-memory kill of prewarm, which runs no destructor, leaves none of
//! its children running (or uploading).
//!
//! The kernel sends the signal when the *thread* that spawned the child
//! exits, not only the process: spawn long-lived children from a thread
//! that lives as long as they should (the command's main thread or a
//! runtime worker), never from a short-lived blocking-pool thread.

/// Have the kernel kill the child started by `cmd` when prewarm dies.
pub fn die_with_parent(cmd: &mut std::process::Command) {
    #[cfg(target_os = "linux")]
    {
        let parent = std::process::id();
        // SAFETY: the closure runs between fork and exec; it calls only
        // async-signal-safe functions (prctl, getppid) and allocates nothing.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(cmd, move || set_death_signal(parent));
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cmd;
}

/// [`die_with_parent`] for a tokio command.
pub fn die_with_parent_tokio(cmd: &mut tokio::process::Command) {
    #[cfg(target_os = "linux")]
    {
        let parent = std::process::id();
        // SAFETY: as in `die_with_parent`.
        unsafe {
            cmd.pre_exec(move || set_death_signal(parent));
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cmd;
}

#[cfg(target_os = "linux")]
fn set_death_signal(parent: u32) -> std::io::Result<()> {
    // SAFETY: prctl(2) with PR_SET_PDEATHSIG only sets a flag of this process.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) } == -1 {
        return Err(std::io::Error::last_os_error());
    }
    // prewarm may have died between fork and prctl: the signal would then
    // never come, so do not start at all.
    // SAFETY: getppid(2) cannot fail.
    if unsafe { libc::getppid() } as u32 != parent {
        return Err(std::io::Error::other("prewarm exited before its child started"));
    }
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use super::*;

    #[test]
    fn a_child_is_killed_when_its_spawning_thread_ends() {
        // The death signal follows the spawning thread: a thread that
        // spawns `sleep` and ends shows it is set without killing the test.
        let mut child = std::thread::spawn(|| {
            let mut cmd = std::process::Command::new("sleep");
            cmd.arg("30");
            die_with_parent(&mut cmd);
            cmd.spawn().unwrap()
        })
        .join()
        .unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    }
}

/// Resolves on Ctrl-C, or SIGTERM (a scheduler stopping the job: a
/// Kubernetes eviction or `kubectl delete`): every command stops the same
/// way on either. Children in their own process groups get neither, so the
/// caller stops them.
pub async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
