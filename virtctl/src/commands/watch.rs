//! Following a service's watch stream, the same for every service (`event`, `net-event`,
//! `pool-event`): one event and exit unless looping; a stream that drops after it was open is
//! resumed from the last sequence seen, so nothing is lost or printed twice; a resume point
//! the server no longer holds (OUT_OF_RANGE, reason RESYNC_NEEDED) is said and replayed from
//! the oldest event the server holds — after a restart of the service, everything of its new
//! run.

use std::future::Future;
use std::time::Duration;

use tonic::Status;
use tonic::codec::Streaming;
use tonic_types::StatusExt;

use super::Ctx;
use crate::error::Error;
use crate::output::eprint_line;

/// Shortest and longest pause between reconnection attempts.
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Resync attempts that replay retained events before settling for new events only.
const MAX_REPLAYS: u32 = 3;

/// Where and how to follow.
#[derive(Debug, Clone, Copy)]
pub struct Follow<'a> {
    /// The service, as messages name it: "service" (the domain service), "network service".
    pub service: &'a str,
    /// The last sequence already seen (0: only new events).
    pub after_sequence: u64,
    /// Keep going after the first event shown.
    pub looping: bool,
}

/// Follows the stream `open(after)` gives, showing each event with `show` (which returns
/// whether the event was wanted and shown), counting what was shown.
pub async fn follow<E, Open, Fut>(
    ctx: &mut Ctx,
    how: Follow<'_>,
    count: &mut u64,
    mut open: Open,
    sequence_of: impl Fn(&E) -> u64,
    mut show: impl FnMut(&mut Ctx, &E) -> Result<bool, Error>,
) -> Result<(), Error>
where
    Open: FnMut(u64) -> Fut,
    Fut: Future<Output = Result<tonic::Response<Streaming<E>>, Status>>,
{
    let mut last = how.after_sequence;
    let mut backoff = BACKOFF_MIN;
    let mut outage = false;
    // A first call that fails is reported at once (a wrong address should not loop); once
    // a stream has been open, losing it is a reason to reconnect.
    let mut connected_once = false;
    // Replays asked for in a row: events may outrun a replay point; after a few tries the
    // watch goes on with new events only.
    let mut replays = 0;
    loop {
        let status = match open(last).await {
            Err(status) => status,
            Ok(response) => {
                // Where the stream starts: resuming from it after a drop misses nothing,
                // even when no event arrived before the connection was lost.
                if last == 0
                    && let Some(start) = response
                        .metadata()
                        .get(virtplane_proto::headers::SEQUENCE)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok())
                {
                    last = start;
                }
                let mut stream = response.into_inner();
                connected_once = true;
                if outage {
                    eprint_line(format!("reconnected, resuming after event {last}"));
                    outage = false;
                }
                backoff = BACKOFF_MIN;
                loop {
                    match stream.message().await {
                        Ok(Some(event)) => {
                            last = sequence_of(&event);
                            if !show(ctx, &event)? {
                                continue;
                            }
                            *count += 1;
                            if !how.looping {
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
            let service = how.service;
            match replay_point(&status, last).filter(|_| replays < MAX_REPLAYS) {
                Some(Replay::Restarted(from)) => {
                    eprint_line(format!(
                        "the {service} restarted since event {last}: events of its downtime are gone; replaying what it reported since it came back"
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
        let error = Error::from_status(status, &ctx.conn.server);
        if !retry {
            return Err(error);
        }
        if !outage {
            eprint_line(format!("event stream lost ({error}); reconnecting"));
            outage = true;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// An event line as virsh prints it, with virsh's `--timestamp` prefix when asked; `time`
/// is the event's RFC 3339 time (now when it has none).
pub fn print_line(
    ctx: &mut Ctx,
    time: Option<&str>,
    timestamp: bool,
    text: &str,
) -> Result<(), Error> {
    let mut line = String::new();
    if timestamp {
        let when = time
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&chrono::Local))
            .unwrap_or_else(chrono::Local::now);
        line.push_str(&when.format("%Y-%m-%d %H:%M:%S%.3f%z: ").to_string());
    }
    line.push_str(text);
    ctx.out.line(line)?;
    ctx.out.flush()
}

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

#[cfg(test)]
mod tests {
    use super::*;

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
