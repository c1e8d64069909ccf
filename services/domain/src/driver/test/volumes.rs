//! `<disk type='volume'>` on the test driver. With a storage service (`--storage-service`),
//! the simulated guests hold leases on their volumes exactly as QEMU guests do: taken at
//! start and hot attach (a missing volume fails the call), given back when the domain stops
//! or the disk is detached, so the storage service's refusals can be tried end to end
//! without QEMU. Without one, volume disks are accepted unresolved, as the test driver
//! accepts every disk.
//!
//! The test driver keeps no VM objects: what a running domain holds is read from its live
//! definition, and every lease change happens under the domain's job lock.

use std::sync::Arc;

use super::TestDriver;
use crate::driver::core::{Core, Outcome};
use crate::driver::volumes::{self, ResolvedVolume, VolumeName};
use crate::error::Result;
use crate::model::{DomainRef, Summary};
use crate::xml::{Disk, DomainDef};

/// Whether `outcome` ends the run of an active domain.
fn stops(old: &crate::domains::Snapshot, outcome: &Outcome) -> bool {
    old.is_active()
        && match outcome {
            Outcome::Remove(_) => true,
            Outcome::Update(next, _) => !next.is_active(),
        }
}

impl TestDriver {
    /// Leases the volumes `def` names for a start (`action`, for messages); the definition
    /// the domain runs with (formats filled in). Unchanged without a storage service.
    pub(super) async fn lease_volumes(
        &self,
        def: Arc<DomainDef>,
        action: &str,
    ) -> Result<Arc<DomainDef>> {
        if !self.volumes.has_storage_service() {
            return Ok(def);
        }
        let name = def.name.clone();
        let (live, _, _) = self
            .volumes
            .lease_all(def)
            .await
            .map_err(|e| e.for_domain(&name, action))?;
        Ok(live)
    }

    /// The run whose live definition is `live` ended: its leases go.
    pub(super) async fn release_volumes(&self, live: &DomainDef) {
        if self.volumes.has_storage_service() {
            self.volumes
                .give_back(&volumes::volumes_of(live), &live.uuid, &live.name)
                .await;
        }
    }

    /// Starts a domain whose job lock is held (`old` inactive) with `def`: leases, commit,
    /// and the leases given back if the commit fails.
    pub(super) async fn start_locked(
        &self,
        object: &Arc<crate::domains::DomainObj>,
        old: &crate::domains::Snapshot,
        def: Arc<DomainDef>,
        paused: bool,
    ) -> Result<Summary> {
        let live = self.lease_volumes(def, "start").await?;
        let (next, events) = Core::started(old, live.clone(), self.core.next_id(), paused);
        let summary = next.summary();
        if let Err(error) = self
            .core
            .commit(object, old, Outcome::Update(next, events))
            .await
        {
            self.release_volumes(&live).await;
            return Err(error);
        }
        Ok(summary)
    }

    /// [`Core::job`] for a change that may end the domain's run (destroy, shutdown, a
    /// reboot that destroys): when it does, the run's leases go, under the job lock.
    pub(super) async fn stopping_job(
        &self,
        domain: &DomainRef,
        decide: impl FnOnce(&crate::domains::Snapshot) -> Result<Outcome>,
    ) -> Result<()> {
        let locked = self.core.begin(domain).await?;
        let outcome = decide(&locked.old)?;
        let stopping = stops(&locked.old, &outcome);
        self.core
            .commit(&locked.object, &locked.old, outcome)
            .await?;
        if stopping {
            self.release_volumes(&locked.old.def).await;
        }
        Ok(())
    }

    /// For a disk attached live to the running domain whose live definition is `live`: the
    /// lease on its volume (volume disks, with a storage service).
    pub(super) async fn lease_for_attach(
        &self,
        live: &DomainDef,
        disk: &Disk,
    ) -> Result<Option<(VolumeName, ResolvedVolume)>> {
        if !self.volumes.has_storage_service() {
            return Ok(None);
        }
        self.volumes
            .lease_disk(live, disk)
            .await
            .map_err(|e| e.for_domain(&live.name, &format!("attach disk '{}' to", disk.target.dev)))
    }

    /// `volume` left the running domain whose live definition is now `live` (or its attach
    /// failed): the lease goes unless another disk uses the volume.
    pub(super) async fn release_unused(&self, live: &DomainDef, volume: &VolumeName) {
        self.volumes.release_unused(live, volume).await;
    }
}
