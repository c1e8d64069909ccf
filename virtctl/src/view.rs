//! The typed data virtctl prints with `-o json|yaml`, mapped from the proto messages in this
//! one place, plus the virsh words the table output uses for the same values.
//!
//! Why not serialize the proto types directly: prost enums are bare `i32`s, and field names
//! and shapes would then change with every proto edit. These views give scripts stable
//! snake_case fields with enums as lowercase words ("running", "booted").

use serde::Serialize;
use virtplane_proto::v1 as pb;

/// A domain's state, serialized as a lowercase word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
// `NoState` mirrors libvirt's VIR_DOMAIN_NOSTATE.
#[allow(clippy::enum_variant_names)]
pub enum State {
    NoState,
    Running,
    Blocked,
    Paused,
    Shutdown,
    Shutoff,
    Crashed,
    PmSuspended,
}

impl State {
    pub fn from_proto(v: i32) -> Self {
        use pb::DomainState as S;
        match S::try_from(v).unwrap_or(S::Nostate) {
            S::Nostate => State::NoState,
            S::Running => State::Running,
            S::Blocked => State::Blocked,
            S::Paused => State::Paused,
            S::Shutdown => State::Shutdown,
            S::Shutoff => State::Shutoff,
            S::Crashed => State::Crashed,
            S::Pmsuspended => State::PmSuspended,
        }
    }

    /// The word virsh prints (`virshDomainStateToString`).
    pub fn virsh_word(self) -> &'static str {
        match self {
            State::NoState => "no state",
            State::Running => "running",
            State::Blocked => "idle",
            State::Paused => "paused",
            State::Shutdown => "in shutdown",
            State::Shutoff => "shut off",
            State::Crashed => "crashed",
            State::PmSuspended => "pmsuspended",
        }
    }
}

/// Why a domain is in its state: the virsh word (`virshDomainStateReasonToString`) for
/// tables and a snake_case word for data.
pub fn reason_words(v: i32) -> (&'static str, &'static str) {
    use pb::StateReason as R;
    match R::try_from(v).unwrap_or(R::Unknown) {
        R::Unknown => ("unknown", "unknown"),
        R::RunningBooted => ("booted", "booted"),
        R::RunningMigrated => ("migrated", "migrated"),
        R::RunningRestored => ("restored", "restored"),
        R::RunningFromSnapshot => ("from snapshot", "from_snapshot"),
        R::RunningUnpaused => ("unpaused", "unpaused"),
        R::RunningWakeup => ("event wakeup", "wakeup"),
        R::RunningCrashed => ("crashed", "crashed"),
        R::PausedUser => ("user", "user"),
        R::PausedMigration => ("migrating", "migration"),
        R::PausedSave => ("saving", "save"),
        R::PausedDump => ("dumping", "dump"),
        R::PausedIoerror => ("I/O error", "ioerror"),
        R::PausedWatchdog => ("watchdog", "watchdog"),
        R::PausedShuttingDown => ("shutting down", "shutting_down"),
        R::PausedCrashed => ("crashed", "crashed"),
        R::PausedStartingUp => ("starting up", "starting_up"),
        R::ShutdownUser => ("user", "user"),
        R::ShutoffShutdown => ("shutdown", "shutdown"),
        R::ShutoffDestroyed => ("destroyed", "destroyed"),
        R::ShutoffCrashed => ("crashed", "crashed"),
        R::ShutoffMigrated => ("migrated", "migrated"),
        R::ShutoffSaved => ("saved", "saved"),
        R::ShutoffFailed => ("failed", "failed"),
        R::ShutoffFromSnapshot => ("from snapshot", "from_snapshot"),
        R::ShutoffDaemon => ("daemon", "daemon"),
        R::CrashedPanicked => ("panicked", "panicked"),
    }
}

