//! Monitor passthrough for experts (`domain:passthrough`): raw QMP or HMP commands
//! (`qemu-monitor-command`) and raw QMP events (`qemu-monitor-event`).
//!
//! Commands go through the same [`Monitor`] as the driver's own, so they get request ids and a
//! timeout and cannot disturb the connection. Events come from each [`Vm`]'s raw broadcast;
//! a stream for every domain (or for one domain across its restarts, as libvirt's
//! registration behaves) follows the driver's lifecycle events to pick up VMs started later.

use std::collections::HashSet;
use std::sync::{Arc, Weak};

use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::driver::QemuDriver;
use super::errors;
use super::monitor::{Monitor, QmpEvent};
use super::vm::Vm;
use crate::error::{DomainError, Result};
use crate::model::{DomainRef, EventBody, Lifecycle};
use crate::passthrough::{MonitorEventFilter, MonitorEventRecord, MonitorEventStream};

/// Events buffered for one subscriber before it counts as too slow.
const SUBSCRIBER_BACKLOG: usize = 1024;

/// virDomainQemuMonitorCommand on the monitor of domain `name`: `command` is a QMP command as
/// JSON (`{"execute": …, "arguments": …}`), or with `hmp` an HMP command line. Returns QMP's
/// reply as JSON text (`{"return": …}`) or HMP's output. QEMU's refusal comes back as an error
/// carrying its class and message.
pub async fn monitor_command(
    monitor: &Monitor,
    name: &str,
    command: &str,
    hmp: bool,
) -> Result<String> {
    let what = "run a monitor command on";
    if hmp {
        if command.trim().is_empty() {
            return Err(DomainError::InvalidArg(
                "empty HMP command line (try 'info status')".into(),
            ));
        }
        return monitor
            .human(command)
            .await
            .map_err(|e| errors::monitor(name, what, e));
    }
    let value: Value = serde_json::from_str(command).map_err(|e| {
        DomainError::InvalidArg(format!(
            "the QMP command is not JSON ({e}): send an object like \
             {{\"execute\": \"query-status\"}}, or use --hmp for an HMP command line"
        ))
    })?;
    let reply = monitor
        .execute_raw(value)
        .await
        .map_err(|e| errors::monitor(name, what, e))?;
    Ok(json!({ "return": reply }).to_string())
}

impl QemuDriver {
    /// virDomainQemuMonitorCommand on a running domain. Takes the job lock only to taint the
    /// run the first time (`custom-monitor`); the command itself runs without it: the monitor
    /// serves concurrent callers, and an expert's query should not wait behind a hotplug.
    pub(super) async fn monitor_command_on(
        &self,
        domain: &DomainRef,
        command: &str,
        hmp: bool,
    ) -> Result<String> {
        self.running_vm(domain)?;
        // As libvirt: the run is tainted before the command goes out, whatever it does.
        self.core.taint(domain, "custom-monitor").await?;
        let (snapshot, vm) = self.running_vm(domain)?;
        monitor_command(&vm.monitor, &snapshot.def.name, command, hmp).await
    }
}

/// A raw QMP event as a record of domain `vm`.
fn record(vm_name: &str, vm_uuid: &str, event: QmpEvent) -> MonitorEventRecord {
    MonitorEventRecord {
        domain_name: vm_name.to_owned(),
        domain_uuid: vm_uuid.to_owned(),
        event: event.name,
        data: event.data,
        time: event.timestamp,
    }
}

/// Forwards `vm`'s raw events that pass `filter` to `tx` until the VM is gone (its broadcast
/// closes) or the subscriber hung up. A subscriber that fell behind gets an error and the
/// end of its stream: a silent gap would look like a quiet guest.
fn forward(vm: &Vm, filter: MonitorEventFilter, tx: mpsc::Sender<Result<MonitorEventRecord>>) {
    let mut rx = vm.subscribe_raw_events();
    let (name, uuid) = (vm.name.clone(), vm.uuid.clone());
    tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                () = tx.closed() => return,
                next = rx.recv() => next,
            };
            let item = match next {
                Ok(event) if filter.wants(&event.name) => Ok(record(&name, &uuid, event)),
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    Err(DomainError::Unavailable(format!(
                        "{missed} QEMU monitor events of domain '{name}' were dropped because \
                         this stream fell behind; subscribe again"
                    )))
                }
            };
            let lagged = item.is_err();
            if tx.send(item).await.is_err() || lagged {
                return;
            }
        }
    });
}

