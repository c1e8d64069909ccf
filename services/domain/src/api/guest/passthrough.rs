//! `Command` (virsh `qemu-agent-command`): any agent command as JSON, the reply as JSON.
//!
//! The handler checks `domain:passthrough` itself as well (the gateway already demands it), so
//! a caller that reaches the service another way with a narrower grant is refused too.

use std::time::Duration;

use serde_json::{Value, json};

use crate::error::{DomainError, Result};
use crate::guest_agent::DomainAgent;

/// The caller's command text as JSON: an object (`{"execute": …, "arguments": …}`); the
/// agent transport checks its members.
pub fn parse_command(text: &str) -> Result<Value> {
    if text.trim().is_empty() {
        return Err(DomainError::InvalidArg(
            "no agent command given (e.g. {\"execute\": \"guest-info\"})".into(),
        ));
    }
    let value: Value = serde_json::from_str(text).map_err(|e| {
        DomainError::InvalidArg(format!("the agent command is not valid JSON: {e}"))
    })?;
    if !value.is_object() {
        return Err(DomainError::InvalidArg(format!(
            "an agent command must be a JSON object like {{\"execute\": \"guest-info\"}}, not \
             {value}"
        )));
    }
    Ok(value)
}

/// The reply text: the agent's `return` value wrapped as qemu-ga sent it, `{"return": …}`.
pub fn reply_text(value: Value) -> String {
    json!({ "return": value }).to_string()
}

/// Runs `command` on `agent`, bounded by `timeout_seconds` when given (0 = the agent's own
/// timeout).
pub async fn run(agent: DomainAgent, command: Value, timeout_seconds: u32) -> Result<String> {
    let agent = if timeout_seconds > 0 {
        agent.with_timeout(Duration::from_secs(u64::from(timeout_seconds)))
    } else {
        agent
    };
    agent.run_raw(command).await.map(reply_text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_object_parses() {
        let value =
            parse_command(r#"{"execute": "guest-exec-status", "arguments": {"pid": 7}}"#).unwrap();
        assert_eq!(value["arguments"]["pid"], 7);
    }

    #[test]
    fn empty_bad_and_non_object_commands_are_refused_with_the_reason() {
        for empty in ["", "  \n"] {
            let e = parse_command(empty).unwrap_err();
            assert!(
                matches!(&e, DomainError::InvalidArg(m) if m.contains("no agent command")),
                "{e}"
            );
        }
        let e = parse_command(r#"{"execute": "guest-info""#).unwrap_err();
        assert!(
            matches!(&e, DomainError::InvalidArg(m) if m.contains("not valid JSON") && m.contains("EOF")),
            "{e}"
        );
        let e = parse_command(r#"["guest-info"]"#).unwrap_err();
        assert!(
            matches!(&e, DomainError::InvalidArg(m) if m.contains("JSON object") && m.contains("[\"guest-info\"]")),
            "{e}"
        );
    }

    #[test]
    fn the_reply_wraps_the_return_value() {
        let text = reply_text(json!({"version": "7.2.22"}));
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, json!({"return": {"version": "7.2.22"}}));
        assert_eq!(reply_text(json!({})), r#"{"return":{}}"#);
    }
}
