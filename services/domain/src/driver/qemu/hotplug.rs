//! Disks plugged into and out of a running guest, as libvirt's `qemu_hotplug.c` does it
//! (network interfaces: `hotplug/nic.rs`).
//!
//! Attach: the config half is checked first (nothing is kept unless the live half works too);
//! live, the disk gets its QEMU id (libvirt's alias, `virtio-disk1`), a free PCI slot when it
//! is a PCI device, and fresh node names; then `blockdev-add` (storage node, format node) and
//! `device_add`, with exactly the arguments the command line would have had
//! (`argv::disk_hotplug`). If `device_add` fails, the nodes are removed again.
//!
//! Detach: `device_del`, then the guest must let the device go: QEMU announces it with
//! `DEVICE_DELETED`. A guest that does not within [`UNPLUG_WAIT`] gets a DEADLINE_EXCEEDED
//! error and the disk stays in the live definition (the request stays pending in the guest;
//! detaching again later finishes the job, also after the guest let go meanwhile). Then the
//! block nodes are removed with `blockdev-del`.
//!
//! A `<disk type='volume'>` is plugged with its volume's lease, which goes again when it is
//! unplugged (`volumes.rs`).
//!
//! Both run under the domain's job lock and end in the driver core's commit, so the new live
//! definition is in the status file before the call returns and a restarted service finds the
//! disk as it was left.

mod nic;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::argv::{self, ArgvContext, ArgvError, SlotError};
use super::driver::QemuDriver;
use super::monitor::{Monitor, MonitorError};
use super::vm::Vm;
use super::volumes::{PluggedVolume, opened_view};
use super::{DRIVER, errors};
use crate::device_edit::{self, Editable};
use crate::driver::core::{Core, Outcome};
use crate::error::{DomainError, Result};
use crate::impact::{self, Targets};
use crate::model::{DomainRef, EventBody, Impact};
use crate::xml::{DeviceDef, Disk, DiskDevice, DomainDef};

/// How long a live detach waits for the guest to release the device (libvirt waits 5 s, then
/// leaves the removal to a later event).
pub const UNPLUG_WAIT: Duration = Duration::from_secs(10);

impl QemuDriver {
    pub(super) async fn attach_device_job(
        &self,
        domain: &DomainRef,
        device: DeviceDef,
        flags: Impact,
    ) -> Result<()> {
        let locked = self.core.begin(domain).await?;
        let old = &locked.old;
        let targets = impact::resolve(flags, old.is_active(), old.persistent)?;
        let mut disk = match device_edit::editable(device, DRIVER, "attach")? {
            Editable::Disk(disk) => *disk,
            Editable::Interface(nic) => return self.attach_nic_job(&locked, *nic, targets).await,
        };
        device_edit::normalize_disk(&mut disk)?;
        let config_only = Targets {
            live: false,
            config: targets.config,
        };
        let mut next = Core::edit(old, config_only, |_, config| match config {
            Some(config) => device_edit::attach_disk_config(config, disk.clone()),
            None => Ok(()),
        })?;
        let dev = disk.target.dev.clone();
        let mut events = Vec::new();
        if targets.live {
            let vm = self.vm_of(old)?;
            let live = self.plug_disk(&vm, &old.def, disk).await?;
            // libvirt's VIR_DOMAIN_EVENT_ID_DEVICE_ADDED names the device by its alias.
            let index = device_edit::find_disk_live(&live, &dev)?;
            let alias = live.devices.disks[index].info.alias.clone();
            events.push(EventBody::DeviceAdded(alias.unwrap_or(dev)));
            next.def = Arc::new(live);
        }
        if targets.config {
            events.push(EventBody::ConfigChanged("device-added"));
        }
        self.core
            .commit(&locked.object, &locked.old, Outcome::Update(next, events))
            .await
    }

