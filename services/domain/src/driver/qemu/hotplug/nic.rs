//! Network interfaces plugged into and out of a running guest, as libvirt's
//! `qemu_hotplug.c` does it (`qemuDomainAttachNetDevice`, `qemuDomainDetachPrepNet` and
//! `qemuDomainRemoveNetDevice`).
//!
//! Attach: the config half is checked first (nothing is kept unless the live half works
//! too). Live, the card gets libvirt's alias (`netN`, one above the highest in use) as its
//! QEMU id and a free PCI slot; the host side is made ([`QemuDriver::prepare_nic`]: a
//! `bridge` or `ethernet` interface's tap, made as at start and owned by the running VM from
//! then on, so a stop or a failed start cleans it up); then `netdev_add` (`hostnetN`: the tap
//! by name with no scripts and no vhost, or user networking) and `device_add` with exactly
//! the arguments the command line would have had (`argv::nic_hotplug`). Each step is undone
//! if a later one fails: `netdev_del`, the tap deleted.
//!
//! Detach: `device_del`, then the guest must let the card go (`DEVICE_DELETED`, at most
//! [`super::UNPLUG_WAIT`]; otherwise DEADLINE_EXCEEDED with the interface still in the live
//! definition, and the watcher finishes the job when the guest lets go later, as for
//! disks); then `netdev_del` and the tap is deleted.
//!
//! The cards QEMU started with are `net0`, `net1`, … by position, which a detach shifts, so
//! the first hot-plug of a run writes every interface's id into the live definition as its
//! alias. An interface with a user alias (`ua-…`) cannot record its id that way; it is found
//! by its MAC address among QEMU's cards instead.

use std::sync::Arc;

use serde_json::{Value, json};

use super::super::argv::{self, ArgvError, SlotError};
use super::super::driver::QemuDriver;
use super::super::monitor::{Monitor, MonitorError};
use super::super::net::plan::{self, HostSide};
use super::super::net::ports::{PortOwner, held_port};
use super::super::net::{NetError, PluggedNic};
use super::super::vm::Vm;
use super::super::{DRIVER, errors};
use super::{root_slots_in_use, wait_deleted};
use crate::device_edit;
use crate::driver::core::{Core, Locked, Outcome};
use crate::error::{DomainError, Result};
use crate::impact::Targets;
use crate::model::EventBody;
use crate::xml::{DomainDef, Interface};

/// QEMU's types of the cards the command line makes (`argv/nics.rs`).
const CARD_TYPES: &[&str] = &["virtio-net-pci", "e1000", "e1000e", "rtl8139"];

impl QemuDriver {
    /// virDomainAttachDeviceFlags for an `<interface>`, under the job lock `locked`.
    pub(in super::super) async fn attach_nic_job(
        &self,
        locked: &Locked,
        mut nic: Interface,
        targets: Targets,
    ) -> Result<()> {
        let old = &locked.old;
        // Once, before the split: the live and the config copy share a generated MAC.
        device_edit::normalize_nic(&mut nic);
        let config_only = Targets {
            live: false,
            config: targets.config,
        };
        let mut next = Core::edit(old, config_only, |_, config| match config {
            Some(config) => device_edit::attach_nic_config(config, nic.clone()),
            None => Ok(()),
        })?;
        let mut events = Vec::new();
        if targets.live {
            let vm = self.vm_of(old)?;
            let (live, alias) = self.plug_nic(&vm, &old.def, nic).await?;
            events.push(EventBody::DeviceAdded(alias));
            next.def = Arc::new(live);
        }
        if targets.config {
            events.push(EventBody::ConfigChanged("device-added"));
        }
        self.core
            .commit(&locked.object, &locked.old, Outcome::Update(next, events))
            .await
    }

    /// virDomainDetachDeviceFlags for an `<interface>` (`wanted` names it), under the job
    /// lock `locked`.
    pub(in super::super) async fn detach_nic_job(
        &self,
        locked: &Locked,
        wanted: &Interface,
        targets: Targets,
    ) -> Result<()> {
        let old = &locked.old;
        let config_only = Targets {
            live: false,
            config: targets.config,
        };
        let mut next = Core::edit(old, config_only, |_, config| match config {
            Some(config) => device_edit::detach_nic_config(config, wanted).map(|_| ()),
            None => Ok(()),
        })?;
        let mut events = Vec::new();
        if targets.live {
            let vm = self.vm_of(old)?;
            let index = device_edit::find_nic(&old.def, wanted)?;
            let (live, alias) = self.unplug_nic(&vm, &old.def, index).await?;
            events.push(EventBody::DeviceRemoved(alias));
            next.def = Arc::new(live);
        }
        if targets.config {
            events.push(EventBody::ConfigChanged("device-removed"));
        }
        self.core
            .commit(&locked.object, &locked.old, Outcome::Update(next, events))
            .await
    }

