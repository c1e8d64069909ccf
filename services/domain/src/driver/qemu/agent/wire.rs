//! The guest agent's wire format, as pure functions: command lines, the sync handshake, and
//! what a reply means. Kept apart from the socket code so every case is tested without a guest.
//!
//! qemu-ga speaks QMP's JSON without greeting or events: one command object per request, one
//! reply object (`{"return": …}` or `{"error": {"class", "desc"}}`) per command, each reply
//! ending in a newline, echoing the request's `"id"`. `guest-sync-delimited` answers after a
//! 0xFF byte, a value that never occurs in JSON text, so a client can find the start of that
//! answer in a stream still full of older output.

use serde_json::{Map, Value};

use super::AgentError;

/// The byte before a `guest-sync-delimited` reply; sent by us, it resets the agent's JSON
/// parser (it is invalid UTF-8), dropping half a command an abandoned call may have left.
pub(crate) const SENTINEL: u8 = 0xFF;

/// The handshake that starts every connection: the sentinel, then `guest-sync-delimited`
/// carrying `id`.
pub(crate) fn sync_request(id: u64) -> Vec<u8> {
    let mut bytes = vec![SENTINEL];
    bytes.extend_from_slice(
        command_line(
            "guest-sync-delimited",
            Some(serde_json::json!({ "id": id })),
            None,
        )
        .as_bytes(),
    );
    bytes
}

/// True if `line` (the text after a sentinel) is the answer to the sync carrying `id`.
pub(crate) fn is_sync_reply(line: &[u8], id: u64) -> bool {
    serde_json::from_slice::<Value>(line)
        .ok()
        .and_then(|v| v.get("return").and_then(Value::as_u64))
        == Some(id)
}

/// Builds the line for a command: `{"execute": NAME, "arguments": ARGS, "id": ID}`. Empty
/// argument objects are left out, as commands without arguments reject an `arguments` member.
pub(crate) fn command_line(name: &str, arguments: Option<Value>, id: Option<u64>) -> String {
    let mut obj = Map::new();
    obj.insert("execute".into(), Value::String(name.into()));
    match arguments {
        Some(Value::Object(args)) if args.is_empty() => {}
        Some(Value::Null) | None => {}
        Some(args) => {
            obj.insert("arguments".into(), args);
        }
    }
    if let Some(id) = id {
        obj.insert("id".into(), Value::from(id));
    }
    let mut line = Value::Object(obj).to_string();
    line.push('\n');
    line
}

