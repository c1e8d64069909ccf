//! The qemu driver: the [`DomainDriver`] over real QEMU processes.
//!
//! Definitions, persistence and events are the shared [`Core`]; this file adds what QEMU does.
//! A running domain has a [`Vm`] in `vms` (process, QMP connection, run dir) and a watcher task
//! (`watch.rs`) that turns QMP events and QEMU's exit into state changes. Starting lives in
//! `launch.rs`, finding running QEMUs again after a service restart in `reattach.rs`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use virtplane_common::events::EventHub;

use super::host;
use super::process::cgroup::VmCgroups;
use super::vm::Vm;
use super::{DRIVER, errors};
use crate::domains::Snapshot;
use crate::driver::core::{Core, Outcome};
use crate::driver::volumes::DiskVolumes;
use crate::driver::{DomainDriver, DriverConfig};
use crate::error::{DomainError, Result};
use crate::model::{
    DomainRef, Event, EventBody, Info, Lifecycle, ListFilter, MemoryFlags, NodeInfo, PowerMode,
    Reason, State, Summary, VcpuFlags, Versions, XmlFlags,
};
use crate::xml::DomainDef;

/// How long a destroy waits after SIGTERM before SIGKILL (libvirt waits 10 s too).
pub(super) const DESTROY_GRACE: Duration = Duration::from_secs(10);

/// How often a waiting shutdown looks at the domain's state.
const SHUTDOWN_POLL: Duration = Duration::from_millis(20);

/// Where the qemu driver keeps things, and what it runs.
#[derive(Debug, Clone)]
pub struct QemuConfig {
    /// The emulator for definitions without `<emulator>`.
    pub emulator: PathBuf,
    /// `RUN/qemu`: one directory per running VM.
    pub run_root: PathBuf,
    /// `STATE/logs`: one QEMU log per domain, appended across starts.
    pub log_dir: PathBuf,
    pub kvm_usable: bool,
    /// Each QEMU's own cgroup (see `process::cgroup`).
    pub cgroups: VmCgroups,
    /// Makes cgroup names unique to this service's run dir, since several services (tests,
    /// users) share the host's cgroup tree while their domain ids overlap.
    pub cgroup_prefix: String,
    /// The guest agent timeout of domains that set none of their own.
    pub agent_timeout: Duration,
}

pub struct QemuDriver {
    pub(super) core: Core,
    pub(super) config: QemuConfig,
    /// Running VMs by domain UUID.
    vms: Mutex<HashMap<String, Arc<Vm>>>,
    /// The taps of `bridge` and `ethernet` interfaces (`net/`).
    pub(super) net: super::net::HostNet,
    /// The leases on the volumes of `<disk type='volume'>` (`crate::driver::volumes`).
    pub(super) volumes: DiskVolumes,
    qemu_version: String,
    /// For the watcher tasks, which must not keep the driver alive.
    pub(super) me: Weak<QemuDriver>,
}

impl QemuDriver {
    /// Opens the driver: loads the domains, reattaches to the QEMUs that still run, cleans up
    /// after those that exited, and on a freshly booted host starts the autostart domains.
    pub async fn open(config: &DriverConfig) -> Result<Arc<Self>> {
        let emulator = config
            .emulator
            .clone()
            .or_else(host::default_emulator)
            .ok_or_else(|| DomainError::Unsupported {
                driver: DRIVER,
                what: "no QEMU emulator found on PATH (install qemu-system-x86) and none given \
                       with --emulator"
                    .into(),
            })?;
        let qemu_version = host::qemu_version(&emulator)
            .await
            .unwrap_or_else(|| "unknown".into());
        let cgroups = match &config.vm_cgroup_root {
            None => VmCgroups::disabled(),
            Some(root) => VmCgroups::new(root.as_deref())
                .map_err(|e| DomainError::InvalidArg(format!("--vm-cgroup-root: {e}")))?,
        };
        let run_root = config.run_dir.join("qemu");
        let qemu_config = QemuConfig {
            emulator,
            cgroup_prefix: cgroup_prefix(&run_root),
            run_root,
            log_dir: config.state_dir.join("logs"),
            kvm_usable: host::kvm_usable(),
            cgroups,
            agent_timeout: config
                .guest_agent_timeout
                .unwrap_or(super::agent::DEFAULT_TIMEOUT),
        };
        for dir in [&qemu_config.run_root, &qemu_config.log_dir] {
            std::fs::create_dir_all(dir).map_err(|e| DomainError::storage("create", dir, e))?;
        }
        let (core, new_boot) = Core::open(config, DRIVER)?;
        let driver = Arc::new_cyclic(|me| QemuDriver {
            core,
            config: qemu_config,
            vms: Mutex::new(HashMap::new()),
            net: match &config.network_service {
                Some(service) => super::net::HostNet::with_ports(Arc::new(service.clone())),
                None => super::net::HostNet::default(),
            },
            volumes: match &config.storage_service {
                Some(service) => DiskVolumes::with_leases(Arc::new(service.clone())),
                None => DiskVolumes::default(),
            },
            qemu_version,
            me: me.clone(),
        });
        driver.reattach_all().await;
        driver.remove_stale_dirs();
        if new_boot {
            for name in driver.core.autostart_candidates() {
                if let Err(error) = driver.start(&DomainRef::Name(name.clone()), false).await {
                    tracing::error!(domain = %name, %error, "autostart failed");
                }
            }
        }
        Ok(driver)
    }

