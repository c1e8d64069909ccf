//! What every driver shares: the domain list, the files on disk, the event hub, and the
//! libvirt rules that do not depend on a hypervisor (define, undefine, autostart, lookups,
//! config-only edits, how a started or stopped domain's snapshot looks).
//!
//! A driver owns a [`Core`] and adds what its hypervisor does between taking a domain's job
//! lock ([`Core::begin`]) and committing the next snapshot ([`Core::commit`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::SystemTime;

use tokio::sync::OwnedMutexGuard;
use virtplane_common::events::EventHub;

use super::DriverConfig;
use crate::domains::{DomainList, DomainObj, Reserved, Snapshot};
use crate::error::{DomainError, Result};
use crate::impact;
use crate::model::{
    DomainRef, Event, EventBody, Info, Lifecycle, ListFilter, Reason, State, Summary, VcpuFlags,
    XmlFlags,
};
use crate::persist::Store;
use crate::xml::{DomainDef, FormatOptions, parse_domain};

mod commit;
mod load;
pub mod status;

/// How many events a resuming watcher can catch up on.
const RETAINED_EVENTS: usize = 10_000;

/// The state shared by a driver's jobs.
pub struct Core {
    pub domains: DomainList,
    pub store: Store,
    pub events: Arc<EventHub<Event>>,
    next_id: AtomicI32,
    /// The driver's name, for messages.
    driver: &'static str,
}

/// What a job decided.
pub enum Outcome {
    Update(Snapshot, Vec<EventBody>),
    Remove(Vec<EventBody>),
}

/// A domain whose job lock is held: the snapshot it had when the lock was taken.
pub struct Locked {
    pub object: Arc<DomainObj>,
    pub old: Arc<Snapshot>,
    _job: OwnedMutexGuard<()>,
}

pub(crate) fn secure_xml(def: &DomainDef) -> String {
    def.to_xml(&FormatOptions {
        secure: true,
        live_id: None,
    })
}

impl Core {
    /// Opens the state and run dirs and loads every stored domain. Returns whether this is
    /// the first start since the host booted (see [`Store::claim_boot`]).
    pub fn open(config: &DriverConfig, driver: &'static str) -> Result<(Self, bool)> {
        let store = Store::open(&config.state_dir, &config.run_dir)?;
        let epoch = EventHub::<Event>::next_epoch(&config.state_dir)
            .map_err(|e| DomainError::storage("update", &config.state_dir, e))?;
        let core = Self {
            domains: DomainList::default(),
            store,
            events: EventHub::new(epoch, RETAINED_EVENTS),
            next_id: AtomicI32::new(1),
            driver,
        };
        let new_boot = core.store.claim_boot()?;
        core.load(new_boot)?;
        Ok((core, new_boot))
    }

    pub fn snapshot(&self, domain: &DomainRef) -> Result<Arc<Snapshot>> {
        Ok(self.domains.find(domain)?.snapshot())
    }

    pub fn next_id(&self) -> i32 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Takes the domain's job lock; fails if it left the list while we waited.
    pub async fn begin(&self, domain: &DomainRef) -> Result<Locked> {
        let object = self.domains.find(domain)?;
        let job = object.begin_job().await;
        let old = object.snapshot();
        if old.removed {
            return Err(DomainError::NotFound(domain.to_string()));
        }
        Ok(Locked {
            object,
            old,
            _job: job,
        })
    }

