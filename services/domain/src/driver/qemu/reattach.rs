//! After a service restart: finding the QEMUs that kept running, reconnecting to them and
//! catching up with what happened while nobody watched; cleaning up after those that exited.
//!
//! A domain whose status file says it is active is checked against its process record
//! (pid, start time, `-name guest=NAME`): a live QEMU is reconnected over QMP and its run
//! state compared with the recorded one — a guest that paused, resumed, powered off (QEMU
//! runs with `-no-shutdown`, so it waits for us in state `shutdown`) or panicked meanwhile is
//! handled now, with the events a watcher would have sent. A QEMU that is gone ended without
//! us: the domain is shut off as crashed, the taps its live definition names are deleted,
//! the leases on the volumes it names are given back and its cgroups are removed.
//! Reattaching runs for all domains at once, so a hundred VMs take about as long as one.

use std::sync::Arc;

use futures::future::join_all;

use super::agent_link::{AgentChannel, AgentLink};
use super::driver::QemuDriver;
use super::launch::{CONNECT_TIMEOUT, PROCESS_RECORD};
use super::monitor::Monitor;
use super::process::{ProcessRecord, QemuProcess};
use super::vm::{self, Vm};
use super::watch::GuestChange;
use crate::domains::Snapshot;
use crate::driver::core::Core;
use crate::error::{DomainError, Result};
use crate::model::{DomainRef, Reason, State};

impl QemuDriver {
    /// Reattaches to every domain recorded as active.
    pub(super) async fn reattach_all(&self) {
        let active: Vec<Arc<Snapshot>> = self
            .core
            .domains
            .snapshots()
            .into_iter()
            .filter(|s| s.is_active())
            .collect();
        let results = join_all(active.iter().map(|s| self.reattach(s))).await;
        for (snapshot, result) in active.iter().zip(results) {
            if let Err(error) = result {
                tracing::error!(domain = %snapshot.def.name, %error, "cannot reattach to the domain's QEMU");
            }
        }
    }

    async fn reattach(&self, snapshot: &Snapshot) -> Result<()> {
        let name = &snapshot.def.name;
        let dir = vm::vm_dir(&self.config.run_root, snapshot.id, name);
        let process = ProcessRecord::load(&dir.join(PROCESS_RECORD))
            .ok()
            .and_then(|record| QemuProcess::reattach(&record).ok().flatten());
        let Some(process) = process else {
            tracing::info!(domain = %name, "QEMU exited while the service was down");
            return self.gone_while_away(snapshot, &dir).await;
        };
        let (monitor, events) = Monitor::connect(process.qmp_socket(), CONNECT_TIMEOUT)
            .await
            .map_err(|e| super::errors::monitor(name, "reconnect to", e))?;
        let status = monitor
            .execute(qapi::qmp::query_status {})
            .await
            .map_err(|e| super::errors::monitor(name, "query", e))?;
        let agent = AgentChannel::of(&snapshot.def, &dir).map(|channel| {
            AgentLink::new(channel, name, &snapshot.def.uuid, self.core.events.clone())
        });
        let vm = Arc::new(Vm::new(
            name.clone(),
            snapshot.def.uuid.clone(),
            snapshot.id,
            dir,
            monitor,
            process,
            agent,
        ));
        // Its taps and volume leases are its own again (given back when it ends), and new tap
        // names go past its.
        self.net.adopt(&snapshot.def, snapshot.id).await;
        self.volumes.adopt(&snapshot.def, snapshot.id);
        self.insert_vm(vm.clone());
        tracing::info!(domain = %name, pid = vm.pid(), status = ?status.status, "reattached to QEMU");
        for change in catch_up(snapshot.state, &status.status) {
            self.apply(&vm, change).await?;
        }
        if self.is_current(&vm) {
            self.refresh_agent(&vm).await;
            self.watch(vm, events);
        }
        Ok(())
    }

    /// The domain's QEMU is gone: shut off as crashed, its taps, volume leases, cgroups and
    /// run dir removed.
    async fn gone_while_away(&self, snapshot: &Snapshot, dir: &std::path::Path) -> Result<()> {
        self.net.remove_leftovers(&snapshot.def).await;
        self.volumes.remove_leftovers(&snapshot.def).await;
        // The cgroups the driver made for it when it started (nobody else removes them).
        let cgroups = self.config.cgroups.clone();
        let key = self.cgroup_key(snapshot.id, &snapshot.def.name);
        let name = snapshot.def.name.clone();
        let released = tokio::task::spawn_blocking(move || {
            super::driver::release_cgroup(&cgroups, &key, &name)
        })
        .await;
        if let Err(error) = released {
            tracing::warn!(domain = %snapshot.def.name, %error, "removing the VM's cgroup failed");
        }
        let locked = self
            .core
            .begin(&DomainRef::Uuid(snapshot.def.uuid.clone()))
            .await?;
        if locked.old.is_active() {
            let outcome = Core::stopped(&locked.old, Reason::ShutoffCrashed, "failed");
            self.core
                .commit(&locked.object, &locked.old, outcome)
                .await?;
        }
        match std::fs::remove_dir_all(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(DomainError::storage("remove", dir, e))
            }
            _ => Ok(()),
        }
    }

    /// Removes run dirs of VMs that are not running (left by a crash of the service between
    /// creating a dir and recording the domain, or after a host reboot). The dir of a domain
    /// still recorded as active stays even when reattaching failed (a QEMU too busy to answer
    /// in time): its process record is the only way to find that QEMU again.
    pub(super) fn remove_stale_dirs(&self) {
        let live: Vec<std::path::PathBuf> = self
            .core
            .domains
            .snapshots()
            .iter()
            .filter(|s| s.is_active())
            .map(|s| vm::vm_dir(&self.config.run_root, s.id, &s.def.name))
            .chain(self.running_vms().iter().map(|v| v.dir.clone()))
            .collect();
        let Ok(entries) = std::fs::read_dir(&self.config.run_root) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir()
                && !live.contains(&path)
                && let Err(error) = std::fs::remove_dir_all(&path)
            {
                tracing::warn!(dir = %path.display(), %error, "cannot remove a stale VM run dir");
            }
        }
    }
}

/// The guest changes that lead from the recorded state to what QEMU reports now.
fn catch_up(recorded: State, now: &qapi::qmp::RunState) -> Vec<GuestChange> {
    use qapi::qmp::RunState as R;
    match now {
        R::running => match recorded {
            State::Paused => vec![GuestChange::Resumed],
            _ => vec![],
        },
        R::shutdown => vec![GuestChange::Shutdown {
            guest: true,
            reason: "guest-shutdown".into(),
        }],
        R::guest_panicked => vec![GuestChange::Panicked],
        R::paused
        | R::io_error
        | R::watchdog
        | R::internal_error
        | R::suspended
        | R::debug
        | R::prelaunch
        | R::inmigrate
        | R::postmigrate
        | R::finish_migrate
        | R::restore_vm
        | R::save_vm
        | R::colo => match recorded {
            State::Running => vec![GuestChange::Stopped],
            _ => vec![],
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qapi::qmp::RunState;

    #[test]
    fn catches_up_with_what_the_guest_did() {
        assert_eq!(catch_up(State::Running, &RunState::running), vec![]);
        assert_eq!(
            catch_up(State::Paused, &RunState::running),
            vec![GuestChange::Resumed]
        );
        assert_eq!(
            catch_up(State::Running, &RunState::paused),
            vec![GuestChange::Stopped]
        );
        assert!(matches!(
            catch_up(State::Running, &RunState::shutdown).as_slice(),
            [GuestChange::Shutdown { guest: true, .. }]
        ));
    }
}
