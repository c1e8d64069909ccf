//! Starting and stopping QEMU: as libvirt does, QEMU starts paused (`-S`); the driver
//! connects to QMP, finishes setup and only then `cont`s, so a guest never runs before the
//! service can see it. A start that fails at any step leaves no process and no run dir.

use std::sync::Arc;
use std::time::Duration;

use super::agent_link::{AgentChannel, AgentLink};
use super::argv::{self, ArgvContext};
use super::driver::{DESTROY_GRACE, QemuDriver};
use super::errors;
use super::monitor::{Monitor, MonitorEvents};
use super::process::QemuProcess;
use super::process::cgroup::VmCgroups;
use super::vm::{self, Vm};
use crate::domains::{Reserved, Snapshot};
use crate::driver::core::{Core, Outcome};
use crate::driver::volumes::{Resolutions, command_line_view};
use crate::error::{DomainError, Result};
use crate::model::{DomainRef, EventBody, Summary};
use crate::persist::file_stem;
use crate::xml::DomainDef;

/// From spawning QEMU to its QMP greeting. Generous: a loaded host may take seconds.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Connecting to QMP and negotiating capabilities.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Name of the process record in a VM's run dir.
pub(super) const PROCESS_RECORD: &str = "process.json";

/// A started QEMU whose snapshot is not committed yet.
pub(super) struct Launched {
    pub vm: Arc<Vm>,
    pub events: MonitorEvents,
    pub next: Snapshot,
    pub announce: Vec<EventBody>,
}

impl QemuDriver {
    /// virDomainCreateWithFlags: starts a defined, shut-off domain.
    pub(super) async fn start_defined(&self, domain: &DomainRef, paused: bool) -> Result<Summary> {
        let locked = self.core.begin(domain).await?;
        Core::require_inactive(&locked.old)?;
        let launched = self
            .launch(&locked.old, locked.old.def.clone(), paused)
            .await?;
        let summary = launched.next.summary();
        self.commit_launch(&locked.object, &locked.old, launched)
            .await?;
        Ok(summary)
    }

    /// virDomainCreateXML: starts a transient domain (or an inactive persistent one with
    /// this XML for this run).
    pub(super) async fn create_transient(&self, def: DomainDef, paused: bool) -> Result<Summary> {
        let def = Arc::new(def);
        loop {
            match self.core.domains.reserve(&def)? {
                Reserved::New(object, _job) => {
                    let old = object.snapshot();
                    let result = match self.launch(&old, def.clone(), paused).await {
                        Ok(launched) => {
                            let summary = launched.next.summary();
                            self.commit_launch(&object, &old, launched)
                                .await
                                .map(|()| summary)
                        }
                        Err(error) => Err(error),
                    };
                    if result.is_err() {
                        self.core.domains.remove(&object);
                    }
                    return result;
                }
                Reserved::Existing(object) => {
                    let _job = object.begin_job().await;
                    let old = object.snapshot();
                    if old.removed {
                        continue;
                    }
                    if old.is_active() {
                        return Err(DomainError::AlreadyActive(def.name.clone()));
                    }
                    let launched = self.launch(&old, def.clone(), paused).await?;
                    let summary = launched.next.summary();
                    self.commit_launch(&object, &old, launched).await?;
                    return Ok(summary);
                }
            }
        }
    }

    /// Makes a launch durable and visible, then starts watching the VM; if the state cannot
    /// be written the VM is stopped again, so no QEMU runs that a restart would not know.
    async fn commit_launch(
        &self,
        object: &Arc<crate::domains::DomainObj>,
        old: &Snapshot,
        launched: Launched,
    ) -> Result<()> {
        let Launched {
            vm,
            events,
            next,
            announce,
        } = launched;
        self.insert_vm(vm.clone());
        if let Err(error) = self
            .core
            .commit(object, old, Outcome::Update(next, announce))
            .await
        {
            let _ = self.stop_process(&vm, false).await;
            self.forget_vm(&vm).await;
            return Err(error);
        }
        self.refresh_agent(&vm).await;
        self.watch(vm, events);
        Ok(())
    }

    /// Spawns QEMU for `live`, paused; connects QMP; `cont`s unless `paused`.
    pub(super) async fn launch(
        &self,
        old: &Snapshot,
        live: Arc<DomainDef>,
        paused: bool,
    ) -> Result<Launched> {
        let name = live.name.clone();
        let id = self.core.next_id();
        let dir = vm::vm_dir(&self.config.run_root, id, &name);
        let longest = dir.join(vm::LONGEST_SOCKET);
        if longest.as_os_str().len() > vm::MAX_SOCKET_PATH {
            return Err(DomainError::OperationInvalid(format!(
                "cannot start domain '{name}': the run dir {} is too long for unix sockets \
                 ({} bytes at most); use a shorter --run-dir",
                self.config.run_root.display(),
                vm::MAX_SOCKET_PATH
            )));
        }
        // Volumes first: a lease on each `<disk type='volume'>` says where it is (the live
        // definition keeps naming the volume; the command line opens its path).
        let uuid = live.uuid.clone();
        let (live, volumes) = self
            .volumes
            .acquire(live, id)
            .await
            .map_err(|e| e.for_domain(&name, "start"))?;
        // Then taps: the command line names them, and a generated name exists only once the
        // tap does. The live definition records the names, so a restart knows the VM's taps.
        let live = match self.net.plug(live, id).await {
            Ok(live) => live,
            Err(error) => {
                self.volumes.release(&uuid, id, &name).await;
                return Err(error.for_domain(&name, "start"));
            }
        };
        let launched = self
            .launch_plugged(old, live.clone(), &volumes, id, dir, paused)
            .await;
        if launched.is_err() {
            self.net.release(&uuid, id, &name).await;
            self.volumes.release(&uuid, id, &name).await;
        }
        launched
    }