/// One domain, as `list` and the lifecycle commands report it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Domain {
    /// Runtime id; `null` while inactive (virsh shows "-").
    pub id: Option<u32>,
    pub name: String,
    pub uuid: String,
    pub state: State,
    pub reason: &'static str,
    pub persistent: bool,
    pub autostart: bool,
    pub title: String,
    /// The node it lives on, when the gateway serves many.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Its node did not answer: the rest is the last known state.
    #[serde(skip_serializing_if = "crate::fleet_view::is_false")]
    pub node_unreachable: bool,
}

impl Domain {
    pub fn from_proto(d: &pb::DomainSummary) -> Self {
        let pb::DomainSummary {
            name,
            uuid,
            id,
            state,
            reason,
            persistent,
            autostart,
            title,
            node,
            node_unreachable,
        } = d;
        Domain {
            id: u32::try_from(*id).ok(),
            name: name.clone(),
            uuid: uuid.clone(),
            state: State::from_proto(*state),
            reason: reason_words(*reason).1,
            persistent: *persistent,
            autostart: *autostart,
            title: title.clone(),
            node: crate::fleet_view::node_of(node),
            node_unreachable: *node_unreachable,
        }
    }

    /// The State column: virsh's word, or "unreachable" when the node did not answer.
    pub fn state_text(&self) -> &'static str {
        if self.node_unreachable {
            crate::fleet_view::UNREACHABLE
        } else {
            self.state.virsh_word()
        }
    }

    /// The Id column: the number, or "-" when inactive.
    pub fn id_text(&self) -> String {
        self.id.map_or_else(|| "-".to_string(), |i| i.to_string())
    }
}

/// What `dominfo` shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DomainInfo {
    #[serde(flatten)]
    pub domain: Domain,
    pub os_type: String,
    pub vcpus: u32,
    pub cpu_time_ns: u64,
    pub max_memory_kib: u64,
    pub memory_kib: u64,
    pub managed_save: bool,
    pub tainted: Vec<String>,
    pub guest_agent: AgentState,
}

/// The guest agent's state, as `dominfo` and the agent lifecycle event report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentState {
    /// Not running, or no agent channel.
    None,
    Connected,
    Disconnected,
    NotResponding,
}

impl AgentState {
    pub fn from_proto(v: i32) -> Self {
        use pb::GuestAgentState as S;
        match S::try_from(v).unwrap_or(S::None) {
            S::None => AgentState::None,
            S::Connected => AgentState::Connected,
            S::Disconnected => AgentState::Disconnected,
            S::NotResponding => AgentState::NotResponding,
        }
    }

    /// The words virsh uses for the agent lifecycle event ("connected", "disconnected"),
    /// and virtplane's for the states libvirt does not have.
    pub fn virsh_word(self) -> &'static str {
        match self {
            AgentState::None => "none",
            AgentState::Connected => "connected",
            AgentState::Disconnected => "disconnected",
            AgentState::NotResponding => "not responding",
        }
    }
}

/// Why the agent's state changed: virsh's words for libvirt's reasons ("domain started",
/// "channel event") and virtplane's for its own, plus a snake_case word for data.
pub fn agent_reason_words(v: i32) -> (&'static str, &'static str) {
    use pb::AgentLifecycleReason as R;
    match R::try_from(v).unwrap_or(R::Unknown) {
        R::Unknown => ("unknown", "unknown"),
        R::DomainStarted => ("domain started", "domain_started"),
        R::Channel => ("channel event", "channel"),
        R::DomainStopped => ("domain stopped", "domain_stopped"),
        R::Response => ("agent response", "response"),
    }
}

impl DomainInfo {
    pub fn from_proto(r: &pb::GetDomainInfoResponse) -> Self {
        let pb::GetDomainInfoResponse {
            domain,
            os_type,
            max_memory_kib,
            memory_kib,
            vcpus,
            cpu_time_ns,
            managed_save,
            tainted,
            guest_agent,
        } = r;
        DomainInfo {
            domain: Domain::from_proto(&domain.clone().unwrap_or_default()),
            os_type: os_type.clone(),
            vcpus: *vcpus,
            cpu_time_ns: *cpu_time_ns,
            max_memory_kib: *max_memory_kib,
            memory_kib: *memory_kib,
            managed_save: *managed_save,
            tainted: tainted.clone(),
            guest_agent: AgentState::from_proto(*guest_agent),
        }
    }
}

