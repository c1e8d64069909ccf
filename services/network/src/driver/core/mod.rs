//! What every network driver shares: the network list, the files on disk, the event hub,
//! and libvirt's rules that do not depend on the host (define, undefine, start and stop
//! transitions, autostart, `net-update` flags, ports), over a [`Runtime`] that does the
//! host's part. [`Core`] implements [`NetworkDriver`]; a driver is a core opened with its
//! runtime.
//!
//! A change runs under the network's job lock: decide the next snapshot, let the runtime
//! act, persist what changed (`commit.rs`; rolled back on failure), then publish the
//! snapshot and announce its events. Claims on what networks share — bridge names and
//! subnets — are made under one more lock ([`Core::placement`]) so two concurrent defines
//! or starts cannot take the same bridge or overlapping addresses.

use std::sync::Arc;

use tokio::sync::{Mutex, OwnedMutexGuard};
use virtplane_common::events::EventHub;

use super::{DriverConfig, NetworkDriver};
use crate::error::{NetworkError, Result};
use crate::model::{Event, Info, Lease, ListFilter, NetworkRef, Summary, UpdateSpec, Updated};
use crate::persist::Store;
use crate::xml::{NetworkDef, PortDef, format_network};

mod commit;
mod lifecycle;
pub mod list;
mod load;
mod ports;
pub mod runtime;
mod update;

pub use list::{NetworkList, NetworkObj, Snapshot};
pub use runtime::Runtime;

/// How many events a resuming watcher can catch up on.
const RETAINED_EVENTS: usize = 10_000;

/// The state shared by a driver's jobs.
pub struct Core {
    pub networks: NetworkList,
    pub store: Store,
    pub events: Arc<EventHub<Event>>,
    pub runtime: Arc<dyn Runtime>,
    /// Held while bridge names are chosen or subnets claimed, until the claim is committed.
    placement: Mutex<()>,
}

/// What a job decided.
pub enum Outcome {
    Update(Snapshot, Vec<crate::model::Lifecycle>),
    Remove(Vec<crate::model::Lifecycle>),
}

/// A network whose job lock is held: the snapshot it had when the lock was taken.
pub struct Locked {
    pub object: Arc<NetworkObj>,
    pub old: Arc<Snapshot>,
    _job: OwnedMutexGuard<()>,
}

impl Core {
    /// Opens the state and run dirs, loads every stored network and re-adopts the active
    /// ones. Returns whether this is the first start since the host booted (the caller
    /// then runs [`Core::autostart`]).
    pub async fn open(config: &DriverConfig, runtime: Arc<dyn Runtime>) -> Result<(Self, bool)> {
        let store = Store::open(&config.state_dir, &config.run_dir)?;
        let epoch = EventHub::<Event>::next_epoch(&config.state_dir)
            .map_err(|e| NetworkError::storage("update", &config.state_dir, e))?;
        let core = Self {
            networks: NetworkList::default(),
            store,
            events: EventHub::new(epoch, RETAINED_EVENTS),
            runtime,
            placement: Mutex::new(()),
        };
        let new_boot = core.store.claim_boot()?;
        core.load(new_boot)?;
        core.adopt_active().await;
        Ok((core, new_boot))
    }

    pub fn driver(&self) -> &'static str {
        self.runtime.driver()
    }

    pub fn snapshot(&self, network: &NetworkRef) -> Result<Arc<Snapshot>> {
        Ok(self.networks.find(network)?.snapshot())
    }

    /// Takes the network's job lock; fails if it left the list while we waited.
    pub async fn begin(&self, network: &NetworkRef) -> Result<Locked> {
        let object = self.networks.find(network)?;
        let job = object.begin_job().await;
        let old = object.snapshot();
        if old.removed {
            return Err(NetworkError::NotFound(network.to_string()));
        }
        Ok(Locked {
            object,
            old,
            _job: job,
        })
    }

    /// Starts every persistent, inactive network marked autostart (once per host boot).
    pub async fn autostart(&self) {
        let names: Vec<String> = self
            .networks
            .snapshots()
            .into_iter()
            .filter(|s| s.persistent && s.autostart && !s.active)
            .map(|s| s.name().to_owned())
            .collect();
        for name in names {
            if let Err(error) = self.start_network(&NetworkRef::Name(name.clone())).await {
                tracing::error!(network = %name, %error, "autostart failed");
            }
        }
    }
}

