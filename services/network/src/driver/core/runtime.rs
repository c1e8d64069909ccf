//! The seam between the rules every driver shares ([`super::Core`]) and what a driver does
//! on the host. The core decides (libvirt's state machine, refusals, files, events); the
//! runtime acts, and is called with the network's job lock held, before the core commits.

use crate::error::Result;
use crate::model::Lease;
use crate::xml::NetworkDef;

/// What starting, stopping or changing a network does on the host.
#[tonic::async_trait]
pub trait Runtime: Send + Sync + 'static {
    /// The driver's name, for messages (`test`, `bridge`).
    fn driver(&self) -> &'static str;

    /// Whether a host interface of this name exists, so a generated bridge name avoids it
    /// (libvirt's `networkFindUnusedBridgeName` asks `virNetDevExists`).
    fn interface_exists(&self, name: &str) -> bool;

    /// Brings `def` up (its bridge name is assigned). A failure leaves nothing behind.
    async fn start(&self, def: &NetworkDef) -> Result<()>;

    /// Takes the network of `def` down, removing everything `start` made.
    async fn stop(&self, def: &NetworkDef) -> Result<()>;

    /// After a restart of the service: the network recorded active with the live
    /// definition `def` is made sure to run (found and re-adopted, or its missing parts put
    /// back). An error means it cannot run: the core then records it stopped.
    async fn adopt(&self, def: &NetworkDef) -> Result<()>;

    /// A live `net-update`: the running network goes from `old` to `new` (e.g. dnsmasq's
    /// hosts files rewritten and reloaded).
    async fn update_live(&self, old: &NetworkDef, new: &NetworkDef) -> Result<()>;

    /// The DHCP leases of the active network `def`, unsorted and unfiltered.
    async fn leases(&self, def: &NetworkDef) -> Result<Vec<Lease>>;

    /// Host conflicts that may keep the network from working (e.g. another nftables table
    /// dropping forwarded packets), one sentence each; `active` says whether it runs.
    async fn warnings(&self, def: &NetworkDef, active: bool) -> Vec<String>;
}
