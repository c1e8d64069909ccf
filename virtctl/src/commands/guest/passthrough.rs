//! `qemu-agent-command` (raw agent JSON, needs `domain:passthrough`) and
//! `guest-agent-timeout`, as virsh's (`virsh-domain.c`). Both take the global `--timeout`
//! with virsh's meaning for them: the agent's timeout, not virtctl's call deadline.

use std::time::Duration;

use clap::Args;
use serde::Serialize;
use serde_json::Value;
use virtplane_proto::v1 as pb;

use crate::cli::DomainArg;
use crate::commands::{Ctx, domain_ref, report_action};
use crate::error::Error;

/// How much longer than the agent's own timeout virtctl waits, so the server's message
/// about the agent (UNAVAILABLE, "did not answer within N s") arrives before virtctl's own
/// deadline does.
const GRACE: Duration = Duration::from_secs(5);

/// `qemu-agent-command DOMAIN [--timeout SECS] [--pretty] CMD...`.
#[derive(Debug, Args)]
pub struct AgentCommandArgs {
    /// Domain name or UUID
    #[arg(value_name = "DOMAIN")]
    pub domain: String,
    /// Pretty-print the reply
    #[arg(long)]
    pub pretty: bool,
    /// The command as JSON, e.g. '{"execute":"guest-info"}' (several words are joined with
    /// spaces, as virsh does). --timeout SECS sets this call's agent timeout.
    #[arg(value_name = "CMD", required = true, num_args = 1..)]
    pub command: Vec<String>,
}

#[derive(Debug, Serialize)]
struct ReplyView {
    domain: String,
    reply: Value,
}

pub async fn qemu_agent_command(ctx: &mut Ctx, a: AgentCommandArgs) -> Result<(), Error> {
    let command = a.command.join(" ");
    if !serde_json::from_str::<Value>(&command).is_ok_and(|v| v.is_object()) {
        return Err(Error::Other(format!(
            "the agent command must be a JSON object such as {{\"execute\":\"guest-info\"}}, \
             not '{command}'"
        )));
    }
    let timeout_seconds = match ctx.timeout_flag {
        Some(t) => {
            // The call lasts as long as the agent may take.
            ctx.conn.timeout = t + GRACE;
            u32::try_from(t.as_secs()).unwrap_or(u32::MAX)
        }
        None => 0,
    };
    let mut client = ctx.conn.guest();
    let request = pb::GuestAgentCommandRequest {
        domain: domain_ref(&a.domain),
        command,
        timeout_seconds,
    };
    let reply = ctx
        .conn
        .unary(client.command(ctx.conn.request(request)))
        .await?
        .reply;
    let parsed = || {
        serde_json::from_str::<Value>(&reply).map_err(|e| {
            Error::Other(format!(
                "failed to parse JSON returned by the guest agent: {e}"
            ))
        })
    };
    if !ctx.out.is_table() {
        return ctx.out.data(&ReplyView {
            domain: a.domain,
            reply: parsed()?,
        });
    }
    if !a.pretty {
        return ctx.out.line(reply.trim_end_matches(['\r', '\n']));
    }
    // As virsh: a reply that does not parse is printed as it came.
    let pretty = pretty_in_order(&reply).unwrap_or(reply);
    ctx.out.line(pretty)
}

/// Pretty-prints JSON keeping the agent's key order (serde_json's `Value` would sort the
/// keys), in serde_json's pretty layout; `None` if `text` is not JSON.
pub fn pretty_in_order(text: &str) -> Option<String> {
    serde_json::from_str::<serde::de::IgnoredAny>(text).ok()?;
    let mut out = String::with_capacity(text.len() * 2);
    let mut depth = 0usize;
    let mut chars = text.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.extend(std::iter::repeat_n(' ', depth * 2));
    };
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                out.push('"');
                let mut escaped = false;
                for s in chars.by_ref() {
                    out.push(s);
                    match (escaped, s) {
                        (false, '\\') => escaped = true,
                        (false, '"') => break,
                        _ => escaped = false,
                    }
                }
            }
            '{' | '[' => {
                out.push(c);
                while chars.peek().is_some_and(|n| n.is_whitespace()) {
                    chars.next();
                }
                if matches!(chars.peek(), Some('}' | ']')) {
                    // An empty object or list stays on one line: `{}`, `[]`.
                    continue;
                }
                depth += 1;
                newline(&mut out, depth);
            }
            '}' | ']' => {
                if !out.ends_with(['{', '[']) {
                    depth = depth.saturating_sub(1);
                    newline(&mut out, depth);
                }
                out.push(c);
            }
            ',' => {
                out.push(',');
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    Some(out)
}

pub async fn guest_agent_timeout(ctx: &mut Ctx, a: DomainArg) -> Result<(), Error> {
    // main made sure --timeout was given; this guards the invariant all the same.
    let Some(timeout) = ctx.timeout_flag else {
        return Err(Error::Other(
            "guest-agent-timeout needs --timeout SECS (0 = the service's default)".into(),
        ));
    };
    let timeout_seconds = u32::try_from(timeout.as_secs()).map_err(|_| {
        Error::Other(format!(
            "--timeout {} is too large for an agent timeout",
            timeout.as_secs()
        ))
    })?;
    let mut client = ctx.conn.guest();
    let request = pb::SetGuestAgentTimeoutRequest {
        domain: domain_ref(&a.domain),
        timeout_seconds,
    };
    ctx.conn
        .unary(client.set_timeout(ctx.conn.request(request)))
        .await?;
    // virsh prints nothing.
    if ctx.out.is_table() {
        return Ok(());
    }
    report_action(ctx, &a.domain, "timeout_set", String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretty_keeps_key_order() {
        let reply = r#"{"return": {"version":"7.2.9","supported_commands":[],"x":{},
            "list":[1, {"b":"a,\"}:[","a":null}]}}"#;
        let want = "{\n  \"return\": {\n    \"version\": \"7.2.9\",\n    \
                    \"supported_commands\": [],\n    \"x\": {},\n    \"list\": [\n      1,\n      \
                    {\n        \"b\": \"a,\\\"}:[\",\n        \"a\": null\n      }\n    ]\n  }\n}";
        assert_eq!(pretty_in_order(reply).unwrap(), want);
        // The same layout as serde_json's where order does not matter.
        let v: Value = serde_json::from_str(reply).unwrap();
        let sorted = serde_json::to_string_pretty(&v).unwrap();
        assert_eq!(pretty_in_order(&sorted).unwrap(), sorted);
        assert_eq!(pretty_in_order("not json"), None);
        assert_eq!(pretty_in_order("[]").unwrap(), "[]");
    }
}