    pub(super) async fn detach_device_job(
        &self,
        domain: &DomainRef,
        device: DeviceDef,
        flags: Impact,
    ) -> Result<()> {
        let locked = self.core.begin(domain).await?;
        let old = &locked.old;
        let targets = impact::resolve(flags, old.is_active(), old.persistent)?;
        let dev = match device_edit::editable(device, DRIVER, "detach")? {
            Editable::Disk(disk) => disk.target.dev,
            Editable::Interface(nic) => return self.detach_nic_job(&locked, &nic, targets).await,
        };
        let config_only = Targets {
            live: false,
            config: targets.config,
        };
        let mut next = Core::edit(old, config_only, |_, config| match config {
            Some(config) => device_edit::detach_disk_config(config, &dev).map(|_| ()),
            None => Ok(()),
        })?;
        let mut events = Vec::new();
        let mut unplugged = None;
        if targets.live {
            let vm = self.vm_of(old)?;
            let index = device_edit::find_disk_live(&old.def, &dev)?;
            let alias = old.def.devices.disks[index].info.alias.clone();
            let live = Arc::new(self.unplug_disk(&vm, &old.def, &dev).await?);
            events.push(EventBody::DeviceRemoved(
                alias.unwrap_or_else(|| dev.clone()),
            ));
            unplugged = Some((vm.id, live.clone(), old.def.devices.disks[index].clone()));
            next.def = live;
        }
        if targets.config {
            events.push(EventBody::ConfigChanged("device-removed"));
        }
        self.core
            .commit(&locked.object, &locked.old, Outcome::Update(next, events))
            .await?;
        // Once the definition without the disk is durable: a volume disk's lease goes.
        if let Some((id, live, removed)) = unplugged {
            self.unlease_unplugged(id, &live, &removed).await;
        }
        Ok(())
    }

    /// The guest released a device after the detach call that asked for it gave up waiting
    /// (libvirt's processDeviceDeletedEvent): the disk leaves the live definition and its
    /// block nodes go (an interface: `hotplug/nic.rs`). Runs from the watcher under the job
    /// lock; a detach job in progress consumes its own DEVICE_DELETED and has removed the
    /// device by the time this looks, so then there is nothing to do.
    pub(super) async fn finish_late_unplug(
        &self,
        vm: &Vm,
        locked: &crate::driver::core::Locked,
        id: &str,
    ) -> Result<()> {
        let def = &locked.old.def;
        let Some(index) = def.devices.disks.iter().position(|disk| {
            let own = disk
                .info
                .alias
                .clone()
                .or_else(|| argv::disk_device_id(def, disk).ok());
            own.as_deref() == Some(id)
        }) else {
            return self
                .finish_late_nic_unplug(vm, locked, id)
                .await
                .map(|_| ());
        };
        let disk = &def.devices.disks[index];
        let nodes = orphan_nodes(&vm.monitor, disk)
            .await
            .map_err(|e| errors::monitor(&def.name, "finish the detach of a disk of", e))?;
        remove_nodes(&vm.monitor, &def.name, &nodes).await;
        let mut live = (**def).clone();
        live.devices.disks.remove(index);
        let live = Arc::new(live);
        let mut next = (*locked.old).clone();
        next.def = live.clone();
        tracing::info!(domain = %def.name, disk = %disk.target.dev, device = %id, "the guest released the disk late; detach finished");
        self.core
            .commit(
                &locked.object,
                &locked.old,
                Outcome::Update(next, vec![EventBody::DeviceRemoved(id.to_owned())]),
            )
            .await?;
        self.unlease_unplugged(vm.id, &live, disk).await;
        Ok(())
    }

    fn argv_context(&self, vm: &Vm) -> ArgvContext {
        ArgvContext {
            emulator: self.config.emulator.clone(),
            run_dir: vm.dir.clone(),
            kvm_usable: self.config.kvm_usable,
        }
    }