/// What `domstate` shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DomainStateView {
    pub state: State,
    pub reason: &'static str,
}

/// The result of a command that changes a domain and returns nothing else, for scripts
/// that want `-o json` everywhere: `{"domain": "web", "result": "started"}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Action {
    pub domain: String,
    pub result: &'static str,
}

/// `dumpxml` with `-o json|yaml`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Xml {
    pub xml: String,
}

/// One row of `vcpucount`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VcpuCount {
    /// "maximum" or "current".
    pub kind: &'static str,
    /// "config" or "live"; absent for a single count read with flags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<&'static str>,
    pub count: u32,
}

/// `version`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Version {
    pub client_version: &'static str,
    pub service_version: String,
    pub driver: String,
    pub driver_version: String,
    pub hypervisor: String,
    pub hypervisor_version: String,
}

impl Version {
    pub fn from_proto(r: &pb::GetVersionResponse) -> Self {
        let pb::GetVersionResponse {
            service_version,
            driver,
            driver_version,
            hypervisor,
            hypervisor_version,
        } = r;
        Version {
            client_version: env!("CARGO_PKG_VERSION"),
            service_version: service_version.clone(),
            driver: driver.clone(),
            driver_version: driver_version.clone(),
            hypervisor: hypervisor.clone(),
            hypervisor_version: hypervisor_version.clone(),
        }
    }
}

/// `nodeinfo`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeInfo {
    pub hostname: String,
    pub cpu_model: String,
    pub cpus: u32,
    pub mhz: u32,
    pub sockets: u32,
    pub cores: u32,
    pub threads: u32,
    pub nodes: u32,
    pub memory_kib: u64,
    /// Memory available for new guests (what the gateway places new objects by).
    pub free_memory_kib: u64,
}

impl NodeInfo {
    pub fn from_proto(r: &pb::GetNodeInfoResponse) -> Self {
        let pb::GetNodeInfoResponse {
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
            node_name: _,
        } = r;
        NodeInfo {
            hostname: hostname.clone(),
            cpu_model: cpu_model.clone(),
            cpus: *cpus,
            mhz: *mhz,
            sockets: *sockets,
            cores: *cores,
            threads: *threads,
            nodes: *nodes,
            memory_kib: *memory_kib,
            free_memory_kib: *free_memory_kib,
        }
    }
}

/// A lifecycle event's type, as a lowercase word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LifecycleKind {
    Unknown,
    Defined,
    Undefined,
    Started,
    Suspended,
    Resumed,
    Stopped,
    Shutdown,
    PmSuspended,
    Crashed,
}

impl LifecycleKind {
    pub fn from_proto(v: i32) -> Self {
        use pb::LifecycleType as T;
        match T::try_from(v).unwrap_or(T::Unspecified) {
            T::Unspecified => LifecycleKind::Unknown,
            T::Defined => LifecycleKind::Defined,
            T::Undefined => LifecycleKind::Undefined,
            T::Started => LifecycleKind::Started,
            T::Suspended => LifecycleKind::Suspended,
            T::Resumed => LifecycleKind::Resumed,
            T::Stopped => LifecycleKind::Stopped,
            T::Shutdown => LifecycleKind::Shutdown,
            T::Pmsuspended => LifecycleKind::PmSuspended,
            T::Crashed => LifecycleKind::Crashed,
        }
    }

