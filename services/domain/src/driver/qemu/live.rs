//! Live changes to a running guest: vCPU hotplug and unplug, memory through the balloon.
//! Config edits follow libvirt's flag rules (`impact.rs`); what targets the live domain is
//! done over QMP first, and the live definition records what QEMU really has afterwards.

use std::time::Duration;

use serde_json::{Value, json};

use super::driver::QemuDriver;
use super::errors;
use super::monitor::Monitor;
use super::vm::Vm;
use crate::driver::core::{Core, Outcome};
use crate::error::{DomainError, Result};
use crate::impact;
use crate::model::{DomainRef, EventBody, MemoryFlags, VcpuFlags};

/// QEMU's vCPU limit for the `pc` and `q35` machines we build.
const MAX_VCPUS: u32 = 255;

/// How long a vCPU unplug waits for the guest to release the CPU (libvirt waits 5 s and
/// then reports the unplug as still in progress; we report it as failed to complete).
const UNPLUG_WAIT: Duration = Duration::from_secs(30);

/// How often an unplug looks whether QEMU has let the vCPU go, besides on each event.
const UNPLUG_POLL: Duration = Duration::from_millis(200);

/// How long a hot-plugged vCPU waits for the guest's acknowledgement.
const PLUG_ACK_WAIT: Duration = Duration::from_secs(10);

/// How often a pending unplug request is repeated.
const UNPLUG_RETRY: Duration = Duration::from_secs(5);

/// The id prefix of vCPUs the driver hot-plugs; only these can be unplugged again (the boot
/// vCPUs are part of the machine).
const HOTPLUG_ID_PREFIX: &str = "vcpu";

impl QemuDriver {
    pub(super) async fn set_memory_job(
        &self,
        domain: &DomainRef,
        kib: u64,
        flags: MemoryFlags,
    ) -> Result<()> {
        let locked = self.core.begin(domain).await?;
        let old = &locked.old;
        let targets = impact::resolve(flags.impact, old.is_active(), old.persistent)?;
        let next = Core::edit(old, targets, |live, config| {
            impact::set_memory(live, config, kib, flags)
        })?;
        if targets.live && old.is_active() {
            let vm = self.vm_of(old)?;
            let bytes = i64::try_from(kib.saturating_mul(1024)).unwrap_or(i64::MAX);
            vm.monitor
                .execute(qapi::qmp::balloon { value: bytes })
                .await
                .map_err(|e| errors::monitor(&old.def.name, "set the memory of", e))?;
        }
        self.core
            .commit(
                &locked.object,
                &locked.old,
                Outcome::Update(next, vec![EventBody::ConfigChanged("memory")]),
            )
            .await
    }

    pub(super) async fn set_vcpus_job(
        &self,
        domain: &DomainRef,
        count: u32,
        flags: VcpuFlags,
    ) -> Result<()> {
        impact::check_vcpu_flags(flags)?;
        if flags.guest {
            return self.set_guest_vcpu_count(domain, count).await;
        }
        let locked = self.core.begin(domain).await?;
        let old = &locked.old;
        let targets = impact::resolve(flags.impact, old.is_active(), old.persistent)?;
        let mut next = Core::edit(old, targets, |live, config| {
            impact::set_vcpus(live, config, count, flags, MAX_VCPUS)
        })?;
        let mut failure = None;
        if targets.live && old.is_active() {
            let vm = self.vm_of(old)?;
            if let Err(error) = set_online_vcpus(&vm, count).await {
                // Record what QEMU really has, then report why the rest failed.
                let actual = online_vcpus(&vm.monitor)
                    .await
                    .map_err(|e| errors::monitor(&old.def.name, "count the vCPUs of", e))?;
                let mut live = (*next.def).clone();
                live.vcpu.current = (actual != live.vcpu.max).then_some(actual);
                next.def = std::sync::Arc::new(live);
                failure = Some(error);
            }
        }
        self.core
            .commit(
                &locked.object,
                &locked.old,
                Outcome::Update(next, vec![EventBody::ConfigChanged("vcpus")]),
            )
            .await?;
        failure.map_or(Ok(()), Err)
    }
}

