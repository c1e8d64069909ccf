//! A running VM's guest agent as the driver tracks it: which channel it is, whether qemu-ga has
//! it open, the domain's agent timeout, and the agent lifecycle events.
//!
//! The state follows libvirt (qemu_process.c, qemuProcessHandleSerialChanged): QEMU's
//! `VSERPORT_CHANGE` event says when the guest opens or closes the agent's virtio-serial port,
//! and `query-chardev`'s `frontend-open` gives the state at start and after a service restart.
//! On top of that, a call that times out marks the agent "not responding" until a call is
//! answered again. Every change is announced as an agent lifecycle event.
//!
//! Calls need no job lock: an agent that hangs holds up only the next agent call of the same
//! VM (bounded by its timeout), never the domain's other calls.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::Value;
use virtplane_common::events::EventHub;

use super::agent::{self, GuestAgent};
use crate::error::{DomainError, Result};
use crate::guest_agent::{CallOutcome, DomainAgent, OutcomeObserver};
use crate::model::{AgentReason, AgentState, Event, EventBody};
use crate::xml::DomainDef;

/// The agent channel of a definition: which QEMU objects carry it and where its socket is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentChannel {
    /// The `virtserialport` device id (`VSERPORT_CHANGE`'s `id`).
    pub port_id: String,
    /// The `-chardev` id (`query-chardev`'s `label`).
    pub chardev_id: String,
    pub socket: PathBuf,
}

impl AgentChannel {
    /// The channel named `org.qemu.guest_agent.0` with a unix socket backend, if `def` has
    /// one. The ids and the default socket path are those `argv/chardevs.rs` gives the k-th
    /// channel.
    pub fn of(def: &DomainDef, vm_dir: &Path) -> Option<AgentChannel> {
        def.devices.channels.iter().enumerate().find_map(|(k, ch)| {
            let target = ch.target.as_ref()?;
            if target.name.as_deref() != Some(agent::SOCKET_NAME) || ch.dev_type != "unix" {
                return None;
            }
            let socket = ch
                .sources
                .iter()
                .find_map(|s| s.path.as_deref())
                .map(PathBuf::from)
                .unwrap_or_else(|| agent::socket_path(vm_dir));
            Some(AgentChannel {
                port_id: format!("channel{k}"),
                chardev_id: format!("charchannel{k}"),
                socket,
            })
        })
    }
}

/// One VM's agent: its channel, state and timeout.
pub struct AgentLink {
    pub channel: AgentChannel,
    agent: GuestAgent,
    state: Mutex<AgentState>,
    /// Whether the state has been read from QEMU (`query-chardev` or a port event). Until
    /// then "disconnected" is only the starting guess, and calls are let through.
    known: std::sync::atomic::AtomicBool,
    /// `guest-agent-timeout` for this run; `None` = the service's default.
    timeout: Mutex<Option<Duration>>,
    events: Arc<EventHub<Event>>,
    name: String,
    uuid: String,
}

