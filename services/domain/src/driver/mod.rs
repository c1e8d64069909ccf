//! The driver trait every domain driver implements, and the factory that picks one.
//!
//! Drivers speak the service's own model (`crate::model`, `crate::xml`), never protobuf.
//! A driver that lacks a feature returns `DomainError::Unsupported` (→ UNIMPLEMENTED).

use std::path::PathBuf;
use std::sync::Arc;

use virtplane_common::events::EventHub;

use crate::console::ConsoleEndpoint;
use crate::error::{DomainError, Result};
use crate::model::{
    DomainRef, Event, Info, ListFilter, MemoryFlags, NodeInfo, PowerMode, Summary, VcpuFlags,
    Versions, XmlFlags,
};
use crate::passthrough::{MonitorEventFilter, MonitorEventStream};
use crate::stats::{
    self, BlockDevice, BlockStats, DomainStats, InterfaceEntry, InterfaceStats, MemoryStats,
    StatsQuery,
};
use crate::xml::{DeviceDef, DomainDef};

pub mod core;
pub mod qemu;
pub mod test;
mod test_world;
pub mod volumes;

/// libvirt's hypervisor driver API, as far as virtplane has it.
#[tonic::async_trait]
pub trait DomainDriver: Send + Sync + 'static {
    fn versions(&self) -> Versions;
    async fn node_info(&self) -> Result<NodeInfo>;

    /// Defines or redefines a persistent domain; true when an existing one was updated.
    async fn define(&self, def: DomainDef) -> Result<(Summary, bool)>;
    async fn undefine(&self, domain: &DomainRef) -> Result<()>;
    /// Starts a transient domain from XML.
    async fn create(&self, def: DomainDef, paused: bool) -> Result<Summary>;

    fn lookup(&self, domain: &DomainRef) -> Result<Summary>;
    /// Every domain matching `filter`, sorted by name.
    fn list(&self, filter: &ListFilter) -> Vec<Summary>;
    fn info(&self, domain: &DomainRef) -> Result<Info>;
    fn xml(&self, domain: &DomainRef, flags: XmlFlags) -> Result<String>;
    fn vcpu_count(&self, domain: &DomainRef, flags: VcpuFlags) -> Result<u32>;

    async fn start(&self, domain: &DomainRef, paused: bool) -> Result<Summary>;
    /// Asks the guest to power off. With `wait`, returns only once the domain is shut off, or
    /// fails when it is still running after `wait` (a guest may ignore ACPI).
    async fn shutdown(
        &self,
        domain: &DomainRef,
        mode: PowerMode,
        wait: Option<std::time::Duration>,
    ) -> Result<()>;
    async fn destroy(&self, domain: &DomainRef, graceful: bool) -> Result<()>;
    async fn reboot(&self, domain: &DomainRef, mode: PowerMode) -> Result<()>;
    async fn reset(&self, domain: &DomainRef) -> Result<()>;
    async fn suspend(&self, domain: &DomainRef) -> Result<()>;
    async fn resume(&self, domain: &DomainRef) -> Result<()>;

    async fn set_vcpus(&self, domain: &DomainRef, count: u32, flags: VcpuFlags) -> Result<()>;
    async fn set_memory(&self, domain: &DomainRef, kib: u64, flags: MemoryFlags) -> Result<()>;
    async fn set_autostart(&self, domain: &DomainRef, autostart: bool) -> Result<()>;

    /// virDomainAttachDeviceFlags: adds `device` to the running domain and/or its config as
    /// `impact` says (neither: live if running, else config). Devices a driver cannot attach
    /// are refused as unsupported, naming their element.
    async fn attach_device(
        &self,
        domain: &DomainRef,
        device: DeviceDef,
        impact: crate::model::Impact,
    ) -> Result<()> {
        let _ = (domain, impact);
        Err(unsupported(
            self.versions().driver,
            &format!("attaching <{}> devices", device.element()),
        ))
    }

    /// virDomainDetachDeviceFlags: removes the device `device` names (a disk by its target)
    /// from the running domain and/or its config. A live detach returns once the guest has
    /// released the device, or fails with a timeout while it is still attached.
    async fn detach_device(
        &self,
        domain: &DomainRef,
        device: DeviceDef,
        impact: crate::model::Impact,
    ) -> Result<()> {
        let _ = (domain, impact);
        Err(unsupported(
            self.versions().driver,
            &format!("detaching <{}> devices", device.element()),
        ))
    }

    /// The driver's event stream.
    fn events(&self) -> &Arc<EventHub<Event>>;

    /// Where console `device` (an alias such as `serial0`; `None`: the first console) of a
    /// running domain is, for the console hub (`crate::console`) to connect to. Drivers with
    /// QEMU-style consoles build it with [`ConsoleEndpoint::locate`] from the live definition
    /// and the VM's run dir. Not running → `DomainError::not_running`.
    fn console_endpoint(
        &self,
        domain: &DomainRef,
        device: Option<&str>,
    ) -> Result<ConsoleEndpoint> {
        let _ = (domain, device);
        Err(DomainError::Unsupported {
            driver: self.versions().driver,
            what: "serial consoles".into(),
        })
    }

    // Monitoring (domstats and friends). All are reads: they never take a domain's job lock,
    // so a long job (a start, a hotplug) does not hold them up.

    /// virConnectGetAllDomainStats / virDomainListGetStats (`domstats`).
    async fn domain_stats(&self, query: &StatsQuery) -> Result<Vec<DomainStats>> {
        let _ = query;
        Err(unsupported(self.versions().driver, "domain statistics"))
    }

    /// The disks of the live (or, with `inactive`, the persistent) definition
    /// (`domblklist`). Derived from the XML, as virsh does, so every driver has it.
    fn block_devices(&self, domain: &DomainRef, inactive: bool) -> Result<Vec<BlockDevice>> {
        Ok(stats::block_devices(&self.definition(domain, inactive)?))
    }

    /// The network interfaces of the live (or persistent) definition (`domiflist`).
    fn interface_entries(&self, domain: &DomainRef, inactive: bool) -> Result<Vec<InterfaceEntry>> {
        Ok(stats::interface_entries(
            &self.definition(domain, inactive)?,
        ))
    }

    /// A definition as `xml` gives it, parsed back (for the default list methods above).
    fn definition(&self, domain: &DomainRef, inactive: bool) -> Result<DomainDef> {
        let xml = self.xml(
            domain,
            XmlFlags {
                inactive,
                secure: false,
            },
        )?;
        crate::xml::parse_domain(&xml).map_err(|e| {
            DomainError::Internal(format!("the driver's own XML does not parse back: {e}"))
        })
    }

    /// virDomainBlockStatsFlags (`domblkstat`): one disk by target or source path, or with
    /// an empty `device` the sum over every disk.
    async fn block_stats(&self, domain: &DomainRef, device: &str) -> Result<BlockStats> {
        let _ = (domain, device);
        Err(unsupported(self.versions().driver, "block statistics"))
    }

    /// virDomainInterfaceStats (`domifstat`): `device` is the host-side name or the MAC.
    async fn interface_stats(&self, domain: &DomainRef, device: &str) -> Result<InterfaceStats> {
        let _ = (domain, device);
        Err(unsupported(self.versions().driver, "interface statistics"))
    }

    /// virDomainMemoryStats (`dommemstat`).
    async fn memory_stats(&self, domain: &DomainRef) -> Result<MemoryStats> {
        let _ = domain;
        Err(unsupported(self.versions().driver, "memory statistics"))
    }

    /// virDomainSetMemoryStatsPeriod (`dommemstat --period`).
    async fn set_memory_stats_period(
        &self,
        domain: &DomainRef,
        period_secs: u32,
        impact: crate::model::Impact,
    ) -> Result<()> {
        let _ = (domain, period_secs, impact);
        Err(unsupported(
            self.versions().driver,
            "the memory statistics period",
        ))
    }

    // Passthrough (`domain:passthrough`, checked by the gateway).

    /// virDomainQemuMonitorCommand: a raw QMP command (JSON) or, with `hmp`, an HMP command
    /// line; returns QMP's reply JSON or HMP's text.
    async fn monitor_command(
        &self,
        domain: &DomainRef,
        command: &str,
        hmp: bool,
    ) -> Result<String> {
        let _ = (domain, command, hmp);
        Err(unsupported(self.versions().driver, "monitor passthrough"))
    }

    // The guest agent (`crate::guest_agent`; the typed calls are in `api/guest`).

    /// The guest agent of running domain `domain`, its calls bounded by the domain's agent
    /// timeout. Fails at once with `AgentUnavailable` when the agent is known not to be
    /// connected (no channel, or qemu-ga has not opened it), rather than waiting for a timeout.
    async fn guest_agent(&self, domain: &DomainRef) -> Result<crate::guest_agent::DomainAgent> {
        let _ = domain;
        Err(unsupported(self.versions().driver, "the guest agent"))
    }

    /// `guest-shutdown`: power off, reboot or halt from inside the guest. The agent answers
    /// only by acting, so this returns once the guest has begun (QEMU reports its shutdown
    /// or reset), or fails when nothing happened within the agent timeout.
    async fn agent_power(
        &self,
        domain: &DomainRef,
        action: crate::model::AgentPowerAction,
    ) -> Result<()> {
        let _ = (domain, action);
        Err(unsupported(self.versions().driver, "the guest agent"))
    }

    /// The agent for raw commands (`qemu-agent-command`): as [`Self::guest_agent`], and the
    /// run is tainted `custom-ga-command` first, as libvirt does, since a raw command may
    /// change the guest behind the service's back.
    async fn guest_agent_passthrough(
        &self,
        domain: &DomainRef,
    ) -> Result<crate::guest_agent::DomainAgent> {
        let _ = domain;
        Err(unsupported(self.versions().driver, "the guest agent"))
    }

    /// virDomainAgentSetResponseTimeout (`guest-agent-timeout`): the agent timeout of running
    /// domain `domain` until it stops; `None` = back to the service's default.
    fn set_guest_agent_timeout(
        &self,
        domain: &DomainRef,
        timeout: Option<std::time::Duration>,
    ) -> Result<()> {
        let _ = (domain, timeout);
        Err(unsupported(self.versions().driver, "the guest agent"))
    }

    /// virConnectDomainQemuMonitorEventRegister: raw monitor events.
    fn monitor_events(&self, filter: MonitorEventFilter) -> Result<MonitorEventStream> {
        let _ = filter;
        Err(unsupported(self.versions().driver, "raw monitor events"))
    }
}

