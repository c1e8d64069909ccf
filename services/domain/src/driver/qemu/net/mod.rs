//! The host side of a VM's network interfaces: the taps of `bridge` and `ethernet` interfaces.
//!
//! Before QEMU starts, [`HostNet::plug`] creates each managed tap (`tap.rs`: `/dev/net/tun`,
//! persistent), gives it the guest's MAC with a first byte of 0xFE and the bridge's MTU,
//! attaches it to `<source bridge>` and brings it up (`link.rs`: rtnetlink); QEMU then opens
//! it by name. A tap without `<target dev>` is named `vnetN` as libvirt names it
//! (`names.rs`), and the name goes into the live definition, which the service keeps in its
//! status file, so after a restart it still knows which taps are the VM's. Taps are deleted
//! when the VM is gone ([`HostNet::release`]) and, after a restart, for VMs that ended while
//! the service was away ([`HostNet::remove_leftovers`]). Which interface gets what is
//! `plan.rs`.
//!
//! An `<interface type='network'>` first gets a port from the network service (`ports.rs`),
//! which names the network's bridge; from there it is a bridge interface. Ports are deleted
//! with the taps, and after a restart for VMs that ended meanwhile.
//!
//! Everything happens in the service's own network namespace: the bridge must be there, and
//! so are the taps.

pub mod error;
mod link;
pub mod names;
pub mod plan;
pub mod ports;
mod tap;

use std::collections::HashMap;
use std::sync::Arc;

pub use error::NetError;
pub use link::{Device, Netlink};
use plan::{HostSide, ManagedTap};
use ports::{HeldPort, NetworkPorts, PortOwner};

use crate::xml::{DomainDef, Interface};

/// The taps the service made, and the name counter. One per driver.
#[derive(Debug, Default)]
pub struct HostNet {
    /// Naming and creating happen under this lock, so two starts never race for a name.
    counter: tokio::sync::Mutex<names::NameCounter>,
    /// The taps each running VM owns, by (domain UUID, run id).
    owned: std::sync::Mutex<HashMap<(String, i32), Vec<String>>>,
    /// The network service's port calls; `None` when the service runs without one, and
    /// then `network` interfaces are refused.
    ports: Option<Arc<dyn NetworkPorts>>,
    /// The ports each running VM holds, by (domain UUID, run id).
    held: std::sync::Mutex<HashMap<(String, i32), Vec<HeldPort>>>,
}

