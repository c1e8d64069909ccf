//! Attaching and detaching devices on the test driver's simulated guests: the shared
//! libvirt rules (`crate::device_edit`) applied to the live and persistent definitions in
//! memory, persisted and announced like every other change. Disks and network interfaces;
//! other devices are refused as unsupported, naming their element.

use super::{DRIVER, TestDriver};
use crate::device_edit::{self, Editable};
use crate::driver::core::{Core, Outcome};
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
        self.core
            .job(domain, |old| {
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
                // As libvirt: the config half first, then the live one; nothing is kept
                // unless both succeed.
                let next = Core::edit(old, targets, |live, config| {
                    if let Some(config) = config {
                        attach_config(config, &device)?;
                    }
                    if let Some(live) = live {
                        attach_live(live, &device)?;
                    }
                    Ok(())
                })?;
                let events = vec![EventBody::ConfigChanged("device-added")];
                Ok((Outcome::Update(next, events), ()))
            })
            .await
    }

    pub(super) async fn detach_device_job(
        &self,
        domain: &DomainRef,
        device: DeviceDef,
        flags: Impact,
    ) -> Result<()> {
        self.core
            .job(domain, |old| {
                let targets = impact::resolve(flags, old.is_active(), old.persistent)?;
                let device = device_edit::editable(device, DRIVER, "detach")?;
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
                let events = vec![EventBody::ConfigChanged("device-removed")];
                Ok((Outcome::Update(next, events), ()))
            })
            .await
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
