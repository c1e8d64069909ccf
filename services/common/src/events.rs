//! A service's event stream: sequence numbers that keep rising across restarts, a retained
//! window for resuming clients, and a clear "resync needed" when a client fell out of it.
//!
//! A sequence number is `epoch << 32 | counter`. The epoch is persisted in the state dir and
//! bumped at every start, so numbers never repeat; events are retained in memory only, so a
//! client that resumes from a previous epoch (the service restarted since) or from before the
//! retained window is told to resync (re-list, then watch again) instead of silently missing
//! events.

use std::collections::VecDeque;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

use futures::Stream;
use tokio::sync::broadcast;

/// Why a watch cannot resume where the client asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WatchError {
    #[error(
        "events after sequence {after} are no longer retained (oldest retained: {oldest}); \
         resync needed: list again and watch from 0"
    )]
    ResyncNeeded { after: u64, oldest: u64 },
    #[error("this watcher fell {0} events behind; resync needed: list again and watch from 0")]
    Lagged(u64),
}

impl WatchError {
    /// OUT_OF_RANGE with the machine reason RESYNC_NEEDED; for events no longer retained the
    /// metadata `oldest` names the oldest retained sequence, so a client may replay what is
    /// still there (after a restart of the service: its catch-up events) by resuming after
    /// `oldest - 1`.
    pub fn to_status(&self) -> tonic::Status {
        let metadata = match self {
            WatchError::ResyncNeeded { oldest, .. } => vec![("oldest".into(), oldest.to_string())],
            WatchError::Lagged(_) => Vec::new(),
        };
        crate::status::with_reason_and_metadata(
            tonic::Code::OutOfRange,
            self.to_string(),
            "RESYNC_NEEDED",
            metadata,
        )
    }
}

struct Window<E> {
    /// Sequence number the next event gets.
    next: u64,
    events: VecDeque<(u64, E)>,
}

/// Publishes events and serves resumable subscriptions.
pub struct EventHub<E> {
    window: Mutex<Window<E>>,
    retained: usize,
    live: broadcast::Sender<(u64, E)>,
    epoch: u64,
}

impl<E> std::fmt::Debug for EventHub<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventHub")
            .field("epoch", &self.epoch)
            .field("retained", &self.retained)
            .finish()
    }
}

