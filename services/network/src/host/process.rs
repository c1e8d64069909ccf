//! A handle on a daemon that is not our child (dnsmasq forks away from us, and a restarted
//! service finds it again from its pid file): a pidfd, which no pid reuse can redirect.
//!
//! The pattern is: open the pidfd, *then* check `/proc/PID/cmdline` is the process we mean.
//! If the pid was reused between reading it and opening the pidfd, the check sees the
//! stranger and we let go; once it passes, every signal goes through the pidfd and reaches
//! that process or nobody.
//!
//! Waiting is a `poll(2)` on a blocking-pool thread: registering the fd with tokio's reactor
//! (`AsyncFd::register`) is `unsafe`, which the workspace denies, and waits are rare (a stop).

use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::process::{Pid, PidfdFlags, Signal, pidfd_open, pidfd_send_signal};

/// A pidfd on one process.
#[derive(Debug, Clone)]
pub struct PidFd {
    pid: i32,
    fd: Arc<OwnedFd>,
}

impl PidFd {
    /// Opens a pidfd for `pid`; ESRCH when there is no such process.
    pub fn open(pid: i32) -> io::Result<PidFd> {
        let raw = Pid::from_raw(pid).ok_or_else(|| io::Error::other(format!("bad pid {pid}")))?;
        let fd = pidfd_open(raw, PidfdFlags::empty())?;
        Ok(PidFd {
            pid,
            fd: Arc::new(fd),
        })
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Sends `signal` to the process; ESRCH once it has exited.
    pub fn signal(&self, signal: Signal) -> io::Result<()> {
        Ok(pidfd_send_signal(&*self.fd, signal)?)
    }

    /// Whether the process has exited (a zombie counts as exited).
    pub fn has_exited(&self) -> bool {
        wait_readable(&self.fd, Duration::ZERO)
    }

    /// Resolves once the process has exited; false if `timeout` passed first.
    pub async fn exited_within(&self, timeout: Duration) -> bool {
        let fd = self.fd.clone();
        tokio::task::spawn_blocking(move || wait_readable(&fd, timeout))
            .await
            .unwrap_or(false)
    }
}

/// Blocks until `fd` is readable (the process exited) or `timeout` passed; retries on EINTR.
fn wait_readable(fd: &OwnedFd, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
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

/// The process's argv; `None` when it cannot be read (gone, a zombie, a kernel thread).
pub fn cmdline(pid: i32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args = parse_cmdline(&raw);
    (!args.is_empty()).then_some(args)
}

/// Splits `/proc/PID/cmdline` (NUL-separated) into arguments.
pub fn parse_cmdline(raw: &[u8]) -> Vec<String> {
    raw.split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn signals_and_sees_the_exit_of_a_process() {
        let mut child = tokio::process::Command::new("sleep")
            .arg("30")
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let pid = child.id().unwrap() as i32;
        let pidfd = PidFd::open(pid).unwrap();
        assert_eq!(pidfd.pid(), pid);
        // The spawn returns once exec closed the CLOEXEC pipe, a moment before the kernel
        // has set up the new argv: until then the cmdline reads empty.
        let started = std::time::Instant::now();
        while cmdline(pid).is_none() && started.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(cmdline(pid).unwrap(), ["sleep", "30"]);
        assert!(!pidfd.has_exited());
        assert!(!pidfd.exited_within(Duration::from_millis(50)).await);
        pidfd.signal(Signal::TERM).unwrap();
        assert!(pidfd.exited_within(Duration::from_secs(5)).await);
        let _ = child.wait().await;
        assert!(pidfd.has_exited(), "stays readable once reaped");
        let error = pidfd.signal(Signal::TERM).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::ESRCH), "{error}");
    }

    #[test]
    fn parses_cmdlines_and_refuses_bad_pids() {
        assert_eq!(
            parse_cmdline(b"dnsmasq\0--conf-file=/run/a b.conf\0\0"),
            ["dnsmasq", "--conf-file=/run/a b.conf"]
        );
        assert!(parse_cmdline(b"").is_empty());
        assert!(PidFd::open(0).is_err());
    }
}
