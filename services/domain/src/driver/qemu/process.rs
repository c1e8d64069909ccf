//! QEMU processes that outlive the domain service, and finding them again after a restart.
//!
//! Restarting or killing the domain service must lose no VM (DESIGN.md, "State, restarts and
//! concurrency"), so a QEMU is not a child that dies with the service:
//! - it leads its own process group, so no terminal's Ctrl-C and no signal aimed at the
//!   service's group reaches it (the service itself runs without a controlling terminal:
//!   `up.sh` starts it with `setsid`, systemd and Kubernetes do the same); a safe
//!   `process_group(0)` instead of `setsid()` in `pre_exec`, which would need `unsafe`;
//! - its stdin is null and its stdout/stderr are appended to a per-domain log file, never a pipe
//!   into the service (a dead reader would mean SIGPIPE or a blocked QEMU);
//! - nothing kills it on drop; while the service lives a background task reaps it, afterwards
//!   it is re-parented to PID 1 (or the nearest subreaper);
//! - once spawned, the driver moves it out of the service's cgroup ([`cgroup`]), so that a
//!   container or systemd restart that kills the whole cgroup leaves the VMs running.
//!
//! After a restart the service holds only a [`ProcessRecord`] from the run dir;
//! [`QemuProcess::reattach`] trusts it only if the pid still runs with the same start time and
//! its command line is QEMU's for that domain, since the pid may have been reused meanwhile.
//! Liveness of a non-child is read from `/proc`: a zombie waiting for PID 1 (which here reaps
//! only every 1–2 s) has exited and counts as not running. Waiting for the end of a process
//! waits for all of its threads, through a pidfd ([`pidfd`]): QEMU's main thread exits ~20 ms
//! before its last thread, and only then are its cgroup and devices free.

pub mod cgroup;
mod log;
mod pidfd;
mod procfs;
mod record;

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use tokio::io::AsyncBufReadExt;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::driver::qemu::argv::QemuCommand;

use pidfd::PidFd;
pub use record::ProcessRecord;

/// How often liveness of a process is polled from `/proc` (a non-child cannot be waited for).
const POLL: Duration = Duration::from_millis(10);

/// After SIGKILL a process is normally gone at once; one stuck in uninterruptible sleep (a hung
/// NFS disk, say) may take longer, and [`QemuProcess::kill`] reports that rather than hang.
const KILL_WAIT: Duration = Duration::from_secs(15);

/// Used when the service itself has no `PATH`.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Why a QEMU process could not be started, found or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    /// QEMU exited before its monitor was ready; `log` holds its last lines (its own reason).
    #[error("QEMU for domain '{domain}' exited during startup ({status}){}", log_suffix(.log))]
    Exited {
        domain: String,
        status: String,
        log: String,
    },
    /// QEMU did not become ready in time; it has been killed.
    #[error("QEMU for domain '{domain}' was not ready within {after:?} and was killed{}", log_suffix(.log))]
    StartTimeout {
        domain: String,
        after: Duration,
        log: String,
    },
    #[error("process {pid} still runs after {after:?}")]
    StillRunning { pid: i32, after: Duration },
    #[error("cannot send {signal} to process {pid}: {source}")]
    Signal {
        pid: i32,
        signal: Signal,
        #[source]
        source: nix::Error,
    },
    #[error("invalid process record: {0}")]
    BadRecord(String),
}

impl ProcessError {
    pub(crate) fn io(what: impl Into<String>, source: io::Error) -> Self {
        ProcessError::Io {
            what: what.into(),
            source,
        }
    }
}

fn log_suffix(log: &str) -> String {
    if log.is_empty() {
        String::new()
    } else {
        format!(": {log}")
    }
}

/// A running (or once running) QEMU, either started by this service instance or reattached.
#[derive(Debug)]
pub struct QemuProcess {
    record: ProcessRecord,
    /// For a process this instance started: `Some(status)` once the reaper task has collected
    /// it (`Some(None)` if waiting failed). `None` for a reattached process, which is not our
    /// child and is watched through `/proc` only.
    exit: Option<watch::Receiver<Option<Option<ExitStatus>>>>,
    /// Readable once the whole process has exited; `None` only if the kernel refused one
    /// (before Linux 5.3), when waiting falls back to polling `/proc`.
    pidfd: Option<PidFd>,
}

/// How waiting for QEMU's monitor ended.
enum Startup {
    Ready,
    Exited(Option<ExitStatus>),
    TimedOut,
}

