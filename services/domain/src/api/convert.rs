//! proto ↔ model, in one place. Request conversions destructure every field so a new proto
//! field cannot be silently ignored.

use std::time::UNIX_EPOCH;

use virtplane_proto::v1 as pb;

use crate::error::{DomainError, Result};
use crate::model::{
    DomainRef, Event, EventBody, Impact, Info, Lifecycle, ListFilter, NodeInfo, PowerMode, Reason,
    State, Summary,
};

/// The domain a request names; missing or empty is INVALID_ARGUMENT.
pub fn domain_ref(reference: Option<pb::DomainRef>) -> Result<DomainRef> {
    let id = reference.and_then(|r| r.id);
    match id {
        Some(pb::domain_ref::Id::Name(name)) if !name.is_empty() => Ok(DomainRef::Name(name)),
        Some(pb::domain_ref::Id::Uuid(uuid)) if !uuid.is_empty() => {
            if uuid::Uuid::parse_str(&uuid).is_err() {
                return Err(DomainError::InvalidArg(format!(
                    "'{uuid}' is not a valid UUID"
                )));
            }
            Ok(DomainRef::Uuid(uuid))
        }
        _ => Err(DomainError::InvalidArg(
            "request names no domain: set domain.name or domain.uuid".into(),
        )),
    }
}

pub fn impact(flags: Option<pb::ModifyFlags>) -> Impact {
    let pb::ModifyFlags { live, config } = flags.unwrap_or_default();
    Impact { live, config }
}

pub fn power_mode(mode: i32) -> Result<PowerMode> {
    match pb::PowerMode::try_from(mode) {
        Ok(pb::PowerMode::Default) => Ok(PowerMode::Default),
        Ok(pb::PowerMode::Acpi) => Ok(PowerMode::Acpi),
        Ok(pb::PowerMode::Agent) => Ok(PowerMode::Agent),
        Err(_) => Err(DomainError::InvalidArg(format!(
            "unknown power mode {mode}"
        ))),
    }
}

pub fn list_filter(request: &pb::ListDomainsRequest) -> ListFilter {
    let pb::ListDomainsRequest {
        active,
        inactive,
        persistent,
        transient,
        running,
        paused,
        shutoff,
        other,
        autostart,
        no_autostart,
        page_size: _,
        page_token: _,
    } = *request;
    ListFilter {
        active,
        inactive,
        persistent,
        transient,
        running,
        paused,
        shutoff,
        other,
        autostart,
        no_autostart,
    }
}

pub fn state(state: State) -> pb::DomainState {
    match state {
        State::NoState => pb::DomainState::Nostate,
        State::Running => pb::DomainState::Running,
        State::Blocked => pb::DomainState::Blocked,
        State::Paused => pb::DomainState::Paused,
        State::Shutdown => pb::DomainState::Shutdown,
        State::Shutoff => pb::DomainState::Shutoff,
        State::Crashed => pb::DomainState::Crashed,
        State::PmSuspended => pb::DomainState::Pmsuspended,
    }
}

pub fn reason(reason: Reason) -> pb::StateReason {
    match reason {
        Reason::Unknown => pb::StateReason::Unknown,
        Reason::RunningBooted => pb::StateReason::RunningBooted,
        Reason::RunningUnpaused => pb::StateReason::RunningUnpaused,
        Reason::RunningCrashed => pb::StateReason::RunningCrashed,
        Reason::PausedUser => pb::StateReason::PausedUser,
        Reason::PausedStartingUp => pb::StateReason::PausedStartingUp,
        Reason::PausedShuttingDown => pb::StateReason::PausedShuttingDown,
        Reason::ShutdownUser => pb::StateReason::ShutdownUser,
        Reason::ShutoffShutdown => pb::StateReason::ShutoffShutdown,
        Reason::ShutoffDestroyed => pb::StateReason::ShutoffDestroyed,
        Reason::ShutoffCrashed => pb::StateReason::ShutoffCrashed,
        Reason::ShutoffFailed => pb::StateReason::ShutoffFailed,
        Reason::ShutoffDaemon => pb::StateReason::ShutoffDaemon,
        Reason::CrashedPanicked => pb::StateReason::CrashedPanicked,
    }
}

pub fn summary(summary: Summary) -> pb::DomainSummary {
    let Summary {
        name,
        uuid,
        id,
        state: s,
        reason: r,
        persistent,
        autostart,
        title,
    } = summary;
    pb::DomainSummary {
        name,
        uuid,
        id,
        state: state(s).into(),
        reason: reason(r).into(),
        persistent,
        autostart,
        title,
        // Fleet fields: the gateway fills them in.
        node: String::new(),
        node_unreachable: false,
    }
}

