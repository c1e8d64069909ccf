//! Agent failures as domain errors: which gRPC code each becomes is decided here, once.

use crate::driver::qemu::agent::AgentError;
use crate::error::DomainError;

/// qemu-ga's error class for a command it does not have, or has disabled (`--block-rpcs`).
const COMMAND_NOT_FOUND: &str = "CommandNotFound";

/// `error`, from the agent of domain `domain`, as a [`DomainError`]:
/// - not connected or not answering → `AgentUnavailable` (UNAVAILABLE: the agent may come back);
/// - a command the agent lacks or has disabled → `AgentUnsupported` (UNIMPLEMENTED);
/// - any other refusal → `AgentRefused` (FAILED_PRECONDITION), in the agent's own words;
/// - a reply we cannot read → `Internal`; a malformed command of the caller's → `InvalidArg`.
pub fn agent_error(domain: &str, error: AgentError) -> DomainError {
    match error {
        AgentError::NotConnected { .. }
        | AgentError::NotResponding { .. }
        | AgentError::Busy { .. } => {
            DomainError::AgentUnavailable(format!("domain '{domain}': {error}"))
        }
        AgentError::Agent { class, desc } if class == COMMAND_NOT_FOUND => {
            DomainError::AgentUnsupported(format!(
                "the guest agent of domain '{domain}' does not support this: {desc}"
            ))
        }
        AgentError::Agent { class, desc } => DomainError::AgentRefused(format!(
            "the guest agent of domain '{domain}' refused the command ({class}): {desc}"
        )),
        AgentError::Protocol(_) => DomainError::Internal(format!("domain '{domain}': {error}")),
        AgentError::Invalid(message) => DomainError::InvalidArg(message),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn each_agent_failure_becomes_the_right_domain_error() {
        let e = agent_error(
            "web",
            AgentError::NotResponding {
                command: "guest-ping".into(),
                after: Duration::from_secs(5),
            },
        );
        assert!(
            matches!(&e, DomainError::AgentUnavailable(m) if m.contains("domain 'web'") && m.contains("guest-ping")),
            "{e}"
        );

        let e = agent_error(
            "web",
            AgentError::Agent {
                class: "CommandNotFound".into(),
                desc: "Command guest-exec has been disabled".into(),
            },
        );
        assert!(
            matches!(&e, DomainError::AgentUnsupported(m) if m.contains("guest-exec has been disabled")),
            "{e}"
        );

        let e = agent_error(
            "web",
            AgentError::Agent {
                class: "GenericError".into(),
                desc: "failed to freeze /".into(),
            },
        );
        assert!(
            matches!(&e, DomainError::AgentRefused(m) if m.contains("GenericError") && m.contains("failed to freeze /")),
            "{e}"
        );

        let e = agent_error("web", AgentError::Invalid("no \"execute\" member".into()));
        assert!(
            matches!(&e, DomainError::InvalidArg(m) if m.contains("execute")),
            "{e}"
        );
    }
}