    /// virsh's word (`virshDomainEventToString`).
    pub fn virsh_word(self) -> &'static str {
        match self {
            LifecycleKind::Unknown => "unknown",
            LifecycleKind::Defined => "Defined",
            LifecycleKind::Undefined => "Undefined",
            LifecycleKind::Started => "Started",
            LifecycleKind::Suspended => "Suspended",
            LifecycleKind::Resumed => "Resumed",
            LifecycleKind::Stopped => "Stopped",
            LifecycleKind::Shutdown => "Shutdown",
            LifecycleKind::PmSuspended => "PMSuspended",
            LifecycleKind::Crashed => "Crashed",
        }
    }
}

/// What an event says, tagged by virsh's event name.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum EventBody {
    Lifecycle {
        #[serde(rename = "type")]
        kind: LifecycleKind,
        detail: String,
    },
    ConfigChanged {
        what: String,
    },
    /// The guest rebooted or was reset (virsh's `reboot` event).
    Reboot,
    /// virsh's `device-added` event: the alias of a hot-plugged device.
    DeviceAdded {
        alias: String,
    },
    /// virsh's `device-removed` event: the alias of a device the guest released.
    DeviceRemoved {
        alias: String,
    },
    /// virsh's `agent-lifecycle` event: the guest agent connected, disconnected, ...
    AgentLifecycle {
        state: AgentState,
        reason: &'static str,
        /// virsh's word for the reason, for the table line only.
        #[serde(skip)]
        reason_text: &'static str,
    },
    /// A body this virtctl does not know yet (a newer server).
    Unknown,
}

impl EventBody {
    /// virsh's event name, as `event --event NAME` takes it.
    pub fn name(&self) -> &'static str {
        match self {
            EventBody::Lifecycle { .. } => "lifecycle",
            EventBody::ConfigChanged { .. } => "config-changed",
            EventBody::Reboot => "reboot",
            EventBody::DeviceAdded { .. } => "device-added",
            EventBody::DeviceRemoved { .. } => "device-removed",
            EventBody::AgentLifecycle { .. } => "agent-lifecycle",
            EventBody::Unknown => "unknown",
        }
    }
}

/// One domain event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub sequence: u64,
    /// When the service recorded it, RFC 3339 in UTC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    pub domain: String,
    pub uuid: String,
    #[serde(flatten)]
    pub body: EventBody,
}