/// One row of `query-hotpluggable-cpus`, as far as hotplug needs it.
#[derive(Debug, Clone)]
struct CpuSlot {
    driver: String,
    props: Value,
    /// Set when a vCPU occupies the slot.
    qom_path: Option<String>,
}

impl CpuSlot {
    /// The device id of a vCPU the driver plugged (`/machine/peripheral/vcpuN`).
    fn hotplugged_id(&self) -> Option<String> {
        let id = self
            .qom_path
            .as_deref()?
            .strip_prefix("/machine/peripheral/")?;
        id.starts_with(HOTPLUG_ID_PREFIX).then(|| id.to_owned())
    }
}

async fn cpu_slots(
    monitor: &Monitor,
) -> std::result::Result<Vec<CpuSlot>, super::monitor::MonitorError> {
    let reply = monitor
        .execute_raw(json!({"execute": "query-hotpluggable-cpus"}))
        .await?;
    let slots = reply.as_array().cloned().unwrap_or_default();
    Ok(slots
        .into_iter()
        .map(|slot| CpuSlot {
            driver: slot["type"].as_str().unwrap_or_default().to_owned(),
            props: slot["props"].clone(),
            qom_path: slot["qom-path"].as_str().map(str::to_owned),
        })
        .collect())
}

async fn online_vcpus(monitor: &Monitor) -> std::result::Result<u32, super::monitor::MonitorError> {
    let slots = cpu_slots(monitor).await?;
    Ok(slots.iter().filter(|s| s.qom_path.is_some()).count() as u32)
}

/// Plugs or unplugs vCPUs until `count` are online.
async fn set_online_vcpus(vm: &Vm, count: u32) -> Result<()> {
    let fail = |e| errors::monitor(&vm.name, "change the vCPUs of", e);
    let slots = cpu_slots(&vm.monitor).await.map_err(fail)?;
    let online = slots.iter().filter(|s| s.qom_path.is_some()).count() as u32;
    if count > online {
        for _ in online..count {
            // Asked again each time: the slot just filled, and the ids in use, changed.
            let slots = cpu_slots(&vm.monitor).await.map_err(fail)?;
            let slot = slots.iter().find(|s| s.qom_path.is_none()).ok_or_else(|| {
                DomainError::OperationFailed(format!(
                    "domain '{}' has no free vCPU slot (its maximum is reached)",
                    vm.name
                ))
            })?;
            let mut args = json!({"driver": slot.driver, "id": free_id(&slots)});
            if let (Some(map), Some(props)) = (args.as_object_mut(), slot.props.as_object()) {
                for (key, value) in props {
                    map.insert(key.clone(), value.clone());
                }
            }
            let id = args["id"].as_str().unwrap_or_default().to_owned();
            let mut events = vm.subscribe_raw_events();
            vm.monitor
                .execute_raw(json!({"execute": "device_add", "arguments": args}))
                .await
                .map_err(fail)?;
            // The guest acknowledges the new vCPU (ACPI _OST). An eject sent before that is
            // ignored by Linux, so a quick plug-then-unplug would never complete. A guest
            // without ACPI never answers: the wait is bounded and its end is not an error.
            let acknowledged = async {
                while let Ok(event) = events.recv().await {
                    if event.name == "ACPI_DEVICE_OST"
                        && event.data["info"]["device"].as_str() == Some(id.as_str())
                    {
                        return;
                    }
                }
            };
            let _ = tokio::time::timeout(PLUG_ACK_WAIT, acknowledged).await;
        }
    } else if count < online {
        let mut plugged: Vec<String> = slots.iter().filter_map(CpuSlot::hotplugged_id).collect();
        plugged.sort_by_key(|id| id_number(id));
        let needed = (online - count) as usize;
        if plugged.len() < needed {
            return Err(DomainError::OperationInvalid(format!(
                "domain '{}' has {online} vCPUs but only {} of them were hot-plugged; the \
                 vCPUs it booted with cannot be unplugged",
                vm.name,
                plugged.len()
            )));
        }
        for id in plugged.iter().rev().take(needed) {
            unplug(vm, id).await?;
        }
    }
    Ok(())
}

