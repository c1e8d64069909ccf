//! libvirt's volume calls (`storage_driver.c`'s storageVolCreateXML,
//! storageVolCreateXMLFrom, storageVolDelete, storageVolResize, storageVolWipePattern and
//! the lookups) over the pools' volume maps, with the backend doing the host's part. Every
//! change runs under the pool's job lock; lookups read snapshots. A volume that a domain
//! holds a lease on (`leases.rs`) is not deleted, wiped or shrunk.

use std::sync::Arc;

use super::{Core, Locked, Snapshot};
use crate::driver::backend::Volume;
use crate::error::{Result, StorageError};
use crate::model::{Lifecycle, PoolRef, PoolSizes, ResizeSpec, VolRef, VolSummary, WipeAlgorithm};
use crate::xml::VolDef;

impl Core {
    /// The active pool and the volume `volume` names.
    pub fn find_volume(&self, volume: &VolRef) -> Result<(Arc<Snapshot>, Arc<Volume>)> {
        match volume {
            VolRef::Name { pool, volume: name } => {
                let snapshot = self.snapshot(&PoolRef::Name(pool.clone()))?;
                if !snapshot.active {
                    return Err(StorageError::not_active(snapshot.name()));
                }
                let found = snapshot
                    .volumes
                    .get(name)
                    .cloned()
                    .ok_or_else(|| StorageError::VolNotFound(volume.to_string()))?;
                Ok((snapshot, found))
            }
            VolRef::Key(key) => self.find_volume_by(volume, |v| v.key() == key),
            VolRef::Path(path) => self.find_volume_by(volume, |v| v.path() == path),
        }
    }

    fn find_volume_by(
        &self,
        volume: &VolRef,
        matches: impl Fn(&Volume) -> bool,
    ) -> Result<(Arc<Snapshot>, Arc<Volume>)> {
        for snapshot in self.pools.snapshots() {
            if !snapshot.active {
                continue;
            }
            if let Some(found) = snapshot.volumes.values().find(|v| matches(v)) {
                let found = found.clone();
                return Ok((snapshot, found));
            }
        }
        Err(StorageError::VolNotFound(volume.to_string()))
    }

    /// The pool of `volume` with its job lock, and the volume as it is under that lock.
    async fn begin_volume(&self, volume: &VolRef) -> Result<(Locked, Arc<Volume>)> {
        let (pool, found) = self.find_volume(volume)?;
        let locked = self.begin(&PoolRef::Name(pool.name().to_owned())).await?;
        if !locked.old.active {
            return Err(StorageError::not_active(locked.old.name()));
        }
        // Looked up again under the lock: it may have changed or gone while we waited.
        let found = locked
            .old
            .volumes
            .get(&found.def.name)
            .cloned()
            .ok_or_else(|| StorageError::VolNotFound(volume.to_string()))?;
        Ok((locked, found))
    }

    pub(super) async fn create_vol(
        &self,
        pool: &PoolRef,
        mut def: VolDef,
        source: Option<&VolRef>,
        prealloc_metadata: bool,
    ) -> Result<VolSummary> {
        if source.is_none() && !def.capacity_given {
            return Err(StorageError::InvalidArg(format!(
                "volume '{}': a capacity is required (<capacity>)",
                def.name
            )));
        }
        if let Some(backing) = &def.backing_store {
            // A backing file is read by every guest of the overlay: it must be a volume the
            // service manages, never an arbitrary host file.
            self.find_volume(&VolRef::Path(backing.path.clone()))
                .map_err(|_| {
                    StorageError::InvalidArg(format!(
                        "volume '{}': backing store '{}' is not a volume of an active pool",
                        def.name, backing.path
                    ))
                })?;
        }
        let locked = self.begin(pool).await?;
        let old = &locked.old;
        if !old.active {
            return Err(StorageError::not_active(old.name()));
        }
        def.apply_pool_defaults(&old.def.pool_type);
        if old.volumes.contains_key(&def.name) {
            return Err(StorageError::VolExists(def.name.clone()));
        }
        let made = match source {
            None => {
                self.backend
                    .create_volume(&old.def, &def, prealloc_metadata)
                    .await?
            }
            Some(source) => {
                // The source may be in this pool (whose lock we hold) or another: read it
                // from the snapshots, which never wait on a lock.
                let (_, source) = self.find_volume(source)?;
                self.backend
                    .create_volume_from(&old.def, &def, &source, prealloc_metadata)
                    .await?
            }
        };
        let summary = made.summary(old.name());
        let mut next = (**old).clone();
        next.sizes = grown(next.sizes, made.def.allocation.unwrap_or(0), 0);
        let mut volumes = (*next.volumes).clone();
        volumes.insert(made.def.name.clone(), Arc::new(made));
        next.volumes = Arc::new(volumes);
        self.announce(&next, Some(&summary.name), Lifecycle::Created);
        locked.object.publish(next);
        Ok(summary)
    }