/// libvirt writes `connections='N'` on an active network's root element (the ports in use).
fn with_connections(xml: String, connections: usize) -> String {
    if connections == 0 {
        return xml;
    }
    match xml.strip_prefix("<network") {
        Some(rest) => format!("<network connections='{connections}'{rest}"),
        None => xml,
    }
}

#[tonic::async_trait]
impl NetworkDriver for Core {
    fn name(&self) -> &'static str {
        self.driver()
    }

    async fn define(&self, def: NetworkDef) -> Result<(Summary, bool)> {
        self.define_network(def).await
    }

    async fn create(&self, def: NetworkDef) -> Result<Summary> {
        self.create_network(def).await
    }

    async fn undefine(&self, network: &NetworkRef) -> Result<()> {
        self.undefine_network(network).await
    }

    async fn start(&self, network: &NetworkRef) -> Result<Summary> {
        self.start_network(network).await
    }

    async fn destroy(&self, network: &NetworkRef) -> Result<()> {
        self.destroy_network(network).await
    }

    async fn set_autostart(&self, network: &NetworkRef, autostart: bool) -> Result<()> {
        self.set_network_autostart(network, autostart).await
    }

    async fn update(&self, network: &NetworkRef, spec: UpdateSpec) -> Result<Updated> {
        self.update_network(network, spec).await
    }

    fn lookup(&self, network: &NetworkRef) -> Result<Summary> {
        Ok(self.snapshot(network)?.summary())
    }

    fn list(&self, filter: &ListFilter) -> Vec<Summary> {
        self.networks
            .snapshots()
            .into_iter()
            .map(|s| s.summary())
            .filter(|s| filter.matches(s))
            .collect()
    }

    async fn info(&self, network: &NetworkRef) -> Result<Info> {
        let snapshot = self.snapshot(network)?;
        let warnings = self.runtime.warnings(&snapshot.def, snapshot.active).await;
        Ok(Info {
            summary: snapshot.summary(),
            warnings,
        })
    }

    fn xml(&self, network: &NetworkRef, inactive: bool) -> Result<String> {
        let snapshot = self.snapshot(network)?;
        if inactive && let Some(def) = snapshot.persistent_def() {
            return Ok(format_network(def));
        }
        let xml = format_network(&snapshot.def);
        Ok(if snapshot.active && !inactive {
            with_connections(xml, snapshot.ports.len())
        } else {
            xml
        })
    }

    async fn leases(&self, network: &NetworkRef, mac: Option<&str>) -> Result<Vec<Lease>> {
        let snapshot = self.snapshot(network)?;
        if !snapshot.active {
            return Ok(Vec::new());
        }
        let mut leases = self.runtime.leases(&snapshot.def).await?;
        if let Some(mac) = mac {
            leases.retain(|l| {
                l.mac
                    .as_deref()
                    .is_some_and(|m| m.eq_ignore_ascii_case(mac))
            });
        }
        leases.sort_by(|a, b| {
            let key = |l: &Lease| l.mac.as_deref().map(str::to_ascii_lowercase);
            key(a).cmp(&key(b)).then_with(|| a.ip.cmp(&b.ip))
        });
        Ok(leases)
    }

    async fn create_port(&self, network: &NetworkRef, port: PortDef) -> Result<PortDef> {
        self.create_network_port(network, port).await
    }

    async fn delete_port(&self, network: &NetworkRef, uuid: &str) -> Result<()> {
        self.delete_network_port(network, uuid).await
    }

    fn list_ports(&self, network: &NetworkRef) -> Result<Vec<PortDef>> {
        let snapshot = self.snapshot(network)?;
        if !snapshot.active {
            return Err(NetworkError::not_active(snapshot.name()));
        }
        Ok(snapshot.ports.values().map(|p| (**p).clone()).collect())
    }

    fn port(&self, network: &NetworkRef, uuid: &str) -> Result<PortDef> {
        let snapshot = self.snapshot(network)?;
        snapshot
            .ports
            .get(&uuid.to_ascii_lowercase())
            .map(|p| (**p).clone())
            .ok_or_else(|| NetworkError::PortNotFound(uuid.to_owned()))
    }

    fn events(&self) -> &Arc<EventHub<Event>> {
        &self.events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_go_first_on_the_root() {
        assert_eq!(
            with_connections("<network ipv6='yes'>\n".into(), 2),
            "<network connections='2' ipv6='yes'>\n"
        );
        assert_eq!(with_connections("<network>\n".into(), 0), "<network>\n");
    }
}
