//! The `test` driver: domains in memory with libvirt's test-driver state machine and
//! errors, persisted like real ones (configs in the state dir, runtime status in the run
//! dir) so a restarted service finds every domain as it left it. Seeded once with the
//! default world (a running domain `test`), like test:///default.

use std::sync::Arc;
use std::time::Duration;

use virtplane_common::events::EventHub;

use super::core::{Core, Outcome};
use super::test_world;
use super::volumes::DiskVolumes;
use super::{DomainDriver, DriverConfig};
use crate::domains::Reserved;
use crate::error::{DomainError, Result};
use crate::impact;
use crate::model::{
    DomainRef, Event, EventBody, Info, Lifecycle, ListFilter, MemoryFlags, NodeInfo, PowerMode,
    Reason, State, Summary, VcpuFlags, Versions, XmlFlags,
};
use crate::xml::{DomainDef, LifecycleAction, parse_domain};

mod devices;
mod stats;
mod volumes;

const DRIVER: &str = "test";

pub struct TestDriver {
    core: Core,
    /// Leases on the volumes of `<disk type='volume'>`, when the service has a storage
    /// service (`volumes.rs`).
    volumes: DiskVolumes,
}

impl TestDriver {
    pub async fn open(config: &DriverConfig) -> Result<Self> {
        let (core, new_boot) = Core::open(config, DRIVER)?;
        let volumes = match &config.storage_service {
            Some(service) => DiskVolumes::with_leases(Arc::new(service.clone())),
            None => DiskVolumes::default(),
        };
        let driver = Self { core, volumes };
        let seeded = config.state_dir.join("seeded");
        if !seeded.exists() {
            driver.seed_default_world().await?;
            virtplane_common::store::write_atomic(&seeded, b"")
                .map_err(|e| DomainError::storage("write", &seeded, e))?;
        }
        if new_boot {
            driver.autostart().await;
        }
        Ok(driver)
    }

    async fn seed_default_world(&self) -> Result<()> {
        let (summary, _) = self
            .define(parse_domain(test_world::DEFAULT_DOMAIN_XML)?)
            .await?;
        if !summary.state.is_active() {
            self.start(&DomainRef::Name(summary.name), false).await?;
        }
        Ok(())
    }

    async fn autostart(&self) {
        for name in self.core.autostart_candidates() {
            if let Err(error) = self.start(&DomainRef::Name(name.clone()), false).await {
                tracing::error!(domain = %name, %error, "autostart failed");
            }
        }
    }
}

#[tonic::async_trait]
impl DomainDriver for TestDriver {
    fn versions(&self) -> Versions {
        Versions {
            driver: DRIVER,
            driver_version: env!("CARGO_PKG_VERSION").into(),
            hypervisor: "Test".into(),
            hypervisor_version: "0.0.2".into(),
        }
    }

    async fn node_info(&self) -> Result<NodeInfo> {
        Ok(NodeInfo {
            cpu_model: test_world::NODE_CPU_MODEL.into(),
            memory_kib: test_world::NODE_MEMORY_KIB,
            cpus: test_world::NODE_CPUS,
            mhz: test_world::NODE_MHZ,
            nodes: 2,
            sockets: 2,
            cores: 2,
            threads: 2,
            hostname: nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default(),
            free_memory_kib: test_world::NODE_FREE_MEMORY_KIB,
        })
    }

    async fn define(&self, def: DomainDef) -> Result<(Summary, bool)> {
        self.core.define(def).await
    }

    async fn undefine(&self, domain: &DomainRef) -> Result<()> {
        self.core.undefine(domain).await
    }

    async fn create(&self, def: DomainDef, paused: bool) -> Result<Summary> {
        let def = Arc::new(def);
        loop {
            match self.core.domains.reserve(&def)? {
                Reserved::New(object, _job) => {
                    let old = object.snapshot();
                    let started = self.start_locked(&object, &old, def.clone(), paused).await;
                    if started.is_err() {
                        self.core.domains.remove(&object);
                    }
                    return started;
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
                    // An inactive persistent domain runs with the given XML; its config stays.
                    return self.start_locked(&object, &old, def.clone(), paused).await;
                }
            }
        }
    }

    fn lookup(&self, domain: &DomainRef) -> Result<Summary> {
        self.core.lookup(domain)
    }

    fn list(&self, filter: &ListFilter) -> Vec<Summary> {
        self.core.list(filter)
    }

    fn info(&self, domain: &DomainRef) -> Result<Info> {
        let snapshot = self.core.snapshot(domain)?;
        // The simulated guest has used its CPU for as long as it ran.
        let cpu_time_ns = snapshot
            .started_at
            .filter(|_| snapshot.is_active())
            .and_then(|t| t.elapsed().ok())
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        Ok(Core::info(&snapshot, cpu_time_ns))
    }

    fn xml(&self, domain: &DomainRef, flags: XmlFlags) -> Result<String> {
        self.core.xml(domain, flags)
    }

    fn vcpu_count(&self, domain: &DomainRef, flags: VcpuFlags) -> Result<u32> {
        self.core.vcpu_count(domain, flags)
    }

