//! Volume leases: which domains use which volumes as disks, so that a volume a running VM
//! writes is not deleted, wiped, shrunk or uploaded into under it.
//!
//! The domain service acquires a lease for each `<disk type='volume'>` when it starts a
//! domain or hot-plugs the disk, and releases it when the VM stops or the disk is unplugged
//! (as it does with network ports). A lease is identified by (volume, owner UUID), so asking
//! twice holds one lease, and releasing one that is gone is no error. Leases are kept in the
//! run dir (`lease_files.rs`), so either service may restart without losing them.
//!
//! The changes a lease forbids take the volume [`Leases::exclusive`]ly for their length: it
//! fails while a lease is held, and no lease is given while it is taken. Both happen under
//! one lock, so a lease and a deletion can never both win.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::Core;
use super::lease_files::LeaseFiles;
use crate::error::{Result, StorageError};
use crate::model::{VolRef, VolSummary};

/// The domain that holds a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseOwner {
    pub name: String,
    /// Canonical, lower-case form.
    pub uuid: String,
}

/// A volume by pool and name: what a lease is on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VolumeKey {
    pub pool: String,
    pub volume: String,
}

impl VolumeKey {
    pub fn new(pool: &str, volume: &str) -> Self {
        Self {
            pool: pool.to_owned(),
            volume: volume.to_owned(),
        }
    }
}

/// The leases on one volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The volume's path when the first lease was given (to release by path).
    pub path: String,
    pub owners: Vec<LeaseOwner>,
}

#[derive(Debug, Default)]
struct State {
    held: BTreeMap<VolumeKey, Held>,
    /// Volumes being changed in a way no domain may see, and what is being done.
    exclusive: HashMap<VolumeKey, &'static str>,
}

/// Every lease of one service, in memory and in the run dir.
#[derive(Debug)]
pub struct Leases {
    files: LeaseFiles,
    state: Mutex<State>,
}

/// A volume taken [`Leases::exclusive`]ly; given back when dropped.
pub struct Exclusive {
    leases: Arc<Leases>,
    key: VolumeKey,
}

impl Drop for Exclusive {
    fn drop(&mut self) {
        self.leases.state().exclusive.remove(&self.key);
    }
}

