//! The driver trait every network driver implements, and the factory that picks one.
//!
//! Drivers speak the service's own model (`crate::model`, `crate::xml`), never protobuf. A
//! driver that lacks a feature returns `NetworkError::Unsupported` (→ UNIMPLEMENTED).
//!
//! What every driver shares — the network list, job locks, files, events and libvirt's
//! rules for define, undefine, start, stop, autostart, update and ports — is [`core::Core`],
//! which implements this trait over a [`core::Runtime`]: what starting, stopping or
//! changing a network does on the host. The `test` driver's runtime simulates it
//! ([`test`]); the `bridge` driver's makes bridges, dnsmasq and nftables tables with
//! `crate::render` and `crate::host` ([`bridge`]).

use std::path::PathBuf;
use std::sync::Arc;

use virtplane_common::events::EventHub;

use crate::error::{NetworkError, Result};
use crate::model::{Event, Info, Lease, ListFilter, NetworkRef, Summary, UpdateSpec, Updated};
use crate::xml::{NetworkDef, PortDef};

pub mod bridge;
pub mod core;
pub mod test;

/// libvirt's network driver API, as far as virtplane has it.
#[tonic::async_trait]
pub trait NetworkDriver: Send + Sync + 'static {
    /// The driver's name (`test`, `bridge`), for messages.
    fn name(&self) -> &'static str;

    /// virNetworkDefineXML: defines or redefines a persistent network; true when an existing
    /// one was updated. An active network keeps running its live definition.
    async fn define(&self, def: NetworkDef) -> Result<(Summary, bool)>;
    /// virNetworkCreateXML: starts a transient network.
    async fn create(&self, def: NetworkDef) -> Result<Summary>;
    /// virNetworkUndefine: an active network stays, as transient.
    async fn undefine(&self, network: &NetworkRef) -> Result<()>;
    /// virNetworkCreate.
    async fn start(&self, network: &NetworkRef) -> Result<Summary>;
    /// virNetworkDestroy: stops the network and deletes its ports; a transient network
    /// disappears.
    async fn destroy(&self, network: &NetworkRef) -> Result<()>;
    async fn set_autostart(&self, network: &NetworkRef, autostart: bool) -> Result<()>;
    /// virNetworkUpdate.
    async fn update(&self, network: &NetworkRef, spec: UpdateSpec) -> Result<Updated>;

    fn lookup(&self, network: &NetworkRef) -> Result<Summary>;
    /// Every network matching `filter`, sorted by name.
    fn list(&self, filter: &ListFilter) -> Vec<Summary>;
    /// `net-info`, with the host conflicts the driver sees.
    async fn info(&self, network: &NetworkRef) -> Result<Info>;
    /// The live definition, or with `inactive` the persistent one (the live one for a
    /// transient network), in libvirt's layout.
    fn xml(&self, network: &NetworkRef, inactive: bool) -> Result<String>;
    /// virNetworkGetDHCPLeases, sorted by MAC; `mac` filters (case-insensitive).
    async fn leases(&self, network: &NetworkRef, mac: Option<&str>) -> Result<Vec<Lease>>;

    /// virNetworkPortCreateXML: `port` names the owner and MAC (and may carry a UUID and
    /// settings the driver keeps as written); the driver chooses the plug. Returns the
    /// port as created.
    async fn create_port(&self, network: &NetworkRef, port: PortDef) -> Result<PortDef>;
    /// virNetworkPortDelete.
    async fn delete_port(&self, network: &NetworkRef, uuid: &str) -> Result<()>;
    /// virNetworkListAllPorts, sorted by UUID. The network must be active.
    fn list_ports(&self, network: &NetworkRef) -> Result<Vec<PortDef>>;
    fn port(&self, network: &NetworkRef, uuid: &str) -> Result<PortDef>;

    /// The driver's event stream.
    fn events(&self) -> &Arc<EventHub<Event>>;
}

/// Which driver to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DriverKind {
    /// Simulated networks with libvirt's semantics, persisted to the state and run dirs;
    /// nothing on the host changes.
    Test,
    /// Linux bridges, dnsmasq and nftables on the host.
    Bridge,
}

/// Where a driver keeps its files.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    pub state_dir: PathBuf,
    pub run_dir: PathBuf,
}

/// Builds the configured driver.
pub async fn build(kind: DriverKind, config: &DriverConfig) -> Result<Arc<dyn NetworkDriver>> {
    claim_state_dir(kind, config)?;
    match kind {
        DriverKind::Test => Ok(Arc::new(test::open(config).await?)),
        DriverKind::Bridge => Ok(Arc::new(bridge::open(config).await?)),
    }
}

impl DriverKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Test => "test",
            Self::Bridge => "bridge",
        }
    }
}

/// A state dir belongs to the driver that first used it: the test driver's simulated
/// `default` network, say, must never be taken for a real one by the bridge driver, which
/// would then look for (and might adopt or delete) a host bridge of that name.
fn claim_state_dir(kind: DriverKind, config: &DriverConfig) -> Result<()> {
    use virtplane_common::store::{ClaimError, claim_for_driver};
    claim_for_driver(&config.state_dir, kind.as_str(), "networks").map_err(|error| match error {
        ClaimError::OtherDriver { .. } => NetworkError::InvalidArg(error.to_string()),
        ClaimError::Io {
            action,
            path,
            source,
        } => NetworkError::storage(action, std::path::Path::new(&path), source),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_dir_stays_with_its_driver() {
        let dir = tempfile::tempdir().unwrap();
        let config = DriverConfig {
            state_dir: dir.path().join("state"),
            run_dir: dir.path().join("run"),
        };
        claim_state_dir(DriverKind::Test, &config).unwrap();
        claim_state_dir(DriverKind::Test, &config).unwrap();
        let error = claim_state_dir(DriverKind::Bridge, &config).unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("test driver") && text.contains("--state-dir"),
            "{text}"
        );
    }
}
