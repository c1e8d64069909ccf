//! The in-memory pool list: one object per pool with its current snapshot (definitions,
//! state, sizes and volumes) and its job lock (one change at a time per pool). Reads clone
//! the snapshot's `Arc` and never wait behind a job.
//!
//! A new pool is reserved before its first commit: the object is in the list, invisible to
//! readers and with its job lock held, so a second define of the same name or UUID waits for
//! the first to finish (or fail) instead of racing it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use tokio::sync::OwnedMutexGuard;
use virtplane_common::slot::JobSlot;

use crate::driver::backend::Volume;
use crate::error::{Result, StorageError};
use crate::model::{PoolRef, PoolSizes, PoolState, PoolSummary};
use crate::xml::PoolDef;

/// One pool as readers see it at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The live definition while active, else the persistent one. Its UUID is always set.
    pub def: Arc<PoolDef>,
    /// While active: the persistent definition (the next start's), if persistent.
    pub next_def: Option<Arc<PoolDef>>,
    pub active: bool,
    pub persistent: bool,
    pub autostart: bool,
    /// Sizes the backend measured at the last start or refresh (zero while inactive).
    pub sizes: PoolSizes,
    /// The volumes of an active pool, by name.
    pub volumes: Arc<BTreeMap<String, Arc<Volume>>>,
    /// False while the pool is only reserved (its first commit has not happened).
    pub visible: bool,
    /// True once the pool left the list.
    pub removed: bool,
}

impl Snapshot {
    /// A reserved pool that nobody sees yet.
    pub fn reserved(def: Arc<PoolDef>) -> Self {
        Self {
            def,
            next_def: None,
            active: false,
            persistent: false,
            autostart: false,
            sizes: PoolSizes::default(),
            volumes: Arc::default(),
            visible: false,
            removed: false,
        }
    }

    pub fn name(&self) -> &str {
        &self.def.name
    }

    pub fn uuid(&self) -> &str {
        self.def.uuid.as_deref().unwrap_or_default()
    }

    /// The persistent definition, if the pool is persistent.
    pub fn persistent_def(&self) -> Option<&Arc<PoolDef>> {
        if !self.persistent {
            return None;
        }
        if self.active {
            self.next_def.as_ref().or(Some(&self.def))
        } else {
            Some(&self.def)
        }
    }

    /// The state with its inactive pieces cleared (after a stop).
    pub fn stopped(&self) -> Self {
        let mut next = self.clone();
        next.active = false;
        next.sizes = PoolSizes::default();
        next.volumes = Arc::default();
        if let Some(config) = next.next_def.take() {
            next.def = config;
        }
        next
    }

    pub fn summary(&self) -> PoolSummary {
        PoolSummary {
            name: self.def.name.clone(),
            uuid: self.uuid().to_owned(),
            state: if self.active {
                PoolState::Running
            } else {
                PoolState::Inactive
            },
            persistent: self.persistent,
            autostart: self.autostart,
            pool_type: self.def.pool_type.clone(),
            sizes: self.sizes,
        }
    }

    /// The pool's target directory, if its definition names one.
    pub fn target_path(&self) -> Option<&str> {
        self.def.target.as_ref().and_then(|t| t.path.as_deref())
    }
}

/// One pool: its snapshot and job lock.
pub type PoolObj = JobSlot<Snapshot>;

/// What [`PoolList::reserve`] found.
pub enum Reserved {
    /// A new, invisible pool, its job lock held.
    New(Arc<PoolObj>, OwnedMutexGuard<()>),
    /// A pool of that name exists (or is being reserved): take its job lock and look.
    Existing(Arc<PoolObj>),
}

/// Every pool, by name.
#[derive(Debug, Default)]
pub struct PoolList {
    by_name: RwLock<HashMap<String, Arc<PoolObj>>>,
}

impl PoolList {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<PoolObj>>> {
        self.by_name
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<PoolObj>>> {
        self.by_name
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The visible pool `pool` names.
    pub fn find(&self, pool: &PoolRef) -> Result<Arc<PoolObj>> {
        let map = self.read();
        let found = match pool {
            PoolRef::Name(name) => map.get(name).filter(|o| o.snapshot().visible).cloned(),
            PoolRef::Uuid(uuid) => map
                .values()
                .find(|o| {
                    let s = o.snapshot();
                    s.visible && s.uuid().eq_ignore_ascii_case(uuid)
                })
                .cloned(),
        };
        found.ok_or_else(|| StorageError::PoolNotFound(pool.to_string()))
    }

    /// Reserves `def`'s name (its UUID set), refusing a name held by another UUID or a UUID
    /// held by another name (libvirt's virStoragePoolObjListAdd rules).
    pub fn reserve(&self, def: &PoolDef) -> Result<Reserved> {
        let uuid = def.uuid.as_deref().unwrap_or_default();
        let mut map = self.write();
        if let Some(object) = map.get(&def.name) {
            let snapshot = object.snapshot();
            if snapshot.visible && snapshot.uuid() != uuid {
                return Err(StorageError::NameTaken {
                    name: def.name.clone(),
                    uuid: snapshot.uuid().to_owned(),
                });
            }
            return Ok(Reserved::Existing(object.clone()));
        }
        if let Some(other) = map
            .values()
            .map(|o| o.snapshot())
            .find(|s| s.uuid() == uuid)
        {
            return Err(StorageError::UuidTaken {
                existing: other.def.name.clone(),
                uuid: uuid.to_owned(),
            });
        }
        let object = PoolObj::new(Snapshot::reserved(Arc::new(def.clone())));
        let job = object
            .try_begin_job()
            .ok_or_else(|| StorageError::Internal("a new pool's job lock is taken".into()))?;
        map.insert(def.name.clone(), object.clone());
        Ok(Reserved::New(object, job))
    }

    /// Adds a pool read from disk at start-up.
    pub fn insert_loaded(&self, snapshot: Snapshot) {
        let name = snapshot.def.name.clone();
        self.write().insert(name, PoolObj::new(snapshot));
    }

    /// Takes `object` out of the list (if it is still the one under its name) and marks it
    /// removed for jobs that were waiting on it.
    pub fn remove(&self, object: &Arc<PoolObj>) {
        let mut snapshot = (*object.snapshot()).clone();
        let mut map = self.write();
        if map
            .get(snapshot.name())
            .is_some_and(|o| Arc::ptr_eq(o, object))
        {
            map.remove(snapshot.name());
        }
        snapshot.removed = true;
        snapshot.visible = false;
        object.publish(snapshot);
    }

    /// Every visible pool's snapshot, sorted by name.
    pub fn snapshots(&self) -> Vec<Arc<Snapshot>> {
        let mut all: Vec<Arc<Snapshot>> = self
            .read()
            .values()
            .map(|o| o.snapshot())
            .filter(|s| s.visible)
            .collect();
        all.sort_by(|a, b| a.def.name.cmp(&b.def.name));
        all
    }
}