    /// The host side of ONE interface about to be plugged into `vm` (its `index`-th in the
    /// live definition): the interface as it will run, and the tap made for it, which the VM
    /// owns from now on (undo with [`Self::release_nic`]). Nothing is left on failure.
    pub(in super::super) async fn prepare_nic(
        &self,
        vm: &Vm,
        nic: Interface,
        index: usize,
    ) -> Result<PluggedNic> {
        let mut nic = nic;
        let fail = |e: NetError| e.for_domain(&vm.name, "attach an interface to");
        // A `network` interface first gets its port, which names the bridge.
        let owner = PortOwner {
            name: &vm.name,
            uuid: &vm.uuid,
        };
        let port = self
            .net
            .join_one(owner, vm.id, &mut nic, index)
            .await
            .map_err(fail)?;
        match self.net.plug_one(&vm.uuid, vm.id, nic, index).await {
            Ok(plugged) => Ok(plugged),
            Err(error) => {
                if let Some(port) = &port {
                    self.net
                        .leave_network(&vm.uuid, vm.id, port, &vm.name)
                        .await;
                }
                Err(fail(error))
            }
        }
    }

    /// Undoes [`Self::prepare_nic`], or releases the host side of `nic`, unplugged from
    /// `vm`: its tap is deleted and its network port given back.
    pub(in super::super) async fn release_nic(&self, vm: &Vm, nic: &Interface, tap: Option<&str>) {
        if let Some(tap) = tap {
            self.net.unplug_one(&vm.uuid, vm.id, tap, &vm.name).await;
        }
        if let Some(port) = held_port(nic) {
            self.net
                .leave_network(&vm.uuid, vm.id, &port, &vm.name)
                .await;
        }
    }

    /// Plugs `nic` into the running `vm` whose live definition is `def`; returns the live
    /// definition with it (alias, address, tap) and its alias.
    async fn plug_nic(
        &self,
        vm: &Vm,
        def: &DomainDef,
        mut nic: Interface,
    ) -> Result<(DomainDef, String)> {
        let name = &def.name;
        let label = device_edit::nic_label(&nic);
        let what = format!("attach interface '{label}' to");
        check_pluggable(&nic)?;
        device_edit::check_nic_attach_live(def, &nic)?;
        let monitor = &vm.monitor;
        let fail = |e| errors::monitor(name, &what, e);
        let mut live = def.clone();
        record_ids(&mut live);
        let in_use = peripheral_ids(monitor).await.map_err(fail)?;
        let alias = next_alias(&live, &in_use);
        if nic.info.address.is_none() {
            let root = root_slots_in_use(monitor).await.map_err(fail)?;
            let ctx = self.argv_context(vm);
            let slot = argv::free_pci_slot(&live, &ctx, &root).map_err(|e| match e {
                SlotError::Argv(e) => argv_error(name, &label, e),
                other => DomainError::OperationInvalid(format!(
                    "cannot attach interface '{label}' to domain '{name}': {other}"
                )),
            })?;
            nic.info.address = Some(slot.address());
        }
        let index = live.devices.interfaces.len();
        let mut check = live.clone();
        check.devices.interfaces.push(nic.clone());
        check.validate().map_err(|e| {
            DomainError::InvalidArg(format!(
                "the interface would make the definition invalid: {e}"
            ))
        })?;

        let plugged = self.prepare_nic(vm, nic, index).await?;
        let tap = plugged.tap.clone();
        live.devices.interfaces.push(plugged.nic);
        live.devices.interfaces[index].info.alias = Some(alias.clone());
        let plug = match argv::nic_hotplug(&live, index, &alias, &self.argv_context(vm)) {
            Ok(plug) => plug,
            Err(error) => {
                self.release_nic(vm, &live.devices.interfaces[index], tap.as_deref())
                    .await;
                return Err(argv_error(name, &label, error));
            }
        };
        let added = monitor
            .execute_raw(json!({"execute": "netdev_add", "arguments": plug.netdev}))
            .await;
        if let Err(error) = added {
            self.release_nic(vm, &live.devices.interfaces[index], tap.as_deref())
                .await;
            return Err(fail(error));
        }
        let added = monitor
            .execute_raw(json!({"execute": "device_add", "arguments": plug.device}))
            .await;
        if let Err(error) = added {
            remove_netdev(monitor, name, &plug.netdev_id).await;
            self.release_nic(vm, &live.devices.interfaces[index], tap.as_deref())
                .await;
            return Err(fail(error));
        }
        tracing::info!(domain = %name, interface = %label, device = %alias, tap = ?tap, "interface attached");
        Ok((live, alias))
    }

