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

use std::time::Duration;

use tonic::Status;
use tonic_types::StatusExt;
use virtplane_proto::v1 as pb;

use super::{Ctx, canonical_uuid};
use crate::cli::EventArgs;
use crate::error::Error;
use crate::output::eprint_line;
use crate::view::{Event, EventBody, LifecycleKind};

/// Shortest and longest pause between reconnection attempts.
pub(crate) const BACKOFF_MIN: Duration = Duration::from_millis(200);
pub(crate) const BACKOFF_MAX: Duration = Duration::from_secs(5);

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
    let mut client = ctx.conn.domains();
    let mut last = a.after_sequence;
    let mut backoff = BACKOFF_MIN;
    let mut outage = false;
    // A first call that fails is reported at once (a wrong address should not loop); once
    // a stream has been open, losing it is a reason to reconnect.
    let mut connected_once = false;
    // Replays asked for in a row: events may outrun a replay point; after a few tries the
    // watch goes on with new events only.
    let mut replays = 0;
    loop {
        // No deadline on the stream: it is meant to stay open.
        let req = tonic::Request::new(pb::WatchRequest {
            after_sequence: last,
        });
        let status = match client.watch_events(req).await {
            Err(status) => status,
            Ok(resp) => {
                // Where the stream starts: resuming from it after a drop misses nothing,
                // even when no event arrived before the connection was lost.
                if last == 0
                    && let Some(start) = resp
                        .metadata()
                        .get(virtplane_proto::headers::SEQUENCE)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok())
                {
                    last = start;
                }
                let mut stream = resp.into_inner();
                connected_once = true;
                if outage {
                    eprint_line(format!("reconnected, resuming after event {last}"));
                    outage = false;
                }
                backoff = BACKOFF_MIN;
                loop {
                    match stream.message().await {
                        Ok(Some(ev)) => {
                            last = ev.sequence;
                            let view = Event::from_proto(&ev);
                            if !wanted(a, &view) {
                                continue;
                            }
                            print_event(ctx, &view, a.timestamp)?;
                            *count += 1;
                            if !a.loop_ {
                                return Ok(());
                            }
                        }
                        Ok(None) => {
                            break Status::unavailable("the server closed the event stream");
                        }
                        Err(status) => break status,
                    }
                }
            }
        };
        if resync_needed(&status) {
            match replay_point(&status, last).filter(|_| replays < MAX_REPLAYS) {
                Some(Replay::Restarted(from)) => {
                    eprint_line(format!(
                        "the service restarted since event {last}: events of its downtime are gone; replaying what it reported since it came back"
                    ));
                    last = from;
                }
                Some(Replay::FellBehind(from)) => {
                    eprint_line(format!(
                        "warning: the server no longer holds the events after sequence {last}: some events were missed; replaying from the oldest it holds"
                    ));
                    last = from;
                }
                None => {
                    eprint_line(format!(
                        "warning: the server no longer holds the events after sequence {last}: some events were missed; continuing with new events"
                    ));
                    last = 0;
                }
            }
            replays += 1;
            continue;
        }
        replays = 0;
        let retry = connected_once && retryable(status.code());
        let err = Error::from_status(status, &ctx.conn.server);
        if !retry {
            return Err(err);
        }
        if !outage {
            eprint_line(format!("event stream lost ({err}); reconnecting"));
            outage = true;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Resync attempts that replay retained events before settling for new events only.
pub(crate) const MAX_REPLAYS: u32 = 3;

/// Where to resume after RESYNC_NEEDED, from the oldest sequence the server still holds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Replay {
    /// The server's epoch (high 32 bits) changed: it restarted, and what it holds is all of
    /// its new run, the events of its reattach catch-up first.
    Restarted(u64),
    /// Same run, but the resume point fell out of the retained window.
    FellBehind(u64),
}

pub(crate) fn replay_point(status: &Status, last: u64) -> Option<Replay> {
    let oldest: u64 = status
        .get_details_error_info()?
        .metadata
        .get("oldest")?
        .parse()
        .ok()?;
    let from = oldest.checked_sub(1)?;
    Some(if last >> 32 != oldest >> 32 {
        Replay::Restarted(from)
    } else {
        Replay::FellBehind(from)
    })
}

/// OUT_OF_RANGE on a watch means the resume point fell out of the retained window. A server
/// that names another reason means something else, and is reported as an error.
pub(crate) fn resync_needed(status: &Status) -> bool {
    if status.code() != tonic::Code::OutOfRange {
        return false;
    }
    match status.get_error_details().error_info() {
        Some(info) => info.reason == "RESYNC_NEEDED",
        None => true,
    }
}

/// Codes that mean "the connection or the server went away", worth a reconnect.
pub(crate) fn retryable(code: tonic::Code) -> bool {
    use tonic::Code::*;
    matches!(
        code,
        Unavailable | Unknown | Cancelled | Internal | Aborted | DeadlineExceeded
    )
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
    let mut line = String::new();
    if timestamp {
        let when = e
            .time
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&chrono::Local))
            .unwrap_or_else(chrono::Local::now);
        line.push_str(&when.format("%Y-%m-%d %H:%M:%S%.3f%z: ").to_string());
    }
    line.push_str(&event_text(e));
    ctx.out.line(line)?;
    ctx.out.flush()
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

    #[test]
    fn replay_point_after_a_restart_or_falling_behind() {
        let status = |oldest: Option<u64>| {
            let meta: Vec<(String, String)> = oldest
                .map(|o| ("oldest".into(), o.to_string()))
                .into_iter()
                .collect();
            let details = tonic_types::ErrorDetails::with_error_info(
                "RESYNC_NEEDED",
                "virtplane.dev",
                meta.into_iter()
                    .collect::<std::collections::HashMap<_, _>>(),
            );
            Status::with_error_details(tonic::Code::OutOfRange, "resync", details)
        };
        let epoch = |e: u64, n: u64| (e << 32) | n;
        assert_eq!(
            replay_point(&status(Some(epoch(8, 1))), epoch(7, 40)),
            Some(Replay::Restarted(epoch(8, 0)))
        );
        assert_eq!(
            replay_point(&status(Some(epoch(7, 900))), epoch(7, 40)),
            Some(Replay::FellBehind(epoch(7, 899)))
        );
        assert_eq!(replay_point(&status(None), epoch(7, 40)), None);
    }

    #[test]
    fn resync_detection() {
        assert!(resync_needed(&Status::out_of_range("resync needed")));
        assert!(!resync_needed(&Status::unavailable("x")));
        let mut details = tonic_types::ErrorDetails::new();
        details.set_error_info("RESYNC_NEEDED", "virtplane.dev", []);
        let s = Status::with_error_details(tonic::Code::OutOfRange, "gone", details);
        assert!(resync_needed(&s));
        let mut details = tonic_types::ErrorDetails::new();
        details.set_error_info("MESSAGE_TOO_LARGE", "virtplane.dev", []);
        let s = Status::with_error_details(tonic::Code::OutOfRange, "big", details);
        assert!(!resync_needed(&s));
    }

    #[test]
    fn retry_codes() {
        assert!(retryable(tonic::Code::Unavailable));
        assert!(!retryable(tonic::Code::PermissionDenied));
        assert!(!retryable(tonic::Code::InvalidArgument));
    }
}
