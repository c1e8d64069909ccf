//! QEMU passthrough (needs `domain:passthrough`, the admin role): `qemu-monitor-command` and
//! `qemu-monitor-event`, with virsh's arguments and output (`virsh-domain.c`).

use clap::Args;
use serde::Serialize;
use serde_json::Value;
use virtplane_proto::v1 as pb;

use super::{Ctx, domain_ref};
use crate::error::Error;

/// `qemu-monitor-command DOMAIN [--hmp] [--pretty] [--return-value] CMD...`.
#[derive(Debug, Args)]
pub struct MonitorCommandArgs {
    /// Domain name or UUID
    #[arg(value_name = "DOMAIN")]
    pub domain: String,
    /// CMD is an HMP command line (e.g. `info status`) rather than QMP
    #[arg(long)]
    pub hmp: bool,
    /// Pretty-print QMP's JSON reply
    #[arg(long, conflicts_with = "hmp")]
    pub pretty: bool,
    /// Print only the reply's `return` value
    #[arg(long, conflicts_with = "hmp")]
    pub return_value: bool,
    /// A QMP command as JSON, or a command name and its arguments (`query-status`,
    /// `qom-get '"path":"/machine"' '"property":"type"'`), or with --hmp a command line
    #[arg(value_name = "CMD", required = true, num_args = 1.., allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// `qemu-monitor-event [--domain DOMAIN] [--event NAME] [--no-case] [--loop] ...`.
#[derive(Debug, Args)]
pub struct MonitorEventArgs {
    /// Only events of this domain (name or UUID); default: every domain
    #[arg(long, value_name = "DOMAIN")]
    pub domain: Option<String>,
    /// Only events with this name (e.g. STOP)
    #[arg(long, value_name = "NAME")]
    pub event: Option<String>,
    /// Compare --event case-insensitively
    #[arg(long, requires = "event")]
    pub no_case: bool,
    /// Keep printing events until --timeout or Ctrl-C, rather than stop after one
    #[arg(long = "loop")]
    pub loop_: bool,
    /// Print the local time instead of QEMU's timestamp
    #[arg(long)]
    pub timestamp: bool,
    /// Pretty-print each event's JSON details
    #[arg(long)]
    pub pretty: bool,
}

/// virsh's QMP wrapping of `qemu-monitor-command` arguments: a JSON object passes through;
/// otherwise the first word is the command and the rest its arguments, either one JSON
/// object or `"key":value` pieces joined into one.
pub fn wrap_qmp(words: &[String]) -> Result<String, Error> {
    let full = words.join(" ");
    if serde_json::from_str::<Value>(&full).is_ok_and(|v| v.is_object()) {
        return Ok(full);
    }
    let Some((name, rest)) = words.split_first() else {
        return Err(Error::Other("no monitor command given".into()));
    };
    let mut command = serde_json::Map::new();
    command.insert("execute".into(), Value::String(name.clone()));
    if !rest.is_empty() {
        let joined = rest.join(" ");
        let arguments = match serde_json::from_str::<Value>(&joined) {
            Ok(value) if value.is_object() => value,
            _ => {
                let wrapped = format!("{{{}}}", rest.join(","));
                serde_json::from_str::<Value>(&wrapped).map_err(|_| {
                    Error::Other(format!(
                        "failed to wrap arguments '{joined}' into a QMP command wrapper"
                    ))
                })?
            }
        };
        command.insert("arguments".into(), arguments);
    }
    Ok(Value::Object(command).to_string())
}

#[derive(Debug, Serialize)]
struct CommandReply {
    domain: String,
    /// QMP: the reply as JSON; HMP: the output text.
    reply: Value,
}

pub async fn monitor_command(ctx: &mut Ctx, a: MonitorCommandArgs) -> Result<(), Error> {
    let command = if a.hmp {
        a.command.join(" ")
    } else {
        wrap_qmp(&a.command)?
    };
    let mut client = ctx.conn.qemu();
    let request = pb::MonitorCommandRequest {
        domain: domain_ref(&a.domain),
        command,
        hmp: a.hmp,
    };
    let reply = ctx
        .conn
        .unary(client.monitor_command(ctx.conn.request(request)))
        .await?
        .reply;
    let parsed = || {
        serde_json::from_str::<Value>(&reply)
            .map_err(|e| Error::Other(format!("failed to parse JSON returned by qemu: {e}")))
    };
    if !ctx.out.is_table() {
        let reply = if a.hmp {
            Value::String(reply.clone())
        } else {
            parsed()?
        };
        return ctx.out.data(&CommandReply {
            domain: a.domain,
            reply,
        });
    }
    if a.hmp || !(a.pretty || a.return_value) {
        return ctx.out.line(reply.trim_end_matches(['\r', '\n']));
    }
    let mut value = parsed()?;
    if a.return_value {
        value = value
            .get_mut("return")
            .map(Value::take)
            .ok_or_else(|| Error::Other("'return' member missing".into()))?;
    }
    let text = if a.pretty {
        serde_json::to_string_pretty(&value)
    } else {
        serde_json::to_string(&value)
    }
    .map_err(|e| Error::Other(e.to_string()))?;
    ctx.out.line(text)
}

#[derive(Debug, Serialize)]
struct EventView {
    domain: String,
    uuid: String,
    event: String,
    /// QEMU's timestamp, seconds since the epoch with microseconds.
    time: Option<f64>,
    data: Value,
}

pub async fn monitor_event(ctx: &mut Ctx, a: MonitorEventArgs) -> Result<(), Error> {
    super::events::event_loop(ctx, async |ctx, count| watch(ctx, &a, count).await).await
}

async fn watch(ctx: &mut Ctx, a: &MonitorEventArgs, count: &mut u64) -> Result<(), Error> {
    let mut client = ctx.conn.qemu();
    // No deadline: the stream is meant to stay open.
    let request = tonic::Request::new(pb::MonitorEventsRequest {
        domain: a.domain.as_deref().and_then(domain_ref),
        event: a.event.clone().unwrap_or_default(),
        nocase: a.no_case,
    });
    let server = ctx.conn.server.clone();
    let mut stream = client
        .monitor_events(request)
        .await
        .map_err(|s| Error::from_status(s, &server))?
        .into_inner();
    loop {
        match stream.message().await {
            Ok(Some(event)) => {
                print_event(ctx, &event, a)?;
                *count += 1;
                if !a.loop_ {
                    return Ok(());
                }
            }
            Ok(None) => {
                return Err(Error::Other(
                    "the server closed the monitor event stream".into(),
                ));
            }
            Err(status) => return Err(Error::from_status(status, &server)),
        }
    }
}

fn print_event(ctx: &mut Ctx, e: &pb::MonitorEvent, a: &MonitorEventArgs) -> Result<(), Error> {
    if !ctx.out.is_table() {
        let view = EventView {
            domain: e.domain_name.clone(),
            uuid: e.domain_uuid.clone(),
            event: e.event.clone(),
            time: e
                .time
                .as_ref()
                .map(|t| t.seconds as f64 + f64::from(t.nanos) / 1e9),
            data: serde_json::from_str(&e.data).unwrap_or(Value::Null),
        };
        return ctx.out.data_line(&view);
    }
    let local = a.timestamp.then(|| {
        chrono::Local::now()
            .format("%Y-%m-%d %H:%M:%S%.3f%z")
            .to_string()
    });
    ctx.out.line(event_text(e, local.as_deref(), a.pretty))?;
    ctx.out.flush()
}

/// virsh's line: `event NAME at SECS.MICROS for domain 'D': DETAILS`, or with a local
/// timestamp `TIME: event NAME for domain 'D': DETAILS`; `<null>` when there are no details.
pub fn event_text(e: &pb::MonitorEvent, local_time: Option<&str>, pretty: bool) -> String {
    let details = if e.data.is_empty() {
        "<null>".to_string()
    } else if pretty {
        serde_json::from_str::<Value>(&e.data)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or_else(|| e.data.clone())
    } else {
        e.data.clone()
    };
    match local_time {
        Some(time) => format!(
            "{time}: event {} for domain '{}': {details}",
            e.event, e.domain_name
        ),
        None => {
            let (secs, micros) = e
                .time
                .as_ref()
                .map_or((0, 0), |t| (t.seconds, t.nanos / 1000));
            format!(
                "event {} at {secs}.{micros:06} for domain '{}': {details}",
                e.event, e.domain_name
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    fn json(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn qmp_wrapping_like_virsh() {
        assert_eq!(
            json(&wrap_qmp(&words(&[r#"{"execute":"query-status"}"#])).unwrap()),
            json(r#"{"execute":"query-status"}"#)
        );
        assert_eq!(
            json(&wrap_qmp(&words(&["query-status"])).unwrap()),
            json(r#"{"execute":"query-status"}"#)
        );
        assert_eq!(
            json(
                &wrap_qmp(&words(&[
                    "qom-get",
                    r#""path":"/machine""#,
                    r#""property":"type""#
                ]))
                .unwrap()
            ),
            json(r#"{"execute":"qom-get","arguments":{"path":"/machine","property":"type"}}"#)
        );
        assert_eq!(
            json(
                &wrap_qmp(&words(&[
                    "qom-get",
                    r#"{"path":"/machine","property":"type"}"#
                ]))
                .unwrap()
            ),
            json(r#"{"execute":"qom-get","arguments":{"path":"/machine","property":"type"}}"#)
        );
        let err = wrap_qmp(&words(&["qom-get", "not json"])).unwrap_err();
        assert!(
            err.to_string().contains("failed to wrap arguments"),
            "{err}"
        );
    }

    #[test]
    fn event_lines_like_virsh() {
        let e = pb::MonitorEvent {
            domain_name: "web".into(),
            domain_uuid: "u".into(),
            event: "STOP".into(),
            data: String::new(),
            time: Some(prost_types::Timestamp {
                seconds: 1700000000,
                nanos: 42_000,
            }),
        };
        assert_eq!(
            event_text(&e, None, false),
            "event STOP at 1700000000.000042 for domain 'web': <null>"
        );
        let with_data = pb::MonitorEvent {
            data: r#"{"reason":"host-qmp-quit"}"#.into(),
            ..e
        };
        assert_eq!(
            event_text(&with_data, Some("2024-01-01 10:00:00.000+0000"), false),
            "2024-01-01 10:00:00.000+0000: event STOP for domain 'web': {\"reason\":\"host-qmp-quit\"}"
        );
        assert!(event_text(&with_data, None, true).contains("\n  \"reason\""));
    }
}