    /// Unplugs the `index`-th interface from the running `vm` whose live definition is
    /// `def`; returns the live definition without it and the name its removal is announced
    /// by (its alias).
    async fn unplug_nic(
        &self,
        vm: &Vm,
        def: &DomainDef,
        index: usize,
    ) -> Result<(DomainDef, String)> {
        let name = &def.name;
        let mut live = def.clone();
        record_ids(&mut live);
        let nic = live.devices.interfaces[index].clone();
        let label = device_edit::nic_label(&nic);
        let what = format!("detach interface '{label}' from");
        let monitor = &vm.monitor;
        let fail = |e| errors::monitor(name, &what, e);
        let expected = device_id(&nic, index);
        let found = card_of(monitor, &nic, &expected).await.map_err(fail)?;
        let mut events = vm.subscribe_raw_events();
        let subject = format!("interface '{label}'");
        let id = match found {
            Some(id) => {
                let request = monitor
                    .execute_raw(json!({"execute": "device_del", "arguments": {"id": id}}))
                    .await;
                match request {
                    Ok(_) => wait_deleted(vm, &mut events, &id, &subject).await?,
                    // Gone between the look and the request: only the bookkeeping is left.
                    Err(MonitorError::Qmp { class, .. }) if class == "DeviceNotFound" => {}
                    // An earlier request is still pending in the guest: wait for it too.
                    Err(MonitorError::Qmp { desc, .. })
                        if desc.contains("in the process of unplug") =>
                    {
                        wait_deleted(vm, &mut events, &id, &subject).await?
                    }
                    Err(error) => return Err(fail(error)),
                }
                id
            }
            // A detach that timed out earlier and whose card the guest let go meanwhile.
            None => {
                tracing::info!(domain = %name, interface = %label, "the interface's card was already gone");
                expected
            }
        };
        remove_netdev(monitor, name, &argv::netdev_id(&id)).await;
        self.release_nic(vm, &nic, managed_tap(&nic, index).as_deref())
            .await;
        live.devices.interfaces.remove(index);
        tracing::info!(domain = %name, interface = %label, device = %id, "interface detached");
        Ok((live, nic.info.alias.unwrap_or(id)))
    }

    /// The guest released card `id` after the detach that asked for it gave up waiting: the
    /// interface leaves the live definition, its backend and tap go. Runs from the watcher
    /// under the job lock; false when no interface of the live definition is that card.
    pub(in super::super) async fn finish_late_nic_unplug(
        &self,
        vm: &Vm,
        locked: &Locked,
        id: &str,
    ) -> Result<bool> {
        let def = &locked.old.def;
        let Some(index) = def
            .devices
            .interfaces
            .iter()
            .enumerate()
            .position(|(i, nic)| known_id(nic, i).as_deref() == Some(id))
        else {
            return Ok(false);
        };
        let nic = &def.devices.interfaces[index];
        remove_netdev(&vm.monitor, &def.name, &argv::netdev_id(id)).await;
        self.release_nic(vm, nic, managed_tap(nic, index).as_deref())
            .await;
        let mut live = (**def).clone();
        record_ids(&mut live);
        live.devices.interfaces.remove(index);
        let mut next = (*locked.old).clone();
        next.def = Arc::new(live);
        tracing::info!(domain = %def.name, device = %id, "the guest released the interface late; detach finished");
        self.core
            .commit(
                &locked.object,
                &locked.old,
                Outcome::Update(next, vec![EventBody::DeviceRemoved(id.to_owned())]),
            )
            .await?;
        Ok(true)
    }
}

