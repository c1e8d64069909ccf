//! What every storage driver shares: the pool list, the files on disk, the event hub, and
//! libvirt's rules that do not depend on the host (define, undefine, start, stop, build and
//! delete transitions, autostart, volume names and states), over a [`Backend`] that does the
//! host's part. [`Core`] implements [`StorageDriver`]; a driver is a core opened with its
//! backend.
//!
//! A change runs under the pool's job lock: the backend acts, the files are written, then
//! the new snapshot is published and its events announced. Volume changes take the same
//! lock, so a pool is never stopped or deleted under a volume being made. Reads never wait.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::OwnedMutexGuard;
use virtplane_common::events::EventHub;
use virtplane_common::object_files::ObjectFiles;

use super::backend::Backend;
use super::{DriverConfig, StorageDriver, UploadStream};
use crate::error::{Result, StorageError};
use crate::model::{
    BuildFlags, Event, Lifecycle, PoolFilter, PoolRef, PoolSummary, ResizeSpec, VolRef, VolSummary,
    WipeAlgorithm,
};
use crate::transfer::download::Outgoing;
use crate::transfer::markers::UploadMarkers;
use crate::xml::{PoolDef, VolDef, format_pool, format_volume};

mod lease_files;
pub mod leases;
pub mod list;
mod load;
mod pools;
mod transfers;
mod volumes;

pub use leases::LeaseOwner;
pub use transfers::UploadItem;

pub use list::{PoolList, PoolObj, Snapshot};

/// How many events a resuming watcher can catch up on.
const RETAINED_EVENTS: usize = 10_000;

/// The state shared by a driver's jobs.
pub struct Core {
    pub pools: PoolList,
    pub files: ObjectFiles,
    pub events: Arc<EventHub<Event>>,
    pub backend: Arc<dyn Backend>,
    /// Volumes with an unfinished upload.
    pub markers: Arc<UploadMarkers>,
    /// Volumes with an upload running now.
    busy: transfers::Busy,
    /// Which domains use which volumes (`leases.rs`).
    leases: Arc<leases::Leases>,
}

/// A pool whose job lock is held: the snapshot it had when the lock was taken.
pub struct Locked {
    pub object: Arc<PoolObj>,
    pub old: Arc<Snapshot>,
    _job: OwnedMutexGuard<()>,
}

impl Core {
    /// Opens the state and run dirs, loads every stored pool and re-adopts the active ones.
    /// Returns whether this is the first start since the host booted (the caller then runs
    /// [`Core::autostart`]).
    pub async fn open(config: &DriverConfig, backend: Arc<dyn Backend>) -> Result<(Self, bool)> {
        let files = ObjectFiles::open(&config.state_dir, &config.run_dir, "pools")?;
        let epoch = EventHub::<Event>::next_epoch(&config.state_dir)
            .map_err(|e| StorageError::storage("update", &config.state_dir, e))?;
        let new_boot = files.claim_boot()?;
        let core = Self {
            pools: PoolList::default(),
            files,
            events: EventHub::new(epoch, RETAINED_EVENTS),
            backend,
            markers: Arc::new(UploadMarkers::open(&config.state_dir)?),
            busy: transfers::Busy::default(),
            leases: Arc::new(leases::Leases::open(&config.run_dir, new_boot)?),
        };
        core.load(new_boot).await?;
        Ok((core, new_boot))
    }