impl<E: Clone + Send + Sync + 'static> EventHub<E> {
    /// A hub whose sequence numbers start in `epoch`, keeping the last `retained` events.
    pub fn new(epoch: u32, retained: usize) -> Arc<Self> {
        let (live, _) = broadcast::channel(retained.max(16));
        Arc::new(Self {
            window: Mutex::new(Window {
                next: (u64::from(epoch) << 32) | 1,
                events: VecDeque::with_capacity(retained.min(4096)),
            }),
            retained: retained.max(1),
            live,
            epoch: u64::from(epoch),
        })
    }

    /// Reads the epoch from `state_dir/events.epoch`, bumps it and writes it back durably.
    pub fn next_epoch(state_dir: &Path) -> io::Result<u32> {
        let path = state_dir.join("events.epoch");
        let previous = match std::fs::read_to_string(&path) {
            Ok(text) => text.trim().parse::<u32>().map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} does not hold a number", path.display()),
                )
            })?,
            Err(error) if error.kind() == io::ErrorKind::NotFound => 0,
            Err(error) => return Err(error),
        };
        let epoch = previous.wrapping_add(1).max(1);
        crate::store::write_atomic(&path, format!("{epoch}\n").as_bytes())?;
        Ok(epoch)
    }

    /// Publishes an event built from its sequence number; returns that number.
    pub fn publish(&self, build: impl FnOnce(u64) -> E) -> u64 {
        let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
        let sequence = window.next;
        window.next += 1;
        let event = build(sequence);
        if window.events.len() == self.retained {
            window.events.pop_front();
        }
        window.events.push_back((sequence, event.clone()));
        // No receivers is fine: nobody is watching.
        let _ = self.live.send((sequence, event));
        sequence
    }

    /// The last published sequence number (or the epoch's base when none yet).
    pub fn last_sequence(&self) -> u64 {
        let window = self.window.lock().unwrap_or_else(|e| e.into_inner());
        window.next - 1
    }

    /// Events after `after` (0 = only new ones), then live events as they come.
    pub fn subscribe(
        &self,
        after: u64,
    ) -> Result<impl Stream<Item = Result<E, WatchError>> + Send + 'static, WatchError> {
        self.subscribe_from(after).map(|(_, stream)| stream)
    }

    /// As [`subscribe`](Self::subscribe), also returning the sequence number the stream
    /// starts after: a client that asked for 0 resumes from it after a reconnect, so it
    /// misses nothing even when no event arrived before the connection dropped.
    pub fn subscribe_from(
        &self,
        after: u64,
    ) -> Result<
        (
            u64,
            impl Stream<Item = Result<E, WatchError>> + Send + 'static,
        ),
        WatchError,
    > {
        let window = self.window.lock().unwrap_or_else(|e| e.into_inner());
        let receiver = self.live.subscribe();
        let last = window.next - 1;
        let replay: Vec<(u64, E)> = if after == 0 || after == last {
            Vec::new()
        } else {
            let oldest = window.events.front().map_or(window.next, |(seq, _)| *seq);
            let same_epoch = after >> 32 == self.epoch;
            if !same_epoch || after + 1 < oldest || after > last {
                return Err(WatchError::ResyncNeeded { after, oldest });
            }
            window
                .events
                .iter()
                .filter(|(seq, _)| *seq > after)
                .cloned()
                .collect()
        };
        drop(window);
        let start_after = replay.last().map_or(last, |(seq, _)| *seq);
        let replayed = futures::stream::iter(replay.into_iter().map(|(_, event)| Ok(event)));
        let live = futures::stream::unfold(
            (receiver, start_after, false),
            |(mut receiver, seen, done)| async move {
                if done {
                    return None;
                }
                loop {
                    match receiver.recv().await {
                        Ok((seq, _)) if seq <= seen => continue,
                        Ok((seq, event)) => return Some((Ok(event), (receiver, seq, false))),
                        Err(broadcast::error::RecvError::Lagged(missed)) => {
                            return Some((Err(WatchError::Lagged(missed)), (receiver, seen, true)));
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            },
        );
        let start = if after == 0 { last } else { after };
        Ok((start, futures::StreamExt::chain(replayed, live)))
    }
}

/// A watch stream as a service's `WatchEvents` returns it.
pub type EventStream<P> =
    std::pin::Pin<Box<dyn Stream<Item = Result<P, tonic::Status>> + Send + 'static>>;

/// The reply of a service's `WatchEvents(after)`: the events after `after` (replayed, then
/// live) converted with `convert`, and the sequence the stream starts after in the initial
/// metadata `x-virtplane-sequence`, so a client that asked for 0 can resume from it without
/// a gap. A resume point no longer held fails with the hub's RESYNC_NEEDED status.
pub fn watch_response<E, P>(
    hub: &EventHub<E>,
    after: u64,
    convert: fn(E) -> P,
) -> Result<tonic::Response<EventStream<P>>, tonic::Status>
where
    E: Clone + Send + Sync + 'static,
    P: Send + 'static,
{
    use futures::StreamExt;
    let (start, events) = hub.subscribe_from(after).map_err(|e| e.to_status())?;
    let stream = events.map(move |item| item.map(convert).map_err(|e| e.to_status()));
    let mut response = tonic::Response::new(Box::pin(stream) as EventStream<P>);
    response
        .metadata_mut()
        .insert(virtplane_proto::headers::SEQUENCE, start.into());
    Ok(response)
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    async fn next(stream: &mut (impl Stream<Item = Result<u64, WatchError>> + Unpin)) -> u64 {
        tokio::time::timeout(std::time::Duration::from_secs(2), stream.next())
            .await
            .expect("event in time")
            .expect("stream open")
            .expect("no error")
    }

    #[tokio::test]
    async fn new_watchers_see_only_new_events() {
        let hub = EventHub::<u64>::new(1, 10);
        hub.publish(|seq| seq);
        let mut stream = Box::pin(hub.subscribe(0).unwrap());
        let second = hub.publish(|seq| seq);
        assert_eq!(next(&mut stream).await, second);
    }

    #[tokio::test]
    async fn a_fresh_watch_says_where_it_starts() {
        let hub = EventHub::<u64>::new(3, 10);
        let first = hub.publish(|seq| seq);
        let (start, _stream) = hub.subscribe_from(0).unwrap();
        assert_eq!(start, first);
        let second = hub.publish(|seq| seq);
        // A client that reconnects from `start` gets what it missed.
        let mut resumed = Box::pin(hub.subscribe(start).unwrap());
        assert_eq!(next(&mut resumed).await, second);
    }

    #[tokio::test]
    async fn resume_replays_what_was_missed_then_goes_live() {
        let hub = EventHub::<u64>::new(7, 10);
        let first = hub.publish(|seq| seq);
        assert_eq!(first, (7 << 32) | 1);
        let second = hub.publish(|seq| seq);
        let third = hub.publish(|seq| seq);
        let mut stream = Box::pin(hub.subscribe(first).unwrap());
        assert_eq!(next(&mut stream).await, second);
        assert_eq!(next(&mut stream).await, third);
        let fourth = hub.publish(|seq| seq);
        assert_eq!(next(&mut stream).await, fourth);
    }

    #[tokio::test]
    async fn falling_out_of_the_window_or_epoch_needs_resync() {
        let hub = EventHub::<u64>::new(2, 3);
        let first = hub.publish(|seq| seq);
        for _ in 0..5 {
            hub.publish(|seq| seq);
        }
        assert!(matches!(
            hub.subscribe(first),
            Err(WatchError::ResyncNeeded { .. })
        ));
        // A sequence from an earlier epoch: the service restarted since.
        let previous_epoch = (1u64 << 32) | 5;
        let error = hub.subscribe(previous_epoch).err().unwrap();
        assert_eq!(error.to_status().code(), tonic::Code::OutOfRange);
        // From the future: refused too rather than silently waiting.
        assert!(hub.subscribe(hub.last_sequence() + 5).is_err());
        // Exactly the last one: fine, nothing to replay.
        assert!(hub.subscribe(hub.last_sequence()).is_ok());
    }

    #[test]
    fn epoch_rises_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let first = EventHub::<u64>::next_epoch(dir.path()).unwrap();
        let second = EventHub::<u64>::next_epoch(dir.path()).unwrap();
        assert!(second > first);
    }
}
