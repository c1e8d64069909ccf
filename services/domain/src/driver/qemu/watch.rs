//! The watcher: one task per running VM that reads its QMP events and turns what the guest
//! and QEMU do by themselves into state changes and events, as libvirt's qemu_process.c does.
//!
//! Every change is made under the domain's job lock, and only if the VM is still the
//! domain's current run: a job (destroy, say) that already handled the VM's end has removed
//! it, and the watcher then has nothing to do. Our own jobs (suspend, resume) set the state
//! they caused themselves, so events that merely confirm a state are ignored; and since the
//! watcher may see such an event only after a later job changed the state again, a `STOP`
//! or `RESUME` counts only if QEMU's present run state agrees.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::driver::QemuDriver;
use super::monitor::{MonitorEvent, MonitorEvents, QmpEvent};
use super::vm::{ShutdownCause, Vm};
use crate::domains::Snapshot;
use crate::driver::core::{Core, Outcome};
use crate::error::Result;
use crate::model::{DomainRef, EventBody, Lifecycle, Reason, State};
use crate::xml::LifecycleAction;

/// After its monitor closed, how long QEMU may take to be gone before it is killed.
const EXIT_WAIT: Duration = Duration::from_secs(5);

/// What the guest did, as far as the state machine cares.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum GuestChange {
    Stopped,
    Resumed,
    /// QMP `SHUTDOWN`; `guest` is QEMU's own flag, `reason` its word ("guest-shutdown", ...).
    Shutdown {
        guest: bool,
        reason: String,
    },
    /// QMP `RESET`; `guest` when the guest itself reset.
    Reset {
        guest: bool,
    },
    Panicked,
    /// QMP `DEVICE_DELETED` of a device with an id: the guest released a hot-unplugged device.
    DeviceDeleted {
        id: String,
    },
    /// QEMU exited (its monitor closed).
    Exited,
}

impl GuestChange {
    fn from_qmp(event: &QmpEvent) -> Option<GuestChange> {
        Some(match event.name.as_str() {
            "STOP" => GuestChange::Stopped,
            "RESUME" => GuestChange::Resumed,
            "SHUTDOWN" => GuestChange::Shutdown {
                guest: event.data.get("guest").and_then(Value::as_bool) == Some(true),
                reason: event
                    .data
                    .get("reason")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
            },
            "RESET" => GuestChange::Reset {
                guest: event.data.get("guest").and_then(Value::as_bool) == Some(true),
            },
            "GUEST_PANICKED" => GuestChange::Panicked,
            "DEVICE_DELETED" => GuestChange::DeviceDeleted {
                id: event.data.get("device").and_then(Value::as_str)?.to_owned(),
            },
            _ => return None,
        })
    }
}

impl QemuDriver {
    /// Starts the watcher task of a VM. It holds neither the driver nor the VM: once the
    /// driver forgets the VM, or is dropped itself, the VM's monitor connection closes, the
    /// event stream ends and so does the task. (QEMU serves one QMP client at a time: a
    /// connection kept open here would keep a new driver instance from reattaching.)
    pub(super) fn watch(&self, vm: Arc<Vm>, mut events: MonitorEvents) {
        let driver = self.me.clone();
        let vm = Arc::downgrade(&vm);
        tokio::spawn(async move {
            while let Some(event) = events.next().await {
                let Some(vm) = vm.upgrade() else { return };
                let change = match &event {
                    MonitorEvent::Qmp(qmp) => {
                        vm.publish_raw(qmp);
                        if qmp.name == "VSERPORT_CHANGE"
                            && let Some(agent) = &vm.agent
                        {
                            agent.port_changed(&qmp.data);
                        }
                        GuestChange::from_qmp(qmp)
                    }
                    MonitorEvent::Disconnected => Some(GuestChange::Exited),
                };
                let Some(change) = change else { continue };
                let Some(driver) = driver.upgrade() else {
                    return;
                };
                if let Err(error) = driver.apply(&vm, change.clone()).await {
                    tracing::error!(domain = %vm.name, ?change, %error, "cannot apply a guest state change");
                }
                if change == GuestChange::Exited {
                    return;
                }
            }
        });
    }