    pub fn driver(&self) -> &'static str {
        self.backend.driver()
    }

    pub fn snapshot(&self, pool: &PoolRef) -> Result<Arc<Snapshot>> {
        Ok(self.pools.find(pool)?.snapshot())
    }

    /// Takes the pool's job lock; fails if it left the list while we waited.
    pub async fn begin(&self, pool: &PoolRef) -> Result<Locked> {
        let object = self.pools.find(pool)?;
        let job = object.begin_job().await;
        let old = object.snapshot();
        if old.removed {
            return Err(StorageError::PoolNotFound(pool.to_string()));
        }
        Ok(Locked {
            object,
            old,
            _job: job,
        })
    }

    /// Starts every persistent, inactive pool marked autostart (once per host boot).
    pub async fn autostart(&self) {
        let names: Vec<String> = self
            .pools
            .snapshots()
            .into_iter()
            .filter(|s| s.persistent && s.autostart && !s.active)
            .map(|s| s.name().to_owned())
            .collect();
        for name in names {
            if let Err(error) = self.start(&PoolRef::Name(name.clone()), None).await {
                tracing::error!(pool = %name, %error, "autostart failed");
            }
        }
    }

    pub fn announce(&self, pool: &Snapshot, volume: Option<&str>, lifecycle: Lifecycle) {
        self.events.publish(|sequence| Event {
            sequence,
            time: SystemTime::now(),
            pool: pool.name().to_owned(),
            pool_uuid: pool.uuid().to_owned(),
            volume: volume.map(str::to_owned),
            lifecycle,
        });
    }

    /// Writes the files of `next` that differ from `old` (config, autostart, status), off
    /// the async workers. On failure the caller publishes nothing.
    pub async fn persist(&self, old: &Snapshot, next: &Snapshot) -> Result<()> {
        let files = self.files.clone();
        let name = next.name().to_owned();
        let config = next
            .persistent_def()
            .filter(|def| old.persistent_def().is_none_or(|o| !Arc::ptr_eq(o, def)) || !old.visible)
            .map(|def| format_pool(def));
        let drop_config = old.persistent && old.visible && !next.persistent;
        let autostart = (next.persistent && (old.autostart != next.autostart || !old.visible))
            .then_some(next.autostart);
        let status = (next.active && (!old.active || !Arc::ptr_eq(&old.def, &next.def)))
            .then(|| format_pool(&next.def));
        let drop_status = old.active && !next.active;
        tokio::task::spawn_blocking(move || -> Result<()> {
            if let Some(xml) = &config {
                files.save_config(&name, xml)?;
            }
            if drop_config {
                files.remove_config(&name)?;
            }
            if let Some(on) = autostart {
                files.set_autostart(&name, on)?;
            }
            if let Some(xml) = &status {
                files.save_status(&name, xml)?;
            }
            if drop_status {
                files.remove_status(&name)?;
            }
            Ok(())
        })
        .await
        .map_err(|e| StorageError::Internal(format!("file task failed: {e}")))?
    }

    /// Removes every file of a pool that leaves the list.
    pub async fn forget(&self, old: &Snapshot) -> Result<()> {
        let files = self.files.clone();
        let name = old.name().to_owned();
        let (persistent, active) = (old.persistent && old.visible, old.active);
        tokio::task::spawn_blocking(move || -> Result<()> {
            if persistent {
                files.remove_config(&name)?;
            }
            if active {
                files.remove_status(&name)?;
            }
            Ok(())
        })
        .await
        .map_err(|e| StorageError::Internal(format!("file task failed: {e}")))?
    }
}

/// The pool definition with its current sizes, as `pool-dumpxml` shows an active pool.
fn with_sizes(def: &PoolDef, snapshot: &Snapshot) -> PoolDef {
    let mut def = def.clone();
    if snapshot.active {
        def.capacity = Some(snapshot.sizes.capacity);
        def.allocation = Some(snapshot.sizes.allocation);
        def.available = Some(snapshot.sizes.available);
    } else {
        def.capacity = Some(0);
        def.allocation = Some(0);
        def.available = Some(0);
    }
    def
}

/// True when `path` lies in `dir` (both as written; paths in pool definitions are absolute).
pub fn path_in(dir: &str, path: &str) -> bool {
    Path::new(path).parent() == Some(Path::new(dir))
}

