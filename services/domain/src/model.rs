//! The service's own vocabulary (proto-free): how a domain is named, its state, what lists,
//! info and events carry, and the flags of typed edits. `api/convert.rs` maps these to and
//! from protobuf.

use std::time::SystemTime;

/// A domain named by name or UUID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainRef {
    Name(String),
    Uuid(String),
}

impl std::fmt::Display for DomainRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Name(name) => write!(f, "name '{name}'"),
            Self::Uuid(uuid) => write!(f, "uuid '{uuid}'"),
        }
    }
}

/// libvirt's virDomainState.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// libvirt's virDomainObjIsActive: anything but shut off.
    pub fn is_active(self) -> bool {
        !matches!(self, Self::Shutoff)
    }
}

/// libvirt's state reasons; see proto StateReason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Unknown,
    RunningBooted,
    RunningUnpaused,
    RunningCrashed,
    PausedUser,
    PausedStartingUp,
    PausedShuttingDown,
    ShutdownUser,
    ShutoffShutdown,
    ShutoffDestroyed,
    ShutoffCrashed,
    ShutoffFailed,
    ShutoffDaemon,
    CrashedPanicked,
}

/// What `list` and `lookup` return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub name: String,
    pub uuid: String,
    /// -1 when inactive.
    pub id: i32,
    pub state: State,
    pub reason: Reason,
    pub persistent: bool,
    pub autostart: bool,
    pub title: String,
}

/// What `dominfo` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub summary: Summary,
    pub os_type: String,
    pub max_memory_kib: u64,
    pub memory_kib: u64,
    pub vcpus: u32,
    pub cpu_time_ns: u64,
    pub tainted: Vec<String>,
    pub guest_agent: AgentState,
}

/// Whether a running domain's guest agent can be used (libvirt tracks it from QEMU's
/// `VSERPORT_CHANGE` events).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AgentState {
    /// Not running, or no agent channel.
    #[default]
    None,
    /// qemu-ga has the channel open.
    Connected,
    /// The channel exists but nothing in the guest has it open.
    Disconnected,
    /// Open, but the last call timed out.
    NotResponding,
}

/// Why the agent state changed (libvirt's agent lifecycle reasons, plus `DomainStopped`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentReason {
    DomainStarted,
    Channel,
    DomainStopped,
    Response,
}

/// virConnectListAllDomains filter groups: within a group flags are OR'ed, groups AND'ed,
/// an empty group does not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    pub active: bool,
    pub inactive: bool,
    pub persistent: bool,
    pub transient: bool,
    pub running: bool,
    pub paused: bool,
    pub shutoff: bool,
    pub other: bool,
    pub autostart: bool,
    pub no_autostart: bool,
}

impl ListFilter {
    pub fn matches(&self, summary: &Summary) -> bool {
        let active = summary.state.is_active();
        let group = |a: bool, b: bool, pass_a: bool, pass_b: bool| {
            (!a && !b) || (a && pass_a) || (b && pass_b)
        };
        let state_ok = {
            let any = self.running || self.paused || self.shutoff || self.other;
            !any || (self.running && summary.state == State::Running)
                || (self.paused && summary.state == State::Paused)
                || (self.shutoff && summary.state == State::Shutoff)
                || (self.other
                    && !matches!(
                        summary.state,
                        State::Running | State::Paused | State::Shutoff
                    ))
        };
        group(self.active, self.inactive, active, !active)
            && group(
                self.persistent,
                self.transient,
                summary.persistent,
                !summary.persistent,
            )
            && group(
                self.autostart,
                self.no_autostart,
                summary.autostart,
                !summary.autostart,
            )
            && state_ok
    }
}

/// libvirt's virDomainModificationImpact (+ the vcpu/memory extras).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Impact {
    pub live: bool,
    pub config: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VcpuFlags {
    pub impact: Impact,
    pub maximum: bool,
    pub guest: bool,
    pub hotpluggable: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryFlags {
    pub impact: Impact,
    pub maximum: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XmlFlags {
    pub inactive: bool,
    pub secure: bool,
}

/// How shutdown/reboot reach the guest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PowerMode {
    #[default]
    Default,
    Acpi,
    Agent,
}

/// What `guest-shutdown` asks the guest to do (qemu-ga's `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentPowerAction {
    Powerdown,
    Reboot,
    Halt,
}

/// libvirt's virDomainEventType.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventBody {
    /// A lifecycle change and libvirt's detail word ("booted", "destroyed", ...).
    Lifecycle(Lifecycle, &'static str),
    /// A config value changed ("vcpus", "memory", "autostart").
    ConfigChanged(&'static str),
    /// The guest rebooted or was reset.
    Reboot,
    /// A device was hot-plugged; its alias (libvirt's VIR_DOMAIN_EVENT_ID_DEVICE_ADDED).
    DeviceAdded(String),
    /// A hot-unplugged device is gone from the guest; its alias (…_DEVICE_REMOVED).
    DeviceRemoved(String),
    /// The guest agent's state changed (VIR_DOMAIN_EVENT_ID_AGENT_LIFECYCLE).
    AgentLifecycle(AgentState, AgentReason),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub sequence: u64,
    pub time: SystemTime,
    pub name: String,
    pub uuid: String,
    pub body: EventBody,
}

/// Versions the host reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versions {
    pub driver: &'static str,
    pub driver_version: String,
    pub hypervisor: String,
    pub hypervisor_version: String,
}

/// virNodeInfo plus the hostname.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub cpu_model: String,
    pub memory_kib: u64,
    pub cpus: u32,
    pub mhz: u32,
    pub nodes: u32,
    pub sockets: u32,
    pub cores: u32,
    pub threads: u32,
    pub hostname: String,
    /// Memory available for new guests (MemAvailable), in KiB.
    pub free_memory_kib: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(state: State, persistent: bool, autostart: bool) -> Summary {
        Summary {
            name: "x".into(),
            uuid: String::new(),
            id: if state.is_active() { 1 } else { -1 },
            state,
            reason: Reason::Unknown,
            persistent,
            autostart,
            title: String::new(),
        }
    }

    #[test]
    fn empty_filter_lists_everything() {
        let all = ListFilter::default();
        assert!(all.matches(&summary(State::Running, true, false)));
        assert!(all.matches(&summary(State::Shutoff, false, true)));
    }

    #[test]
    fn groups_are_anded_and_flags_within_a_group_ored() {
        let filter = ListFilter {
            active: true,
            persistent: true,
            ..Default::default()
        };
        assert!(filter.matches(&summary(State::Running, true, false)));
        assert!(!filter.matches(&summary(State::Running, false, false)));
        assert!(!filter.matches(&summary(State::Shutoff, true, false)));
        let either = ListFilter {
            active: true,
            inactive: true,
            ..Default::default()
        };
        assert!(either.matches(&summary(State::Shutoff, true, false)));
        let states = ListFilter {
            paused: true,
            other: true,
            ..Default::default()
        };
        assert!(states.matches(&summary(State::Paused, true, false)));
        assert!(states.matches(&summary(State::Crashed, true, false)));
        assert!(!states.matches(&summary(State::Running, true, false)));
        let autostart = ListFilter {
            no_autostart: true,
            ..Default::default()
        };
        assert!(!autostart.matches(&summary(State::Running, true, true)));
    }
}
