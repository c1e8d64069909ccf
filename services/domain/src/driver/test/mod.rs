//! The `test` driver: domains in memory with libvirt's test-driver state machine and
//! errors, persisted like real ones (configs in the state dir, runtime status in the run
//! dir) so a restarted service finds every domain as it left it. Seeded once with the
//! default world (a running domain `test`), like test:///default.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::SystemTime;

use virtplane_common::events::EventHub;

use super::test_status::Status;
use super::test_world;
use super::{DomainDriver, DriverConfig};
use crate::domains::{DomainList, DomainObj, Reserved, Snapshot};
use crate::error::{DomainError, Result};
use crate::impact;
use crate::model::{
    DomainRef, Event, EventBody, Info, Lifecycle, ListFilter, MemoryFlags, NodeInfo, PowerMode,
    Reason, State, Summary, VcpuFlags, Versions, XmlFlags,
};
use crate::persist::{Store, file_stem};
use crate::xml::{DomainDef, FormatOptions, LifecycleAction, parse_domain};

mod commit;
mod load;

/// How many events a resuming watcher can catch up on.
const RETAINED_EVENTS: usize = 10_000;

const DRIVER: &str = "test";

pub struct TestDriver {
    domains: DomainList,
    store: Store,
    events: Arc<EventHub<Event>>,
    next_id: AtomicI32,
}

/// What a job decided.
enum Outcome {
    Update(Snapshot, Vec<EventBody>),
    Remove(Vec<EventBody>),
}

fn secure_xml(def: &DomainDef) -> String {
    def.to_xml(&FormatOptions {
        secure: true,
        live_id: None,
    })
}

