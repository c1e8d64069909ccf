//! `event`: DomainService.WatchEvents printed as virsh prints domain events.
//!
//! virsh's habits kept: one event and exit unless `--loop`; `--timeout` ends the wait (here
//! the global `--timeout`, which for this command is the listening time, not a call
//! deadline); at the end "events received: N", and exit code 1 if none arrived.
//!
//! What virsh cannot do and this does: every event carries a sequence number, so a dropped
//! connection is resumed from the last event seen, and nothing is lost or printed twice. If the
//! server no longer holds the events after that point (OUT_OF_RANGE, reason RESYNC_NEEDED),
//! virtctl says events were missed and replays what the server still holds (the error names
//! the oldest retained sequence): after a restart of the service, that is everything of its
//! new run, starting with the events of what the VMs did while it was down.

use virtplane_proto::v1 as pb;

use super::watch::{Follow, follow, print_line};
use super::{Ctx, canonical_uuid};
use crate::cli::EventArgs;
use crate::error::Error;
use crate::output::eprint_line;
use crate::view::{Event, EventBody, LifecycleKind};

/// How the wait ended, for virsh's closing lines.
enum Ending {
    Done,
    Interrupted,
    TimedOut,
}

pub async fn event(ctx: &mut Ctx, a: EventArgs) -> Result<(), Error> {
    if a.list {
        for name in [
            "lifecycle",
            "config-changed",
            "reboot",
            "device-added",
            "device-removed",
            "agent-lifecycle",
        ] {
            ctx.out.line(name)?;
        }
        return Ok(());
    }
    event_loop(ctx, async |ctx, count| watch(ctx, &a, count).await).await
}