    fn vms(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Vm>>> {
        self.vms.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn insert_vm(&self, vm: Arc<Vm>) {
        self.vms().insert(vm.uuid.clone(), vm);
    }

    /// Forgets a VM that is gone and releases what it held: its taps and network ports, its
    /// volume leases, its run dir and its cgroup. Callers have stopped QEMU; its last threads may still be exiting, and
    /// the cgroup can only be removed once they are gone, so this waits for that (bounded).
    pub(super) async fn forget_vm(&self, vm: &Arc<Vm>) {
        {
            let mut vms = self.vms();
            if vms.get(&vm.uuid).is_some_and(|v| Arc::ptr_eq(v, vm)) {
                vms.remove(&vm.uuid);
            }
        }
        if let Some(agent) = &vm.agent {
            agent.stopped();
        }
        if let Err(error) = vm.process.wait_gone(FORGET_WAIT).await {
            tracing::warn!(domain = %vm.name, %error, "QEMU has not fully exited; its cgroup may stay behind");
        }
        self.net.release(&vm.uuid, vm.id, &vm.name).await;
        self.volumes.release(&vm.uuid, vm.id, &vm.name).await;
        let dir = vm.dir.clone();
        let cgroups = self.config.cgroups.clone();
        let key = self.cgroup_key(vm.id, &vm.name);
        let name = vm.name.clone();
        // File and cgroupfs removals block: off the async workers.
        let released =
            tokio::task::spawn_blocking(move || release_run_files(&dir, &cgroups, &key, &name))
                .await;
        if let Err(error) = released {
            tracing::warn!(domain = %vm.name, %error, "releasing the VM's run files failed");
        }
    }

    /// The cgroup name of a VM: unique per service run dir and domain run.
    pub(super) fn cgroup_key(&self, id: i32, name: &str) -> String {
        format!(
            "{}-{}",
            self.config.cgroup_prefix,
            super::vm::vm_key(id, name)
        )
    }

    /// Whether `vm` is still the running instance of its domain (not stopped and restarted).
    pub(super) fn is_current(&self, vm: &Arc<Vm>) -> bool {
        self.vms().get(&vm.uuid).is_some_and(|v| Arc::ptr_eq(v, vm))
    }

    /// The VM of an active snapshot.
    pub(super) fn vm_of(&self, snapshot: &Snapshot) -> Result<Arc<Vm>> {
        self.vms().get(&snapshot.def.uuid).cloned().ok_or_else(|| {
            DomainError::Unavailable(format!(
                "domain '{}' is marked running but the service has no connection to its QEMU \
                 (see the service log)",
                snapshot.def.name
            ))
        })
    }

    /// A running domain's snapshot and VM, for callers that only read (stats, consoles,
    /// passthrough): takes no job lock.
    pub fn running_vm(&self, domain: &DomainRef) -> Result<(Arc<Snapshot>, Arc<Vm>)> {
        let snapshot = self.core.snapshot(domain)?;
        Core::require_active(&snapshot)?;
        let vm = self.vm_of(&snapshot)?;
        Ok((snapshot, vm))
    }

    /// Every running VM (for service-wide raw event streams).
    pub fn running_vms(&self) -> Vec<Arc<Vm>> {
        self.vms().values().cloned().collect()
    }

    /// Runs a QMP command on an active domain under its job lock and commits `outcome`.
    async fn qmp_job<C: qapi::Command>(
        &self,
        domain: &DomainRef,
        what: &str,
        check: impl FnOnce(&Snapshot) -> Result<()>,
        command: C,
        outcome: impl FnOnce(&Snapshot) -> Option<Outcome>,
    ) -> Result<()> {
        let locked = self.core.begin(domain).await?;
        check(&locked.old)?;
        let vm = self.vm_of(&locked.old)?;
        vm.monitor
            .execute(command)
            .await
            .map_err(|e| errors::monitor(&locked.old.def.name, what, e))?;
        if let Some(outcome) = outcome(&locked.old) {
            self.core
                .commit(&locked.object, &locked.old, outcome)
                .await?;
        }
        Ok(())
    }

    /// Waits until the run `id` of `domain` is over (shut off, removed or restarted).
    async fn wait_stopped(&self, domain: &DomainRef, id: i32, wait: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match self.core.snapshot(domain) {
                Err(DomainError::NotFound(_)) => return Ok(()),
                Err(error) => return Err(error),
                Ok(s) if !s.is_active() || s.id != id => return Ok(()),
                Ok(s) => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(DomainError::Timeout(format!(
                            "domain '{}' did not shut down within {} s; the guest may ignore \
                             the request (use 'destroy' to power it off)",
                            s.def.name,
                            wait.as_secs()
                        )));
                    }
                }
            }
            tokio::time::sleep(SHUTDOWN_POLL).await;
        }
    }
}

