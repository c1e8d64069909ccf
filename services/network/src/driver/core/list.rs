//! The in-memory network list: one object per network with its current snapshot and its
//! job lock (one change at a time per network). Reads clone the snapshot's `Arc` and never
//! wait behind a job.
//!
//! A new network is reserved before its first commit: the object is in the list, invisible
//! to readers and with its job lock held, so a second define of the same name or UUID waits
//! for the first to finish (or fail) instead of racing it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, RwLock};

use tokio::sync::OwnedMutexGuard;
use virtplane_common::slot::JobSlot;

use crate::error::{NetworkError, Result};
use crate::model::{NetworkRef, Summary};
use crate::xml::{NetworkDef, PortDef};

/// One network as readers see it at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The live definition while active, else the persistent one.
    pub def: Arc<NetworkDef>,
    /// While active: the persistent definition (the next start's), if persistent.
    pub next_def: Option<Arc<NetworkDef>>,
    pub active: bool,
    pub persistent: bool,
    pub autostart: bool,
    /// The ports of an active network, by UUID.
    pub ports: Arc<BTreeMap<String, Arc<PortDef>>>,
    /// False while the network is only reserved (its first commit has not happened).
    pub visible: bool,
    /// True once the network left the list.
    pub removed: bool,
}

impl Snapshot {
    /// A reserved network that nobody sees yet.
    fn reserved(def: Arc<NetworkDef>) -> Self {
        Self {
            def,
            next_def: None,
            active: false,
            persistent: false,
            autostart: false,
            ports: Arc::default(),
            visible: false,
            removed: false,
        }
    }

    pub fn name(&self) -> &str {
        &self.def.name
    }

    /// The persistent definition, if the network is persistent.
    pub fn persistent_def(&self) -> Option<&Arc<NetworkDef>> {
        if !self.persistent {
            return None;
        }
        if self.active {
            self.next_def.as_ref().or(Some(&self.def))
        } else {
            Some(&self.def)
        }
    }

    pub fn summary(&self) -> Summary {
        Summary {
            name: self.def.name.clone(),
            uuid: self.def.uuid.clone(),
            active: self.active,
            persistent: self.persistent,
            autostart: self.autostart,
            bridge: self.def.bridge_name().map(str::to_owned),
        }
    }
}

/// One network: its snapshot and job lock.
pub type NetworkObj = JobSlot<Snapshot>;

/// What [`NetworkList::reserve`] found.
pub enum Reserved {
    /// A new, invisible network, its job lock held.
    New(Arc<NetworkObj>, OwnedMutexGuard<()>),
    /// A network of that name exists (or is being reserved): take its job lock and look.
    Existing(Arc<NetworkObj>),
}

/// Every network, by name.
#[derive(Debug, Default)]
pub struct NetworkList {
    by_name: RwLock<HashMap<String, Arc<NetworkObj>>>,
}

impl NetworkList {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<NetworkObj>>> {
        self.by_name
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<NetworkObj>>> {
        self.by_name
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The visible network `network` names.
    pub fn find(&self, network: &NetworkRef) -> Result<Arc<NetworkObj>> {
        let map = self.read();
        let found = match network {
            NetworkRef::Name(name) => map.get(name).filter(|o| o.snapshot().visible).cloned(),
            NetworkRef::Uuid(uuid) => map
                .values()
                .find(|o| {
                    let s = o.snapshot();
                    s.visible && s.def.uuid.eq_ignore_ascii_case(uuid)
                })
                .cloned(),
        };
        found.ok_or_else(|| NetworkError::NotFound(network.to_string()))
    }

    /// Reserves `def`'s name, refusing a name held by another UUID or a UUID held by
    /// another name (libvirt's `virNetworkObjAssignDef` rules).
    pub fn reserve(&self, def: &NetworkDef) -> Result<Reserved> {
        let mut map = self.write();
        if let Some(object) = map.get(&def.name) {
            let snapshot = object.snapshot();
            if snapshot.visible && snapshot.def.uuid != def.uuid {
                return Err(NetworkError::NameTaken {
                    name: def.name.clone(),
                    uuid: snapshot.def.uuid.clone(),
                });
            }
            return Ok(Reserved::Existing(object.clone()));
        }
        if let Some(other) = map
            .values()
            .map(|o| o.snapshot())
            .find(|s| s.def.uuid == def.uuid)
        {
            return Err(NetworkError::UuidTaken {
                existing: other.def.name.clone(),
                uuid: def.uuid.clone(),
            });
        }
        let object = NetworkObj::new(Snapshot::reserved(Arc::new(def.clone())));
        let job = object
            .try_begin_job()
            .ok_or_else(|| NetworkError::Internal("a new network's job lock is taken".into()))?;
        map.insert(def.name.clone(), object.clone());
        Ok(Reserved::New(object, job))
    }

    /// Adds a network read from disk at start-up.
    pub fn insert_loaded(&self, snapshot: Snapshot) {
        let name = snapshot.def.name.clone();
        self.write().insert(name, NetworkObj::new(snapshot));
    }

    /// Takes `object` out of the list (if it is still the one under its name) and marks it
    /// removed for jobs that were waiting on it.
    pub fn remove(&self, object: &Arc<NetworkObj>) {
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

    /// Every visible network's snapshot, sorted by name.
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

    /// The bridge names other networks (than `except`) make, live or next.
    pub fn bridges_in_use(&self, except: &str) -> HashSet<String> {
        let mut names = HashSet::new();
        for snapshot in self.snapshots() {
            if snapshot.name() == except {
                continue;
            }
            for def in std::iter::once(&snapshot.def).chain(snapshot.next_def.as_ref()) {
                if def.has_own_bridge()
                    && let Some(bridge) = def.bridge_name()
                {
                    names.insert(bridge.to_owned());
                }
            }
        }
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(name: &str, uuid: &str) -> NetworkDef {
        crate::xml::parse_network(&format!(
            "<network><name>{name}</name><uuid>{uuid}</uuid></network>"
        ))
        .unwrap()
    }

    const U1: &str = "11111111-1111-4111-8111-111111111111";
    const U2: &str = "22222222-2222-4222-8222-222222222222";

    #[tokio::test]
    async fn a_reserved_network_is_invisible_until_published() {
        let list = NetworkList::default();
        let Reserved::New(object, _job) = list.reserve(&def("a", U1)).unwrap() else {
            panic!("new name");
        };
        assert!(list.find(&NetworkRef::Name("a".into())).is_err());
        assert!(list.snapshots().is_empty());
        // The same name again waits on the first reservation.
        assert!(matches!(
            list.reserve(&def("a", U2)).unwrap(),
            Reserved::Existing(_)
        ));
        // Its UUID under another name is refused.
        assert!(matches!(
            list.reserve(&def("b", U1)),
            Err(NetworkError::UuidTaken { .. })
        ));
        let mut visible = (*object.snapshot()).clone();
        visible.visible = true;
        object.publish(visible);
        assert!(list.find(&NetworkRef::Uuid(U1.to_uppercase())).is_ok());
        assert!(matches!(
            list.reserve(&def("a", U2)),
            Err(NetworkError::NameTaken { .. })
        ));
        list.remove(&object);
        assert!(object.snapshot().removed);
        assert!(list.find(&NetworkRef::Name("a".into())).is_err());
    }
}