/// virsh's frame around an event wait, shared by `event` and `qemu-monitor-event`: `watch`
/// runs (counting what it prints) until it ends, Ctrl-C, or the global `--timeout`; then the
/// closing lines ("event loop timed out", "events received: N"), and exit code 1 when
/// nothing arrived.
pub async fn event_loop(
    ctx: &mut Ctx,
    watch: impl AsyncFnOnce(&mut Ctx, &mut u64) -> Result<(), Error>,
) -> Result<(), Error> {
    let timeout = ctx.timeout_flag;
    let mut count: u64 = 0;
    let ending = {
        let watch = watch(ctx, &mut count);
        let deadline = async {
            match timeout {
                Some(t) => tokio::time::sleep(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = watch => r.map(|()| Ending::Done)?,
            _ = tokio::signal::ctrl_c() => Ending::Interrupted,
            () = deadline => Ending::TimedOut,
        }
    };
    let mut closing = Vec::new();
    match ending {
        Ending::Done => {}
        Ending::Interrupted => closing.push("event loop interrupted".to_string()),
        Ending::TimedOut => closing.push("event loop timed out".to_string()),
    }
    closing.push(format!("events received: {count}"));
    for line in closing {
        // Machine output stays one event per line on stdout; the summary goes aside.
        if ctx.out.is_table() {
            ctx.out.line(line)?;
        } else {
            eprint_line(line);
        }
    }
    ctx.out.flush()?;
    // As virsh: waiting without receiving anything is a failure.
    if count == 0 {
        return Err(Error::Quiet);
    }
    Ok(())
}

/// Watches until the first matching event (or forever with `--loop`), reconnecting when an
/// open stream is lost.
async fn watch(ctx: &mut Ctx, a: &EventArgs, count: &mut u64) -> Result<(), Error> {
    let client = ctx.conn.domains();
    let how = Follow {
        service: "service",
        after_sequence: a.after_sequence,
        looping: a.loop_,
    };
    follow(
        ctx,
        how,
        count,
        |after_sequence| {
            let mut client = client.clone();
            // No deadline on the stream: it is meant to stay open.
            async move {
                client
                    .watch_events(tonic::Request::new(pb::WatchRequest { after_sequence }))
                    .await
            }
        },
        |event: &pb::DomainEvent| event.sequence,
        |ctx, event| {
            let view = Event::from_proto(event);
            if !wanted(a, &view) {
                return Ok(false);
            }
            print_event(ctx, &view, a.timestamp)?;
            Ok(true)
        },
    )
    .await
}

/// Applies `--domain` and `--event`.
fn wanted(a: &EventArgs, e: &Event) -> bool {
    if let Some(kind) = a.event
        && e.body.name() != kind.name()
    {
        return false;
    }
    if let Some(d) = &a.domain {
        let by_uuid = canonical_uuid(d)
            .zip(canonical_uuid(&e.uuid))
            .is_some_and(|(x, y)| x == y);
        if !by_uuid && *d != e.domain {
            return false;
        }
    }
    true
}

fn print_event(ctx: &mut Ctx, e: &Event, timestamp: bool) -> Result<(), Error> {
    if !ctx.out.is_table() {
        return ctx.out.data_line(e);
    }
    print_line(ctx, e.time.as_deref(), timestamp, &event_text(e))
}

/// virsh's event line, without the timestamp.
pub fn event_text(e: &Event) -> String {
    let what = match &e.body {
        EventBody::Lifecycle { kind, detail } => {
            format!("{} {}", kind.virsh_word(), virsh_detail(*kind, detail))
        }
        EventBody::ConfigChanged { what } => what.clone(),
        // virsh: "event 'device-removed' for domain 'NAME': virtio-disk1".
        EventBody::DeviceAdded { alias } | EventBody::DeviceRemoved { alias } => alias.clone(),
        // virsh: "event 'reboot' for domain 'NAME'", nothing after.
        EventBody::Reboot => {
            return format!("event 'reboot' for domain '{}'", e.domain);
        }
        // virsh: "event 'agent-lifecycle' for domain 'NAME': state: 'connected' reason:
        // 'channel event'".
        EventBody::AgentLifecycle {
            state, reason_text, ..
        } => format!("state: '{}' reason: '{reason_text}'", state.virsh_word()),
        EventBody::Unknown => "unknown".to_string(),
    };
    format!(
        "event '{}' for domain '{}': {what}",
        e.body.name(),
        e.domain
    )
}

/// virsh's capitalised detail word (`virshDomainEventDetailToString`) for the server's
/// lowercase one: the irregular ones from virsh's tables, otherwise the first letter raised.
pub fn virsh_detail(kind: LifecycleKind, detail: &str) -> String {
    let key = detail.to_ascii_lowercase().replace(['-', ' '], "_");
    let irregular = match (kind, key.as_str()) {
        (_, "") => Some("unknown"),
        (_, "ioerror" | "io_error") => Some("I/O Error"),
        (_, "api_error") => Some("API error"),
        (_, "post_copy" | "postcopy") => Some("Post-copy"),
        (_, "post_copy_failed" | "post_copy_error") => Some("Post-copy Error"),
        (_, "wakeup" | "event_wakeup") => Some("Event wakeup"),
        (_, "from_snapshot" | "snapshot") => Some("Snapshot"),
        (LifecycleKind::Shutdown, "guest" | "finished_after_guest_request") => {
            Some("Finished after guest request")
        }
        (LifecycleKind::Shutdown, "host" | "finished_after_host_request") => {
            Some("Finished after host request")
        }
        _ => None,
    };
    if let Some(word) = irregular {
        return word.to_string();
    }
    let spaced = key.replace('_', " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lifecycle(kind: LifecycleKind, detail: &str) -> Event {
        Event {
            sequence: 1,
            time: None,
            domain: "web".into(),
            uuid: "6695eb01-f6a4-8304-79aa-97f2502e193f".into(),
            body: EventBody::Lifecycle {
                kind,
                detail: detail.into(),
            },
        }
    }

    #[test]
    fn lines_like_virsh() {
        assert_eq!(
            event_text(&lifecycle(LifecycleKind::Started, "booted")),
            "event 'lifecycle' for domain 'web': Started Booted"
        );
        assert_eq!(
            event_text(&lifecycle(LifecycleKind::Stopped, "destroyed")),
            "event 'lifecycle' for domain 'web': Stopped Destroyed"
        );
        assert_eq!(
            event_text(&lifecycle(LifecycleKind::Suspended, "ioerror")),
            "event 'lifecycle' for domain 'web': Suspended I/O Error"
        );
        assert_eq!(
            event_text(&lifecycle(LifecycleKind::PmSuspended, "memory")),
            "event 'lifecycle' for domain 'web': PMSuspended Memory"
        );
        assert_eq!(
            event_text(&lifecycle(LifecycleKind::Shutdown, "guest")),
            "event 'lifecycle' for domain 'web': Shutdown Finished after guest request"
        );
        let c = Event {
            body: EventBody::ConfigChanged {
                what: "vcpus".into(),
            },
            ..lifecycle(LifecycleKind::Defined, "")
        };
        assert_eq!(
            event_text(&c),
            "event 'config-changed' for domain 'web': vcpus"
        );
        let agent = Event::from_proto(&pb::DomainEvent {
            sequence: 2,
            time: None,
            domain_name: "web".into(),
            domain_uuid: String::new(),
            body: Some(pb::domain_event::Body::AgentLifecycle(
                pb::AgentLifecycleEvent {
                    state: pb::GuestAgentState::Connected as i32,
                    reason: pb::AgentLifecycleReason::Channel as i32,
                },
            )),
        });
        assert_eq!(
            event_text(&agent),
            "event 'agent-lifecycle' for domain 'web': state: 'connected' reason: 'channel event'"
        );
        let stopped = Event::from_proto(&pb::DomainEvent {
            body: Some(pb::domain_event::Body::AgentLifecycle(
                pb::AgentLifecycleEvent {
                    state: pb::GuestAgentState::Disconnected as i32,
                    reason: pb::AgentLifecycleReason::DomainStarted as i32,
                },
            )),
            ..pb::DomainEvent::default()
        });
        assert!(
            event_text(&stopped).ends_with(": state: 'disconnected' reason: 'domain started'"),
            "{}",
            event_text(&stopped)
        );
        let v = serde_json::to_value(&agent).unwrap();
        assert_eq!(v["event"], "agent-lifecycle");
        assert_eq!(v["state"], "connected");
        assert_eq!(v["reason"], "channel");
        assert!(v.get("reason_text").is_none());
    }

    fn args(extra: &[&str]) -> EventArgs {
        use crate::cli::{Cli, Command};
        use clap::Parser;
        let cli = Cli::try_parse_from(["virtctl", "event"].iter().chain(extra.iter())).unwrap();
        match cli.command {
            Command::Event(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn filters() {
        let e = lifecycle(LifecycleKind::Started, "booted");
        assert!(wanted(&args(&[]), &e));
        assert!(wanted(&args(&["--domain", "web"]), &e));
        assert!(!wanted(&args(&["--domain", "db"]), &e));
        assert!(wanted(
            &args(&["--domain", "6695EB01-F6A4-8304-79AA-97F2502E193F"]),
            &e
        ));
        assert!(wanted(&args(&["--event", "lifecycle"]), &e));
        assert!(!wanted(&args(&["--event", "config-changed"]), &e));
    }
}
