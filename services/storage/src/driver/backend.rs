//! What a pool type does on the host: the seam between the shared core (names, states,
//! files, events, libvirt's rules) and a driver's backend (the `dir` driver's directory of
//! image files, the `test` driver's simulation). The core calls a backend under the pool's
//! job lock; a backend never sees protobuf and never keeps the pool list.

use crate::error::Result;
use crate::host::VolumeFile;
use crate::model::{BuildFlags, PoolSizes, VolSummary, VolType, WipeAlgorithm};
use crate::xml::{PoolDef, VolDef};

/// A volume as its backend found or made it: its definition as `vol-dumpxml` shows it, with
/// name, key, target path, format, capacity and allocation filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub def: VolDef,
    pub vol_type: VolType,
}

impl Volume {
    pub fn path(&self) -> &str {
        self.def.target.path.as_deref().unwrap_or_default()
    }

    pub fn key(&self) -> &str {
        self.def.key.as_deref().unwrap_or_else(|| self.path())
    }

    pub fn format(&self) -> &str {
        self.def.target.format.as_deref().unwrap_or("raw")
    }

    pub fn summary(&self, pool: &str) -> VolSummary {
        VolSummary {
            pool: pool.to_owned(),
            name: self.def.name.clone(),
            key: self.key().to_owned(),
            path: self.path().to_owned(),
            vol_type: self.vol_type,
            format: self.format().to_owned(),
            capacity: self.def.capacity,
            allocation: self.def.allocation.unwrap_or(0),
            upload_incomplete: false,
            upload_offset: 0,
        }
    }
}

/// What a scan of an active pool found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    pub sizes: PoolSizes,
    pub volumes: Vec<Volume>,
}

/// A pool type's host side.
#[tonic::async_trait]
pub trait Backend: Send + Sync + 'static {
    /// The driver's name (`dir`, `test`), for messages.
    fn driver(&self) -> &'static str;

    /// Refuses a pool this backend cannot run (another pool type, no target path) with a
    /// message that says why.
    fn check_pool(&self, def: &PoolDef) -> Result<()>;

    /// virStoragePoolBuild: makes the pool's target.
    async fn build(&self, def: &PoolDef, flags: BuildFlags) -> Result<()>;
    /// Checks the pool can run (its target exists and is usable) and scans it.
    async fn start(&self, def: &PoolDef) -> Result<Scan>;
    /// Anything to undo at stop (nothing for a directory).
    async fn stop(&self, def: &PoolDef) -> Result<()>;
    /// virStoragePoolDelete: removes the pool's target.
    async fn delete(&self, def: &PoolDef) -> Result<()>;
    /// Scans an active pool again (volumes put there by hand appear).
    async fn refresh(&self, def: &PoolDef) -> Result<Scan>;

    /// Makes a new volume of `vol` (its name checked, not yet in the pool).
    async fn create_volume(
        &self,
        pool: &PoolDef,
        vol: &VolDef,
        prealloc_metadata: bool,
    ) -> Result<Volume>;
    /// Makes a new volume of `vol` filled with the data of `source` (of any pool).
    async fn create_volume_from(
        &self,
        pool: &PoolDef,
        vol: &VolDef,
        source: &Volume,
        prealloc_metadata: bool,
    ) -> Result<Volume>;
    async fn delete_volume(&self, pool: &PoolDef, vol: &Volume) -> Result<()>;
    /// Gives `vol` the capacity `capacity` (already checked against libvirt's rules).
    async fn resize_volume(
        &self,
        pool: &PoolDef,
        vol: &Volume,
        capacity: u64,
        allocate: bool,
    ) -> Result<Volume>;
    async fn wipe_volume(
        &self,
        pool: &PoolDef,
        vol: &Volume,
        algorithm: WipeAlgorithm,
    ) -> Result<Volume>;
    /// The volume as it is now (after a change of its data).
    async fn inspect_volume(&self, pool: &PoolDef, vol: &Volume) -> Result<Volume>;
    /// Opens the file that holds the volume's data, for uploads (`write`) and downloads,
    /// without following anything out of the pool; `Unsupported` for a backend that keeps
    /// no data. Blocks briefly (an open).
    fn open_data(&self, pool: &PoolDef, vol: &Volume, write: bool) -> Result<VolumeFile>;
}