impl Event {
    pub fn from_proto(e: &pb::DomainEvent) -> Self {
        let pb::DomainEvent {
            sequence,
            time,
            domain_name,
            domain_uuid,
            body,
        } = e;
        let body = match body {
            Some(pb::domain_event::Body::Lifecycle(l)) => EventBody::Lifecycle {
                kind: LifecycleKind::from_proto(l.r#type),
                detail: l.detail.clone(),
            },
            Some(pb::domain_event::Body::ConfigChanged(c)) => EventBody::ConfigChanged {
                what: c.what.clone(),
            },
            Some(pb::domain_event::Body::Reboot(_)) => EventBody::Reboot,
            Some(pb::domain_event::Body::DeviceAdded(d)) => EventBody::DeviceAdded {
                alias: d.alias.clone(),
            },
            Some(pb::domain_event::Body::DeviceRemoved(d)) => EventBody::DeviceRemoved {
                alias: d.alias.clone(),
            },
            Some(pb::domain_event::Body::AgentLifecycle(a)) => {
                let (reason_text, reason) = agent_reason_words(a.reason);
                EventBody::AgentLifecycle {
                    state: AgentState::from_proto(a.state),
                    reason,
                    reason_text,
                }
            }
            None => EventBody::Unknown,
        };
        Event {
            sequence: *sequence,
            time: time
                .as_ref()
                .and_then(timestamp_utc)
                .map(|t| t.to_rfc3339()),
            domain: domain_name.clone(),
            uuid: domain_uuid.clone(),
            body,
        }
    }
}

/// A protobuf timestamp as a chrono time, if it is in range.
pub fn timestamp_utc(t: &prost_types::Timestamp) -> Option<chrono::DateTime<chrono::Utc>> {
    let nanos = u32::try_from(t.nanos).ok()?;
    chrono::DateTime::from_timestamp(t.seconds, nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_words_match_virsh() {
        let cases = [
            (pb::DomainState::Nostate, "no state", "\"nostate\""),
            (pb::DomainState::Running, "running", "\"running\""),
            (pb::DomainState::Blocked, "idle", "\"blocked\""),
            (pb::DomainState::Paused, "paused", "\"paused\""),
            (pb::DomainState::Shutdown, "in shutdown", "\"shutdown\""),
            (pb::DomainState::Shutoff, "shut off", "\"shutoff\""),
            (pb::DomainState::Crashed, "crashed", "\"crashed\""),
            (
                pb::DomainState::Pmsuspended,
                "pmsuspended",
                "\"pmsuspended\"",
            ),
        ];
        for (proto, word, json) in cases {
            let s = State::from_proto(proto as i32);
            assert_eq!(s.virsh_word(), word);
            assert_eq!(serde_json::to_string(&s).unwrap(), json);
        }
        // A state from a newer server does not break the client.
        assert_eq!(State::from_proto(99), State::NoState);
    }

    #[test]
    fn reasons() {
        assert_eq!(
            reason_words(pb::StateReason::RunningBooted as i32),
            ("booted", "booted")
        );
        assert_eq!(
            reason_words(pb::StateReason::PausedIoerror as i32).0,
            "I/O error"
        );
        assert_eq!(reason_words(1234), ("unknown", "unknown"));
    }

    #[test]
    fn domain_json_shape() {
        let d = Domain::from_proto(&pb::DomainSummary {
            name: "web".into(),
            uuid: "u".into(),
            id: -1,
            state: pb::DomainState::Shutoff as i32,
            reason: pb::StateReason::ShutoffDestroyed as i32,
            persistent: true,
            autostart: false,
            title: String::new(),
            ..Default::default()
        });
        assert_eq!(d.id_text(), "-");
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["id"], serde_json::Value::Null);
        assert_eq!(v["state"], "shutoff");
        assert_eq!(v["reason"], "destroyed");
        assert_eq!(v["persistent"], true);
        // One host: no node.
        assert!(
            v.get("node").is_none() && v.get("node_unreachable").is_none(),
            "{v}"
        );
        // Many nodes, and this one down: the last known state, marked.
        let far = Domain::from_proto(&pb::DomainSummary {
            name: "db".into(),
            state: pb::DomainState::Running as i32,
            node: "beta".into(),
            node_unreachable: true,
            ..Default::default()
        });
        let v = serde_json::to_value(&far).unwrap();
        assert_eq!(v["node"], "beta");
        assert_eq!(v["node_unreachable"], true);
        assert_eq!(v["state"], "running");
        assert_eq!(far.state_text(), "unreachable");
    }

    #[test]
    fn event_json_shape() {
        let e = Event::from_proto(&pb::DomainEvent {
            sequence: 7,
            time: Some(prost_types::Timestamp {
                seconds: 0,
                nanos: 0,
            }),
            domain_name: "web".into(),
            domain_uuid: "u".into(),
            body: Some(pb::domain_event::Body::Lifecycle(pb::LifecycleEvent {
                r#type: pb::LifecycleType::Started as i32,
                detail: "booted".into(),
            })),
        });
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["sequence"], 7);
        assert_eq!(v["event"], "lifecycle");
        assert_eq!(v["type"], "started");
        assert_eq!(v["detail"], "booted");
        assert_eq!(v["time"], "1970-01-01T00:00:00+00:00");

        let c = Event::from_proto(&pb::DomainEvent {
            sequence: 8,
            time: None,
            domain_name: "web".into(),
            domain_uuid: "u".into(),
            body: Some(pb::domain_event::Body::ConfigChanged(
                pb::ConfigChangedEvent {
                    what: "vcpus".into(),
                },
            )),
        });
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["event"], "config-changed");
        assert_eq!(v["what"], "vcpus");
        assert!(v.get("time").is_none());
    }
}
