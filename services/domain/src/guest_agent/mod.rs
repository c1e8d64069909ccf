//! A running domain's guest agent as the API layer uses it: [`DomainAgent`], a handle that
//! names its domain in every error, turns agent failures into [`DomainError`]s, and reports
//! each call's outcome to the domain's agent state (so a timeout shows as "not responding" in
//! domain info and as an agent lifecycle event).
//!
//! Drivers hand one out from [`crate::driver::DomainDriver::guest_agent`]; the transport under
//! it is [`crate::driver::qemu::agent::GuestAgent`].

mod errors;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::driver::qemu::agent::{AgentError, GuestAgent};
use crate::error::Result;

pub use errors::agent_error;

/// What became of one agent call, for the domain's agent state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// The agent answered (with a result or with its own error).
    Answered,
    /// Nothing came back within the timeout.
    TimedOut,
    /// The channel could not be reached or broke.
    Disconnected,
}

/// Told of every call's outcome; the qemu driver's agent state implements it.
pub trait OutcomeObserver: Send + Sync {
    fn observe(&self, outcome: CallOutcome);
}

/// The guest agent of one running domain.
#[derive(Clone)]
pub struct DomainAgent {
    domain: String,
    agent: GuestAgent,
    observer: Option<Arc<dyn OutcomeObserver>>,
}

impl std::fmt::Debug for DomainAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DomainAgent")
            .field("domain", &self.domain)
            .field("agent", &self.agent)
            .finish_non_exhaustive()
    }
}

impl DomainAgent {
    /// `agent` (already carrying the domain's timeout) of the domain named `domain`.
    pub fn new(
        domain: impl Into<String>,
        agent: GuestAgent,
        observer: Option<Arc<dyn OutcomeObserver>>,
    ) -> Self {
        DomainAgent {
            domain: domain.into(),
            agent,
            observer,
        }
    }

    /// The domain's name.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The per-call timeout.
    pub fn timeout(&self) -> Duration {
        self.agent.timeout()
    }

    /// The same agent with another per-call timeout (passthrough's own `--timeout`).
    pub fn with_timeout(&self, timeout: Duration) -> DomainAgent {
        DomainAgent {
            agent: self.agent.with_timeout(timeout),
            ..self.clone()
        }
    }

    /// Runs one typed command (any `qapi::qga` command struct).
    pub async fn run<C: qapi::qga::QgaCommand>(&self, command: C) -> Result<C::Ok> {
        let result = self.agent.execute(command).await;
        self.finish(result)
    }

    /// Runs one command given as JSON (`{"execute": …, "arguments": …}`) and returns its
    /// `return` value as the agent sent it.
    pub async fn run_raw(&self, command: Value) -> Result<Value> {
        let result = self.agent.execute_raw(command).await;
        self.finish(result)
    }

    /// Runs a command that qemu-ga answers only when it fails (`guest-shutdown`): `true` when
    /// the agent stayed silent for the whole timeout, `false` when it answered with success.
    pub async fn run_unanswered<C: qapi::qga::QgaCommand>(&self, command: C) -> Result<bool> {
        match self.agent.execute(command).await {
            Err(AgentError::NotResponding { .. }) => {
                if let Some(observer) = &self.observer {
                    observer.observe(CallOutcome::TimedOut);
                }
                Ok(true)
            }
            result => self.finish(result).map(|_| false),
        }
    }

    fn finish<T>(&self, result: std::result::Result<T, AgentError>) -> Result<T> {
        if let Some(observer) = &self.observer {
            let outcome = match &result {
                Ok(_) | Err(AgentError::Agent { .. }) | Err(AgentError::Protocol(_)) => {
                    Some(CallOutcome::Answered)
                }
                Err(AgentError::NotResponding { .. }) => Some(CallOutcome::TimedOut),
                Err(AgentError::NotConnected { .. }) => Some(CallOutcome::Disconnected),
                Err(AgentError::Invalid(_)) | Err(AgentError::Busy { .. }) => None,
            };
            if let Some(outcome) = outcome {
                observer.observe(outcome);
            }
        }
        result.map_err(|e| agent_error(&self.domain, e))
    }
}
