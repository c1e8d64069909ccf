//! The driver trait every domain driver implements, and the factory that picks one.
//!
//! Drivers speak the service's own model (`crate::model`, `crate::xml`), never protobuf.
//! A driver that lacks a feature returns `DomainError::Unsupported` (→ UNIMPLEMENTED).

use std::path::PathBuf;
use std::sync::Arc;

use virtplane_common::events::EventHub;

use crate::error::{DomainError, Result};
use crate::model::{
    DomainRef, Event, Info, ListFilter, MemoryFlags, NodeInfo, PowerMode, Summary, VcpuFlags,
    Versions, XmlFlags,
};
use crate::xml::DomainDef;

pub mod qemu;
pub mod test;
mod test_status;
mod test_world;

/// libvirt's hypervisor driver API, as far as virtplane has it.
#[tonic::async_trait]
pub trait DomainDriver: Send + Sync + 'static {
    fn versions(&self) -> Versions;
    async fn node_info(&self) -> Result<NodeInfo>;

    /// Defines or redefines a persistent domain; true when an existing one was updated.
    async fn define(&self, def: DomainDef) -> Result<(Summary, bool)>;
    async fn undefine(&self, domain: &DomainRef) -> Result<()>;
    /// Starts a transient domain from XML.
    async fn create(&self, def: DomainDef, paused: bool) -> Result<Summary>;

    fn lookup(&self, domain: &DomainRef) -> Result<Summary>;
    /// Every domain matching `filter`, sorted by name.
    fn list(&self, filter: &ListFilter) -> Vec<Summary>;
    fn info(&self, domain: &DomainRef) -> Result<Info>;
    fn xml(&self, domain: &DomainRef, flags: XmlFlags) -> Result<String>;
    fn vcpu_count(&self, domain: &DomainRef, flags: VcpuFlags) -> Result<u32>;

    async fn start(&self, domain: &DomainRef, paused: bool) -> Result<Summary>;
    async fn shutdown(&self, domain: &DomainRef, mode: PowerMode) -> Result<()>;
    async fn destroy(&self, domain: &DomainRef, graceful: bool) -> Result<()>;
    async fn reboot(&self, domain: &DomainRef, mode: PowerMode) -> Result<()>;
    async fn reset(&self, domain: &DomainRef) -> Result<()>;
    async fn suspend(&self, domain: &DomainRef) -> Result<()>;
    async fn resume(&self, domain: &DomainRef) -> Result<()>;

    async fn set_vcpus(&self, domain: &DomainRef, count: u32, flags: VcpuFlags) -> Result<()>;
    async fn set_memory(&self, domain: &DomainRef, kib: u64, flags: MemoryFlags) -> Result<()>;
    async fn set_autostart(&self, domain: &DomainRef, autostart: bool) -> Result<()>;

    /// The driver's event stream.
    fn events(&self) -> &Arc<EventHub<Event>>;
}

/// Which driver to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DriverKind {
    /// In-memory domains with libvirt's test-driver semantics, persisted to the state dir.
    Test,
    /// Real QEMU over QMP.
    Qemu,
}

/// Where a driver keeps its files.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    pub state_dir: PathBuf,
    pub run_dir: PathBuf,
}

/// Builds the configured driver.
pub async fn build(kind: DriverKind, config: &DriverConfig) -> Result<Arc<dyn DomainDriver>> {
    match kind {
        DriverKind::Test => Ok(Arc::new(test::TestDriver::open(config).await?)),
        DriverKind::Qemu => Err(DomainError::Unsupported {
            driver: "qemu",
            what: "the qemu driver is not built yet; run with --driver test".into(),
        }),
    }
}