#[tonic::async_trait]
impl StorageDriver for Core {
    fn name(&self) -> &'static str {
        self.driver()
    }

    async fn define_pool(&self, def: PoolDef) -> Result<(PoolSummary, bool)> {
        self.define(def).await
    }

    async fn create_pool(&self, def: PoolDef, build: Option<BuildFlags>) -> Result<PoolSummary> {
        self.create(def, build).await
    }

    async fn build_pool(&self, pool: &PoolRef, flags: BuildFlags) -> Result<()> {
        self.build(pool, flags).await
    }

    async fn start_pool(&self, pool: &PoolRef, build: Option<BuildFlags>) -> Result<PoolSummary> {
        self.start(pool, build).await
    }

    async fn destroy_pool(&self, pool: &PoolRef) -> Result<()> {
        self.destroy(pool).await
    }

    async fn delete_pool(&self, pool: &PoolRef) -> Result<()> {
        self.delete(pool).await
    }

    async fn undefine_pool(&self, pool: &PoolRef) -> Result<()> {
        self.undefine(pool).await
    }

    async fn set_pool_autostart(&self, pool: &PoolRef, autostart: bool) -> Result<()> {
        self.set_autostart(pool, autostart).await
    }

    async fn refresh_pool(&self, pool: &PoolRef) -> Result<()> {
        self.refresh(pool).await
    }

    fn lookup_pool(&self, pool: &PoolRef) -> Result<PoolSummary> {
        Ok(self.snapshot(pool)?.summary())
    }

    fn list_pools(&self, filter: &PoolFilter) -> Vec<PoolSummary> {
        self.pools
            .snapshots()
            .into_iter()
            .map(|s| s.summary())
            .filter(|s| filter.matches(s))
            .collect()
    }

    fn pool_xml(&self, pool: &PoolRef, inactive: bool) -> Result<String> {
        let snapshot = self.snapshot(pool)?;
        if inactive && let Some(def) = snapshot.persistent_def() {
            return Ok(format_pool(&with_sizes(def, &snapshot.stopped())));
        }
        Ok(format_pool(&with_sizes(&snapshot.def, &snapshot)))
    }

    fn list_volumes(&self, pool: &PoolRef) -> Result<Vec<VolSummary>> {
        let snapshot = self.snapshot(pool)?;
        if !snapshot.active {
            return Err(StorageError::not_active(snapshot.name()));
        }
        Ok(snapshot
            .volumes
            .values()
            .map(|v| self.with_upload_state(v.summary(snapshot.name())))
            .collect())
    }

    fn lookup_volume(&self, volume: &VolRef) -> Result<VolSummary> {
        let (pool, found) = self.find_volume(volume)?;
        Ok(self.with_upload_state(found.summary(pool.name())))
    }

    fn volume_xml(&self, volume: &VolRef) -> Result<String> {
        let (_, found) = self.find_volume(volume)?;
        Ok(format_volume(&found.def))
    }

    async fn create_volume(
        &self,
        pool: &PoolRef,
        def: VolDef,
        prealloc_metadata: bool,
    ) -> Result<VolSummary> {
        self.create_vol(pool, def, None, prealloc_metadata).await
    }

    async fn create_volume_from(
        &self,
        pool: &PoolRef,
        def: VolDef,
        source: &VolRef,
        prealloc_metadata: bool,
    ) -> Result<VolSummary> {
        self.create_vol(pool, def, Some(source), prealloc_metadata)
            .await
    }

    async fn delete_volume(&self, volume: &VolRef) -> Result<()> {
        self.delete_vol(volume).await
    }

    async fn resize_volume(&self, volume: &VolRef, spec: ResizeSpec) -> Result<VolSummary> {
        self.resize_vol(volume, spec).await
    }

    async fn wipe_volume(&self, volume: &VolRef, algorithm: WipeAlgorithm) -> Result<()> {
        self.wipe_vol(volume, algorithm).await
    }

    async fn upload_volume(
        &self,
        volume: &VolRef,
        offset: u64,
        length: Option<u64>,
        items: UploadStream,
    ) -> Result<(u64, VolSummary)> {
        self.upload(volume, offset, length, items).await
    }

    async fn download_volume(
        &self,
        volume: &VolRef,
        offset: u64,
        length: Option<u64>,
        sparse: bool,
    ) -> Result<(u64, tokio::sync::mpsc::Receiver<Result<Outgoing>>)> {
        self.download(volume, offset, length, sparse).await
    }

    async fn acquire_volume(&self, volume: &VolRef, owner: &LeaseOwner) -> Result<VolSummary> {
        self.acquire_vol(volume, owner).await
    }

    async fn release_volume(&self, volume: &VolRef, owner_uuid: &str) -> Result<()> {
        self.release_vol(volume, owner_uuid).await
    }

    fn events(&self) -> &Arc<EventHub<Event>> {
        &self.events
    }
}