impl Leases {
    /// Loads the leases below `run_dir` (none after a new boot: no VM survived it).
    pub fn open(run_dir: &Path, new_boot: bool) -> Result<Self> {
        let files = LeaseFiles::open(run_dir, new_boot)?;
        let held = files.load()?;
        Ok(Self {
            files,
            state: Mutex::new(State {
                held,
                exclusive: HashMap::new(),
            }),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Gives `owner` a lease on `key` (at `path`); true when it is new, false when the owner
    /// held one already. Refused while the volume is taken exclusively. Blocks briefly (a
    /// small file write).
    pub fn acquire(&self, key: &VolumeKey, path: &str, owner: &LeaseOwner) -> Result<bool> {
        let mut state = self.state();
        if let Some(doing) = state.exclusive.get(key) {
            return Err(StorageError::InUse(format!(
                "volume '{}' in pool '{}' is being {doing}; it cannot be given to domain '{}'",
                key.volume, key.pool, owner.name
            )));
        }
        let mut next = state.held.get(key).cloned().unwrap_or_else(|| Held {
            path: path.to_owned(),
            owners: Vec::new(),
        });
        if next.owners.iter().any(|o| o.uuid == owner.uuid) {
            return Ok(false);
        }
        next.owners.push(owner.clone());
        self.files.save(key, Some(&next))?;
        state.held.insert(key.clone(), next);
        Ok(true)
    }

    /// Ends the lease of the domain `uuid` on `key`; false when it held none.
    pub fn release(&self, key: &VolumeKey, uuid: &str) -> Result<bool> {
        let mut state = self.state();
        let Some(held) = state.held.get(key) else {
            return Ok(false);
        };
        if !held.owners.iter().any(|o| o.uuid == uuid) {
            return Ok(false);
        }
        let mut next = held.clone();
        next.owners.retain(|o| o.uuid != uuid);
        self.files.save(key, Some(&next))?;
        if next.owners.is_empty() {
            state.held.remove(key);
        } else {
            state.held.insert(key.clone(), next);
        }
        Ok(true)
    }

    /// The leased volume at `path` (or with key `path`: the drivers' keys are paths), for a
    /// release that names a volume no pool shows any more.
    pub fn find_by_path(&self, path: &str) -> Option<VolumeKey> {
        self.state()
            .held
            .iter()
            .find(|(_, held)| held.path == path)
            .map(|(key, _)| key.clone())
    }

    /// The domains holding a lease on `key`.
    pub fn owners(&self, key: &VolumeKey) -> Vec<LeaseOwner> {
        self.state()
            .held
            .get(key)
            .map(|held| held.owners.clone())
            .unwrap_or_default()
    }

    /// Takes `key` for a change that `doing` names ("deleted", "wiped"): refused while a
    /// domain holds a lease on it (naming the domains) or another such change runs.
    pub fn exclusive(self: &Arc<Self>, key: &VolumeKey, doing: &'static str) -> Result<Exclusive> {
        let mut state = self.state();
        if let Some(held) = state.held.get(key) {
            return Err(in_use(key, &held.owners));
        }
        if let Some(other) = state.exclusive.get(key) {
            return Err(StorageError::InUse(format!(
                "volume '{}' in pool '{}' is being {other}",
                key.volume, key.pool
            )));
        }
        state.exclusive.insert(key.clone(), doing);
        Ok(Exclusive {
            leases: self.clone(),
            key: key.clone(),
        })
    }
}

/// "volume 'web.qcow2' in pool 'default' is in use by domain 'web'".
fn in_use(key: &VolumeKey, owners: &[LeaseOwner]) -> StorageError {
    let names: Vec<String> = owners.iter().map(|o| format!("'{}'", o.name)).collect();
    let domains = if names.len() == 1 {
        "domain"
    } else {
        "domains"
    };
    StorageError::InUse(format!(
        "volume '{}' in pool '{}' is in use by {domains} {}",
        key.volume,
        key.pool,
        names.join(", ")
    ))
}

impl Core {
    /// A lease on `volume` for `owner`: the volume as the domain opens it. A volume whose
    /// upload is unfinished (or running) is refused: its content is not an image yet.
    pub(super) async fn acquire_vol(
        &self,
        volume: &VolRef,
        owner: &LeaseOwner,
    ) -> Result<VolSummary> {
        let (pool, found) = self.find_volume(volume)?;
        let key = VolumeKey::new(pool.name(), &found.def.name);
        if let Some(offset) = self.markers.get(&key.pool, &key.volume) {
            return Err(StorageError::OperationInvalid(format!(
                "volume '{}' in pool '{}' has an unfinished upload ({offset} bytes written): \
                 finish the upload before domain '{}' uses it",
                key.volume, key.pool, owner.name
            )));
        }
        let leases = self.leases.clone();
        let (path, who) = (found.path().to_owned(), owner.clone());
        let task_key = key.clone();
        let new = tokio::task::spawn_blocking(move || leases.acquire(&task_key, &path, &who))
            .await
            .map_err(|e| StorageError::Internal(format!("lease task failed: {e}")))??;
        if new {
            tracing::info!(pool = %key.pool, volume = %key.volume, domain = %owner.name, uuid = %owner.uuid, "volume leased");
        }
        Ok(self.with_upload_state(found.summary(pool.name())))
    }

    /// Ends the lease of the domain `owner_uuid` on `volume`; no lease (or no such volume
    /// any more) is fine.
    pub(super) async fn release_vol(&self, volume: &VolRef, owner_uuid: &str) -> Result<()> {
        let key = match volume {
            VolRef::Name { pool, volume } => Some(VolumeKey::new(pool, volume)),
            VolRef::Key(path) | VolRef::Path(path) => match self.find_volume(volume) {
                Ok((pool, found)) => Some(VolumeKey::new(pool.name(), &found.def.name)),
                Err(StorageError::VolNotFound(_)) => self.leases.find_by_path(path),
                Err(error) => return Err(error),
            },
        };
        let Some(key) = key else {
            return Ok(());
        };
        let leases = self.leases.clone();
        let (uuid, task_key) = (owner_uuid.to_owned(), key.clone());
        let released = tokio::task::spawn_blocking(move || leases.release(&task_key, &uuid))
            .await
            .map_err(|e| StorageError::Internal(format!("lease task failed: {e}")))??;
        if released {
            tracing::info!(pool = %key.pool, volume = %key.volume, uuid = %owner_uuid, "volume lease released");
        }
        Ok(())
    }

    /// Takes the volume `volume` of `pool` for a change no domain may see under it.
    pub(super) fn exclusive(
        &self,
        pool: &str,
        volume: &str,
        doing: &'static str,
    ) -> Result<Exclusive> {
        self.leases.exclusive(&VolumeKey::new(pool, volume), doing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(name: &str, n: u8) -> LeaseOwner {
        LeaseOwner {
            name: name.into(),
            uuid: format!("00000000-0000-4000-8000-0000000000{n:02x}"),
        }
    }

    #[test]
    fn leases_and_exclusive_changes_exclude_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let leases = Arc::new(Leases::open(dir.path(), false).unwrap());
        let key = VolumeKey::new("default", "web.qcow2");
        assert!(
            leases
                .acquire(&key, "/p/web.qcow2", &owner("web", 1))
                .unwrap()
        );
        assert!(
            !leases
                .acquire(&key, "/p/web.qcow2", &owner("web", 1))
                .unwrap()
        );
        assert!(
            leases
                .acquire(&key, "/p/web.qcow2", &owner("db", 2))
                .unwrap()
        );
        let refused = leases.exclusive(&key, "deleted").err().unwrap();
        assert_eq!(
            refused.to_string(),
            "volume 'web.qcow2' in pool 'default' is in use by domains 'web', 'db'"
        );
        assert!(leases.release(&key, &owner("web", 1).uuid).unwrap());
        assert!(leases.release(&key, &owner("db", 2).uuid).unwrap());
        assert!(!leases.release(&key, &owner("db", 2).uuid).unwrap());

        let taken = leases.exclusive(&key, "wiped").unwrap();
        let refused = leases
            .acquire(&key, "/p/web.qcow2", &owner("web", 1))
            .unwrap_err();
        assert!(refused.to_string().contains("is being wiped"), "{refused}");
        assert!(leases.exclusive(&key, "deleted").is_err());
        drop(taken);
        assert!(
            leases
                .acquire(&key, "/p/web.qcow2", &owner("web", 1))
                .unwrap()
        );
    }

    #[test]
    fn leases_survive_a_reopen_but_not_a_new_boot() {
        let dir = tempfile::tempdir().unwrap();
        let key = VolumeKey::new("default", "web.qcow2");
        let leases = Leases::open(dir.path(), false).unwrap();
        leases
            .acquire(&key, "/p/web.qcow2", &owner("web", 1))
            .unwrap();
        let reopened = Leases::open(dir.path(), false).unwrap();
        assert_eq!(reopened.owners(&key), vec![owner("web", 1)]);
        assert_eq!(reopened.find_by_path("/p/web.qcow2"), Some(key.clone()));
        reopened.release(&key, &owner("web", 1).uuid).unwrap();
        drop((leases, reopened));
        let leases = Leases::open(dir.path(), false).unwrap();
        assert!(leases.owners(&key).is_empty());

        assert!(
            leases
                .acquire(&key, "/p/web.qcow2", &owner("web", 1))
                .unwrap()
        );
        // A new boot: no VM survived it, so no lease did.
        assert!(
            Leases::open(dir.path(), true)
                .unwrap()
                .owners(&key)
                .is_empty()
        );
        assert!(
            Leases::open(dir.path(), false)
                .unwrap()
                .owners(&key)
                .is_empty()
        );
    }
}
