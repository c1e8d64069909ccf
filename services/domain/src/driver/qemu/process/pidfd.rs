//! Waiting for the whole of a process to exit, through a pidfd.
//!
//! `/proc/PID/stat` shows QEMU as a zombie as soon as its main thread exits, while its other
//! threads (vCPUs, RCU, I/O) run on for another ~20 ms; until they are gone the process still
//! holds its cgroup (removing it fails with EBUSY), its tap devices and its disk images. A
//! pidfd becomes readable only once the whole thread group has exited, works for a process
//! that is not our child (one reattached after a restart), and wakes the waiter at once
//! instead of polling `/proc`.
//!
//! The wait is a `poll(2)` on a blocking-pool thread: registering the fd with tokio's reactor
//! (`AsyncFd::register`) is `unsafe`, which the workspace denies, and waits are rare (a stop).

use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::process::{Pid, PidfdFlags, pidfd_open};

/// A pidfd: a handle on one process that no pid reuse can redirect.
#[derive(Debug, Clone)]
pub struct PidFd(Arc<OwnedFd>);

impl PidFd {
    /// Opens a pidfd for `pid`. The caller must know the pid still names the process it means
    /// (a child not yet reaped, or an identity check after opening).
    pub fn open(pid: i32) -> io::Result<PidFd> {
        let pid = Pid::from_raw(pid).ok_or_else(|| io::Error::other(format!("bad pid {pid}")))?;
        Ok(PidFd(Arc::new(pidfd_open(pid, PidfdFlags::empty())?)))
    }

    /// Resolves once every thread of the process has exited; false if `timeout` passed first
    /// (or the wait itself failed, which the caller treats like a timeout).
    pub async fn exited_within(&self, timeout: Duration) -> bool {
        let fd = self.0.clone();
        tokio::task::spawn_blocking(move || wait_readable(&fd, timeout))
            .await
            .unwrap_or(false)
    }
}

/// Blocks until `fd` is readable or `timeout` passed; retries on EINTR with the time left.
fn wait_readable(fd: &OwnedFd, timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let timespec = Timespec {
            tv_sec: left.as_secs() as _,
            tv_nsec: left.subsec_nanos() as _,
        };
        let mut fds = [PollFd::new(fd, PollFlags::IN)];
        match poll(&mut fds, Some(&timespec)) {
            Ok(0) => return false,
            Ok(_) => return true,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wakes_when_the_process_exits_and_not_before() {
        let mut child = tokio::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pidfd = PidFd::open(child.id().unwrap() as i32).unwrap();
        assert!(!pidfd.exited_within(Duration::from_millis(50)).await);
        child.start_kill().unwrap();
        assert!(pidfd.exited_within(Duration::from_secs(5)).await);
        let _ = child.wait().await;
        assert!(
            pidfd.exited_within(Duration::ZERO).await,
            "stays readable once reaped"
        );
    }

    #[test]
    fn refuses_a_bad_pid() {
        assert!(PidFd::open(0).is_err());
    }
}