    /// Plugs `disk` into the running `vm` whose live definition is `def`; returns the live
    /// definition with the disk in it (with its alias and address). A volume disk gets its
    /// volume's lease first (`volumes.rs`).
    async fn plug_disk(&self, vm: &Vm, def: &DomainDef, mut disk: Disk) -> Result<DomainDef> {
        device_edit::check_disk_attach_live(def, &disk, DRIVER)?;
        check_pluggable(&disk)?;
        let volume = self.lease_for_plug(vm, def, &mut disk).await?;
        let plugged = self.plug_disk_opened(vm, def, disk, volume.as_ref()).await;
        if plugged.is_err()
            && let Some(volume) = volume
        {
            self.unlease_failed_plug(vm, def, volume).await;
        }
        plugged
    }

    /// [`Self::plug_disk`] once a volume disk's volume is leased (`volume`).
    async fn plug_disk_opened(
        &self,
        vm: &Vm,
        def: &DomainDef,
        mut disk: Disk,
        volume: Option<&PluggedVolume>,
    ) -> Result<DomainDef> {
        let name = &def.name;
        let dev = disk.target.dev.clone();
        let what = format!("attach disk '{dev}' to");
        let refused = |e: ArgvError| argv_error(name, &dev, e);
        let ctx = self.argv_context(vm);
        let monitor = &vm.monitor;
        disk.info.alias = None;
        let mut live = def.clone();
        if disk.target.bus.as_deref() == Some("virtio") && disk.info.address.is_none() {
            let root = root_slots_in_use(monitor)
                .await
                .map_err(|e| errors::monitor(name, &what, e))?;
            let slot = argv::free_pci_slot(&live, &ctx, &root).map_err(|e| match e {
                SlotError::Argv(e) => refused(e),
                other => DomainError::OperationInvalid(format!(
                    "cannot attach disk '{dev}' to domain '{name}': {other}"
                )),
            })?;
            disk.info.address = Some(slot.address());
        }
        device_edit::insert_disk(&mut live, disk);
        let index = device_edit::find_disk_live(&live, &dev)?;
        argv::check_controller(&live, index).map_err(refused)?;
        let id = argv::disk_device_id(&live, &live.devices.disks[index]).map_err(refused)?;
        for (i, other) in live.devices.disks.iter().enumerate() {
            if i != index && argv::disk_device_id(&live, other).map_err(refused)? == id {
                return Err(DomainError::OperationInvalid(format!(
                    "cannot attach disk '{dev}' to domain '{name}': disk '{}' already has its \
                     address (QEMU device '{id}')",
                    other.target.dev
                )));
            }
        }
        live.validate().map_err(|e| {
            DomainError::InvalidArg(format!("the disk would make the definition invalid: {e}"))
        })?;
        let nodes = next_node_index(monitor)
            .await
            .map_err(|e| errors::monitor(name, &what, e))?;
        let opened = opened_view(&live, index, volume)?;
        let plug = argv::disk_hotplug(&opened, index, nodes, &ctx).map_err(refused)?;
        live.devices.disks[index].info.alias = Some(plug.device_id.clone());

        let mut added: Vec<String> = Vec::new();
        for node in &plug.blockdevs {
            let result = monitor
                .execute_raw(json!({"execute": "blockdev-add", "arguments": node}))
                .await;
            if let Err(error) = result {
                remove_nodes(monitor, name, &added).await;
                return Err(errors::monitor(name, &what, error));
            }
            added.push(node["node-name"].as_str().unwrap_or_default().to_owned());
        }
        let result = monitor
            .execute_raw(json!({"execute": "device_add", "arguments": plug.device}))
            .await;
        if let Err(error) = result {
            remove_nodes(monitor, name, &added).await;
            return Err(errors::monitor(name, &what, error));
        }
        tracing::info!(domain = %name, disk = %dev, device = %plug.device_id, "disk attached");
        Ok(live)
    }

