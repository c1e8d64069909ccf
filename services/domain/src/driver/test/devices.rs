//! Attaching and detaching devices on the test driver's simulated guests: the shared
//! libvirt rules (`crate::device_edit`) applied to the live and persistent definitions in
//! memory, persisted and announced like every other change. Disks only; other devices are
//! refused as unsupported, naming their element.

use super::{DRIVER, TestDriver};
use crate::device_edit;
use crate::driver::core::{Core, Outcome};
use crate::error::Result;
use crate::impact;
use crate::model::{DomainRef, EventBody, Impact};
use crate::xml::DeviceDef;

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
                let mut disk = device_edit::disk_of(device, DRIVER, "attach")?;
                device_edit::normalize_disk(&mut disk)?;
                // As libvirt: the config half first, then the live one; nothing is kept
                // unless both succeed.
                let next = Core::edit(old, targets, |live, config| {
                    if let Some(config) = config {
                        device_edit::attach_disk_config(config, disk.clone())?;
                    }
                    if let Some(live) = live {
                        device_edit::check_disk_attach_live(live, &disk, DRIVER)?;
                        device_edit::insert_disk(live, disk.clone());
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
                let dev = device_edit::disk_of(device, DRIVER, "detach")?.target.dev;
                let next = Core::edit(old, targets, |live, config| {
                    if let Some(config) = config {
                        device_edit::detach_disk_config(config, &dev)?;
                    }
                    if let Some(live) = live {
                        let index = device_edit::find_disk_live(live, &dev)?;
                        live.devices.disks.remove(index);
                    }
                    Ok(())
                })?;
                let events = vec![EventBody::ConfigChanged("device-removed")];
                Ok((Outcome::Update(next, events), ()))
            })
            .await
    }
}