/// `device_del`, then waits until QEMU no longer has the vCPU: the guest must let it go.
/// QEMU 7.2 announces the removal of the vCPU's children (`DEVICE_DELETED` for
/// `/machine/peripheral/<id>/lapic`) but not always of the vCPU itself, so each event (or a
/// short tick) triggers a look at `query-hotpluggable-cpus`, which is the truth.
async fn unplug(vm: &Vm, id: &str) -> Result<()> {
    let fail = |e| errors::monitor(&vm.name, "unplug a vCPU of", e);
    let mut events = vm.subscribe_raw_events();
    vm.monitor
        .execute_raw(json!({"execute": "device_del", "arguments": {"id": id}}))
        .await
        .map_err(fail)?;
    let deadline = tokio::time::Instant::now() + UNPLUG_WAIT;
    let mut next_request = tokio::time::Instant::now() + UNPLUG_RETRY;
    loop {
        let slots = cpu_slots(&vm.monitor).await.map_err(fail)?;
        if !slots
            .iter()
            .any(|s| s.hotplugged_id().as_deref() == Some(id))
        {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(DomainError::Timeout(format!(
                "the guest of domain '{}' did not release vCPU {id} within {} s; the unplug \
                 request stays pending in the guest",
                vm.name,
                UNPLUG_WAIT.as_secs()
            )));
        }
        if tokio::time::Instant::now() >= next_request {
            // Asked again: a guest that was busy (e.g. still booting) may have dropped it.
            let _ = vm
                .monitor
                .execute_raw(json!({"execute": "device_del", "arguments": {"id": id}}))
                .await;
            next_request = tokio::time::Instant::now() + UNPLUG_RETRY;
        }
        let tick = tokio::time::sleep(UNPLUG_POLL);
        tokio::select! {
            event = events.recv() => {
                if let Err(tokio::sync::broadcast::error::RecvError::Closed) = event {
                    return Err(DomainError::Unavailable(format!(
                        "domain '{}' stopped while unplugging vCPU {id}",
                        vm.name
                    )));
                }
            }
            _ = tick => {}
        }
    }
}

/// The lowest `vcpuN` id not in use.
fn free_id(slots: &[CpuSlot]) -> String {
    let used: Vec<u32> = slots
        .iter()
        .filter_map(CpuSlot::hotplugged_id)
        .map(|id| id_number(&id))
        .collect();
    let n = (0..).find(|n| !used.contains(n)).unwrap_or(0);
    format!("{HOTPLUG_ID_PREFIX}{n}")
}

fn id_number(id: &str) -> u32 {
    id.strip_prefix(HOTPLUG_ID_PREFIX)
        .and_then(|n| n.parse().ok())
        .unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(qom: Option<&str>) -> CpuSlot {
        CpuSlot {
            driver: "qemu64-x86_64-cpu".into(),
            props: json!({"socket-id": 0}),
            qom_path: qom.map(str::to_owned),
        }
    }

    #[test]
    fn only_our_hotplugged_vcpus_are_unpluggable() {
        assert_eq!(
            slot(Some("/machine/peripheral/vcpu2")).hotplugged_id(),
            Some("vcpu2".into())
        );
        assert_eq!(
            slot(Some("/machine/unattached/device[0]")).hotplugged_id(),
            None
        );
        assert_eq!(slot(None).hotplugged_id(), None);
    }

    #[test]
    fn picks_the_lowest_free_id() {
        let slots = [
            slot(Some("/machine/unattached/device[0]")),
            slot(Some("/machine/peripheral/vcpu0")),
            slot(Some("/machine/peripheral/vcpu2")),
        ];
        assert_eq!(free_id(&slots), "vcpu1");
    }
}