/// Eight hex digits of a hash of the run dir.
fn cgroup_prefix(run_root: &std::path::Path) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(run_root.as_os_str().as_encoded_bytes());
    hex::encode(&digest[..4])
}

#[tonic::async_trait]
impl DomainDriver for QemuDriver {
    fn versions(&self) -> Versions {
        Versions {
            driver: DRIVER,
            driver_version: env!("CARGO_PKG_VERSION").into(),
            hypervisor: "QEMU".into(),
            hypervisor_version: self.qemu_version.clone(),
        }
    }

    async fn node_info(&self) -> Result<NodeInfo> {
        Ok(host::node_info())
    }

    async fn define(&self, def: DomainDef) -> Result<(Summary, bool)> {
        self.core.define(def).await
    }

    async fn undefine(&self, domain: &DomainRef) -> Result<()> {
        self.core.undefine(domain).await
    }

    async fn create(&self, def: DomainDef, paused: bool) -> Result<Summary> {
        self.create_transient(def, paused).await
    }

    fn lookup(&self, domain: &DomainRef) -> Result<Summary> {
        self.core.lookup(domain)
    }

    fn list(&self, filter: &ListFilter) -> Vec<Summary> {
        self.core.list(filter)
    }

    fn info(&self, domain: &DomainRef) -> Result<Info> {
        let snapshot = self.core.snapshot(domain)?;
        let cpu_time_ns = if snapshot.is_active() {
            self.vm_of(&snapshot)
                .ok()
                .and_then(|vm| host::cpu_time_ns(vm.pid()))
                .unwrap_or(0)
        } else {
            0
        };
        let mut info = Core::info(&snapshot, cpu_time_ns);
        if snapshot.is_active()
            && let Ok(vm) = self.vm_of(&snapshot)
            && let Some(agent) = &vm.agent
        {
            info.guest_agent = agent.state();
        }
        Ok(info)
    }

    fn xml(&self, domain: &DomainRef, flags: XmlFlags) -> Result<String> {
        self.core.xml(domain, flags)
    }

    fn vcpu_count(&self, domain: &DomainRef, flags: VcpuFlags) -> Result<u32> {
        self.core.vcpu_count(domain, flags)
    }

    async fn start(&self, domain: &DomainRef, paused: bool) -> Result<Summary> {
        self.start_defined(domain, paused).await
    }

