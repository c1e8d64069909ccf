//! The driver trait every storage driver implements, and the factory that picks one.
//!
//! Drivers speak the service's own model (`crate::model`, `crate::xml`), never protobuf. A
//! driver that lacks a feature returns `StorageError::Unsupported` (→ UNIMPLEMENTED).
//!
//! What every driver shares — the pool list, job locks, files, events and libvirt's rules
//! for pools and volumes — is [`core::Core`], which implements this trait over a
//! [`backend::Backend`]: what a pool type does on the host. The `test` driver's backend
//! simulates it ([`test`]); the `dir` driver's keeps image files in a directory with
//! `crate::host` ([`dir`]).

use std::path::PathBuf;
use std::sync::Arc;

use virtplane_common::events::EventHub;

use crate::error::{Result, StorageError};
use crate::model::{
    BuildFlags, Event, PoolFilter, PoolRef, PoolSummary, ResizeSpec, VolRef, VolSummary,
    WipeAlgorithm,
};
use crate::transfer::download::Outgoing;
use crate::xml::{PoolDef, VolDef};
pub use core::LeaseOwner;

/// The pieces of an upload after its header.
pub type UploadStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<core::UploadItem>> + Send>>;

pub mod backend;
pub mod core;
pub mod dir;
pub mod test;

/// libvirt's storage driver API, as far as virtplane has it.
#[tonic::async_trait]
pub trait StorageDriver: Send + Sync + 'static {
    /// The driver's name (`test`, `dir`), for messages.
    fn name(&self) -> &'static str;

    /// virStoragePoolDefineXML: defines or redefines a persistent pool; true when an
    /// existing one was updated. An active pool keeps running its live definition.
    async fn define_pool(&self, def: PoolDef) -> Result<(PoolSummary, bool)>;
    /// virStoragePoolCreateXML: starts a transient pool (building it first if asked).
    async fn create_pool(&self, def: PoolDef, build: Option<BuildFlags>) -> Result<PoolSummary>;
    /// virStoragePoolBuild (inactive pools only, as libvirt).
    async fn build_pool(&self, pool: &PoolRef, flags: BuildFlags) -> Result<()>;
    /// virStoragePoolCreate (building first if asked).
    async fn start_pool(&self, pool: &PoolRef, build: Option<BuildFlags>) -> Result<PoolSummary>;
    /// virStoragePoolDestroy: a transient pool disappears.
    async fn destroy_pool(&self, pool: &PoolRef) -> Result<()>;
    /// virStoragePoolDelete (inactive pools only).
    async fn delete_pool(&self, pool: &PoolRef) -> Result<()>;
    /// virStoragePoolUndefine: an active pool stays, as transient.
    async fn undefine_pool(&self, pool: &PoolRef) -> Result<()>;
    async fn set_pool_autostart(&self, pool: &PoolRef, autostart: bool) -> Result<()>;
    /// virStoragePoolRefresh.
    async fn refresh_pool(&self, pool: &PoolRef) -> Result<()>;
    fn lookup_pool(&self, pool: &PoolRef) -> Result<PoolSummary>;
    /// Every pool matching `filter`, sorted by name.
    fn list_pools(&self, filter: &PoolFilter) -> Vec<PoolSummary>;
    /// The live definition (with current sizes), or with `inactive` the persistent one, in
    /// libvirt's layout.
    fn pool_xml(&self, pool: &PoolRef, inactive: bool) -> Result<String>;

    /// The volumes of an active pool, sorted by name.
    fn list_volumes(&self, pool: &PoolRef) -> Result<Vec<VolSummary>>;
    fn lookup_volume(&self, volume: &VolRef) -> Result<VolSummary>;
    fn volume_xml(&self, volume: &VolRef) -> Result<String>;
    /// virStorageVolCreateXML.
    async fn create_volume(
        &self,
        pool: &PoolRef,
        def: VolDef,
        prealloc_metadata: bool,
    ) -> Result<VolSummary>;
    /// virStorageVolCreateXMLFrom.
    async fn create_volume_from(
        &self,
        pool: &PoolRef,
        def: VolDef,
        source: &VolRef,
        prealloc_metadata: bool,
    ) -> Result<VolSummary>;
    async fn delete_volume(&self, volume: &VolRef) -> Result<()>;
    async fn resize_volume(&self, volume: &VolRef, spec: ResizeSpec) -> Result<VolSummary>;
    async fn wipe_volume(&self, volume: &VolRef, algorithm: WipeAlgorithm) -> Result<()>;
    /// virStorageVolUpload: writes the stream's pieces from `offset` (at most `length`
    /// bytes), checks its checksum; returns the bytes written and the volume after.
    async fn upload_volume(
        &self,
        volume: &VolRef,
        offset: u64,
        length: Option<u64>,
        items: UploadStream,
    ) -> Result<(u64, VolSummary)>;
    /// virStorageVolDownload: how many bytes follow, and the pieces then the checksum.
    async fn download_volume(
        &self,
        volume: &VolRef,
        offset: u64,
        length: Option<u64>,
        sparse: bool,
    ) -> Result<(u64, tokio::sync::mpsc::Receiver<Result<Outgoing>>)>;

    /// A lease on `volume` for the domain `owner`, which uses it as a disk: while a domain
    /// holds one, the volume is not deleted, wiped, shrunk or uploaded into. Idempotent per
    /// (volume, owner UUID). Returns the volume as the domain opens it.
    async fn acquire_volume(&self, volume: &VolRef, owner: &LeaseOwner) -> Result<VolSummary>;
    /// Ends the lease of the domain `owner_uuid` on `volume`; a lease (or volume) that no
    /// longer exists is not an error.
    async fn release_volume(&self, volume: &VolRef, owner_uuid: &str) -> Result<()>;

    fn events(&self) -> &Arc<EventHub<Event>>;
}

/// Which driver runs the pools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DriverKind {
    /// In memory, like libvirt's test:///default: a `default` pool, nothing on the host.
    Test,
    /// Directory pools of image files, made and inspected with qemu-img.
    Dir,
}

/// Where a driver keeps its files.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    pub state_dir: PathBuf,
    pub run_dir: PathBuf,
}

/// Builds the configured driver. A state dir belongs to the driver that first used it, so a
/// simulated pool is never mistaken for a real directory (or the other way round).
pub async fn build(kind: DriverKind, config: &DriverConfig) -> Result<Arc<dyn StorageDriver>> {
    let name = match kind {
        DriverKind::Test => "test",
        DriverKind::Dir => "dir",
    };
    use virtplane_common::store::{ClaimError, claim_for_driver};
    claim_for_driver(&config.state_dir, name, "pools").map_err(|error| match error {
        ClaimError::OtherDriver { .. } => StorageError::InvalidArg(error.to_string()),
        ClaimError::Io {
            action,
            path,
            source,
        } => StorageError::storage(action, std::path::Path::new(&path), source),
    })?;
    match kind {
        DriverKind::Test => Ok(Arc::new(test::open(config).await?)),
        DriverKind::Dir => Ok(Arc::new(dir::open(config).await?)),
    }
}
