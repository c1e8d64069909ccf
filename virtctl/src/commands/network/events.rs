//! `net-event`: NetworkService.WatchEvents printed as virsh prints network events
//! ("event 'lifecycle' for network default: Started").
//!
//! The frame is `event`'s (`commands::events::event_loop`: one event unless `--loop`, the
//! global `--timeout` as listening time, "events received: N", exit 1 when none arrived),
//! and so is the resilience: a dropped stream is resumed from the last sequence seen, and a
//! resume point the service no longer holds (RESYNC_NEEDED) is reported and replayed from
//! the oldest retained event. Unlike virsh, `--event` is optional: without it every event
//! type is shown (networks have one, `lifecycle`).

use clap::{Args, ValueEnum};
use virtplane_proto::v1 as pb;

use super::Ctx;
use super::view::NetworkEvent;
use crate::commands::canonical_uuid;
use crate::commands::events::event_loop;
use crate::commands::watch::{Follow, follow, print_line};
use crate::error::Error;

/// The network event types (virsh's `virshNetworkEventCallbacks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NetEventKind {
    Lifecycle,
}

#[derive(Debug, Args)]
pub struct NetEventArgs {
    /// Only events of this network (name or UUID)
    #[arg(long, value_name = "NETWORK")]
    pub network: Option<String>,
    /// Only events of this type (default: every type)
    #[arg(long, value_enum, value_name = "TYPE")]
    pub event: Option<NetEventKind>,
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

pub async fn net_event(ctx: &mut Ctx, a: NetEventArgs) -> Result<(), Error> {
    if a.list {
        return ctx.out.line("lifecycle");
    }
    event_loop(ctx, async |ctx, count| watch(ctx, &a, count).await).await
}

/// virsh's line, without the timestamp.
pub fn event_text(e: &NetworkEvent) -> String {
    format!(
        "event '{}' for network {}: {}",
        e.event,
        e.network,
        e.virsh_word()
    )
}

/// Applies `--network` (name or UUID).
fn wanted(a: &NetEventArgs, e: &NetworkEvent) -> bool {
    let Some(n) = &a.network else {
        return true;
    };
    let by_uuid = canonical_uuid(n)
        .zip(canonical_uuid(&e.uuid))
        .is_some_and(|(x, y)| x == y);
    by_uuid || *n == e.network
}

fn print_event(ctx: &mut Ctx, e: &NetworkEvent, timestamp: bool) -> Result<(), Error> {
    if !ctx.out.is_table() {
        return ctx.out.data_line(e);
    }
    print_line(ctx, e.time.as_deref(), timestamp, &event_text(e))
}

/// Watches until the first matching event (or forever with `--loop`), reconnecting when an
/// open stream is lost.
async fn watch(ctx: &mut Ctx, a: &NetEventArgs, count: &mut u64) -> Result<(), Error> {
    let client = ctx.conn.networks();
    let how = Follow {
        service: "network service",
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
        |event: &pb::NetworkEvent| event.sequence,
        |ctx, event| {
            let view = NetworkEvent::from_proto(event);
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

    fn event(kind: pb::NetworkLifecycleType) -> NetworkEvent {
        NetworkEvent::from_proto(&pb::NetworkEvent {
            sequence: 7,
            time: None,
            network_name: "default".into(),
            network_uuid: "dd8fe884-6c02-601e-7551-cca97df1c5df".into(),
            body: Some(pb::network_event::Body::Lifecycle(
                pb::NetworkLifecycleEvent {
                    r#type: kind.into(),
                },
            )),
        })
    }

    #[test]
    fn lines_like_virsh() {
        use pb::NetworkLifecycleType as T;
        assert_eq!(
            event_text(&event(T::Started)),
            "event 'lifecycle' for network default: Started"
        );
        assert_eq!(
            event_text(&event(T::Stopped)),
            "event 'lifecycle' for network default: Stopped"
        );
        assert_eq!(
            event_text(&event(T::Defined)),
            "event 'lifecycle' for network default: Defined"
        );
        assert_eq!(
            event_text(&event(T::Undefined)),
            "event 'lifecycle' for network default: Undefined"
        );
    }

    fn args(extra: &[&str]) -> NetEventArgs {
        use crate::cli::{Cli, Command};
        use clap::Parser;
        let argv = ["virtctl", "net-event"].iter().chain(extra.iter());
        match Cli::try_parse_from(argv).unwrap().command {
            Command::NetEvent(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn network_filter_by_name_or_uuid() {
        let e = event(pb::NetworkLifecycleType::Started);
        assert!(wanted(&args(&[]), &e));
        assert!(wanted(&args(&["--network", "default"]), &e));
        assert!(wanted(
            &args(&["--network", "DD8FE8846C02601E7551CCA97DF1C5DF"]),
            &e
        ));
        assert!(!wanted(&args(&["--network", "other"]), &e));
        assert!(args(&["--event", "lifecycle", "--loop"]).loop_);
    }
}