    async fn shutdown(
        &self,
        domain: &DomainRef,
        mode: PowerMode,
        wait: Option<Duration>,
    ) -> Result<()> {
        if mode == PowerMode::Agent {
            let id = self.core.snapshot(domain)?.id;
            self.agent_power_job(domain, crate::model::AgentPowerAction::Powerdown)
                .await?;
            return match wait {
                Some(wait) => self.wait_stopped(domain, id, wait).await,
                None => Ok(()),
            };
        }
        let mut id = -1;
        self.qmp_job(
            domain,
            "shut down",
            |old| {
                id = old.id;
                Core::require_running(old)
            },
            qapi::qmp::system_powerdown {},
            |_| None,
        )
        .await?;
        match wait {
            Some(wait) => self.wait_stopped(domain, id, wait).await,
            None => Ok(()),
        }
    }

    async fn destroy(&self, domain: &DomainRef, graceful: bool) -> Result<()> {
        let locked = self.core.begin(domain).await?;
        Core::require_active(&locked.old)?;
        let vm = self.vm_of(&locked.old)?;
        self.stop_process(&vm, graceful).await?;
        let outcome = Core::stopped(&locked.old, Reason::ShutoffDestroyed, "destroyed");
        self.core
            .commit(&locked.object, &locked.old, outcome)
            .await?;
        self.forget_vm(&vm).await;
        Ok(())
    }

    async fn reboot(&self, domain: &DomainRef, mode: PowerMode) -> Result<()> {
        if mode == PowerMode::Agent {
            return self
                .agent_power_job(domain, crate::model::AgentPowerAction::Reboot)
                .await;
        }
        let locked = self.core.begin(domain).await?;
        Core::require_active(&locked.old)?;
        let vm = self.vm_of(&locked.old)?;
        // QEMU runs with -no-shutdown: the guest's ACPI poweroff stops it, and the watcher
        // resets and continues it instead of ending the domain (libvirt's fake reboot).
        vm.set_fake_reboot(true);
        if let Err(error) = vm.monitor.execute(qapi::qmp::system_powerdown {}).await {
            vm.set_fake_reboot(false);
            return Err(errors::monitor(&locked.old.def.name, "reboot", error));
        }
        Ok(())
    }

    async fn reset(&self, domain: &DomainRef) -> Result<()> {
        self.qmp_job(
            domain,
            "reset",
            Core::require_active,
            qapi::qmp::system_reset {},
            |_| None,
        )
        .await
    }

    async fn suspend(&self, domain: &DomainRef) -> Result<()> {
        self.qmp_job(
            domain,
            "suspend",
            Core::require_unpaused,
            qapi::qmp::stop {},
            |old| {
                Some(Core::moved(
                    old,
                    State::Paused,
                    Reason::PausedUser,
                    vec![EventBody::Lifecycle(Lifecycle::Suspended, "paused")],
                ))
            },
        )
        .await
    }

    async fn resume(&self, domain: &DomainRef) -> Result<()> {
        self.qmp_job(
            domain,
            "resume",
            Core::require_paused,
            qapi::qmp::cont {},
            |old| {
                Some(Core::moved(
                    old,
                    State::Running,
                    Reason::RunningUnpaused,
                    vec![EventBody::Lifecycle(Lifecycle::Resumed, "unpaused")],
                ))
            },
        )
        .await
    }

    async fn set_vcpus(&self, domain: &DomainRef, count: u32, flags: VcpuFlags) -> Result<()> {
        self.set_vcpus_job(domain, count, flags).await
    }

    async fn set_memory(&self, domain: &DomainRef, kib: u64, flags: MemoryFlags) -> Result<()> {
        self.set_memory_job(domain, kib, flags).await
    }

    async fn set_autostart(&self, domain: &DomainRef, autostart: bool) -> Result<()> {
        self.core.set_autostart(domain, autostart).await
    }

    async fn attach_device(
        &self,
        domain: &DomainRef,
        device: crate::xml::DeviceDef,
        impact: crate::model::Impact,
    ) -> Result<()> {
        self.attach_device_job(domain, device, impact).await
    }

    async fn detach_device(
        &self,
        domain: &DomainRef,
        device: crate::xml::DeviceDef,
        impact: crate::model::Impact,
    ) -> Result<()> {
        self.detach_device_job(domain, device, impact).await
    }

