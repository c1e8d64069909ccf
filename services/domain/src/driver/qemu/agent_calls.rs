//! The qemu driver's guest agent entry points: handing out a running domain's agent, reading
//! its state from QEMU at start and after a reattach, and shutdown/reboot through the agent.

use std::sync::Arc;

use tokio::sync::broadcast::error::RecvError;

use super::agent_link::AgentLink;
use super::driver::QemuDriver;
use super::vm::Vm;
use crate::driver::core::Core;
use crate::error::{DomainError, Result};
use crate::guest_agent::DomainAgent;
use crate::model::{AgentPowerAction, DomainRef, State};

impl QemuDriver {
    /// The agent link of a running domain, or why there is none.
    pub(super) fn agent_link(&self, domain: &DomainRef) -> Result<Arc<AgentLink>> {
        let (snapshot, vm) = self.running_vm(domain)?;
        vm.agent.clone().ok_or_else(|| {
            DomainError::AgentUnavailable(format!(
                "domain '{}' has no guest agent channel: add <channel type='unix'><target \
                 type='virtio' name='org.qemu.guest_agent.0'/></channel> to its definition \
                 (it takes effect at the next start)",
                snapshot.def.name
            ))
        })
    }

    /// A handle on a running, unpaused domain's agent (a paused guest cannot answer, as
    /// libvirt's qemuDomainAgentAvailable says too).
    pub(super) fn agent_handle(&self, domain: &DomainRef) -> Result<DomainAgent> {
        let snapshot = self.core.snapshot(domain)?;
        if snapshot.state == State::Paused {
            return Err(DomainError::OperationInvalid(format!(
                "domain '{}' is paused: its guest agent cannot answer until it is resumed",
                snapshot.def.name
            )));
        }
        self.agent_link(domain)?.handle(self.config.agent_timeout)
    }

    /// Reads whether the guest has the agent's port open (`query-chardev`), for a VM just
    /// started or found again after a service restart; its `VSERPORT_CHANGE` events keep the
    /// state from then on. A monitor failure leaves the state as it was (disconnected), which
    /// the next port event corrects.
    pub(super) async fn refresh_agent(&self, vm: &Arc<Vm>) {
        let Some(agent) = &vm.agent else { return };
        match vm.monitor.execute(qapi::qmp::query_chardev {}).await {
            Ok(chardevs) => {
                if let Some(info) = chardevs
                    .iter()
                    .find(|c| c.label == agent.channel.chardev_id)
                {
                    agent.found(info.frontend_open);
                }
            }
            Err(error) => {
                tracing::warn!(domain = %vm.name, %error, "cannot read the guest agent channel's state");
            }
        }
    }

    /// `guest-shutdown`: qemu-ga answers only by acting, so the call is raced against the
    /// signs that the guest has begun: QEMU's `SHUTDOWN` or `RESET`, or the agent closing its
    /// port as the guest goes down. An agent error (the command disabled, say) still comes
    /// back as one; nothing at all within the timeout is UNAVAILABLE — except for a halt,
    /// which stops the guest's CPUs without telling QEMU or closing the port: there is no
    /// sign to wait for, so the agent's silence for the whole timeout is its success.
    pub(super) async fn agent_power_job(
        &self,
        domain: &DomainRef,
        action: AgentPowerAction,
    ) -> Result<()> {
        let snapshot = self.core.snapshot(domain)?;
        Core::require_running(&snapshot)?;
        let agent = self.agent_handle(domain)?;
        let vm = self.vm_of(&snapshot)?;
        let port = vm
            .agent
            .as_ref()
            .map(|link| link.channel.port_id.clone())
            .unwrap_or_default();
        // Subscribed before the command goes out, so no sign can be missed.
        let mut events = vm.subscribe_raw_events();
        let began = async move {
            loop {
                match events.recv().await {
                    Ok(event) if is_power_sign(&event.name, &event.data, &port) => return,
                    Ok(_) | Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return,
                }
            }
        };
        let mode = match action {
            AgentPowerAction::Powerdown => qapi::qga::GuestShutdownMode::Powerdown,
            AgentPowerAction::Reboot => qapi::qga::GuestShutdownMode::Reboot,
            AgentPowerAction::Halt => qapi::qga::GuestShutdownMode::Halt,
        };
        let call = agent.run_unanswered(qapi::qga::guest_shutdown { mode: Some(mode) });
        tokio::select! {
            () = began => Ok(()),
            result = call => match result? {
                false => Ok(()),
                true if action == AgentPowerAction::Halt => {
                    tracing::info!(domain = %agent.domain(), "guest-shutdown halt sent; the agent went silent, as a halting guest does");
                    Ok(())
                }
                true => Err(DomainError::AgentUnavailable(format!(
                    "the guest agent of domain '{}' did not answer guest-shutdown within {:?}, \
                     and the guest did not begin to {} either (is qemu-guest-agent running?)",
                    agent.domain(),
                    agent.timeout(),
                    verb(action)
                ))),
            },
        }
    }
}

