//! `pool-event`: StorageService.WatchEvents printed as virsh prints storage pool events
//! ("event 'lifecycle' for storage pool default: Started", "event 'refresh' for storage pool
//! default").
//!
//! The frame is `event`'s and `net-event`'s (`commands::events::event_loop`: one event unless
//! `--loop`, the global `--timeout` as listening time, "events received: N", exit 1 when
//! none arrived), and so is the resilience: a dropped stream is resumed from the last
//! sequence seen, and a resume point the service no longer holds (RESYNC_NEEDED) is reported
//! and replayed from the oldest retained event. Unlike virsh, `--event` is optional (without
//! it every type is shown), and volumes have events of their own, type `volume`
//! ("event 'volume' for storage volume disk.qcow2 in pool default: Created").

use clap::{Args, ValueEnum};
use virtplane_proto::v1 as pb;

use super::view::StorageEvent;
use crate::commands::events::event_loop;
use crate::commands::watch::{Follow, follow, print_line};
use crate::commands::{Ctx, canonical_uuid};
use crate::error::Error;

/// The storage event types: virsh's two (`virshPoolEventCallbacks`) and virtplane's volume
/// events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PoolEventKind {
    Lifecycle,
    Refresh,
    Volume,
}

impl PoolEventKind {
    fn name(self) -> &'static str {
        match self {
            PoolEventKind::Lifecycle => "lifecycle",
            PoolEventKind::Refresh => "refresh",
            PoolEventKind::Volume => "volume",
        }
    }
}

#[derive(Debug, Args)]
pub struct PoolEventArgs {
    /// Only events of this pool (name or UUID)
    #[arg(long, value_name = "POOL")]
    pub pool: Option<String>,
    /// Only events of this type (default: every type)
    #[arg(long, value_enum, value_name = "TYPE")]
    pub event: Option<PoolEventKind>,
    /// Keep printing events until --timeout or Ctrl-C, rather than stop after one
    #[arg(long = "loop")]
    pub loop_: bool,
    /// Print the local time before each event
    #[arg(long)]
    pub timestamp: bool,
    /// Start after this sequence number (replay retained events newer than it)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub after_sequence: u64,
    /// List the event types and exit
    #[arg(long, conflicts_with = "event")]
    pub list: bool,
}

pub async fn pool_event(ctx: &mut Ctx, a: PoolEventArgs) -> Result<(), Error> {
    if a.list {
        for kind in PoolEventKind::value_variants() {
            ctx.out.line(kind.name())?;
        }
        return Ok(());
    }
    event_loop(ctx, async |ctx, count| watch(ctx, &a, count).await).await
}

/// virsh's line, without the timestamp.
pub fn event_text(e: &StorageEvent) -> String {
    match (&e.volume, e.event) {
        (Some(volume), _) => format!(
            "event 'volume' for storage volume {volume} in pool {}: {}",
            e.pool,
            e.virsh_word()
        ),
        (None, "refresh") => format!("event 'refresh' for storage pool {}", e.pool),
        (None, _) => format!(
            "event 'lifecycle' for storage pool {}: {}",
            e.pool,
            e.virsh_word()
        ),
    }
}

/// Applies `--pool` (name or UUID) and `--event`.
fn wanted(a: &PoolEventArgs, e: &StorageEvent) -> bool {
    if let Some(kind) = a.event
        && kind.name() != e.event
    {
        return false;
    }
    let Some(p) = &a.pool else {
        return true;
    };
    let by_uuid = canonical_uuid(p)
        .zip(canonical_uuid(&e.uuid))
        .is_some_and(|(x, y)| x == y);
    by_uuid || *p == e.pool
}

fn print_event(ctx: &mut Ctx, e: &StorageEvent, timestamp: bool) -> Result<(), Error> {
    if !ctx.out.is_table() {
        return ctx.out.data_line(e);
    }
    print_line(ctx, e.time.as_deref(), timestamp, &event_text(e))
}

/// Watches until the first matching event (or forever with `--loop`), reconnecting when an
/// open stream is lost.
async fn watch(ctx: &mut Ctx, a: &PoolEventArgs, count: &mut u64) -> Result<(), Error> {
    let client = ctx.conn.storage();
    let how = Follow {
        service: "storage service",
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
        |event: &pb::StorageEvent| event.sequence,
        |ctx, event| {
            let view = StorageEvent::from_proto(event);
            if !wanted(a, &view) {
                return Ok(false);
            }
            print_event(ctx, &view, a.timestamp)?;
            Ok(true)
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(volume: &str, kind: pb::StorageLifecycleType) -> StorageEvent {
        StorageEvent::from_proto(&pb::StorageEvent {
            sequence: 7,
            time: None,
            pool_name: "default".into(),
            pool_uuid: "0a4d4b4e-7c55-4ec1-a5a8-5ab2b0e7e5c1".into(),
            volume_name: volume.into(),
            r#type: kind as i32,
        })
    }

    #[test]
    fn lines_like_virsh() {
        use pb::StorageLifecycleType as T;
        assert_eq!(
            event_text(&event("", T::Started)),
            "event 'lifecycle' for storage pool default: Started"
        );
        assert_eq!(
            event_text(&event("", T::Deleted)),
            "event 'lifecycle' for storage pool default: Deleted"
        );
        assert_eq!(
            event_text(&event("", T::Refreshed)),
            "event 'refresh' for storage pool default"
        );
        assert_eq!(
            event_text(&event("a.qcow2", T::Changed)),
            "event 'volume' for storage volume a.qcow2 in pool default: Changed"
        );
    }

    fn args(extra: &[&str]) -> PoolEventArgs {
        use crate::cli::{Cli, Command};
        use clap::Parser;
        let argv = ["virtctl", "pool-event"].iter().chain(extra.iter());
        match Cli::try_parse_from(argv).unwrap().command {
            Command::PoolEvent(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn filters() {
        use pb::StorageLifecycleType as T;
        let e = event("", T::Started);
        assert!(wanted(&args(&[]), &e));
        assert!(wanted(&args(&["--pool", "default"]), &e));
        assert!(wanted(
            &args(&["--pool", "0A4D4B4E7C554EC1A5A85AB2B0E7E5C1"]),
            &e
        ));
        assert!(!wanted(&args(&["--pool", "other"]), &e));
        assert!(wanted(&args(&["--event", "lifecycle"]), &e));
        assert!(!wanted(&args(&["--event", "refresh"]), &e));
        assert!(wanted(
            &args(&["--event", "volume"]),
            &event("v", T::Created)
        ));
    }
}