    fn events(&self) -> &Arc<EventHub<Event>> {
        &self.core.events
    }

    // Monitoring and passthrough: stats.rs and passthrough.rs.

    async fn domain_stats(
        &self,
        query: &crate::stats::StatsQuery,
    ) -> Result<Vec<crate::stats::DomainStats>> {
        self.stats_records(query).await
    }

    async fn block_stats(
        &self,
        domain: &DomainRef,
        device: &str,
    ) -> Result<crate::stats::BlockStats> {
        self.block_stats_of(domain, device).await
    }

    async fn interface_stats(
        &self,
        domain: &DomainRef,
        device: &str,
    ) -> Result<crate::stats::InterfaceStats> {
        self.interface_stats_of(domain, device)
    }

    async fn memory_stats(&self, domain: &DomainRef) -> Result<crate::stats::MemoryStats> {
        self.memory_stats_of(domain).await
    }

    async fn set_memory_stats_period(
        &self,
        domain: &DomainRef,
        period_secs: u32,
        impact: crate::model::Impact,
    ) -> Result<()> {
        self.set_stats_period_of(domain, period_secs, impact).await
    }

    async fn guest_agent(&self, domain: &DomainRef) -> Result<crate::guest_agent::DomainAgent> {
        self.agent_handle(domain)
    }

    async fn guest_agent_passthrough(
        &self,
        domain: &DomainRef,
    ) -> Result<crate::guest_agent::DomainAgent> {
        let agent = self.agent_handle(domain)?;
        // The taint takes the job lock: bounded like the call itself, so a long job on the
        // domain makes this fail rather than hang.
        tokio::time::timeout(
            agent.timeout(),
            self.core.taint(domain, "custom-ga-command"),
        )
        .await
        .map_err(|_| {
            DomainError::Timeout(format!(
                "domain '{}' is busy with another job; the raw agent command was not sent",
                agent.domain()
            ))
        })??;
        Ok(agent)
    }

    fn set_guest_agent_timeout(&self, domain: &DomainRef, timeout: Option<Duration>) -> Result<()> {
        self.agent_link(domain)?.set_timeout(timeout);
        Ok(())
    }

    async fn agent_power(
        &self,
        domain: &DomainRef,
        action: crate::model::AgentPowerAction,
    ) -> Result<()> {
        self.agent_power_job(domain, action).await
    }

    async fn monitor_command(
        &self,
        domain: &DomainRef,
        command: &str,
        hmp: bool,
    ) -> Result<String> {
        self.monitor_command_on(domain, command, hmp).await
    }

    fn monitor_events(
        &self,
        filter: crate::passthrough::MonitorEventFilter,
    ) -> Result<crate::passthrough::MonitorEventStream> {
        self.raw_monitor_events(filter)
    }

    fn console_endpoint(
        &self,
        domain: &DomainRef,
        device: Option<&str>,
    ) -> Result<crate::console::ConsoleEndpoint> {
        let (snapshot, vm) = self.running_vm(domain)?;
        let record = vm.process.record();
        crate::console::ConsoleEndpoint::locate(
            &vm.name,
            &snapshot.def,
            &vm.dir,
            device,
            format!("{}:{}", record.pid, record.start_ticks),
        )
    }
}

/// How long [`QemuDriver::forget_vm`] waits for QEMU's last threads before removing its cgroup.
const FORGET_WAIT: Duration = Duration::from_secs(5);

/// Removes a gone VM's run dir and cgroup. Blocking.
fn release_run_files(dir: &std::path::Path, cgroups: &VmCgroups, key: &str, name: &str) {
    if let Err(error) = std::fs::remove_dir_all(dir)
        && error.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(domain = %name, dir = %dir.display(), %error, "cannot remove the VM's run dir");
    }
    release_cgroup(cgroups, key, name);
}

/// Removes a gone VM's cgroups (a failure is logged: the VM is gone either way). Blocking.
pub(super) fn release_cgroup(cgroups: &VmCgroups, key: &str, name: &str) {
    match cgroups.remove(key) {
        Ok(removal) if !removal.busy.is_empty() => {
            tracing::warn!(domain = %name, busy = ?removal.busy, "the VM's cgroup is still in use; left in place");
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(domain = %name, %error, "cannot remove the VM's cgroup"),
    }
}