    /// Unplugs disk `dev` from the running `vm` whose live definition is `def`; returns the
    /// live definition without it.
    async fn unplug_disk(&self, vm: &Vm, def: &DomainDef, dev: &str) -> Result<DomainDef> {
        let name = &def.name;
        let what = format!("detach disk '{dev}' from");
        let index = device_edit::find_disk_live(def, dev)?;
        let disk = &def.devices.disks[index];
        check_unpluggable(disk)?;
        let id = match &disk.info.alias {
            Some(alias) => alias.clone(),
            None => argv::disk_device_id(def, disk).map_err(|e| argv_error(name, dev, e))?,
        };
        let monitor = &vm.monitor;
        let fail = |e| errors::monitor(name, &what, e);
        let blocks = monitor
            .execute_raw(json!({"execute": "query-block"}))
            .await
            .map_err(fail)?;
        let mut nodes = attached_nodes(&blocks, &id);
        let mut events = vm.subscribe_raw_events();
        let request = monitor
            .execute_raw(json!({"execute": "device_del", "arguments": {"id": id}}))
            .await;
        match request {
            Ok(_) => wait_deleted(vm, &mut events, &id, &format!("disk '{dev}'")).await?,
            // A detach that timed out earlier and whose device the guest let go meanwhile:
            // only the bookkeeping is left to do.
            Err(MonitorError::Qmp { class, .. }) if class == "DeviceNotFound" => {
                tracing::info!(domain = %name, disk = %dev, "the disk's device was already gone");
                nodes = orphan_nodes(monitor, disk)
                    .await
                    .map_err(|e| errors::monitor(name, &what, e))?;
            }
            // An earlier request is still pending in the guest: wait for it too.
            Err(MonitorError::Qmp { desc, .. }) if desc.contains("in the process of unplug") => {
                wait_deleted(vm, &mut events, &id, &format!("disk '{dev}'")).await?
            }
            Err(error) => return Err(fail(error)),
        }
        remove_nodes(monitor, name, &nodes).await;
        let mut live = def.clone();
        live.devices.disks.remove(index);
        tracing::info!(domain = %name, disk = %dev, device = %id, "disk detached");
        Ok(live)
    }
}

/// libvirt's hotplug rules (`qemuDomainAttachDeviceDiskLiveInternal`): disks go on the
/// virtio, SCSI or USB bus; floppies and CD-ROMs on virtio cannot be plugged.
fn check_pluggable(disk: &Disk) -> Result<()> {
    let unsupported = |what: String| DomainError::Unsupported {
        driver: DRIVER,
        what,
    };
    if disk.device == DiskDevice::Floppy {
        return Err(unsupported("floppy device hotplug".into()));
    }
    match disk.target.bus.as_deref() {
        Some("virtio") if disk.device == DiskDevice::Cdrom => Err(unsupported(
            "cdrom devices on the virtio bus (use bus='scsi' or 'usb')".into(),
        )),
        Some("virtio" | "scsi" | "usb") => Ok(()),
        other => Err(unsupported(format!(
            "hot-plugging disks on bus '{}' (only virtio, scsi and usb disks can be \
             hotplugged; use --config to add it for the next start)",
            other.unwrap_or("none")
        ))),
    }
}

/// libvirt's unplug rules (`qemuDomainDetachPrepDisk`).
fn check_unpluggable(disk: &Disk) -> Result<()> {
    let bus = disk.target.bus.as_deref().or(device_edit::disk_bus(disk));
    let ok = match disk.device {
        DiskDevice::Disk | DiskDevice::Lun => matches!(bus, Some("virtio" | "scsi" | "usb")),
        DiskDevice::Cdrom => matches!(bus, Some("scsi" | "usb")),
        DiskDevice::Floppy => false,
    };
    if ok {
        return Ok(());
    }
    Err(DomainError::Unsupported {
        driver: DRIVER,
        what: format!(
            "hot-unplugging {} '{}' on bus '{}' (use --config to remove it from the next \
             start)",
            disk.device,
            disk.target.dev,
            bus.unwrap_or("none")
        ),
    })
}