impl HostNet {
    /// Host networking that can also join virtual networks, through `ports`.
    pub fn with_ports(ports: Arc<dyn NetworkPorts>) -> Self {
        HostNet {
            ports: Some(ports),
            ..Default::default()
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<(String, i32), Vec<HeldPort>>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn owned(&self) -> std::sync::MutexGuard<'_, HashMap<(String, i32), Vec<String>>> {
        self.owned.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates the taps `def`'s interfaces need for run `id` and returns the definition the
    /// VM runs with: generated tap names and MACs filled in. On failure nothing it created
    /// is left. The created taps belong to (`def.uuid`, `id`) until [`Self::release`].
    pub async fn plug(&self, def: Arc<DomainDef>, id: i32) -> Result<Arc<DomainDef>, NetError> {
        let (def, ports) = self.join_networks(def).await?;
        match self.plug_taps(def, id).await {
            Ok(live) => {
                if !ports.is_empty() {
                    self.held().insert((live.uuid.clone(), id), ports);
                }
                Ok(live)
            }
            Err(error) => {
                self.delete_ports(&ports, "").await;
                Err(error)
            }
        }
    }

    /// Gets a port for each `network` interface of `def` and records it, with the network's
    /// bridge, in the definition returned. On failure the ports made so far are deleted.
    async fn join_networks(
        &self,
        def: Arc<DomainDef>,
    ) -> Result<(Arc<DomainDef>, Vec<HeldPort>), NetError> {
        let wanted: Vec<usize> = (def.devices.interfaces.iter().enumerate())
            .filter(|(_, nic)| nic.iface_type == "network")
            .map(|(i, _)| i)
            .collect();
        if wanted.is_empty() {
            return Ok((def, Vec::new()));
        }
        let Some(service) = &self.ports else {
            return Err(NetError::NoNetworkService);
        };
        let mut live = (*def).clone();
        let mut made = Vec::new();
        for index in wanted {
            let owner = PortOwner {
                name: &def.name,
                uuid: &def.uuid,
            };
            let nic = &mut live.devices.interfaces[index];
            let joined = join_network(service.as_ref(), owner, nic, index).await;
            match joined {
                Ok(port) => made.push(port),
                Err(error) => {
                    self.delete_ports(&made, &def.name).await;
                    return Err(error);
                }
            }
        }
        Ok((Arc::new(live), made))
    }

    /// Deletes ports; failures are logged (the port stays listed on its network).
    async fn delete_ports(&self, ports: &[HeldPort], domain: &str) {
        let Some(service) = &self.ports else {
            if !ports.is_empty() {
                tracing::warn!(%domain, ?ports, "no network service to delete the VM's ports");
            }
            return;
        };
        for port in ports {
            match service.delete(&port.network, &port.uuid).await {
                Ok(()) => {
                    tracing::info!(%domain, network = %port.network, port = %port.uuid, "deleted the VM's network port")
                }
                Err(error) => {
                    tracing::warn!(%domain, network = %port.network, port = %port.uuid, %error, "cannot delete the VM's network port")
                }
            }
        }
    }

    /// [`Self::plug`] once every interface has its bridge.
    async fn plug_taps(&self, def: Arc<DomainDef>, id: i32) -> Result<Arc<DomainDef>, NetError> {
        let sides = def
            .devices
            .interfaces
            .iter()
            .enumerate()
            .map(|(i, nic)| plan::host_side(nic, i))
            .collect::<Result<Vec<_>, _>>()?;
        if sides.iter().all(|s| *s == HostSide::Nothing) {
            return Ok(def);
        }
        let netlink = Netlink::open()?;
        let mut counter = self.counter.lock().await;
        let mut live = (*def).clone();
        let mut created = Vec::new();
        let result = plug_each(&netlink, &mut counter, &mut live, &sides, &mut created).await;
        if let Err(error) = result {
            for name in &created {
                delete_tap(&netlink, name, &def.name).await;
            }
            return Err(error);
        }
        if !created.is_empty() {
            self.owned().insert((def.uuid.clone(), id), created);
        }
        Ok(Arc::new(live))
    }

    /// The host side of ONE interface hot-plugged into the running VM of run `id` of the
    /// domain `uuid` (`index`: its place among the interfaces, for messages): a managed tap
    /// is named, made and set up exactly as at start, and from then on belongs to the VM
    /// (deleted with it, or by [`Self::unplug_one`]). Returns the interface as it runs: tap
    /// name and MAC filled in. On failure nothing it made is left.
    pub async fn plug_one(
        &self,
        uuid: &str,
        id: i32,
        mut nic: Interface,
        index: usize,
    ) -> Result<PluggedNic, NetError> {
        let HostSide::Managed(tap) = plan::host_side(&nic, index)? else {
            return Ok(PluggedNic { nic, tap: None });
        };
        let netlink = Netlink::open()?;
        let mut counter = self.counter.lock().await;
        let name = match &tap.name {
            Some(name) => name.clone(),
            None => {
                let taken = netlink.names().await?;
                counter.next(&taken).ok_or(NetError::NoFreeName)?
            }
        };
        let guest_mac = match nic.mac.as_deref().and_then(names::parse_mac) {
            Some(mac) => mac,
            None => {
                let random = uuid::Uuid::new_v4();
                let b = random.as_bytes();
                let mac = names::generated_guest_mac([b[0], b[1], b[2]]);
                nic.mac = Some(names::format_mac(mac));
                mac
            }
        };
        let mut created = Vec::new();
        if let Err(error) = make_tap(&netlink, &tap, &name, guest_mac, &mut created).await {
            for made in &created {
                delete_tap(&netlink, made, uuid).await;
            }
            return Err(error);
        }
        drop(counter);
        self.owned()
            .entry((uuid.to_owned(), id))
            .or_default()
            .push(name.clone());
        nic.target_dev = Some(name.clone());
        Ok(PluggedNic {
            nic,
            tap: Some(name),
        })
    }

    /// For a `network` interface about to be hot-plugged into the VM of run `id`: a port on
    /// its network, recorded in `nic` (bridge, portid) and held by the VM from now on (give
    /// it back with [`Self::leave_network`]). `None` for other types.
    pub async fn join_one(
        &self,
        owner: PortOwner<'_>,
        id: i32,
        nic: &mut Interface,
        index: usize,
    ) -> Result<Option<HeldPort>, NetError> {
        if nic.iface_type != "network" {
            return Ok(None);
        }
        let Some(service) = &self.ports else {
            return Err(NetError::NoNetworkService);
        };
        let port = join_network(service.as_ref(), owner, nic, index).await?;
        self.held()
            .entry((owner.uuid.to_owned(), id))
            .or_default()
            .push(port.clone());
        Ok(Some(port))
    }

    /// The VM of run `id` no longer uses `port`: it is deleted on its network.
    pub async fn leave_network(&self, uuid: &str, id: i32, port: &HeldPort, domain: &str) {
        let key = (uuid.to_owned(), id);
        {
            let mut held = self.held();
            if let Some(ports) = held.get_mut(&key) {
                ports.retain(|p| p != port);
                if ports.is_empty() {
                    held.remove(&key);
                }
            }
        }
        self.delete_ports(std::slice::from_ref(port), domain).await;
    }

    /// Undoes [`Self::plug_one`] (or unplugs a started VM's interface): deletes the VM's
    /// tap `tap` and forgets it. Failures are logged.
    pub async fn unplug_one(&self, uuid: &str, id: i32, tap: &str, domain: &str) {
        let key = (uuid.to_owned(), id);
        {
            let mut owned = self.owned();
            if let Some(taps) = owned.get_mut(&key) {
                taps.retain(|t| t != tap);
                if taps.is_empty() {
                    owned.remove(&key);
                }
            }
        }
        self.delete_all(&[tap.to_owned()], domain).await;
    }

    /// After a service restart: the taps of a VM that still runs are its own again, and the
    /// name counter moves past them (libvirt's `virNetDevReserveName`).
    pub async fn adopt(&self, def: &DomainDef, id: i32) {
        let ports = ports::held_ports(def);
        if !ports.is_empty() {
            self.held().insert((def.uuid.clone(), id), ports);
        }
        let taps = plan::owned_taps(def);
        if taps.is_empty() {
            return;
        }
        let mut counter = self.counter.lock().await;
        for name in &taps {
            counter.reserve(name);
        }
        self.owned().insert((def.uuid.clone(), id), taps);
    }

    /// The VM of run `id` of the domain `uuid` is gone: deletes the taps it owned. Failures
    /// are logged; nothing here can stop the VM from being forgotten.
    pub async fn release(&self, uuid: &str, id: i32, domain: &str) {
        let key = (uuid.to_owned(), id);
        let taps = self.owned().remove(&key);
        if let Some(taps) = taps {
            self.delete_all(&taps, domain).await;
        }
        let ports = self.held().remove(&key);
        if let Some(ports) = ports {
            self.delete_ports(&ports, domain).await;
        }
    }

    /// The VM of `live` ended while the service was away: deletes the taps its live
    /// definition names as its own.
    pub async fn remove_leftovers(&self, live: &DomainDef) {
        let taps = plan::owned_taps(live);
        if !taps.is_empty() {
            self.delete_all(&taps, &live.name).await;
        }
        self.delete_ports(&ports::held_ports(live), &live.name)
            .await;
    }

    async fn delete_all(&self, taps: &[String], domain: &str) {
        match Netlink::open() {
            Ok(netlink) => {
                for name in taps {
                    delete_tap(&netlink, name, domain).await;
                }
            }
            Err(error) => {
                tracing::warn!(%domain, ?taps, %error, "cannot delete the VM's taps");
            }
        }
    }
}

/// One interface after [`HostNet::plug_one`]: as it runs, and the tap made for it (owned
/// by the VM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluggedNic {
    pub nic: Interface,
    pub tap: Option<String>,
}

/// A port on the network of `live`'s `index`-th interface (a `network` one), recorded in
/// its `<source>` with the network's bridge; the MAC is filled in first if missing, since the
/// port carries it.
async fn join_network(
    service: &dyn NetworkPorts,
    owner: PortOwner<'_>,
    nic: &mut Interface,
    index: usize,
) -> Result<HeldPort, NetError> {
    let network = ports::network_of(nic, index)?.to_owned();
    let mac = match nic.mac.clone() {
        Some(mac) => mac,
        None => {
            let random = uuid::Uuid::new_v4();
            let b = random.as_bytes();
            let mac = names::format_mac(names::generated_guest_mac([b[0], b[1], b[2]]));
            nic.mac = Some(mac.clone());
            mac
        }
    };
    let port = service.create(&network, owner, &mac).await?;
    let source = nic.source.get_or_insert_default();
    source.portid = Some(port.uuid.clone());
    source.bridge = Some(port.bridge);
    Ok(HeldPort {
        network,
        uuid: port.uuid,
    })
}

/// Names and makes each managed tap of `live` in turn, filling in its name and MAC;
/// `created` lists what exists so far, for the caller to undo on failure.
async fn plug_each(
    netlink: &Netlink,
    counter: &mut names::NameCounter,
    live: &mut DomainDef,
    sides: &[HostSide],
    created: &mut Vec<String>,
) -> Result<(), NetError> {
    // The names in use, listed once and only if a name must be generated.
    let mut in_use = None;
    for (index, side) in sides.iter().enumerate() {
        let HostSide::Managed(tap) = side else {
            continue;
        };
        let nic = &mut live.devices.interfaces[index];
        let name = match &tap.name {
            Some(name) => name.clone(),
            None => {
                if in_use.is_none() {
                    in_use = Some(netlink.names().await?);
                }
                let taken = in_use.get_or_insert_default();
                let name = counter.next(taken).ok_or(NetError::NoFreeName)?;
                taken.insert(name.clone());
                name
            }
        };
        let guest_mac = match nic.mac.as_deref().and_then(names::parse_mac) {
            Some(mac) => mac,
            None => {
                let random = uuid::Uuid::new_v4();
                let b = random.as_bytes();
                let mac = names::generated_guest_mac([b[0], b[1], b[2]]);
                nic.mac = Some(names::format_mac(mac));
                mac
            }
        };
        make_tap(netlink, tap, &name, guest_mac, created).await?;
        nic.target_dev = Some(name);
    }
    Ok(())
}

/// Creates and sets up one managed tap (libvirt's `virNetDevTapCreateInBridgePort` order:
/// MAC before the bridge, so the bridge never sees a random one; the bridge's MTU before
/// joining, so the bridge's own does not change; up last). `created` gets the name as soon
/// as the tap exists.
async fn make_tap(
    netlink: &Netlink,
    tap: &ManagedTap,
    name: &str,
    guest_mac: [u8; 6],
    created: &mut Vec<String>,
) -> Result<(), NetError> {
    if let Some(existing) = netlink.device(name).await? {
        return Err(if existing.is_tap() {
            NetError::TapExists(name.to_owned())
        } else {
            NetError::NotATap {
                name: name.to_owned(),
                kind: existing.describe_kind(),
            }
        });
    }
    let bridge = match &tap.bridge {
        None => None,
        Some(bridge) => match netlink.device(bridge).await? {
            Some(device) if device.is_bridge() => Some(device),
            Some(device) => {
                return Err(NetError::NotABridge {
                    name: bridge.clone(),
                    kind: device.describe_kind(),
                });
            }
            None => return Err(NetError::NoBridge(bridge.clone())),
        },
    };
    tap::create_persistent(name, tap.vnet_hdr)?;
    created.push(name.to_owned());
    let device = netlink
        .device(name)
        .await?
        .ok_or_else(|| NetError::Netlink {
            what: format!("find tap '{name}' after creating it"),
            message: "it is gone".into(),
        })?;
    netlink.set_mac(&device, names::tap_mac(guest_mac)).await?;
    if let Some(bridge) = &bridge {
        if let Some(mtu) = bridge.mtu {
            netlink.set_mtu(&device, mtu).await?;
        }
        netlink.attach(&device, bridge).await?;
    }
    netlink.set_up(&device).await
}

/// Deletes the tap `name` if it is one (never another kind of device that took the name).
async fn delete_tap(netlink: &Netlink, name: &str, domain: &str) {
    match netlink.device(name).await {
        Ok(None) => {}
        Ok(Some(device)) if device.is_tap() => match netlink.delete(&device).await {
            Ok(()) => tracing::info!(%domain, tap = %name, "deleted the VM's tap"),
            Err(error) => {
                tracing::warn!(%domain, tap = %name, %error, "cannot delete the VM's tap")
            }
        },
        Ok(Some(device)) => {
            tracing::warn!(%domain, name = %name, kind = %device.describe_kind(), "the VM's tap name now belongs to another kind of device; left alone")
        }
        Err(error) => tracing::warn!(%domain, tap = %name, %error, "cannot look up the VM's tap"),
    }
}