/// Interface types whose host side this driver makes (`network` once the network service
/// gave it a port: [`QemuDriver::prepare_nic`]).
fn check_pluggable(nic: &Interface) -> Result<()> {
    if let Some(alias) = &nic.info.alias {
        return Err(DomainError::Unsupported {
            driver: DRIVER,
            what: format!(
                "hot-plugging an interface with a user alias ('{alias}'): this driver names \
                 hot-plugged cards netN; drop the <alias>, or use --config"
            ),
        });
    }
    match nic.iface_type.as_str() {
        "user" | "bridge" | "ethernet" | "network" => Ok(()),
        other => Err(DomainError::Unsupported {
            driver: DRIVER,
            what: format!(
                "hot-plugging <interface type='{other}'> (only user, bridge and ethernet \
                 interfaces can be hot-plugged; use --config to add it for the next start)"
            ),
        }),
    }
}

/// QEMU's id of the `index`-th interface: its alias, unless it is a user alias; else the
/// command line's `net<index>`.
fn device_id(nic: &Interface, index: usize) -> String {
    known_id(nic, index).unwrap_or_else(|| format!("net{index}"))
}

/// [`device_id`] where the definition alone tells it for sure (not for an interface with a
/// user alias, whose position may have moved since the start).
fn known_id(nic: &Interface, index: usize) -> Option<String> {
    match &nic.info.alias {
        Some(alias) if alias.starts_with(device_edit::USER_ALIAS_PREFIX) => None,
        Some(alias) => Some(alias.clone()),
        None => Some(format!("net{index}")),
    }
}

/// Writes each interface's QEMU id into the live definition as its alias (see the module
/// doc). Right as long as no interface was plugged or unplugged in this run without it.
fn record_ids(live: &mut DomainDef) {
    for (i, nic) in live.devices.interfaces.iter_mut().enumerate() {
        if nic.info.alias.is_none() {
            nic.info.alias = Some(format!("net{i}"));
        }
    }
}

/// libvirt's `qemuAssignDeviceNetAlias`: one above the highest `netN` in use (an
/// interface with a user alias counts as its start position), skipping ids QEMU has.
fn next_alias(live: &DomainDef, in_use: &[String]) -> String {
    let mut next = live
        .devices
        .interfaces
        .iter()
        .enumerate()
        .map(|(i, nic)| {
            device_id(nic, i)
                .strip_prefix("net")
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(i)
                + 1
        })
        .max()
        .unwrap_or(0);
    while in_use.iter().any(|id| *id == format!("net{next}")) {
        next += 1;
    }
    format!("net{next}")
}

/// The tap the service made for the `index`-th interface, which goes with it.
fn managed_tap(nic: &Interface, index: usize) -> Option<String> {
    match plan::host_side(nic, index) {
        Ok(HostSide::Managed(tap)) => tap.name,
        _ => None,
    }
}

/// The ids of QEMU's user-created devices (`qom-list /machine/peripheral`).
async fn peripheral_ids(monitor: &Monitor) -> Result<Vec<String>, MonitorError> {
    Ok(peripherals(monitor)
        .await?
        .into_iter()
        .map(|(id, _)| id)
        .collect())
}

/// QEMU's user-created devices: (id, type).
async fn peripherals(monitor: &Monitor) -> Result<Vec<(String, String)>, MonitorError> {
    let reply = monitor
        .execute_raw(json!({"execute": "qom-list", "arguments": {"path": "/machine/peripheral"}}))
        .await?;
    Ok(reply
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let kind = p["type"].as_str()?;
            let kind = kind.strip_prefix("child<")?.strip_suffix('>')?;
            Some((p["name"].as_str()?.to_owned(), kind.to_owned()))
        })
        .collect())
}

