//! The QMP wire format, as pure functions: what one line from QEMU means, and how a command
//! line is built. Kept apart from the socket code so every case is unit-tested without QEMU.
//!
//! QMP is one JSON object per line. QEMU sends a greeting (`{"QMP": …}`), then replies
//! (`{"return": …}` or `{"error": {"class", "desc"}}`, echoing our `"id"`) and events
//! (`{"event", "data", "timestamp"}`) interleaved in any order.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use super::{MonitorError, QmpEvent};

/// One message from QEMU, classified.
#[derive(Debug, PartialEq)]
pub(crate) enum Incoming {
    /// A reply to the command with this id: its `return` value or its QMP error.
    Reply {
        id: Option<u64>,
        result: Result<Value, (String, String)>,
    },
    /// An asynchronous event.
    Event(QmpEvent),
    /// A second greeting or anything else we do not understand: logged and dropped, never fatal,
    /// so a newer QEMU that adds message kinds cannot take the connection down.
    Other(Value),
}

/// Classifies one line. Only text that is not a JSON object is an error: the stream is then out
/// of step and the connection cannot be trusted.
pub(crate) fn parse_line(line: &[u8]) -> Result<Incoming, MonitorError> {
    let value: Value = serde_json::from_slice(line).map_err(|e| {
        MonitorError::Protocol(format!(
            "QEMU sent a line that is not JSON ({e}): {}",
            String::from_utf8_lossy(line)
                .chars()
                .take(200)
                .collect::<String>()
        ))
    })?;
    let Value::Object(mut obj) = value else {
        return Err(MonitorError::Protocol(format!(
            "QEMU sent JSON that is not an object: {value}"
        )));
    };
    if let Some(Value::String(name)) = obj.get("event") {
        let name = name.clone();
        let data = obj.remove("data").unwrap_or(Value::Object(Map::new()));
        let timestamp = obj.get("timestamp").and_then(parse_timestamp);
        return Ok(Incoming::Event(QmpEvent {
            name,
            data,
            timestamp,
        }));
    }
    let id = obj.get("id").and_then(Value::as_u64);
    if let Some(ret) = obj.remove("return") {
        return Ok(Incoming::Reply {
            id,
            result: Ok(ret),
        });
    }
    if let Some(err) = obj.get("error") {
        let text = |key: &str| {
            err.get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        return Ok(Incoming::Reply {
            id,
            result: Err((text("class"), text("desc"))),
        });
    }
    Ok(Incoming::Other(Value::Object(obj)))
}

/// QMP timestamps are `{"seconds", "microseconds"}` since the epoch (QEMU's host clock).
fn parse_timestamp(ts: &Value) -> Option<SystemTime> {
    let secs = ts.get("seconds")?.as_u64()?;
    let micros = ts.get("microseconds")?.as_u64()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(secs) + Duration::from_micros(micros))
}

/// Builds the line for a command: `{"execute": NAME, "arguments": ARGS, "id": ID}`. Empty
/// argument objects are left out, as some commands reject an `arguments` they do not take.
pub(crate) fn command_line(name: &str, arguments: Option<Value>, id: u64) -> String {
    let mut obj = Map::new();
    obj.insert("execute".into(), Value::String(name.into()));
    match arguments {
        Some(Value::Object(args)) if args.is_empty() => {}
        Some(Value::Null) | None => {}
        Some(args) => {
            obj.insert("arguments".into(), args);
        }
    }
    obj.insert("id".into(), Value::from(id));
    let mut line = Value::Object(obj).to_string();
    line.push('\n');
    line
}