    /// [`Self::launch`] once the VM's taps exist and its volumes are leased.
    async fn launch_plugged(
        &self,
        old: &Snapshot,
        live: Arc<DomainDef>,
        volumes: &Resolutions,
        id: i32,
        dir: std::path::PathBuf,
        paused: bool,
    ) -> Result<Launched> {
        let name = live.name.clone();
        let ctx = ArgvContext {
            emulator: self.config.emulator.clone(),
            run_dir: dir.clone(),
            kvm_usable: self.config.kvm_usable,
        };
        let opened = command_line_view(&live, volumes).map_err(|e| e.for_domain(&name, "start"))?;
        let command = argv::build(&opened, &ctx).map_err(|e| errors::argv(&name, e))?;
        create_private_dir(&dir)?;
        let log = self
            .config
            .log_dir
            .join(format!("{}.log", file_stem(&name)));
        let process = match QemuProcess::spawn(&command, &name, &log, START_TIMEOUT).await {
            Ok(process) => process,
            Err(error) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(errors::process(&name, "start", error));
            }
        };
        match self.finish_setup(&live, id, &dir, process, paused).await {
            Ok((vm, events)) => {
                let (next, announce) = Core::started(old, live, id, paused);
                Ok(Launched {
                    vm,
                    events,
                    next,
                    announce,
                })
            }
            Err((process, error)) => {
                if let Some(process) = process {
                    let _ = process.kill(Duration::from_secs(1)).await;
                }
                let _ = std::fs::remove_dir_all(&dir);
                Err(error)
            }
        }
    }

    /// Everything between QEMU's greeting and a running guest. On failure, hands the process
    /// back so the caller kills it.
    async fn finish_setup(
        &self,
        live: &DomainDef,
        id: i32,
        dir: &std::path::Path,
        process: QemuProcess,
        paused: bool,
    ) -> std::result::Result<(Arc<Vm>, MonitorEvents), (Option<QemuProcess>, DomainError)> {
        let name = &live.name;
        let record = process.record();
        let record_path = dir.join(PROCESS_RECORD);
        // File and cgroup writes block (fsync, cgroupfs): off the async workers, so other
        // calls do not wait behind a start.
        let cgroups = self.config.cgroups.clone();
        let key = self.cgroup_key(id, name);
        let owned_name = name.clone();
        let saved = tokio::task::spawn_blocking(move || {
            record.save(&record_path)?;
            place_in_cgroup(&cgroups, record.pid, &key, &owned_name);
            Ok(())
        })
        .await
        .unwrap_or_else(|e| {
            Err(super::process::ProcessError::io(
                "recording the new QEMU",
                std::io::Error::other(e.to_string()),
            ))
        });
        if let Err(error) = saved {
            return Err((Some(process), errors::process(name, "start", error)));
        }
        let (monitor, events) = match Monitor::connect(process.qmp_socket(), CONNECT_TIMEOUT).await
        {
            Ok(connected) => connected,
            Err(error) => {
                return Err((Some(process), errors::monitor(name, "start", error)));
            }
        };
        if !paused && let Err(error) = monitor.execute(qapi::qmp::cont {}).await {
            return Err((Some(process), errors::monitor(name, "start", error)));
        }
        let agent = AgentChannel::of(live, dir)
            .map(|channel| AgentLink::new(channel, name, &live.uuid, self.core.events.clone()));
        let vm = Vm::new(
            name.clone(),
            live.uuid.clone(),
            id,
            dir.to_path_buf(),
            monitor,
            process,
            agent,
        );
        Ok((Arc::new(vm), events))
    }

    /// Stops a VM's QEMU and waits until it is gone. `graceful` only asks (SIGTERM) and fails
    /// if QEMU is still there after the grace period; otherwise SIGKILL follows.
    pub(super) async fn stop_process(&self, vm: &Vm, graceful: bool) -> Result<()> {
        vm.note_shutdown(vm::ShutdownCause::Host);
        let result = if graceful {
            match nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(vm.pid()),
                nix::sys::signal::Signal::SIGTERM,
            ) {
                Ok(()) | Err(nix::Error::ESRCH) => vm.process.wait_gone(DESTROY_GRACE).await,
                Err(error) => {
                    return Err(DomainError::OperationFailed(format!(
                        "cannot signal QEMU of domain '{}': {error}",
                        vm.name
                    )));
                }
            }
        } else {
            vm.process.kill(DESTROY_GRACE).await
        };
        result.map_err(|e| errors::process(&vm.name, "destroy", e))
    }
}

/// Moves QEMU out of the service's cgroup, so that a restart of the service that kills its
/// whole cgroup leaves the VM running. Failing to is logged, not fatal: the VM runs, it only
/// shares the service's fate. (The cgroup goes in `forget_vm`.) Blocking.
fn place_in_cgroup(cgroups: &VmCgroups, pid: i32, key: &str, name: &str) {
    if !cgroups.is_enabled() {
        return;
    }
    match cgroups.place(pid, key) {
        Ok(placement) => {
            for skipped in &placement.skipped {
                tracing::warn!(domain = %name, %skipped, "QEMU stays in the service's cgroup of this hierarchy");
            }
        }
        Err(error) => {
            tracing::warn!(domain = %name, %error, "cannot move QEMU out of the service's cgroup: a restart that kills the service's cgroup will kill this VM")
        }
    }
}

/// The VM's run dir, readable by the service's user only (it holds the QMP socket).
fn create_private_dir(dir: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(DomainError::storage("clear", dir, e));
        }
        _ => {}
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| DomainError::storage("create", dir, e))
}
