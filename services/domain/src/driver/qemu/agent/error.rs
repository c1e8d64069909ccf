//! The guest agent's one error type. Each variant is something different for the caller to do:
//! `NotConnected` and `NotResponding` become UNAVAILABLE (the agent may come back), `Agent` is
//! the agent's own refusal passed on to the user, `Protocol` and `Invalid` are bugs or bad input.

use std::path::PathBuf;
use std::time::Duration;

/// Why a guest agent call failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The agent's channel cannot be reached: the VM has no `org.qemu.guest_agent.0` channel,
    /// QEMU is gone, or QEMU closed the socket mid-call.
    #[error("the guest agent is not connected ({socket}: {reason})")]
    NotConnected { socket: PathBuf, reason: String },
    /// Nothing came back in time: qemu-ga is not running in the guest, is hung, or the guest
    /// is paused. The connection was discarded; the next call re-syncs on a fresh one.
    #[error(
        "the guest agent is not responding: no answer to {command} within {after:?} \
         (is qemu-guest-agent running in the guest?)"
    )]
    NotResponding { command: String, after: Duration },
    /// Another call on the same agent was still running for the whole timeout; this one was
    /// never sent. Says nothing about the agent's health.
    #[error(
        "the guest agent is busy: another call was still running after {after:?}, so \
         {command} was not sent (try again, or with a longer timeout)"
    )]
    Busy { command: String, after: Duration },
    /// The agent refused the command; `class` is its error class (e.g. `CommandNotFound`,
    /// `GenericError`) and `desc` its message for a human.
    #[error("the guest agent refused the command ({class}): {desc}")]
    Agent { class: String, desc: String },
    /// The agent said something we could not understand (not JSON, a reply to another call,
    /// or a reply that does not match qapi's schema for the command).
    #[error("guest agent protocol error: {0}")]
    Protocol(String),
    /// The caller's command is malformed; nothing was sent.
    #[error("invalid guest agent command: {0}")]
    Invalid(String),
}