/// What one reply line says about the call with id `id`: its `return` value, the agent's
/// error, or a protocol error when it is not a reply to that call (the stream is then out of
/// step and the connection must go).
pub(crate) fn parse_reply(line: &[u8], id: u64) -> Result<Value, AgentError> {
    let value: Value = serde_json::from_slice(line).map_err(|e| {
        AgentError::Protocol(format!(
            "the agent sent a line that is not JSON ({e}): {}",
            String::from_utf8_lossy(line)
                .chars()
                .take(200)
                .collect::<String>()
        ))
    })?;
    let Value::Object(mut obj) = value else {
        return Err(AgentError::Protocol(format!(
            "the agent sent JSON that is not an object: {value}"
        )));
    };
    // qemu-ga echoes the id; one that differs means a reply to some other call.
    match obj.get("id") {
        None => {}
        Some(got) if got.as_u64() == Some(id) => {}
        Some(got) => {
            return Err(AgentError::Protocol(format!(
                "expected the reply to request {id}, got one for request {got}"
            )));
        }
    }
    if let Some(ret) = obj.remove("return") {
        return Ok(ret);
    }
    if let Some(err) = obj.get("error") {
        let text = |key: &str| {
            err.get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        return Err(AgentError::Agent {
            class: text("class"),
            desc: text("desc"),
        });
    }
    Err(AgentError::Protocol(format!(
        "the agent sent an object that is no reply: {}",
        Value::Object(obj)
    )))
}

/// Splits a user's raw command (`{"execute": …, "arguments": …}`, as `virsh
/// qemu-agent-command` takes it) into name and arguments. A user's `"id"` is dropped (ids are
/// ours, they match replies); the sync commands and unknown members are refused rather than
/// silently changed, so the user learns what was not sent.
pub(crate) fn split_raw(command: Value) -> Result<(String, Option<Value>), AgentError> {
    let Value::Object(mut obj) = command else {
        return Err(AgentError::Invalid(
            "an agent command must be a JSON object like {\"execute\": \"guest-info\"}".into(),
        ));
    };
    let name = match obj.remove("execute") {
        Some(Value::String(name)) if !name.is_empty() => name,
        Some(other) => {
            return Err(AgentError::Invalid(format!(
                "\"execute\" must be a command name, not {other}"
            )));
        }
        None => {
            return Err(AgentError::Invalid(
                "an agent command needs an \"execute\" member naming the command".into(),
            ));
        }
    };
    if name == "guest-sync" || name == "guest-sync-delimited" {
        return Err(AgentError::Invalid(format!(
            "{name} is the transport's own handshake; every connection already starts with it"
        )));
    }
    let arguments = obj.remove("arguments");
    if arguments.as_ref().is_some_and(|args| !args.is_object()) {
        return Err(AgentError::Invalid(
            "\"arguments\" must be a JSON object".into(),
        ));
    }
    obj.remove("id");
    if let Some(key) = obj.keys().next() {
        return Err(AgentError::Invalid(format!(
            "unsupported member \"{key}\" in an agent command (only \"execute\" and \"arguments\")"
        )));
    }
    Ok((name, arguments))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sync_request_starts_with_the_sentinel() {
        let bytes = sync_request(42);
        assert_eq!(bytes[0], SENTINEL);
        let v: Value = serde_json::from_slice(&bytes[1..]).unwrap();
        assert_eq!(
            v,
            json!({"execute": "guest-sync-delimited", "arguments": {"id": 42}})
        );
        assert_eq!(bytes.last(), Some(&b'\n'));
    }

    #[test]
    fn only_the_own_sync_reply_counts() {
        assert!(is_sync_reply(br#"{"return": 42}"#, 42));
        assert!(!is_sync_reply(br#"{"return": 41}"#, 42));
        assert!(!is_sync_reply(br#"{"return": {}}"#, 42));
        assert!(!is_sync_reply(b"garbage", 42));
    }

    #[test]
    fn command_lines_leave_out_empty_arguments() {
        let parse = |line: String| {
            assert!(line.ends_with('\n'), "{line:?}");
            serde_json::from_str::<Value>(&line).unwrap()
        };
        assert_eq!(
            parse(command_line("guest-ping", Some(json!({})), Some(3))),
            json!({"execute": "guest-ping", "id": 3})
        );
        assert_eq!(
            parse(command_line(
                "guest-exec",
                Some(json!({"path": "/bin/true"})),
                None
            )),
            json!({"execute": "guest-exec", "arguments": {"path": "/bin/true"}})
        );
    }

    #[test]
    fn replies_are_matched_by_id() {
        assert_eq!(
            parse_reply(br#"{"return": {"a": 1}, "id": 7}"#, 7).unwrap(),
            json!({"a": 1})
        );
        // An agent that does not echo ids is still understood (we are in sync anyway).
        assert_eq!(parse_reply(br#"{"return": 5}"#, 7).unwrap(), json!(5));
        assert!(matches!(
            parse_reply(br#"{"return": {}, "id": 6}"#, 7),
            Err(AgentError::Protocol(_))
        ));
        let Err(AgentError::Agent { class, desc }) = parse_reply(
            br#"{"error": {"class": "CommandNotFound", "desc": "nope"}, "id": 7}"#,
            7,
        ) else {
            panic!("not an agent error")
        };
        assert_eq!((class.as_str(), desc.as_str()), ("CommandNotFound", "nope"));
        assert!(matches!(
            parse_reply(b"not json", 7),
            Err(AgentError::Protocol(_))
        ));
        assert!(matches!(
            parse_reply(b"[1]", 7),
            Err(AgentError::Protocol(_))
        ));
        assert!(matches!(
            parse_reply(br#"{"hello": 1}"#, 7),
            Err(AgentError::Protocol(_))
        ));
    }

    #[test]
    fn raw_commands() {
        assert_eq!(
            split_raw(json!({"execute": "guest-info", "id": "mine"})).unwrap(),
            ("guest-info".to_owned(), None)
        );
        assert_eq!(
            split_raw(json!({"execute": "guest-exec", "arguments": {"path": "/bin/true"}}))
                .unwrap(),
            ("guest-exec".to_owned(), Some(json!({"path": "/bin/true"})))
        );
        for bad in [
            json!("guest-info"),
            json!({"arguments": {}}),
            json!({"execute": 1}),
            json!({"execute": "guest-info", "arguments": [1]}),
            json!({"execute": "guest-info", "exec-oob": "x"}),
            json!({"execute": "guest-sync", "arguments": {"id": 1}}),
        ] {
            assert!(
                matches!(split_raw(bad.clone()), Err(AgentError::Invalid(_))),
                "{bad} accepted"
            );
        }
    }
}