    /// Carries out one guest change under the job lock.
    pub(super) async fn apply(&self, vm: &Arc<Vm>, change: GuestChange) -> Result<()> {
        match &change {
            GuestChange::Shutdown { guest, .. } => {
                // Recorded at once (no lock needed), so an exit right after is told correctly.
                vm.note_shutdown(if *guest {
                    ShutdownCause::Guest
                } else {
                    ShutdownCause::Host
                });
                if *guest {
                    vm.expect_shutdown_stop();
                }
            }
            GuestChange::Stopped if vm.take_shutdown_stop() => return Ok(()),
            GuestChange::Reset { guest } if !vm.note_reset(*guest) => return Ok(()),
            _ => {}
        }
        let locked = self.core.begin(&DomainRef::Uuid(vm.uuid.clone())).await?;
        if !self.is_current(vm) || locked.old.id != vm.id || !locked.old.is_active() {
            return Ok(());
        }
        // A `STOP` or `RESUME` that confirms the state (our own suspend or resume set it) is
        // dropped at once, without a QMP round trip under the lock: a resume right after a
        // suspend would wait behind it.
        let confirms = match change {
            GuestChange::Stopped => locked.old.state != State::Running,
            GuestChange::Resumed => locked.old.state != State::Paused,
            _ => false,
        };
        if confirms {
            return Ok(());
        }
        // One that would change it may be stale: our own `cont` at start and a suspend or
        // resume right after it queue theirs before the watcher gets to them, and the job
        // already set the state. QEMU's present run state, asked under the job lock, is the
        // truth.
        if matches!(change, GuestChange::Stopped | GuestChange::Resumed) {
            let status = vm
                .monitor
                .execute(qapi::qmp::query_status {})
                .await
                .map_err(|e| super::errors::monitor(&vm.name, "query", e))?;
            if status.running != (change == GuestChange::Resumed) {
                return Ok(());
            }
        }
        let old = &locked.old;
        let outcome = match change {
            GuestChange::DeviceDeleted { id } => {
                return self.finish_late_unplug(vm, &locked, &id).await;
            }
            GuestChange::Stopped => (old.state == State::Running).then(|| {
                Core::moved(
                    old,
                    State::Paused,
                    Reason::Unknown,
                    vec![EventBody::Lifecycle(Lifecycle::Suspended, "paused")],
                )
            }),
            GuestChange::Resumed => (old.state == State::Paused).then(|| {
                Core::moved(
                    old,
                    State::Running,
                    Reason::RunningUnpaused,
                    vec![EventBody::Lifecycle(Lifecycle::Resumed, "unpaused")],
                )
            }),
            GuestChange::Reset { .. } => {
                self.core
                    .announce(&old.def.name, &old.def.uuid, vec![EventBody::Reboot]);
                None
            }
            GuestChange::Shutdown { guest: false, .. } => None,
            GuestChange::Shutdown { reason, .. } if reason == "guest-panic" => None,
            GuestChange::Shutdown { .. } => self.guest_powered_off(vm, old).await?,
            GuestChange::Panicked => self.guest_panicked(vm, old).await?,
            GuestChange::Exited => {
                if vm.process.wait_gone(EXIT_WAIT).await.is_err() {
                    tracing::warn!(domain = %vm.name, pid = vm.pid(), "QEMU closed its monitor but still runs; killing it");
                    let _ = self.stop_process(vm, false).await;
                }
                Some(match vm.shutdown_cause() {
                    Some(_) => Core::stopped(old, Reason::ShutoffShutdown, "shutdown"),
                    // No SHUTDOWN event first: QEMU died (libvirt: "assuming the domain crashed").
                    None => Core::stopped(old, Reason::ShutoffCrashed, "failed"),
                })
            }
        };
        let stops = matches!(&outcome, Some(Outcome::Remove(_)))
            || matches!(&outcome, Some(Outcome::Update(next, _)) if !next.is_active());
        if let Some(outcome) = outcome {
            self.core
                .commit(&locked.object, &locked.old, outcome)
                .await?;
        }
        if stops {
            self.forget_vm(vm).await;
        }
        Ok(())
    }