impl QemuDriver {
    /// `setvcpus --guest`: brings the guest's online vCPU count to `count` through the agent,
    /// onlining the lowest offline vCPUs or offlining the highest that may go offline, as
    /// libvirt's qemuAgentUpdateCPUInfo does.
    pub(super) async fn set_guest_vcpu_count(&self, domain: &DomainRef, count: u32) -> Result<()> {
        let agent = self.agent_handle(domain)?;
        let vcpus = agent.run(qapi::qga::guest_get_vcpus {}).await?;
        let changes = vcpu_changes(&vcpus, count).map_err(|why| {
            DomainError::InvalidArg(format!(
                "cannot set {count} vCPUs online in the guest of domain '{}': {why}",
                agent.domain()
            ))
        })?;
        if changes.is_empty() {
            return Ok(());
        }
        let asked = changes.len();
        let done = agent
            .run(qapi::qga::guest_set_vcpus { vcpus: changes })
            .await?;
        if usize::try_from(done).ok() != Some(asked) {
            return Err(DomainError::OperationFailed(format!(
                "the guest of domain '{}' changed only {done} of {asked} vCPUs",
                agent.domain()
            )));
        }
        Ok(())
    }
}

/// The vCPUs to switch so that `count` are online: the lowest offline ones up, or the
/// highest offlinable ones down. Err when the guest has too few, or too few may go offline.
fn vcpu_changes(
    vcpus: &[qapi::qga::GuestLogicalProcessor],
    count: u32,
) -> std::result::Result<Vec<qapi::qga::GuestLogicalProcessor>, String> {
    let count = count as usize;
    let online = vcpus.iter().filter(|v| v.online).count();
    if count == 0 {
        return Err("at least one vCPU must stay online".into());
    }
    if count > vcpus.len() {
        return Err(format!("the guest has only {} vCPUs", vcpus.len()));
    }
    let mut sorted: Vec<_> = vcpus.to_vec();
    sorted.sort_by_key(|v| v.logical_id);
    let switch = |v: &qapi::qga::GuestLogicalProcessor| qapi::qga::GuestLogicalProcessor {
        logical_id: v.logical_id,
        online: !v.online,
        can_offline: None,
    };
    if count >= online {
        return Ok(sorted
            .iter()
            .filter(|v| !v.online)
            .take(count - online)
            .map(switch)
            .collect());
    }
    let candidates: Vec<_> = sorted
        .iter()
        .rev()
        .filter(|v| v.online && v.can_offline == Some(true))
        .take(online - count)
        .map(switch)
        .collect();
    if candidates.len() < online - count {
        return Err(format!(
            "only {} of its {online} online vCPUs may go offline",
            candidates.len()
        ));
    }
    Ok(candidates)
}

/// True for the QMP events that show a guest going down or rebooting: `SHUTDOWN`, `RESET`,
/// or the agent's own port (`port`) closing.
fn is_power_sign(name: &str, data: &serde_json::Value, port: &str) -> bool {
    match name {
        "SHUTDOWN" | "RESET" => true,
        "VSERPORT_CHANGE" => {
            data.get("id").and_then(|v| v.as_str()) == Some(port)
                && data.get("open").and_then(|v| v.as_bool()) == Some(false)
        }
        _ => false,
    }
}

fn verb(action: AgentPowerAction) -> &'static str {
    match action {
        AgentPowerAction::Powerdown => "power off",
        AgentPowerAction::Reboot => "reboot",
        AgentPowerAction::Halt => "halt",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn cpu(id: i64, online: bool, can_offline: bool) -> qapi::qga::GuestLogicalProcessor {
        qapi::qga::GuestLogicalProcessor {
            logical_id: id,
            online,
            can_offline: Some(can_offline),
        }
    }

    #[test]
    fn guest_vcpu_counts_switch_the_lowest_up_and_the_highest_down() {
        let vcpus = [
            cpu(0, true, false),
            cpu(1, true, true),
            cpu(2, false, true),
            cpu(3, false, true),
        ];
        let ids = |c: Vec<qapi::qga::GuestLogicalProcessor>| {
            c.iter()
                .map(|v| (v.logical_id, v.online))
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(vcpu_changes(&vcpus, 3).unwrap()), vec![(2, true)]);
        assert_eq!(
            ids(vcpu_changes(&vcpus, 4).unwrap()),
            vec![(2, true), (3, true)]
        );
        assert_eq!(ids(vcpu_changes(&vcpus, 2).unwrap()), vec![]);
        assert_eq!(ids(vcpu_changes(&vcpus, 1).unwrap()), vec![(1, false)]);
        assert!(
            vcpu_changes(&vcpus, 5)
                .unwrap_err()
                .contains("only 4 vCPUs")
        );
        assert!(vcpu_changes(&vcpus, 0).is_err());
        let stuck = [cpu(0, true, false), cpu(1, true, false)];
        assert!(
            vcpu_changes(&stuck, 1)
                .unwrap_err()
                .contains("only 0 of its 2")
        );
    }

    #[test]
    fn power_signs_are_shutdown_reset_or_the_agent_port_closing() {
        assert!(is_power_sign(
            "SHUTDOWN",
            &json!({"guest": true}),
            "channel0"
        ));
        assert!(is_power_sign("RESET", &json!({}), "channel0"));
        assert!(is_power_sign(
            "VSERPORT_CHANGE",
            &json!({"id": "channel0", "open": false}),
            "channel0"
        ));
        assert!(!is_power_sign(
            "VSERPORT_CHANGE",
            &json!({"id": "channel0", "open": true}),
            "channel0"
        ));
        assert!(!is_power_sign(
            "VSERPORT_CHANGE",
            &json!({"id": "channel1", "open": false}),
            "channel0"
        ));
        assert!(!is_power_sign("STOP", &json!({}), "channel0"));
    }
}