    pub(super) async fn delete_vol(&self, volume: &VolRef) -> Result<()> {
        let (locked, found) = self.begin_volume(volume).await?;
        let old = &locked.old;
        self.busy.check(old.name(), &found.def.name)?;
        let _exclusive = self.exclusive(old.name(), &found.def.name, "deleted")?;
        self.backend.delete_volume(&old.def, &found).await?;
        self.markers.clear(old.name(), &found.def.name)?;
        let mut next = (**old).clone();
        next.sizes = grown(next.sizes, 0, found.def.allocation.unwrap_or(0));
        let mut volumes = (*next.volumes).clone();
        volumes.remove(&found.def.name);
        next.volumes = Arc::new(volumes);
        self.announce(&next, Some(&found.def.name), Lifecycle::Deleted);
        locked.object.publish(next);
        Ok(())
    }

    pub(super) async fn resize_vol(&self, volume: &VolRef, spec: ResizeSpec) -> Result<VolSummary> {
        let (locked, found) = self.begin_volume(volume).await?;
        self.busy.check(locked.old.name(), &found.def.name)?;
        let capacity = spec
            .target(&found.def.name, found.def.capacity)
            .map_err(StorageError::InvalidArg)?;
        let old = &locked.old;
        // A domain's disk may grow under it (the guest sees more once told), never shrink.
        let _exclusive = (capacity < found.def.capacity)
            .then(|| self.exclusive(old.name(), &found.def.name, "shrunk"))
            .transpose()?;
        if spec.allocate && capacity > found.def.capacity {
            let needed = capacity - found.def.capacity;
            if needed > old.sizes.available {
                return Err(StorageError::OperationInvalid(format!(
                    "not enough space left in storage pool '{}' to allocate {needed} more \
                     bytes for volume '{}' ({} bytes available)",
                    old.name(),
                    found.def.name,
                    old.sizes.available
                )));
            }
        }
        let resized = self
            .backend
            .resize_volume(&old.def, &found, capacity, spec.allocate)
            .await?;
        Ok(self.replace_volume(&locked, &found, resized))
    }

    pub(super) async fn wipe_vol(&self, volume: &VolRef, algorithm: WipeAlgorithm) -> Result<()> {
        let (locked, found) = self.begin_volume(volume).await?;
        self.busy.check(locked.old.name(), &found.def.name)?;
        let _exclusive = self.exclusive(locked.old.name(), &found.def.name, "wiped")?;
        let wiped = self
            .backend
            .wipe_volume(&locked.old.def, &found, algorithm)
            .await?;
        self.replace_volume(&locked, &found, wiped);
        Ok(())
    }

    /// Publishes the pool with `before` replaced by `after` (a change of its data or size).
    fn replace_volume(&self, locked: &Locked, before: &Volume, after: Volume) -> VolSummary {
        let old = &locked.old;
        let mut next = (**old).clone();
        next.sizes = grown(
            next.sizes,
            after.def.allocation.unwrap_or(0),
            before.def.allocation.unwrap_or(0),
        );
        let summary = after.summary(old.name());
        let mut volumes = (*next.volumes).clone();
        volumes.insert(after.def.name.clone(), Arc::new(after));
        next.volumes = Arc::new(volumes);
        self.announce(&next, Some(&summary.name), Lifecycle::Changed);
        locked.object.publish(next);
        summary
    }
}

/// The pool's sizes after its volumes took `added` more bytes and gave back `freed`, as
/// libvirt keeps them between refreshes.
fn grown(sizes: PoolSizes, added: u64, freed: u64) -> PoolSizes {
    let allocation = sizes.allocation.saturating_add(added).saturating_sub(freed);
    let available = sizes.available.saturating_add(freed).saturating_sub(added);
    PoolSizes {
        capacity: sizes.capacity,
        allocation,
        available,
    }
}
