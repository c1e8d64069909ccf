//! Attaching and detaching devices on the test driver's simulated guests: the shared
//! libvirt rules (`crate::device_edit`) applied to the live and persistent definitions in
//! memory, persisted and announced like every other change. Disks and network interfaces;
//! other devices are refused as unsupported, naming their element. A volume disk attached
//! to a running domain holds its volume's lease while attached (`volumes.rs`).

use super::{DRIVER, TestDriver};
use crate::device_edit::{self, Editable};
use crate::driver::core::{Core, Outcome};
use crate::driver::volumes;
use crate::error::Result;
use crate::impact;
use crate::model::{DomainRef, EventBody, Impact};
use crate::xml::{DeviceDef, DomainDef};

impl TestDriver {
    pub(super) async fn attach_device_job(
        &self,
        domain: &DomainRef,
        device: DeviceDef,
        flags: Impact,
    ) -> Result<()> {
        let locked = self.core.begin(domain).await?;
        let old = &locked.old;
        let targets = impact::resolve(flags, old.is_active(), old.persistent)?;
        let device = match device_edit::editable(device, DRIVER, "attach")? {
            Editable::Disk(mut disk) => {
                device_edit::normalize_disk(&mut disk)?;
                Editable::Disk(disk)
            }
            // Normalised once, so a live and a config copy share the generated MAC.
            Editable::Interface(mut nic) => {
                device_edit::normalize_nic(&mut nic);
                Editable::Interface(nic)
            }
        };
        // A volume disk attached live holds its volume's lease (`volumes.rs`); the live
        // copy shows the volume's format.
        let mut live_device = device.clone();
        let leased = match &mut live_device {
            Editable::Disk(disk) if targets.live => {
                let leased = self.lease_for_attach(&old.def, disk).await?;
                if let Some((_, resolved)) = &leased {
                    volumes::with_format(disk, resolved);
                }
                leased.map(|(volume, _)| volume)
            }
            _ => None,
        };
        // As libvirt: the config half first, then the live one; nothing is kept unless both
        // succeed.
        let edited = Core::edit(old, targets, |live, config| {
            if let Some(config) = config {
                attach_config(config, &device)?;
            }
            if let Some(live) = live {
                attach_live(live, &live_device)?;
            }
            Ok(())
        });
        let committed = match edited {
            Ok(next) => {
                let events = vec![EventBody::ConfigChanged("device-added")];
                self.core
                    .commit(&locked.object, old, Outcome::Update(next, events))
                    .await
            }
            Err(error) => Err(error),
        };
        if committed.is_err()
            && let Some(volume) = &leased
        {
            self.release_unused(&old.def, volume).await;
        }
        committed
    }

    pub(super) async fn detach_device_job(
        &self,
        domain: &DomainRef,
        device: DeviceDef,
        flags: Impact,
    ) -> Result<()> {
        let locked = self.core.begin(domain).await?;
        let unplugged = {
            let old = &locked.old;
            let targets = impact::resolve(flags, old.is_active(), old.persistent)?;
            let device = device_edit::editable(device, DRIVER, "detach")?;
            let removed = match &device {
                // A missing disk is reported by the edit below, in libvirt's order.
                Editable::Disk(disk) if targets.live => {
                    device_edit::find_disk_live(&old.def, &disk.target.dev)
                        .ok()
                        .and_then(|i| volumes::volume_of(&old.def.devices.disks[i]).ok())
                        .flatten()
                }
                _ => None,
            };
            let next = Core::edit(old, targets, |live, config| {
                if let Some(config) = config {
                    match &device {
                        Editable::Disk(disk) => {
                            device_edit::detach_disk_config(config, &disk.target.dev)?;
                        }
                        Editable::Interface(nic) => {
                            device_edit::detach_nic_config(config, nic)?;
                        }
                    }
                }
                if let Some(live) = live {
                    match &device {
                        Editable::Disk(disk) => {
                            let index = device_edit::find_disk_live(live, &disk.target.dev)?;
                            live.devices.disks.remove(index);
                        }
                        Editable::Interface(nic) => {
                            let index = device_edit::find_nic(live, nic)?;
                            live.devices.interfaces.remove(index);
                        }
                    }
                }
                Ok(())
            })?;
            let live = next.def.clone();
            let events = vec![EventBody::ConfigChanged("device-removed")];
            self.core
                .commit(&locked.object, old, Outcome::Update(next, events))
                .await?;
            removed.map(|volume| (live, volume))
        };
        // The disk is gone from the running domain: its volume's lease goes, unless another
        // disk uses the volume.
        if let Some((live, volume)) = unplugged {
            self.release_unused(&live, &volume).await;
        }
        Ok(())
    }
}

fn attach_config(config: &mut DomainDef, device: &Editable) -> Result<()> {
    match device {
        Editable::Disk(disk) => device_edit::attach_disk_config(config, (**disk).clone()),
        Editable::Interface(nic) => device_edit::attach_nic_config(config, (**nic).clone()),
    }
}

fn attach_live(live: &mut DomainDef, device: &Editable) -> Result<()> {
    match device {
        Editable::Disk(disk) => {
            device_edit::check_disk_attach_live(live, disk, DRIVER)?;
            device_edit::insert_disk(live, (**disk).clone());
        }
        Editable::Interface(nic) => {
            device_edit::check_nic_attach_live(live, nic)?;
            live.devices.interfaces.push((**nic).clone());
        }
    }
    Ok(())
}