    /// The guest powered off; QEMU (run with `-no-shutdown`) is stopped, waiting for us.
    async fn guest_powered_off(&self, vm: &Arc<Vm>, old: &Snapshot) -> Result<Option<Outcome>> {
        if vm.take_fake_reboot() {
            self.restart_guest(vm).await?;
            return Ok(None);
        }
        let finished = EventBody::Lifecycle(Lifecycle::Shutdown, "finished");
        match old.def.on_poweroff.unwrap_or(LifecycleAction::Destroy) {
            LifecycleAction::Restart | LifecycleAction::RenameRestart => {
                self.core
                    .announce(&old.def.name, &old.def.uuid, vec![finished]);
                self.restart_guest(vm).await?;
                Ok(None)
            }
            LifecycleAction::Preserve => Ok(Some(Core::moved(
                old,
                State::Shutdown,
                Reason::ShutdownUser,
                vec![finished],
            ))),
            LifecycleAction::Destroy
            | LifecycleAction::CoredumpDestroy
            | LifecycleAction::CoredumpRestart => {
                self.stop_process(vm, false).await?;
                vm.note_shutdown(ShutdownCause::Guest);
                Ok(Some(Core::stopped_with(
                    old,
                    Reason::ShutoffShutdown,
                    vec![
                        finished,
                        EventBody::Lifecycle(Lifecycle::Stopped, "shutdown"),
                    ],
                )))
            }
        }
    }

    /// `<on_crash>`: destroy (the default), restart, or preserve the crashed guest.
    async fn guest_panicked(&self, vm: &Arc<Vm>, old: &Snapshot) -> Result<Option<Outcome>> {
        let crashed = EventBody::Lifecycle(Lifecycle::Crashed, "panicked");
        match old.def.on_crash.unwrap_or(LifecycleAction::Destroy) {
            LifecycleAction::Preserve => Ok(Some(Core::moved(
                old,
                State::Crashed,
                Reason::CrashedPanicked,
                vec![crashed],
            ))),
            LifecycleAction::Restart
            | LifecycleAction::RenameRestart
            | LifecycleAction::CoredumpRestart => {
                self.core
                    .announce(&old.def.name, &old.def.uuid, vec![crashed]);
                self.restart_guest(vm).await?;
                Ok(None)
            }
            LifecycleAction::Destroy | LifecycleAction::CoredumpDestroy => {
                self.stop_process(vm, false).await?;
                Ok(Some(Core::stopped_with(
                    old,
                    Reason::ShutoffCrashed,
                    vec![crashed, EventBody::Lifecycle(Lifecycle::Stopped, "crashed")],
                )))
            }
        }
    }

    /// Resets the guest and lets it run again (the guest sees a reboot).
    async fn restart_guest(&self, vm: &Vm) -> Result<()> {
        let fail = |e| super::errors::monitor(&vm.name, "restart", e);
        vm.monitor
            .execute(qapi::qmp::system_reset {})
            .await
            .map_err(fail)?;
        vm.monitor.execute(qapi::qmp::cont {}).await.map_err(fail)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str, data: Value) -> QmpEvent {
        QmpEvent {
            name: name.into(),
            data,
            timestamp: None,
        }
    }

    #[test]
    fn reads_the_events_that_change_state() {
        assert_eq!(
            GuestChange::from_qmp(&event(
                "SHUTDOWN",
                serde_json::json!({"guest": true, "reason": "guest-shutdown"})
            )),
            Some(GuestChange::Shutdown {
                guest: true,
                reason: "guest-shutdown".into()
            })
        );
        assert_eq!(
            GuestChange::from_qmp(&event("STOP", serde_json::json!({}))),
            Some(GuestChange::Stopped)
        );
        assert_eq!(
            GuestChange::from_qmp(&event("BALLOON_CHANGE", serde_json::json!({"actual": 1}))),
            None
        );
    }
}