/// The card QEMU has for `nic`, by id `expected` when its MAC agrees (or it has no MAC to
/// check), else by its MAC among QEMU's cards; `None` when QEMU has no such card (any more).
async fn card_of(
    monitor: &Monitor,
    nic: &Interface,
    expected: &str,
) -> Result<Option<String>, MonitorError> {
    let Some(mac) = nic.mac.as_deref() else {
        let ids = peripheral_ids(monitor).await?;
        return Ok(ids
            .iter()
            .any(|id| id == expected)
            .then(|| expected.to_owned()));
    };
    if card_mac(monitor, expected).await?.as_deref() == Some(mac) {
        return Ok(Some(expected.to_owned()));
    }
    for (id, kind) in peripherals(monitor).await? {
        if CARD_TYPES.contains(&kind.as_str())
            && card_mac(monitor, &id).await?.as_deref() == Some(mac)
        {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// The MAC address of QEMU's device `id`; `None` when there is no such device or it has
/// no MAC.
async fn card_mac(monitor: &Monitor, id: &str) -> Result<Option<String>, MonitorError> {
    let reply = monitor
        .execute_raw(json!({"execute": "qom-get", "arguments": {
            "path": format!("/machine/peripheral/{id}"), "property": "mac"}}))
        .await;
    match reply {
        Ok(Value::String(mac)) => Ok(Some(mac.to_ascii_lowercase())),
        Ok(_) => Ok(None),
        Err(MonitorError::Qmp { .. }) => Ok(None),
        Err(error) => Err(error),
    }
}

/// `netdev_del` of `id`. Best effort, as libvirt: a backend left behind costs an open tap
/// file descriptor in QEMU, not correctness, and is logged.
async fn remove_netdev(monitor: &Monitor, domain: &str, id: &str) {
    let result = monitor
        .execute_raw(json!({"execute": "netdev_del", "arguments": {"id": id}}))
        .await;
    match result {
        Ok(_) => {}
        Err(MonitorError::Qmp { class, .. }) if class == "DeviceNotFound" => {}
        Err(error) => {
            tracing::warn!(domain = %domain, netdev = %id, %error, "cannot remove a network backend")
        }
    }
}

/// A definition that cannot become the interface's QMP arguments.
fn argv_error(name: &str, label: &str, error: ArgvError) -> DomainError {
    let message = format!("cannot attach interface '{label}' to domain '{name}': {error}");
    match error {
        ArgvError::Unsupported { .. } => DomainError::Unsupported {
            driver: DRIVER,
            what: message,
        },
        ArgvError::KvmUnavailable | ArgvError::Invalid { .. } => DomainError::InvalidArg(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{DeviceDef, parse_device, parse_domain};

    fn def(nics: &str) -> DomainDef {
        parse_domain(&format!(
            "<domain type='qemu'><name>t</name><memory>65536</memory>\
             <os><type arch='x86_64' machine='pc'>hvm</type></os>\
             <devices>{nics}</devices></domain>"
        ))
        .unwrap()
    }

    fn nic(xml: &str) -> Interface {
        match parse_device(xml).unwrap() {
            DeviceDef::Interface(n) => *n,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ids_follow_the_command_line_then_the_aliases() {
        let mut d = def("<interface type='user'/>\
             <interface type='user'><alias name='ua-lan'/></interface>\
             <interface type='user'/>");
        assert_eq!(device_id(&d.devices.interfaces[0], 0), "net0");
        assert_eq!(known_id(&d.devices.interfaces[1], 1), None);
        assert_eq!(device_id(&d.devices.interfaces[1], 1), "net1");
        assert_eq!(next_alias(&d, &[]), "net3");
        record_ids(&mut d);
        let aliases: Vec<_> = d
            .devices
            .interfaces
            .iter()
            .map(|n| n.info.alias.clone().unwrap())
            .collect();
        assert_eq!(aliases, ["net0", "ua-lan", "net2"]);
        // A detach shifts positions; the recorded ids stay.
        d.devices.interfaces.remove(0);
        assert_eq!(device_id(&d.devices.interfaces[1], 1), "net2");
        assert_eq!(next_alias(&d, &[]), "net3");
        assert_eq!(
            next_alias(&d, &["net3".into(), "net4".into(), "virtio-disk0".into()]),
            "net5"
        );
        assert_eq!(next_alias(&def(""), &[]), "net0");
    }

    #[test]
    fn pluggable_types_and_taps() {
        check_pluggable(&nic("<interface type='user'/>")).unwrap();
        check_pluggable(&nic(
            "<interface type='bridge'><source bridge='br0'/></interface>",
        ))
        .unwrap();
        let err = check_pluggable(&nic(
            "<interface type='direct'><source dev='eth0'/></interface>",
        ))
        .unwrap_err();
        assert!(matches!(err, DomainError::Unsupported { .. }), "{err:?}");
        assert!(err.to_string().contains("type='direct'"), "{err}");
        let err = check_pluggable(&nic(
            "<interface type='user'><alias name='ua-x'/></interface>",
        ))
        .unwrap_err();
        assert!(err.to_string().contains("ua-x"), "{err}");
        let d = def("<interface type='user'/>\
             <interface type='bridge'><source bridge='br0'/><target dev='vnet3'/></interface>\
             <interface type='ethernet'><target dev='tap9'/></interface>");
        let taps: Vec<_> = (0..3)
            .map(|i| managed_tap(&d.devices.interfaces[i], i))
            .collect();
        assert_eq!(taps, [None, Some("vnet3".into()), Some("tap9".into())]);
    }
}