/// Splits a user's raw command (`{"execute": …, "arguments": …}`, as `virsh
/// qemu-monitor-command` takes it) into name and arguments. A user's `"id"` is dropped: ids are
/// ours, they route the reply. `exec-oob` and unknown keys are refused rather than silently
/// changed, so the user learns what was not sent.
pub(crate) fn split_raw(command: Value) -> Result<(String, Option<Value>), MonitorError> {
    let Value::Object(mut obj) = command else {
        return Err(MonitorError::Invalid(
            "a QMP command must be a JSON object like {\"execute\": \"query-status\"}".into(),
        ));
    };
    let name = match obj.remove("execute") {
        Some(Value::String(name)) if !name.is_empty() => name,
        Some(_) => {
            return Err(MonitorError::Invalid(
                "\"execute\" must be a command name".into(),
            ));
        }
        None => {
            return Err(MonitorError::Invalid(
                "a QMP command needs an \"execute\" member naming the command".into(),
            ));
        }
    };
    let arguments = obj.remove("arguments");
    if arguments.as_ref().is_some_and(|args| !args.is_object()) {
        return Err(MonitorError::Invalid(
            "\"arguments\" must be a JSON object".into(),
        ));
    }
    obj.remove("id");
    if let Some(key) = obj.keys().next() {
        return Err(MonitorError::Invalid(format!(
            "unsupported member \"{key}\" in a QMP command (only \"execute\" and \"arguments\")"
        )));
    }
    Ok((name, arguments))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Incoming {
        parse_line(v.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn replies_carry_their_id_and_value() {
        assert_eq!(
            parse(json!({"return": {"running": true}, "id": 7})),
            Incoming::Reply {
                id: Some(7),
                result: Ok(json!({"running": true}))
            }
        );
        assert_eq!(
            parse(json!({"error": {"class": "CommandNotFound", "desc": "nope"}, "id": 3})),
            Incoming::Reply {
                id: Some(3),
                result: Err(("CommandNotFound".into(), "nope".into()))
            }
        );
        // QEMU answers a line it could not parse with an error without id.
        assert!(matches!(
            parse(json!({"error": {"class": "GenericError", "desc": "JSON parse error"}})),
            Incoming::Reply { id: None, .. }
        ));
    }

    #[test]
    fn events_keep_name_data_and_time() {
        let Incoming::Event(ev) = parse(json!({
            "event": "STOP", "timestamp": {"seconds": 10, "microseconds": 5}
        })) else {
            panic!("not an event")
        };
        assert_eq!(ev.name, "STOP");
        assert_eq!(ev.data, json!({}));
        assert_eq!(
            ev.timestamp,
            Some(UNIX_EPOCH + Duration::from_secs(10) + Duration::from_micros(5))
        );
        // An event qapi does not know is still delivered, raw.
        let Incoming::Event(ev) = parse(json!({"event": "FUTURE_THING", "data": {"x": 1}})) else {
            panic!("not an event")
        };
        assert_eq!(
            (ev.name.as_str(), ev.data),
            ("FUTURE_THING", json!({"x": 1}))
        );
        assert_eq!(ev.timestamp, None);
    }

    #[test]
    fn odd_lines() {
        assert!(matches!(parse(json!({"QMP": {}})), Incoming::Other(_)));
        assert!(matches!(
            parse_line(b"not json"),
            Err(MonitorError::Protocol(_))
        ));
        assert!(matches!(parse_line(b"[1]"), Err(MonitorError::Protocol(_))));
    }

    #[test]
    fn command_lines() {
        assert_eq!(
            command_line("query-status", None, 1),
            "{\"execute\":\"query-status\",\"id\":1}\n"
        );
        assert_eq!(
            command_line("query-status", Some(json!({})), 2),
            "{\"execute\":\"query-status\",\"id\":2}\n"
        );
        let line = command_line(
            "human-monitor-command",
            Some(json!({"command-line": "info"})),
            3,
        );
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            v,
            json!({"execute": "human-monitor-command", "arguments": {"command-line": "info"}, "id": 3})
        );
    }

    #[test]
    fn raw_commands() {
        assert_eq!(
            split_raw(json!({"execute": "stop", "id": "mine"})).unwrap(),
            ("stop".to_owned(), None)
        );
        assert_eq!(
            split_raw(json!({"execute": "x", "arguments": {"a": 1}})).unwrap(),
            ("x".to_owned(), Some(json!({"a": 1})))
        );
        for bad in [
            json!("stop"),
            json!({}),
            json!({"execute": 1}),
            json!({"execute": "x", "arguments": [1]}),
            json!({"exec-oob": "x"}),
            json!({"execute": "x", "control": {}}),
        ] {
            assert!(
                matches!(split_raw(bad.clone()), Err(MonitorError::Invalid(_))),
                "{bad}"
            );
        }
    }
}