impl QemuDriver {
    /// virConnectDomainQemuMonitorEventRegister: raw events of the domain `filter` names
    /// (across its restarts, as libvirt's registration is) or of every domain, including
    /// VMs started while the stream is open, until the subscriber drops the stream.
    pub(super) fn raw_monitor_events(
        &self,
        filter: MonitorEventFilter,
    ) -> Result<MonitorEventStream> {
        let only = match &filter.domain {
            Some(domain) => Some(self.core.snapshot(domain)?.def.uuid.clone()),
            None => None,
        };
        let (tx, rx) = mpsc::channel(SUBSCRIBER_BACKLOG);
        // Lifecycle events first, then the VMs running now: a VM started in between is seen
        // twice at worst, and `attached` keeps that to one forwarder.
        let mut starts = self.lifecycle_starts()?;
        // Keyed by (UUID, runtime id): a restarted domain is a new VM to follow.
        let mut attached: HashSet<(String, i32)> = HashSet::new();
        let wanted = move |vm: &Vm| only.as_deref().is_none_or(|uuid| uuid == vm.uuid);
        let mut attach = move |vm: &Arc<Vm>, tx: &mpsc::Sender<_>| {
            if wanted(vm) && attached.insert((vm.uuid.clone(), vm.id)) {
                forward(vm, filter.clone(), tx.clone());
            }
        };
        for vm in self.running_vms() {
            attach(&vm, &tx);
        }
        let me: Weak<QemuDriver> = self.me.clone();
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    () = tx.closed() => return,
                    next = starts.next() => next,
                };
                let Some(driver) = me.upgrade() else {
                    return;
                };
                match next {
                    Some(Ok(Some(uuid))) => {
                        if let Ok((_, vm)) = driver.running_vm(&DomainRef::Uuid(uuid)) {
                            attach(&vm, &tx);
                        }
                    }
                    Some(Ok(None)) => {}
                    // Lifecycle events were lost (or the hub closed): start over, rescanning.
                    Some(Err(())) | None => {
                        match driver.lifecycle_starts() {
                            Ok(fresh) => starts = fresh,
                            Err(_) => return,
                        }
                        for vm in driver.running_vms() {
                            attach(&vm, &tx);
                        }
                    }
                }
            }
        });
        Ok(Box::pin(ReceiverStream::new(rx)))
    }

    /// The driver's events from now on, reduced to "domain UUID started" (`Some`), anything
    /// else (`None`) and "events were lost" (`Err`).
    fn lifecycle_starts(
        &self,
    ) -> Result<BoxStream<'static, std::result::Result<Option<String>, ()>>> {
        let events = self
            .core
            .events
            .subscribe(0)
            .map_err(|e| DomainError::Internal(format!("cannot follow domain events: {e}")))?;
        Ok(events
            .map(|item| match item {
                Ok(event) => Ok(
                    matches!(event.body, EventBody::Lifecycle(Lifecycle::Started, _))
                        .then_some(event.uuid),
                ),
                Err(error) => {
                    tracing::debug!(%error, "raw event stream lost domain events; rescanning");
                    Err(())
                }
            })
            .boxed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_keep_the_domain_and_the_raw_event() {
        let event = QmpEvent {
            name: "STOP".into(),
            data: json!({}),
            timestamp: None,
        };
        let r = record("web", "u-1", event);
        assert_eq!(r.domain_name, "web");
        assert_eq!(r.event, "STOP");
        assert_eq!(r.data, json!({}));
    }
}