/// Waits for QEMU's `DEVICE_DELETED` of device `id`, which is `subject` (`disk 'vdb'`,
/// `interface 'net1'`) in messages.
async fn wait_deleted(
    vm: &Vm,
    events: &mut tokio::sync::broadcast::Receiver<super::monitor::QmpEvent>,
    id: &str,
    subject: &str,
) -> Result<()> {
    let deleted = async {
        loop {
            match events.recv().await {
                Ok(event)
                    if event.name == "DEVICE_DELETED"
                        && event.data["device"].as_str() == Some(id) =>
                {
                    return Ok(());
                }
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => {
                    return Err(DomainError::Unavailable(format!(
                        "domain '{}' stopped while detaching {subject}",
                        vm.name
                    )));
                }
            }
        }
    };
    match tokio::time::timeout(UNPLUG_WAIT, deleted).await {
        Ok(result) => result,
        Err(_) => Err(DomainError::Timeout(format!(
            "the guest of domain '{}' did not release {subject} (device {id}) within {} s; \
             it stays attached and the unplug request stays pending in the guest (detach it \
             again later to finish, or use --config to drop it at the next start)",
            vm.name,
            UNPLUG_WAIT.as_secs()
        ))),
    }
}

/// The nodes behind device `id` in a `query-block` reply: its format node, and the storage
/// node under it (named after it, `libvirt-N-storage`, as the argv builder names them).
fn attached_nodes(blocks: &Value, id: &str) -> Vec<String> {
    let entry = blocks.as_array().into_iter().flatten().find(|b| {
        b["qdev"]
            .as_str()
            .and_then(|q| q.strip_prefix("/machine/peripheral/"))
            .and_then(|q| q.split('/').next())
            == Some(id)
    });
    let Some(format) = entry.and_then(|b| b["inserted"]["node-name"].as_str()) else {
        return Vec::new();
    };
    let mut nodes = vec![format.to_owned()];
    if let Some(n) = format
        .strip_prefix("libvirt-")
        .and_then(|r| r.strip_suffix("-format"))
    {
        nodes.push(format!("libvirt-{n}-storage"));
    }
    nodes
}

/// The nodes of a disk whose device is already gone: format nodes named by us that no device
/// uses any more and that open the disk's source, with their storage nodes.
async fn orphan_nodes(monitor: &Monitor, disk: &Disk) -> Result<Vec<String>, MonitorError> {
    let Some(path) = disk
        .source
        .as_ref()
        .and_then(|s| s.file.clone().or_else(|| s.dev.clone()))
    else {
        return Ok(Vec::new());
    };
    let blocks = monitor
        .execute_raw(json!({"execute": "query-block"}))
        .await?;
    let in_use: Vec<&str> = blocks
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| b["inserted"]["node-name"].as_str())
        .collect();
    let named = monitor
        .execute_raw(json!({"execute": "query-named-block-nodes", "arguments": {"flat": true}}))
        .await?;
    let mut nodes = Vec::new();
    for node in named.as_array().into_iter().flatten() {
        let Some(node_name) = node["node-name"].as_str() else {
            continue;
        };
        let ours = node_name.starts_with("libvirt-") && node_name.ends_with("-format");
        if ours && !in_use.contains(&node_name) && node["file"].as_str() == Some(path.as_str()) {
            nodes.push(node_name.to_owned());
            nodes.push(node_name.replace("-format", "-storage"));
        }
    }
    Ok(nodes)
}

/// `blockdev-del` of `nodes`. Best effort, as libvirt: a node left behind costs
/// an open file, not correctness, and is logged.
async fn remove_nodes(monitor: &Monitor, domain: &str, nodes: &[String]) {
    // Format nodes reference their storage node, so they go first.
    let mut ordered: Vec<&String> = nodes.iter().filter(|n| n.ends_with("-format")).collect();
    ordered.extend(nodes.iter().filter(|n| !n.ends_with("-format")));
    for node in ordered {
        let result = monitor
            .execute_raw(json!({"execute": "blockdev-del", "arguments": {"node-name": node}}))
            .await;
        if let Err(error) = result {
            tracing::warn!(domain = %domain, node = %node, %error, "cannot remove a block node");
        }
    }
}