impl QemuProcess {
    /// Spawns `cmd` in its own session, stdin null, stdout/stderr appended to `log_path`, and
    /// waits (bounded by `timeout`) until QEMU is ready or has exited.
    ///
    /// Ready means the QMP greeting arrived, not merely that the socket file exists: QEMU
    /// creates the socket early and may still fail afterwards (a missing disk is only opened
    /// later), whereas the greeting is sent from the main loop, after all of initialisation.
    /// If QEMU exits first, the error carries the log lines of this start. The environment is
    /// not the service's (it may hold secrets): `PATH`, `LC_ALL=C` (QEMU's messages are
    /// parsed and logged), then `cmd.env`, as libvirt does.
    pub async fn spawn(
        cmd: &QemuCommand,
        domain_name: &str,
        log_path: &Path,
        timeout: Duration,
    ) -> Result<QemuProcess, ProcessError> {
        let deadline = Instant::now() + timeout;
        // A socket left by an earlier run would look like readiness.
        match std::fs::remove_file(&cmd.qmp_socket) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                let what = format!("removing stale {}", cmd.qmp_socket.display());
                return Err(ProcessError::io(what, e));
            }
            _ => {}
        }
        let (log_file, log_offset) = log::open(log_path, cmd, domain_name)
            .map_err(|e| ProcessError::io(format!("opening {}", log_path.display()), e))?;
        let stderr = log_file
            .try_clone()
            .map_err(|e| ProcessError::io(format!("opening {}", log_path.display()), e))?;

        let mut command = tokio::process::Command::new(&cmd.program);
        command
            .args(&cmd.args)
            .env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into()),
            )
            .env("LC_ALL", "C")
            .envs(cmd.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(stderr)
            .kill_on_drop(false);
        command.process_group(0);
        let mut child = command
            .spawn()
            .map_err(|e| ProcessError::io(format!("running {}", cmd.program.display()), e))?;

        // Not yet reaped (the reaper below has not run), so the pid cannot have been reused.
        let pid = child.id().map(|p| p as i32);
        let stat = pid.and_then(procfs::stat);
        let (Some(pid), Some(stat)) = (pid, stat) else {
            let _ = child.start_kill();
            return Err(ProcessError::io(
                format!("reading /proc for the new QEMU of domain '{domain_name}'"),
                io::Error::other("no such process"),
            ));
        };
        let pidfd = open_pidfd(pid, domain_name);
        let (exit_tx, mut exit_rx) = watch::channel(None);
        tokio::spawn(async move {
            let status = child.wait().await.ok();
            exit_tx.send_replace(Some(status));
        });

        let process = QemuProcess {
            record: ProcessRecord {
                pid,
                start_ticks: stat.start_ticks,
                domain_name: domain_name.to_string(),
                qmp_socket: cmd.qmp_socket.clone(),
            },
            exit: Some(exit_rx.clone()),
            pidfd,
        };
        match wait_ready(&cmd.qmp_socket, &mut exit_rx, deadline).await {
            Startup::Ready => Ok(process),
            Startup::Exited(status) => Err(ProcessError::Exited {
                domain: domain_name.to_string(),
                status: describe(status),
                log: log::tail(log_path, log_offset),
            }),
            Startup::TimedOut => {
                let _ = process.signal(Signal::SIGKILL);
                let _ = process.wait_gone(KILL_WAIT).await;
                Err(ProcessError::StartTimeout {
                    domain: domain_name.to_string(),
                    after: timeout,
                    log: log::tail(log_path, log_offset),
                })
            }
        }
    }

    /// What to persist in the run dir to find this process again.
    pub fn record(&self) -> ProcessRecord {
        self.record.clone()
    }

    /// After a service restart: the process of `record`, only if that pid still runs (not a
    /// zombie), started at the recorded time, and its command line is QEMU's with
    /// `-name guest=<domain_name>`. `None` means the VM is gone (the driver marks it shut off
    /// or crashed and cleans up its run dir).
    pub fn reattach(record: &ProcessRecord) -> Result<Option<QemuProcess>, ProcessError> {
        if record.pid <= 0 {
            return Err(ProcessError::BadRecord(format!("pid {}", record.pid)));
        }
        if !procfs::alive_with_start(record.pid, record.start_ticks) {
            return Ok(None);
        }
        let is_ours = procfs::cmdline(record.pid)
            .is_some_and(|args| procfs::is_qemu_for(&args, &record.domain_name));
        if !is_ours {
            return Ok(None);
        }
        let pidfd = open_pidfd(record.pid, &record.domain_name);
        // Checked again after the pidfd is open: the pid could have exited and been reused
        // since the first read, and the pidfd must name this process.
        if !procfs::alive_with_start(record.pid, record.start_ticks) {
            return Ok(None);
        }
        Ok(Some(QemuProcess {
            record: record.clone(),
            exit: None,
            pidfd,
        }))
    }

    pub fn pid(&self) -> i32 {
        self.record.pid
    }

    pub fn qmp_socket(&self) -> &Path {
        &self.record.qmp_socket
    }

    pub fn domain_name(&self) -> &str {
        &self.record.domain_name
    }

    /// The exit status, known only for a process this service instance started and has seen
    /// exit (a reattached process's status went to PID 1).
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.exit.as_ref().and_then(|rx| rx.borrow().flatten())
    }

    /// Whether the process still runs: false once it has exited (zombie included) and once its
    /// pid names another process.
    pub fn is_alive(&self) -> bool {
        if self.exit.as_ref().is_some_and(|rx| rx.borrow().is_some()) {
            return false;
        }
        procfs::alive_with_start(self.record.pid, self.record.start_ticks)
    }

    /// Resolves once the process is gone, every thread of it, or fails with
    /// [`ProcessError::StillRunning`] after `timeout`.
    pub async fn wait_gone(&self, timeout: Duration) -> Result<(), ProcessError> {
        let still_running = || ProcessError::StillRunning {
            pid: self.pid(),
            after: timeout,
        };
        if let Some(pidfd) = &self.pidfd {
            return match pidfd.exited_within(timeout).await {
                true => Ok(()),
                false => Err(still_running()),
            };
        }
        let deadline = Instant::now() + timeout;
        let mut exit = self.exit.clone();
        loop {
            let reaped = self.exit.as_ref().is_some_and(|rx| rx.borrow().is_some());
            if reaped || procfs::fully_exited(self.record.pid, self.record.start_ticks) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(still_running());
            }
            let exited = async {
                match exit.as_mut() {
                    Some(rx) => exit_changed(rx).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = exited => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// libvirt's destroy fallback: SIGTERM, up to `grace` for QEMU to quit, then SIGKILL.
    /// Returns once the process is gone, all its threads (a zombie awaiting reaping counts as
    /// gone), or
    /// fails if it survives [`KILL_WAIT`] after SIGKILL.
    pub async fn kill(&self, grace: Duration) -> Result<(), ProcessError> {
        self.signal(Signal::SIGTERM)?;
        match self.wait_gone(grace).await {
            Err(ProcessError::StillRunning { .. }) => {}
            done => return done,
        }
        self.signal(Signal::SIGKILL)?;
        self.wait_gone(KILL_WAIT).await
    }

    /// Sends `sig` unless the process is already gone; the identity check first keeps a
    /// signal from reaching an unrelated process that reused the pid.
    fn signal(&self, sig: Signal) -> Result<(), ProcessError> {
        if !self.is_alive() {
            return Ok(());
        }
        match signal::kill(Pid::from_raw(self.pid()), sig) {
            Ok(()) | Err(nix::Error::ESRCH) => Ok(()),
            Err(source) => Err(ProcessError::Signal {
                pid: self.pid(),
                signal: sig,
                source,
            }),
        }
    }
}

/// A pidfd for a process known to be ours (not reaped, or identity checked), or `None` with
/// a warning: waiting then polls `/proc`.
fn open_pidfd(pid: i32, domain_name: &str) -> Option<PidFd> {
    PidFd::open(pid)
        .inspect_err(|error| {
            tracing::warn!(domain = %domain_name, pid, %error, "no pidfd for QEMU; its exit is polled from /proc");
        })
        .ok()
}

/// Waits for QEMU's QMP greeting, QEMU's exit, or the deadline.
async fn wait_ready(
    socket: &Path,
    exit: &mut watch::Receiver<Option<Option<ExitStatus>>>,
    deadline: Instant,
) -> Startup {
    loop {
        if let Some(status) = *exit.borrow() {
            return Startup::Exited(status);
        }
        if Instant::now() >= deadline {
            return Startup::TimedOut;
        }
        if socket.exists() {
            tokio::select! {
                ready = greeting(socket) => if ready { return Startup::Ready },
                _ = exit_changed(exit) => continue,
                _ = tokio::time::sleep_until(deadline) => return Startup::TimedOut,
            }
        }
        tokio::select! {
            _ = exit_changed(exit) => {}
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

/// Resolves when the reaper reports; never if the reaper is gone without reporting (its
/// runtime shut down), so callers fall back to polling instead of spinning.
async fn exit_changed(rx: &mut watch::Receiver<Option<Option<ExitStatus>>>) {
    if rx.changed().await.is_err() && rx.borrow().is_none() {
        std::future::pending::<()>().await;
    }
}

/// Connects to the QMP socket and reads the greeting line; the connection is then dropped,
/// and QEMU accepts the driver's own monitor connection afterwards.
async fn greeting(socket: &Path) -> bool {
    let Ok(stream) = tokio::net::UnixStream::connect(socket).await else {
        return false;
    };
    let mut line = String::new();
    let mut reader = tokio::io::BufReader::new(stream);
    reader.read_line(&mut line).await.is_ok() && line.contains("\"QMP\"")
}

fn describe(status: Option<ExitStatus>) -> String {
    match status {
        Some(s) => match (s.code(), s.signal()) {
            (Some(code), _) => format!("exit code {code}"),
            (None, Some(sig)) => format!("killed by signal {sig}"),
            _ => s.to_string(),
        },
        None => "exit status unknown".to_string(),
    }
}