    /// The snapshot of a domain that starts now from `old` with `live` as its running
    /// definition and `id` as its runtime id.
    pub fn started(
        old: &Snapshot,
        live: Arc<DomainDef>,
        id: i32,
        paused: bool,
    ) -> (Snapshot, Vec<EventBody>) {
        let mut next = old.clone();
        next.next_def = old.persistent.then(|| old.def.clone());
        next.def = live;
        next.id = id;
        next.started_at = Some(SystemTime::now());
        next.run_taints.clear();
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
    pub fn stopped(old: &Snapshot, reason: Reason, detail: &'static str) -> Outcome {
        Self::stopped_with(
            old,
            reason,
            vec![EventBody::Lifecycle(Lifecycle::Stopped, detail)],
        )
    }

    /// [`Core::stopped`] announcing `events` (e.g. a crash before the stop).
    pub fn stopped_with(old: &Snapshot, reason: Reason, events: Vec<EventBody>) -> Outcome {
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
        next.run_taints.clear();
        Outcome::Update(next, events)
    }

    /// A state change of an active domain (pause, resume, crash...).
    pub fn moved(old: &Snapshot, state: State, reason: Reason, events: Vec<EventBody>) -> Outcome {
        let mut next = old.clone();
        next.state = state;
        next.reason = reason;
        Outcome::Update(next, events)
    }

    pub fn require_active(old: &Snapshot) -> Result<()> {
        if old.is_active() {
            Ok(())
        } else {
            Err(DomainError::not_running(&old.def.name))
        }
    }

    /// Start: the domain must be shut off.
    pub fn require_inactive(old: &Snapshot) -> Result<()> {
        if old.is_active() {
            return Err(DomainError::OperationInvalid(format!(
                "domain '{}' is already running",
                old.def.name
            )));
        }
        Ok(())
    }

    /// Suspend: the domain must be active and not already paused.
    pub fn require_unpaused(old: &Snapshot) -> Result<()> {
        match old.state {
            State::Shutoff => Err(DomainError::not_running(&old.def.name)),
            State::Paused => Err(DomainError::OperationInvalid(format!(
                "domain '{}' is not running: it is already paused",
                old.def.name
            ))),
            _ => Ok(()),
        }
    }

    /// A guest shutdown request (ACPI): the guest must be running to act on it, as libvirt's
    /// qemu driver requires (qemuDomainShutdownFlagsMonitor refuses any other state).
    pub fn require_running(old: &Snapshot) -> Result<()> {
        match old.state {
            State::Running => Ok(()),
            State::Shutoff => Err(DomainError::not_running(&old.def.name)),
            other => {
                let state = format!("{other:?}").to_lowercase();
                Err(DomainError::OperationInvalid(format!(
                    "domain '{}' is not running (it is {state}): its guest cannot act on a \
                     shutdown request; resume it first, or use destroy",
                    old.def.name
                )))
            }
        }
    }

    /// Resume: the domain must be paused.
    pub fn require_paused(old: &Snapshot) -> Result<()> {
        if old.state != State::Paused {
            return Err(DomainError::OperationInvalid(format!(
                "domain '{}' is not paused",
                old.def.name
            )));
        }
        Ok(())
    }

    /// Marks the current run of an active domain as tainted (libvirt's qemuDomainObjTaint):
    /// once per run, logged, kept in the status file, shown by dominfo until it stops.
    pub async fn taint(&self, domain: &DomainRef, taint: &str) -> Result<()> {
        let locked = self.begin(domain).await?;
        if !locked.old.is_active() || locked.old.run_taints.iter().any(|t| t == taint) {
            return Ok(());
        }
        tracing::warn!(domain = %locked.old.def.name, id = locked.old.id, %taint, "domain is tainted");
        let mut next = (*locked.old).clone();
        next.run_taints.push(taint.to_owned());
        self.commit(
            &locked.object,
            &locked.old,
            Outcome::Update(next, Vec::new()),
        )
        .await
    }

    /// virDomainGetInfo and friends from a snapshot; only the CPU time is the driver's.
    pub fn info(snapshot: &Snapshot, cpu_time_ns: u64) -> Info {
        let def = &snapshot.def;
        let mut tainted = Vec::new();
        if def.has_qemu_commandline() {
            tainted.push("custom-argv".to_owned());
        }
        tainted.extend(snapshot.run_taints.iter().cloned());
        Info {
            summary: snapshot.summary(),
            os_type: def.os.os_type.clone(),
            max_memory_kib: def.memory_kib,
            memory_kib: def.current_memory_kib.unwrap_or(def.memory_kib),
            vcpus: impact::vcpu_count(def, false),
            cpu_time_ns,
            tainted,
            guest_agent: crate::model::AgentState::None,
        }
    }

    /// Applies a typed edit to the targeted definitions and returns the next snapshot.
    pub fn edit(
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

    /// virDomainDefineXML: defines or redefines a persistent domain; true when an existing
    /// one was updated. A running domain keeps its live definition until it stops.
    pub async fn define(&self, def: DomainDef) -> Result<(Summary, bool)> {
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

    /// virDomainUndefine: a running domain stays, as transient.
    pub async fn undefine(&self, domain: &DomainRef) -> Result<()> {
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
            let mut next = old.clone();
            next.persistent = false;
            next.next_def = None;
            next.autostart = false;
            Ok((Outcome::Update(next, events), ()))
        })
        .await
    }

    pub fn lookup(&self, domain: &DomainRef) -> Result<Summary> {
        Ok(self.snapshot(domain)?.summary())
    }

    pub fn list(&self, filter: &ListFilter) -> Vec<Summary> {
        self.domains
            .snapshots()
            .iter()
            .map(|snapshot| snapshot.summary())
            .filter(|summary| filter.matches(summary))
            .collect()
    }

    pub fn xml(&self, domain: &DomainRef, flags: XmlFlags) -> Result<String> {
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

    /// vCPU counts from the definitions (the guest's own view needs the guest agent).
    pub fn vcpu_count(&self, domain: &DomainRef, flags: VcpuFlags) -> Result<u32> {
        let snapshot = self.snapshot(domain)?;
        if flags.guest {
            return Err(DomainError::Unsupported {
                driver: self.driver,
                what: "vcpucount --guest (use 'guestvcpus', the guest agent's own view of its \
                       vCPUs)"
                    .into(),
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

    pub async fn set_autostart(&self, domain: &DomainRef, autostart: bool) -> Result<()> {
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

    /// Names of the persistent domains to start at host boot.
    pub fn autostart_candidates(&self) -> Vec<String> {
        self.domains
            .snapshots()
            .iter()
            .filter(|s| s.autostart && !s.is_active())
            .map(|s| s.def.name.clone())
            .collect()
    }
}