pub fn info(info: Info) -> pb::GetDomainInfoResponse {
    let Info {
        summary: s,
        os_type,
        max_memory_kib,
        memory_kib,
        vcpus,
        cpu_time_ns,
        tainted,
        guest_agent,
    } = info;
    pb::GetDomainInfoResponse {
        domain: Some(summary(s)),
        os_type,
        max_memory_kib,
        memory_kib,
        vcpus,
        cpu_time_ns,
        managed_save: false,
        tainted,
        guest_agent: agent_state(guest_agent) as i32,
    }
}

pub fn node_info(info: NodeInfo) -> pb::GetNodeInfoResponse {
    let NodeInfo {
        cpu_model,
        memory_kib,
        cpus,
        mhz,
        nodes,
        sockets,
        cores,
        threads,
        hostname,
        free_memory_kib,
    } = info;
    pb::GetNodeInfoResponse {
        cpu_model,
        memory_kib,
        cpus,
        mhz,
        nodes,
        sockets,
        cores,
        threads,
        hostname,
        free_memory_kib,
        // Set by the API from --node-name.
        node_name: String::new(),
    }
}

fn lifecycle(kind: Lifecycle) -> pb::LifecycleType {
    match kind {
        Lifecycle::Defined => pb::LifecycleType::Defined,
        Lifecycle::Undefined => pb::LifecycleType::Undefined,
        Lifecycle::Started => pb::LifecycleType::Started,
        Lifecycle::Suspended => pb::LifecycleType::Suspended,
        Lifecycle::Resumed => pb::LifecycleType::Resumed,
        Lifecycle::Stopped => pb::LifecycleType::Stopped,
        Lifecycle::Shutdown => pb::LifecycleType::Shutdown,
        Lifecycle::PmSuspended => pb::LifecycleType::Pmsuspended,
        Lifecycle::Crashed => pb::LifecycleType::Crashed,
    }
}

pub fn event(event: Event) -> pb::DomainEvent {
    let Event {
        sequence,
        time,
        name,
        uuid,
        body,
    } = event;
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let body = match body {
        EventBody::Lifecycle(kind, detail) => {
            pb::domain_event::Body::Lifecycle(pb::LifecycleEvent {
                r#type: lifecycle(kind).into(),
                detail: detail.to_owned(),
            })
        }
        EventBody::ConfigChanged(what) => {
            pb::domain_event::Body::ConfigChanged(pb::ConfigChangedEvent {
                what: what.to_owned(),
            })
        }
        EventBody::Reboot => pb::domain_event::Body::Reboot(pb::RebootEvent {}),
        EventBody::DeviceAdded(alias) => {
            pb::domain_event::Body::DeviceAdded(pb::DeviceAddedEvent { alias })
        }
        EventBody::DeviceRemoved(alias) => {
            pb::domain_event::Body::DeviceRemoved(pb::DeviceRemovedEvent { alias })
        }
        EventBody::AgentLifecycle(state, reason) => {
            pb::domain_event::Body::AgentLifecycle(pb::AgentLifecycleEvent {
                state: agent_state(state).into(),
                reason: agent_reason(reason).into(),
            })
        }
    };
    pb::DomainEvent {
        sequence,
        time: Some(prost_types::Timestamp {
            seconds: i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
            nanos: i32::try_from(since.subsec_nanos()).unwrap_or(0),
        }),
        domain_name: name,
        domain_uuid: uuid,
        body: Some(body),
    }
}

pub fn agent_state(state: crate::model::AgentState) -> pb::GuestAgentState {
    use crate::model::AgentState;
    match state {
        AgentState::None => pb::GuestAgentState::None,
        AgentState::Connected => pb::GuestAgentState::Connected,
        AgentState::Disconnected => pb::GuestAgentState::Disconnected,
        AgentState::NotResponding => pb::GuestAgentState::NotResponding,
    }
}

pub fn agent_reason(reason: crate::model::AgentReason) -> pb::AgentLifecycleReason {
    use crate::model::AgentReason;
    match reason {
        AgentReason::DomainStarted => pb::AgentLifecycleReason::DomainStarted,
        AgentReason::Channel => pb::AgentLifecycleReason::Channel,
        AgentReason::DomainStopped => pb::AgentLifecycleReason::DomainStopped,
        AgentReason::Response => pb::AgentLifecycleReason::Response,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_refs_are_validated() {
        let by_name = pb::DomainRef {
            id: Some(pb::domain_ref::Id::Name("web".into())),
        };
        assert_eq!(
            domain_ref(Some(by_name)).unwrap(),
            DomainRef::Name("web".into())
        );
        assert!(domain_ref(None).is_err());
        let bad_uuid = pb::DomainRef {
            id: Some(pb::domain_ref::Id::Uuid("not-a-uuid".into())),
        };
        let err = domain_ref(Some(bad_uuid)).unwrap_err();
        assert!(err.to_string().contains("not-a-uuid"), "{err}");
    }

    #[test]
    fn unknown_power_mode_is_refused() {
        assert!(power_mode(99).is_err());
        assert_eq!(power_mode(2).unwrap(), PowerMode::Agent);
    }
}