impl TestDriver {
    pub async fn open(config: &DriverConfig) -> Result<Self> {
        let store = Store::open(&config.state_dir, &config.run_dir)?;
        let epoch = EventHub::<Event>::next_epoch(&config.state_dir)
            .map_err(|e| DomainError::storage("update", &config.state_dir, e))?;
        let driver = Self {
            domains: DomainList::default(),
            store,
            events: EventHub::new(epoch, RETAINED_EVENTS),
            next_id: AtomicI32::new(1),
        };
        let new_boot = driver.store.claim_boot()?;
        driver.load(new_boot)?;
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

    fn snapshot(&self, domain: &DomainRef) -> Result<Arc<Snapshot>> {
        Ok(self.domains.find(domain)?.snapshot())
    }

    fn next_id(&self) -> i32 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The snapshot of a domain that starts now from `old` (live def = persistent def).
    fn started(
        &self,
        old: &Snapshot,
        live: Arc<DomainDef>,
        paused: bool,
    ) -> (Snapshot, Vec<EventBody>) {
        let mut next = old.clone();
        next.next_def = old.persistent.then(|| old.def.clone());
        next.def = live;
        next.id = self.next_id();
        next.started_at = Some(SystemTime::now());
        next.visible = true;
        let mut events = vec![EventBody::Lifecycle(Lifecycle::Started, "booted")];
        if paused {
            next.state = State::Paused;
            next.reason = Reason::PausedUser;
            events.push(EventBody::Lifecycle(Lifecycle::Suspended, "paused"));
        } else {
            next.state = State::Running;
            next.reason = Reason::RunningBooted;
        }
        (next, events)
    }

    /// Stopping: a persistent domain goes back to its config, a transient one disappears.
    fn stopped(old: &Snapshot, reason: Reason, detail: &'static str) -> Outcome {
        let events = vec![EventBody::Lifecycle(Lifecycle::Stopped, detail)];
        if !old.persistent {
            return Outcome::Remove(events);
        }
        let mut next = old.clone();
        next.def = old.next_def.clone().unwrap_or_else(|| old.def.clone());
        next.next_def = None;
        next.state = State::Shutoff;
        next.reason = reason;
        next.id = -1;
        next.started_at = None;
        Outcome::Update(next, events)
    }

    fn require_active(old: &Snapshot) -> Result<()> {
        if old.is_active() {
            Ok(())
        } else {
            Err(DomainError::not_running(&old.def.name))
        }
    }

    /// Applies a typed edit to the targeted definitions and returns the next snapshot.
    fn edit(
        old: &Snapshot,
        targets: impact::Targets,
        apply: impl FnOnce(Option<&mut DomainDef>, Option<&mut DomainDef>) -> Result<()>,
    ) -> Result<Snapshot> {
        let mut live = (targets.live && old.is_active()).then(|| (*old.def).clone());
        let mut config = if targets.config {
            old.persistent_def().map(|def| (**def).clone())
        } else {
            None
        };
        apply(live.as_mut(), config.as_mut())?;
        for def in [&live, &config].into_iter().flatten() {
            def.validate().map_err(|e| {
                DomainError::InvalidArg(format!(
                    "the change would make the definition invalid: {e}"
                ))
            })?;
        }
        let mut next = old.clone();
        if let Some(live) = live {
            next.def = Arc::new(live);
        }
        if let Some(config) = config {
            if old.is_active() {
                next.next_def = Some(Arc::new(config));
            } else {
                next.def = Arc::new(config);
            }
        }
        Ok(next)
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
        })
    }

    async fn define(&self, def: DomainDef) -> Result<(Summary, bool)> {
        let def = Arc::new(def);
        loop {
            match self.domains.reserve(&def)? {
                Reserved::New(object, _job) => {
                    let old = object.snapshot();
                    let mut next = (*old).clone();
                    next.persistent = true;
                    next.visible = true;
                    let summary = next.summary();
                    let events = vec![EventBody::Lifecycle(Lifecycle::Defined, "added")];
                    if let Err(error) = self
                        .commit(&object, &old, Outcome::Update(next, events))
                        .await
                    {
                        self.domains.remove(&object);
                        return Err(error);
                    }
                    return Ok((summary, false));
                }
                Reserved::Existing(object) => {
                    let _job = object.begin_job().await;
                    let old = object.snapshot();
                    if old.removed {
                        continue;
                    }
                    let mut next = (*old).clone();
                    let detail = if old.persistent { "updated" } else { "added" };
                    if old.is_active() {
                        next.next_def = Some(def.clone());
                    } else {
                        next.def = def.clone();
                    }
                    next.persistent = true;
                    next.visible = true;
                    let summary = next.summary();
                    let events = vec![EventBody::Lifecycle(Lifecycle::Defined, detail)];
                    self.commit(&object, &old, Outcome::Update(next, events))
                        .await?;
                    return Ok((summary, true));
                }
            }
        }
    }

    async fn undefine(&self, domain: &DomainRef) -> Result<()> {
        self.job(domain, |old| {
            if !old.persistent {
                return Err(DomainError::OperationInvalid(format!(
                    "cannot undefine transient domain '{}'",
                    old.def.name
                )));
            }
            let events = vec![EventBody::Lifecycle(Lifecycle::Undefined, "removed")];
            if !old.is_active() {
                return Ok((Outcome::Remove(events), ()));
            }
            // A running domain stays, as transient.
            let mut next = old.clone();
            next.persistent = false;
            next.next_def = None;
            next.autostart = false;
            Ok((Outcome::Update(next, events), ()))
        })
        .await
    }

    async fn create(&self, def: DomainDef, paused: bool) -> Result<Summary> {
        let def = Arc::new(def);
        loop {
            match self.domains.reserve(&def)? {
                Reserved::New(object, _job) => {
                    let old = object.snapshot();
                    let (next, events) = self.started(&old, def.clone(), paused);
                    let summary = next.summary();
                    if let Err(error) = self
                        .commit(&object, &old, Outcome::Update(next, events))
                        .await
                    {
                        self.domains.remove(&object);
                        return Err(error);
                    }
                    return Ok(summary);
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
                    let (next, events) = self.started(&old, def.clone(), paused);
                    let summary = next.summary();
                    self.commit(&object, &old, Outcome::Update(next, events))
                        .await?;
                    return Ok(summary);
                }
            }
        }
    }

    fn lookup(&self, domain: &DomainRef) -> Result<Summary> {
        Ok(self.snapshot(domain)?.summary())
    }

    fn list(&self, filter: &ListFilter) -> Vec<Summary> {
        self.domains
            .snapshots()
            .iter()
            .map(|snapshot| snapshot.summary())
            .filter(|summary| filter.matches(summary))
            .collect()
    }

    fn info(&self, domain: &DomainRef) -> Result<Info> {
        let snapshot = self.snapshot(domain)?;
        let def = &snapshot.def;
        let cpu_time_ns = snapshot
            .started_at
            .filter(|_| snapshot.is_active())
            .and_then(|t| t.elapsed().ok())
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let mut tainted = Vec::new();
        if def.has_qemu_commandline() {
            tainted.push("custom-argv".to_owned());
        }
        Ok(Info {
            summary: snapshot.summary(),
            os_type: def.os.os_type.clone(),
            max_memory_kib: def.memory_kib,
            memory_kib: def.current_memory_kib.unwrap_or(def.memory_kib),
            vcpus: impact::vcpu_count(def, false),
            cpu_time_ns,
            tainted,
        })
    }

    fn xml(&self, domain: &DomainRef, flags: XmlFlags) -> Result<String> {
        let snapshot = self.snapshot(domain)?;
        let (def, live_id) = if flags.inactive || !snapshot.is_active() {
            (snapshot.persistent_def().unwrap_or(&snapshot.def), None)
        } else {
            (&snapshot.def, Some(snapshot.id))
        };
        Ok(def.to_xml(&FormatOptions {
            secure: flags.secure,
            live_id,
        }))
    }

    fn vcpu_count(&self, domain: &DomainRef, flags: VcpuFlags) -> Result<u32> {
        let snapshot = self.snapshot(domain)?;
        if flags.guest {
            return Err(DomainError::Unsupported {
                driver: DRIVER,
                what: "vCPU counts from inside the guest need the qemu driver's guest agent".into(),
            });
        }
        let live = impact::resolve_one(flags.impact, snapshot.is_active(), snapshot.persistent)?;
        let def = if live {
            &snapshot.def
        } else {
            snapshot.persistent_def().unwrap_or(&snapshot.def)
        };
        Ok(impact::vcpu_count(def, flags.maximum))
    }

    async fn start(&self, domain: &DomainRef, paused: bool) -> Result<Summary> {
        self.job(domain, |old| {
            if old.is_active() {
                return Err(DomainError::OperationInvalid(format!(
                    "domain '{}' is already running",
                    old.def.name
                )));
            }
            let (next, events) = self.started(old, old.def.clone(), paused);
            let summary = next.summary();
            Ok((Outcome::Update(next, events), summary))
        })
        .await
    }

    async fn shutdown(&self, domain: &DomainRef, mode: PowerMode) -> Result<()> {
        // libvirt's test driver takes no shutdown flags (virCheckFlags(0)).
        if mode != PowerMode::Default {
            return Err(DomainError::Unsupported {
                driver: DRIVER,
                what: "choosing a shutdown mode (acpi, agent) needs the qemu driver".into(),
            });
        }
        self.job(domain, |old| {
            Self::require_active(old)?;
            // The simulated guest honours on_poweroff at once; restart keeps it running.
            if matches!(
                old.def.on_poweroff,
                Some(LifecycleAction::Restart | LifecycleAction::RenameRestart)
            ) {
                let mut next = old.clone();
                next.state = State::Running;
                next.reason = Reason::RunningBooted;
                return Ok((Outcome::Update(next, Vec::new()), ()));
            }
            Ok((Self::stopped(old, Reason::ShutoffShutdown, "shutdown"), ()))
        })
        .await
    }

    async fn destroy(&self, domain: &DomainRef, _graceful: bool) -> Result<()> {
        self.job(domain, |old| {
            Self::require_active(old)?;
            Ok((
                Self::stopped(old, Reason::ShutoffDestroyed, "destroyed"),
                (),
            ))
        })
        .await
    }

    async fn reboot(&self, domain: &DomainRef, _mode: PowerMode) -> Result<()> {
        self.job(domain, |old| {
            Self::require_active(old)?;
            match old.def.on_reboot {
                Some(LifecycleAction::Destroy | LifecycleAction::Preserve) => {
                    Ok((Self::stopped(old, Reason::ShutoffShutdown, "shutdown"), ()))
                }
                _ => {
                    let mut next = old.clone();
                    next.state = State::Running;
                    next.reason = Reason::RunningBooted;
                    Ok((Outcome::Update(next, Vec::new()), ()))
                }
            }
        })
        .await
    }

    async fn reset(&self, domain: &DomainRef) -> Result<()> {
        self.job(domain, |old| {
            Self::require_active(old)?;
            let mut next = old.clone();
            next.started_at = Some(SystemTime::now());
            Ok((Outcome::Update(next, Vec::new()), ()))
        })
        .await
    }

    async fn suspend(&self, domain: &DomainRef) -> Result<()> {
        self.job(domain, |old| {
            match old.state {
                State::Shutoff => return Err(DomainError::not_running(&old.def.name)),
                State::Paused => {
                    return Err(DomainError::OperationInvalid(format!(
                        "domain '{}' is not running: it is already paused",
                        old.def.name
                    )));
                }
                _ => {}
            }
            let mut next = old.clone();
            next.state = State::Paused;
            next.reason = Reason::PausedUser;
            let events = vec![EventBody::Lifecycle(Lifecycle::Suspended, "paused")];
            Ok((Outcome::Update(next, events), ()))
        })
        .await
    }

    async fn resume(&self, domain: &DomainRef) -> Result<()> {
        self.job(domain, |old| {
            if old.state != State::Paused {
                return Err(DomainError::OperationInvalid(format!(
                    "domain '{}' is not paused",
                    old.def.name
                )));
            }
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
        self.job(domain, |old| {
            let targets = impact::resolve(flags.impact, old.is_active(), old.persistent)?;
            let next = Self::edit(old, targets, |live, config| {
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
        self.job(domain, |old| {
            let targets = impact::resolve(flags.impact, old.is_active(), old.persistent)?;
            let next = Self::edit(old, targets, |live, config| {
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
        self.job(domain, |old| {
            if !old.persistent {
                return Err(DomainError::OperationInvalid(format!(
                    "cannot set autostart for transient domain '{}'",
                    old.def.name
                )));
            }
            let mut next = old.clone();
            next.autostart = autostart;
            Ok((
                Outcome::Update(next, vec![EventBody::ConfigChanged("autostart")]),
                (),
            ))
        })
        .await
    }

    fn events(&self) -> &Arc<EventHub<Event>> {
        &self.events
    }
}
