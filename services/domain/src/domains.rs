//! The in-memory domain list every driver keeps: lookups by name and UUID, and per-domain
//! snapshots that reads take without waiting.
//!
//! Each domain has a job lock (one change at a time: start, stop, edits) and an immutable
//! [`Snapshot`] behind a short read lock. A job builds the next snapshot, persists it, then
//! publishes it; reads (info, list, dumpxml) only clone the current `Arc`, so they never wait
//! behind a running job.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::error::{DomainError, Result};
use crate::model::{DomainRef, Reason, State, Summary};
use crate::xml::DomainDef;

/// What is known about a domain at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The live definition while active, else the persistent one.
    pub def: Arc<DomainDef>,
    /// The persistent definition while active (libvirt's newDef); None when inactive or
    /// transient.
    pub next_def: Option<Arc<DomainDef>>,
    pub state: State,
    pub reason: Reason,
    pub id: i32,
    pub persistent: bool,
    pub autostart: bool,
    /// When the domain was last started (for the test driver's CPU time).
    pub started_at: Option<std::time::SystemTime>,
    /// Taints of the current run (libvirt's VIR_DOMAIN_TAINT_*, e.g. `custom-monitor` once a
    /// raw monitor command was sent): reported by dominfo, kept across a service restart in
    /// the status file, gone when the domain stops.
    pub run_taints: Vec<String>,
    /// False until the first define/create of this object is durable; hidden from readers.
    pub visible: bool,
    /// Set when the domain left the list, so a job that waited for the lock knows.
    pub removed: bool,
}

impl Snapshot {
    pub fn is_active(&self) -> bool {
        self.state.is_active()
    }

    /// The persistent definition (config), if the domain has one.
    pub fn persistent_def(&self) -> Option<&Arc<DomainDef>> {
        if !self.persistent {
            return None;
        }
        Some(self.next_def.as_ref().unwrap_or(&self.def))
    }

    pub fn summary(&self) -> Summary {
        Summary {
            name: self.def.name.clone(),
            uuid: self.def.uuid.clone(),
            id: if self.is_active() { self.id } else { -1 },
            state: self.state,
            reason: self.reason,
            persistent: self.persistent,
            autostart: self.autostart,
            title: self.def.title.clone().unwrap_or_default(),
        }
    }
}

/// One domain: its job lock and current snapshot.
#[derive(Debug)]
pub struct DomainObj {
    job: Arc<Mutex<()>>,
    snapshot: RwLock<Arc<Snapshot>>,
}

impl DomainObj {
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn publish(&self, next: Snapshot) {
        *self.snapshot.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(next);
    }

    /// Waits for the job lock.
    pub async fn begin_job(&self) -> OwnedMutexGuard<()> {
        self.job.clone().lock_owned().await
    }
}

#[derive(Debug, Default)]
struct Maps {
    by_name: BTreeMap<String, Arc<DomainObj>>,
    name_by_uuid: HashMap<String, String>,
}

/// Every domain a driver knows.
#[derive(Debug, Default)]
pub struct DomainList {
    maps: RwLock<Maps>,
}

/// The outcome of [`DomainList::reserve`].
#[derive(Debug)]
pub enum Reserved {
    /// A new, invisible object, its job lock held: persist, then publish a visible snapshot
    /// or call [`DomainList::remove`].
    New(Arc<DomainObj>, OwnedMutexGuard<()>),
    /// A domain with this name and UUID exists: lock its job and update it.
    Existing(Arc<DomainObj>),
}

