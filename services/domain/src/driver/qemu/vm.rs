//! One running QEMU as the driver holds it: its process, its QMP connection, its run dir,
//! and what the event watcher needs to tell a guest's own shutdown from one we asked for.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use super::agent_link::AgentLink;
use super::monitor::{Monitor, QmpEvent};
use super::process::QemuProcess;

/// A guest `RESET` this soon after another is the firmware's follow-up, not a reboot.
const RESET_FOLLOWUP: Duration = Duration::from_secs(3);

/// How many raw QMP events a slow passthrough subscriber may lag behind before it loses some.
const RAW_EVENT_BACKLOG: usize = 1024;

/// Why QEMU last announced it would stop (QMP `SHUTDOWN`'s `reason`), so that its exit can be
/// reported as libvirt does: a guest poweroff is "shutdown", anything unannounced "crashed".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownCause {
    /// The guest powered off (or reset with `-no-reboot`).
    Guest,
    /// The host asked: QMP `quit`, a signal.
    Host,
}

/// A running domain's QEMU.
#[derive(Debug)]
pub struct Vm {
    pub name: String,
    pub uuid: String,
    /// The runtime id the domain got at this start.
    pub id: i32,
    /// The VM's run dir: QMP, console and channel sockets, the process record.
    pub dir: PathBuf,
    pub monitor: Monitor,
    pub process: QemuProcess,
    /// The guest agent, when the definition has its channel.
    pub agent: Option<Arc<AgentLink>>,
    raw_events: broadcast::Sender<QmpEvent>,
    /// Set by an ACPI reboot: the guest's next poweroff is turned into a reset (libvirt's
    /// "fake reboot"), since QEMU runs with `-no-shutdown`.
    fake_reboot: AtomicBool,
    shutdown_cause: Mutex<Option<ShutdownCause>>,
    /// Set by a guest poweroff: QEMU (run with `-no-shutdown`) follows `SHUTDOWN` with a
    /// `STOP` that is part of the shutdown, not a pause.
    stop_follows_shutdown: AtomicBool,
    /// When the last `RESET` was seen, to tell SeaBIOS's own follow-up reset from a reboot.
    last_reset: Mutex<Option<Instant>>,
}

impl Vm {
    pub fn new(
        name: String,
        uuid: String,
        id: i32,
        dir: PathBuf,
        monitor: Monitor,
        process: QemuProcess,
        agent: Option<Arc<AgentLink>>,
    ) -> Self {
        Self {
            name,
            uuid,
            id,
            dir,
            monitor,
            process,
            agent,
            raw_events: broadcast::channel(RAW_EVENT_BACKLOG).0,
            fake_reboot: AtomicBool::new(false),
            shutdown_cause: Mutex::new(None),
            stop_follows_shutdown: AtomicBool::new(false),
            last_reset: Mutex::new(None),
        }
    }

    pub fn pid(&self) -> i32 {
        self.process.pid()
    }

    /// Every QMP event of this VM as QEMU sent it (for `qemu-monitor-event`).
    pub fn subscribe_raw_events(&self) -> broadcast::Receiver<QmpEvent> {
        self.raw_events.subscribe()
    }

    pub(super) fn publish_raw(&self, event: &QmpEvent) {
        // No subscriber is the usual case, not an error.
        let _ = self.raw_events.send(event.clone());
    }

    pub(super) fn set_fake_reboot(&self, on: bool) {
        self.fake_reboot.store(on, Ordering::SeqCst);
    }

    pub(super) fn take_fake_reboot(&self) -> bool {
        self.fake_reboot.swap(false, Ordering::SeqCst)
    }

    pub(super) fn expect_shutdown_stop(&self) {
        self.stop_follows_shutdown.store(true, Ordering::SeqCst);
    }

    /// True (once) if a `STOP` is the second half of a guest poweroff.
    pub(super) fn take_shutdown_stop(&self) -> bool {
        self.stop_follows_shutdown.swap(false, Ordering::SeqCst)
    }

    /// Records a `RESET`; false when it is the firmware's follow-up of the one just before
    /// (SeaBIOS resets the machine once more after every reset), which is no new reboot.
    pub(super) fn note_reset(&self, guest: bool) -> bool {
        let mut last = self.last_reset.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let followup = guest && last.is_some_and(|t| now.duration_since(t) < RESET_FOLLOWUP);
        *last = Some(now);
        !followup
    }

    pub(super) fn note_shutdown(&self, cause: ShutdownCause) {
        *self
            .shutdown_cause
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(cause);
    }

    pub(super) fn shutdown_cause(&self) -> Option<ShutdownCause> {
        *self
            .shutdown_cause
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

/// The run dir of a domain's QEMU: `RUN/qemu/<id>-<name prefix>`. Short on purpose: unix
/// socket paths are limited to 107 bytes and the guest agent's socket name is long. The id
/// makes it unique; the name prefix (safe characters only) makes it recognisable.
pub fn vm_dir(run_root: &Path, id: i32, name: &str) -> PathBuf {
    run_root.join(vm_key(id, name))
}

/// `<id>-<up to 20 safe characters of the name>`: names the run dir and the VM's cgroup.
pub fn vm_key(id: i32, name: &str) -> String {
    let prefix: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(20)
        .collect();
    format!("{id}-{prefix}")
}

/// The longest socket path QEMU will create in a VM dir (the guest agent's channel).
pub const LONGEST_SOCKET: &str = "org.qemu.guest_agent.0";

/// `sun_path` holds 108 bytes including the terminating NUL.
pub const MAX_SOCKET_PATH: usize = 107;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_short_and_safe() {
        assert_eq!(vm_key(3, "web"), "3-web");
        assert_eq!(vm_key(12, "a/b c.d"), "12-a_b_c_d");
        let long = "x".repeat(300);
        assert_eq!(vm_key(1, &long).len(), 22);
        assert_eq!(vm_key(5, "ünï"), "5-_n_");
    }
}