fn unsupported(driver: &'static str, what: &str) -> DomainError {
    DomainError::Unsupported {
        driver,
        what: what.into(),
    }
}

/// Which driver to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DriverKind {
    /// In-memory domains with libvirt's test-driver semantics, persisted to the state dir.
    Test,
    /// Real QEMU over QMP.
    Qemu,
}

/// Where a driver keeps its files.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    pub state_dir: PathBuf,
    pub run_dir: PathBuf,
    /// The qemu driver's emulator for definitions without `<emulator>`; default: the first
    /// `qemu-system-x86_64` on PATH.
    pub emulator: Option<PathBuf>,
    /// Where the qemu driver puts each QEMU's own cgroup, so that a restart that kills the
    /// service's cgroup leaves VMs running: `None` = no placement (QEMU stays in the
    /// service's cgroup), `Some(None)` = the default root (`virtplane.vms`).
    pub vm_cgroup_root: Option<Option<PathBuf>>,
    /// The network service that gives `<interface type='network'>` its ports (qemu driver);
    /// `None` = such interfaces are refused with a message saying so.
    pub network_service: Option<crate::network_service::NetworkService>,
    /// The storage service that resolves `<disk type='volume'>` and leases its volume (both
    /// drivers); `None` = such disks are refused by the qemu driver with a message saying so,
    /// and accepted unresolved by the test driver.
    pub storage_service: Option<crate::storage_service::StorageService>,
    /// How long a guest agent call may take; `None` = [`qemu::agent::DEFAULT_TIMEOUT`].
    pub guest_agent_timeout: Option<std::time::Duration>,
}

/// Builds the configured driver.
pub async fn build(kind: DriverKind, config: &DriverConfig) -> Result<Arc<dyn DomainDriver>> {
    match kind {
        DriverKind::Test => Ok(Arc::new(test::TestDriver::open(config).await?)),
        DriverKind::Qemu => Ok(qemu::QemuDriver::open(config).await?),
    }
}