impl DomainList {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Maps> {
        self.maps.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Maps> {
        self.maps.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Finds a visible domain.
    pub fn find(&self, reference: &DomainRef) -> Result<Arc<DomainObj>> {
        let maps = self.read();
        let object = match reference {
            DomainRef::Name(name) => maps.by_name.get(name),
            DomainRef::Uuid(uuid) => maps
                .name_by_uuid
                .get(&normalize_uuid(uuid))
                .and_then(|name| maps.by_name.get(name)),
        };
        match object {
            Some(object) if object.snapshot().visible => Ok(object.clone()),
            _ => Err(DomainError::NotFound(reference.to_string())),
        }
    }

    /// Snapshots of every visible domain, sorted by name.
    pub fn snapshots(&self) -> Vec<Arc<Snapshot>> {
        let maps = self.read();
        maps.by_name
            .values()
            .map(|object| object.snapshot())
            .filter(|snapshot| snapshot.visible)
            .collect()
    }

    /// Inserts an already complete domain (start-up loading).
    pub fn insert_loaded(&self, snapshot: Snapshot) {
        let name = snapshot.def.name.clone();
        let uuid = snapshot.def.uuid.clone();
        let object = Arc::new(DomainObj {
            job: Arc::new(Mutex::new(())),
            snapshot: RwLock::new(Arc::new(snapshot)),
        });
        let mut maps = self.write();
        maps.name_by_uuid.insert(uuid, name.clone());
        maps.by_name.insert(name, object);
    }

    /// Claims `def`'s name and UUID for a define or create. Refuses a name held by another
    /// UUID and a UUID held by another name, as virDomainObjListAdd does.
    pub fn reserve(&self, def: &Arc<DomainDef>) -> Result<Reserved> {
        let mut maps = self.write();
        if let Some(existing) = maps.by_name.get(&def.name) {
            let snapshot = existing.snapshot();
            if snapshot.def.uuid != def.uuid {
                return Err(DomainError::NameTaken {
                    name: def.name.clone(),
                    uuid: snapshot.def.uuid.clone(),
                });
            }
            return Ok(Reserved::Existing(existing.clone()));
        }
        if let Some(other) = maps.name_by_uuid.get(&def.uuid) {
            return Err(DomainError::UuidTaken {
                existing: other.clone(),
                uuid: def.uuid.clone(),
            });
        }
        let job = Arc::new(Mutex::new(()));
        let guard = job
            .clone()
            .try_lock_owned()
            .map_err(|_| DomainError::Internal("fresh job lock was held".into()))?;
        let object = Arc::new(DomainObj {
            job,
            snapshot: RwLock::new(Arc::new(Snapshot {
                def: def.clone(),
                next_def: None,
                state: State::Shutoff,
                reason: Reason::Unknown,
                id: -1,
                persistent: false,
                autostart: false,
                started_at: None,
                run_taints: Vec::new(),
                visible: false,
                removed: false,
            })),
        });
        maps.name_by_uuid.insert(def.uuid.clone(), def.name.clone());
        maps.by_name.insert(def.name.clone(), object.clone());
        Ok(Reserved::New(object, guard))
    }

    /// Removes a domain (undefine of an inactive one, stop of a transient one, or a define
    /// that failed to persist). The caller holds its job lock.
    pub fn remove(&self, object: &Arc<DomainObj>) {
        let mut snapshot = (*object.snapshot()).clone();
        let mut maps = self.write();
        if maps
            .by_name
            .get(&snapshot.def.name)
            .is_some_and(|held| Arc::ptr_eq(held, object))
        {
            maps.by_name.remove(&snapshot.def.name);
            maps.name_by_uuid.remove(&snapshot.def.uuid);
        }
        drop(maps);
        snapshot.removed = true;
        snapshot.visible = false;
        object.publish(snapshot);
    }
}

/// libvirt accepts UUIDs with or without dashes, any case; the list keys are canonical.
pub fn normalize_uuid(text: &str) -> String {
    uuid::Uuid::parse_str(text)
        .map(|uuid| uuid.hyphenated().to_string())
        .unwrap_or_else(|_| text.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse_domain;

    fn def(name: &str) -> Arc<DomainDef> {
        Arc::new(
            parse_domain(&format!(
                "<domain type='test'><name>{name}</name><memory>1024</memory><vcpu>1</vcpu>\
                 <os><type>hvm</type></os></domain>"
            ))
            .unwrap(),
        )
    }

    #[tokio::test]
    async fn reads_do_not_wait_behind_a_job() {
        let list = DomainList::default();
        let Reserved::New(object, job) = list.reserve(&def("web")).unwrap() else {
            panic!("new name must be reserved as new");
        };
        let mut visible = (*object.snapshot()).clone();
        visible.visible = true;
        object.publish(visible);
        // The job lock is held (as by a long start); lookups and lists still answer at once.
        assert!(list.find(&DomainRef::Name("web".into())).is_ok());
        assert_eq!(list.snapshots().len(), 1);
        assert!(object.job.try_lock().is_err(), "the job is still running");
        drop(job);
        assert!(object.job.try_lock().is_ok());
    }

    #[test]
    fn reservations_refuse_taken_names_and_uuids() {
        let list = DomainList::default();
        let first = def("web");
        let Reserved::New(_, _job) = list.reserve(&first).unwrap() else {
            panic!("first reservation is new");
        };
        // Not visible until published: lookups do not see a half-defined domain.
        assert!(list.find(&DomainRef::Name("web".into())).is_err());
        assert!(matches!(
            list.reserve(&first).unwrap(),
            Reserved::Existing(_)
        ));
        assert!(matches!(
            list.reserve(&def("web")),
            Err(DomainError::NameTaken { .. })
        ));
        let mut same_uuid = (*def("other")).clone();
        same_uuid.uuid = first.uuid.clone();
        assert!(matches!(
            list.reserve(&Arc::new(same_uuid)),
            Err(DomainError::UuidTaken { .. })
        ));
    }
}