impl std::fmt::Debug for AgentLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentLink")
            .field("channel", &self.channel)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl AgentLink {
    /// The agent of domain `name`/`uuid`, disconnected until QEMU says otherwise.
    pub fn new(
        channel: AgentChannel,
        name: &str,
        uuid: &str,
        events: Arc<EventHub<Event>>,
    ) -> Arc<Self> {
        Arc::new(AgentLink {
            agent: GuestAgent::new(channel.socket.clone()),
            channel,
            state: Mutex::new(AgentState::Disconnected),
            known: std::sync::atomic::AtomicBool::new(false),
            timeout: Mutex::new(None),
            events,
            name: name.to_owned(),
            uuid: uuid.to_owned(),
        })
    }

    pub fn state(&self) -> AgentState {
        *self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves to `next` (if `from` allows: `None` = from any state but the VM's end) and
    /// announces a change. Published under the state lock, so events come in the order of the
    /// changes; a port event still queued when the VM has ended changes nothing.
    fn transition(&self, from: Option<&[AgentState]>, next: AgentState, reason: AgentReason) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let allowed = match from {
            Some(allowed) => allowed.contains(&*state),
            None => *state != AgentState::None,
        };
        if *state == next || !allowed {
            return;
        }
        *state = next;
        tracing::info!(domain = %self.name, state = ?next, ?reason, "guest agent state changed");
        self.events.publish(|sequence| Event {
            sequence,
            time: SystemTime::now(),
            name: self.name.clone(),
            uuid: self.uuid.clone(),
            body: EventBody::AgentLifecycle(next, reason),
        });
    }

    /// The state found at start or after a reattach (`query-chardev`'s `frontend-open`).
    pub fn found(&self, open: bool) {
        self.known.store(true, std::sync::atomic::Ordering::SeqCst);
        let next = if open {
            AgentState::Connected
        } else {
            AgentState::Disconnected
        };
        self.transition(None, next, AgentReason::DomainStarted);
    }

    /// A `VSERPORT_CHANGE` event; ignored unless it is about the agent's port.
    pub fn port_changed(&self, data: &Value) {
        if data.get("id").and_then(Value::as_str) != Some(self.channel.port_id.as_str()) {
            return;
        }
        let Some(open) = data.get("open").and_then(Value::as_bool) else {
            return;
        };
        self.known.store(true, std::sync::atomic::Ordering::SeqCst);
        let next = if open {
            AgentState::Connected
        } else {
            AgentState::Disconnected
        };
        self.transition(None, next, AgentReason::Channel);
    }

    /// The VM is gone: an agent that was there is announced disconnected.
    pub fn stopped(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let was = std::mem::replace(&mut *state, AgentState::None);
        if matches!(was, AgentState::Connected | AgentState::NotResponding) {
            self.events.publish(|sequence| Event {
                sequence,
                time: SystemTime::now(),
                name: self.name.clone(),
                uuid: self.uuid.clone(),
                body: EventBody::AgentLifecycle(
                    AgentState::Disconnected,
                    AgentReason::DomainStopped,
                ),
            });
        }
    }

    pub fn set_timeout(&self, timeout: Option<Duration>) {
        *self.timeout.lock().unwrap_or_else(|e| e.into_inner()) = timeout;
    }

    /// A handle for calls, bounded by this VM's timeout (else `default_timeout`). Refused at
    /// once when no agent has the channel open: a call would only run into its timeout.
    pub fn handle(self: &Arc<Self>, default_timeout: Duration) -> Result<DomainAgent> {
        match self.state() {
            AgentState::Connected | AgentState::NotResponding => {}
            // Not read from QEMU (its query failed): try, and let the call's own timeout tell.
            AgentState::Disconnected if !self.known.load(std::sync::atomic::Ordering::SeqCst) => {}
            AgentState::Disconnected => {
                return Err(DomainError::AgentUnavailable(format!(
                    "the guest agent of domain '{}' is not connected: nothing in the guest has \
                     its channel open (is qemu-guest-agent installed and running?)",
                    self.name
                )));
            }
            AgentState::None => {
                return Err(DomainError::not_running(&self.name));
            }
        }
        let timeout = self
            .timeout
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .unwrap_or(default_timeout);
        Ok(DomainAgent::new(
            self.name.clone(),
            self.agent.with_timeout(timeout),
            Some(self.clone() as Arc<dyn OutcomeObserver>),
        ))
    }
}

impl OutcomeObserver for AgentLink {
    fn observe(&self, outcome: CallOutcome) {
        match outcome {
            CallOutcome::TimedOut => self.transition(
                Some(&[AgentState::Connected]),
                AgentState::NotResponding,
                AgentReason::Response,
            ),
            CallOutcome::Answered => self.transition(
                Some(&[AgentState::NotResponding]),
                AgentState::Connected,
                AgentReason::Response,
            ),
            // QEMU's port events say whether the guest side is open; a broken host socket
            // (QEMU exiting) is the VM's end, reported by the watcher.
            CallOutcome::Disconnected => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link() -> (Arc<AgentLink>, Arc<EventHub<Event>>) {
        let events = EventHub::new(1, 64);
        let channel = AgentChannel {
            port_id: "channel0".into(),
            chardev_id: "charchannel0".into(),
            socket: "/nonexistent/org.qemu.guest_agent.0".into(),
        };
        (
            AgentLink::new(channel, "web", "u-1", events.clone()),
            events,
        )
    }

    /// Every event published so far (the hub's first sequence is `epoch << 32` + 1).
    fn published(events: &EventHub<Event>) -> Vec<EventBody> {
        use futures::{FutureExt, StreamExt};
        if events.last_sequence() == 1 << 32 {
            return Vec::new();
        }
        let mut stream = Box::pin(events.subscribe(1 << 32).expect("replay"));
        let mut bodies = Vec::new();
        while let Some(Some(Ok(event))) = stream.next().now_or_never() {
            bodies.push(event.body);
        }
        bodies
    }

    #[test]
    fn port_events_move_the_state_and_announce_each_change_once() {
        let (link, events) = link();
        assert_eq!(link.state(), AgentState::Disconnected);
        link.port_changed(&serde_json::json!({"id": "channel1", "open": true}));
        assert_eq!(
            link.state(),
            AgentState::Disconnected,
            "another port's event"
        );
        link.port_changed(&serde_json::json!({"id": "channel0", "open": true}));
        link.port_changed(&serde_json::json!({"id": "channel0", "open": true}));
        assert_eq!(link.state(), AgentState::Connected);
        link.port_changed(&serde_json::json!({"id": "channel0", "open": false}));
        assert_eq!(
            published(&events),
            vec![
                EventBody::AgentLifecycle(AgentState::Connected, AgentReason::Channel),
                EventBody::AgentLifecycle(AgentState::Disconnected, AgentReason::Channel),
            ]
        );
    }

    #[test]
    fn a_timeout_marks_not_responding_until_an_answer() {
        let (link, events) = link();
        link.observe(CallOutcome::TimedOut);
        assert_eq!(
            link.state(),
            AgentState::Disconnected,
            "not connected: stays"
        );
        link.found(true);
        link.observe(CallOutcome::TimedOut);
        assert_eq!(link.state(), AgentState::NotResponding);
        assert!(
            link.handle(Duration::from_secs(1)).is_ok(),
            "a hung agent may still be tried"
        );
        link.observe(CallOutcome::Answered);
        assert_eq!(link.state(), AgentState::Connected);
        link.stopped();
        assert_eq!(link.state(), AgentState::None);
        assert_eq!(
            published(&events),
            vec![
                EventBody::AgentLifecycle(AgentState::Connected, AgentReason::DomainStarted),
                EventBody::AgentLifecycle(AgentState::NotResponding, AgentReason::Response),
                EventBody::AgentLifecycle(AgentState::Connected, AgentReason::Response),
                EventBody::AgentLifecycle(AgentState::Disconnected, AgentReason::DomainStopped),
            ]
        );
    }

    #[test]
    fn late_port_events_after_the_end_change_nothing() {
        let (link, events) = link();
        link.found(true);
        link.stopped();
        link.port_changed(&serde_json::json!({"id": "channel0", "open": false}));
        link.port_changed(&serde_json::json!({"id": "channel0", "open": true}));
        assert_eq!(link.state(), AgentState::None);
        assert_eq!(
            published(&events),
            vec![
                EventBody::AgentLifecycle(AgentState::Connected, AgentReason::DomainStarted),
                EventBody::AgentLifecycle(AgentState::Disconnected, AgentReason::DomainStopped),
            ]
        );
    }

    #[test]
    fn an_unread_state_lets_calls_through() {
        let (link, _) = link();
        assert!(
            link.handle(Duration::from_secs(1)).is_ok(),
            "not read from QEMU yet"
        );
    }

    #[test]
    fn a_disconnected_agent_is_refused_at_once_naming_the_domain() {
        let (link, _) = link();
        link.found(false);
        let error = link.handle(Duration::from_secs(1)).unwrap_err();
        assert!(
            matches!(&error, DomainError::AgentUnavailable(m) if m.contains("'web'") && m.contains("not connected")),
            "{error}"
        );
    }

    #[test]
    fn the_domains_own_timeout_wins_over_the_default() {
        let (link, _) = link();
        link.found(true);
        assert_eq!(
            link.handle(Duration::from_secs(7)).unwrap().timeout(),
            Duration::from_secs(7)
        );
        link.set_timeout(Some(Duration::from_secs(2)));
        assert_eq!(
            link.handle(Duration::from_secs(7)).unwrap().timeout(),
            Duration::from_secs(2)
        );
    }
}