/// The slots of the root PCI bus QEMU has devices in (`query-pci`, bus 0).
async fn root_slots_in_use(monitor: &Monitor) -> Result<Vec<u32>, MonitorError> {
    let reply = monitor.execute_raw(json!({"execute": "query-pci"})).await?;
    Ok(reply
        .as_array()
        .into_iter()
        .flatten()
        .filter(|bus| bus["bus"].as_u64() == Some(0))
        .flat_map(|bus| bus["devices"].as_array().into_iter().flatten())
        .filter_map(|d| d["slot"].as_u64().and_then(|s| u32::try_from(s).ok()))
        .collect())
}

/// A node number no node uses yet: one above the highest `libvirt-N-…` (the command line
/// numbers its disks 1..=count), as libvirt's node name counter.
async fn next_node_index(monitor: &Monitor) -> Result<usize, MonitorError> {
    let reply = monitor
        .execute_raw(json!({"execute": "query-named-block-nodes", "arguments": {"flat": true}}))
        .await?;
    Ok(highest_node_index(&reply) + 1)
}

fn highest_node_index(reply: &Value) -> usize {
    reply
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["node-name"].as_str())
        .filter_map(|n| n.strip_prefix("libvirt-")?.split('-').next()?.parse().ok())
        .max()
        .unwrap_or(0)
}

/// A definition that cannot become the disk's QMP arguments.
fn argv_error(name: &str, dev: &str, error: ArgvError) -> DomainError {
    let message = format!("cannot attach disk '{dev}' to domain '{name}': {error}");
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

    #[test]
    fn nodes_are_found_by_device_id() {
        let blocks = json!([
            {"device": "", "qdev": "/machine/peripheral/virtio-disk0/virtio-backend",
             "inserted": {"node-name": "libvirt-1-format"}},
            {"device": "", "qdev": "/machine/peripheral/virtio-disk1/virtio-backend",
             "inserted": {"node-name": "libvirt-3-format"}},
        ]);
        assert_eq!(
            attached_nodes(&blocks, "virtio-disk1"),
            ["libvirt-3-format", "libvirt-3-storage"]
        );
        assert!(attached_nodes(&blocks, "virtio-disk7").is_empty());
    }

    #[test]
    fn node_numbers_continue_above_the_highest() {
        let reply = json!([
            {"node-name": "libvirt-2-format"}, {"node-name": "libvirt-2-storage"},
            {"node-name": "libvirt-10-storage"}, {"node-name": "#block123"}
        ]);
        assert_eq!(highest_node_index(&reply), 10);
        assert_eq!(highest_node_index(&json!([])), 0);
    }

    #[test]
    fn bus_rules_follow_libvirt() {
        let disk = |xml: &str| match crate::xml::parse_device(xml).unwrap() {
            DeviceDef::Disk(d) => {
                let mut d = *d;
                device_edit::normalize_disk(&mut d).unwrap();
                d
            }
            other => panic!("{other:?}"),
        };
        assert!(
            check_pluggable(&disk("<disk><source file='/a'/><target dev='vdb'/></disk>")).is_ok()
        );
        assert!(
            check_pluggable(&disk("<disk><source file='/a'/><target dev='sdb'/></disk>")).is_ok()
        );
        let err = check_pluggable(&disk("<disk><source file='/a'/><target dev='hdb'/></disk>"))
            .unwrap_err();
        assert!(err.to_string().contains("bus 'ide'"), "{err}");
        let err = check_pluggable(&disk(
            "<disk device='floppy'><source file='/a'/><target dev='fda'/></disk>",
        ))
        .unwrap_err();
        assert!(err.to_string().contains("floppy"), "{err}");
        let err = check_unpluggable(&disk("<disk device='cdrom'><target dev='hdc'/></disk>"))
            .unwrap_err();
        assert!(err.to_string().contains("cdrom 'hdc'"), "{err}");
        assert!(
            check_unpluggable(&disk("<disk><source file='/a'/><target dev='sdb'/></disk>")).is_ok()
        );
    }
}