    async fn start(&self, domain: &DomainRef, paused: bool) -> Result<Summary> {
        let locked = self.core.begin(domain).await?;
        Core::require_inactive(&locked.old)?;
        self.start_locked(&locked.object, &locked.old, locked.old.def.clone(), paused)
            .await
    }

    async fn shutdown(
        &self,
        domain: &DomainRef,
        mode: PowerMode,
        _wait: Option<Duration>,
    ) -> Result<()> {
        // libvirt's test driver takes no shutdown flags (virCheckFlags(0)).
        if mode != PowerMode::Default {
            return Err(DomainError::Unsupported {
                driver: DRIVER,
                what: "choosing a shutdown mode (acpi, agent) needs the qemu driver".into(),
            });
        }
        self.stopping_job(domain, |old| {
            Core::require_active(old)?;
            // The simulated guest honours on_poweroff at once; restart keeps it running.
            if matches!(
                old.def.on_poweroff,
                Some(LifecycleAction::Restart | LifecycleAction::RenameRestart)
            ) {
                let mut next = old.clone();
                next.state = State::Running;
                next.reason = Reason::RunningBooted;
                return Ok(Outcome::Update(next, Vec::new()));
            }
            Ok(Core::stopped(old, Reason::ShutoffShutdown, "shutdown"))
        })
        .await
    }

    async fn destroy(&self, domain: &DomainRef, _graceful: bool) -> Result<()> {
        self.stopping_job(domain, |old| {
            Core::require_active(old)?;
            Ok(Core::stopped(old, Reason::ShutoffDestroyed, "destroyed"))
        })
        .await
    }

    async fn reboot(&self, domain: &DomainRef, _mode: PowerMode) -> Result<()> {
        self.stopping_job(domain, |old| {
            Core::require_active(old)?;
            match old.def.on_reboot {
                Some(LifecycleAction::Destroy | LifecycleAction::Preserve) => {
                    Ok(Core::stopped(old, Reason::ShutoffShutdown, "shutdown"))
                }
                _ => {
                    let mut next = old.clone();
                    next.state = State::Running;
                    next.reason = Reason::RunningBooted;
                    Ok(Outcome::Update(next, Vec::new()))
                }
            }
        })
        .await
    }

    async fn reset(&self, domain: &DomainRef) -> Result<()> {
        self.core
            .job(domain, |old| {
                Core::require_active(old)?;
                let mut next = old.clone();
                next.started_at = Some(std::time::SystemTime::now());
                Ok((Outcome::Update(next, Vec::new()), ()))
            })
            .await
    }

    async fn suspend(&self, domain: &DomainRef) -> Result<()> {
        self.core
            .job(domain, |old| {
                Core::require_unpaused(old)?;
                let mut next = old.clone();
                next.state = State::Paused;
                next.reason = Reason::PausedUser;
                let events = vec![EventBody::Lifecycle(Lifecycle::Suspended, "paused")];
                Ok((Outcome::Update(next, events), ()))
            })
            .await
    }

    async fn resume(&self, domain: &DomainRef) -> Result<()> {
        self.core
            .job(domain, |old| {
                Core::require_paused(old)?;
                let mut next = old.clone();
                next.state = State::Running;
                next.reason = Reason::RunningUnpaused;
                let events = vec![EventBody::Lifecycle(Lifecycle::Resumed, "unpaused")];
                Ok((Outcome::Update(next, events), ()))
            })
            .await
    }

    async fn set_vcpus(&self, domain: &DomainRef, count: u32, flags: VcpuFlags) -> Result<()> {
        impact::check_vcpu_flags(flags)?;
        if flags.guest {
            return Err(DomainError::Unsupported {
                driver: DRIVER,
                what: "setting vCPUs inside the guest needs the qemu driver's guest agent".into(),
            });
        }
        if flags.hotpluggable {
            return Err(DomainError::Unsupported {
                driver: DRIVER,
                what: "hotpluggable vCPUs need the qemu driver".into(),
            });
        }
        self.core
            .job(domain, |old| {
                let targets = impact::resolve(flags.impact, old.is_active(), old.persistent)?;
                let next = Core::edit(old, targets, |live, config| {
                    impact::set_vcpus(live, config, count, flags, test_world::MAX_VCPUS)
                })?;
                Ok((
                    Outcome::Update(next, vec![EventBody::ConfigChanged("vcpus")]),
                    (),
                ))
            })
            .await
    }

    async fn set_memory(&self, domain: &DomainRef, kib: u64, flags: MemoryFlags) -> Result<()> {
        self.core
            .job(domain, |old| {
                let targets = impact::resolve(flags.impact, old.is_active(), old.persistent)?;
                let next = Core::edit(old, targets, |live, config| {
                    impact::set_memory(live, config, kib, flags)
                })?;
                Ok((
                    Outcome::Update(next, vec![EventBody::ConfigChanged("memory")]),
                    (),
                ))
            })
            .await
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

    async fn domain_stats(
        &self,
        query: &crate::stats::StatsQuery,
    ) -> Result<Vec<crate::stats::DomainStats>> {
        self.stats_records(query)
    }
}
