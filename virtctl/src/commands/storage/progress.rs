//! Progress of a volume transfer: a bar on stderr when stderr is a terminal (nothing when it
//! is piped or redirected), and the stall watchdog.
//!
//! A transfer of a large volume can take far longer than the global `--timeout`, so it gets
//! no call deadline; instead, `--timeout` bounds how long it may go without progress. Both
//! ends of the work report here: the network side as messages go out or come in, the disk
//! side as chunks are read or written; a transfer stuck on either side stops advancing.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Shared between the async side and the blocking reader or writer.
pub struct Progress {
    bar: Option<ProgressBar>,
    start: Instant,
    /// Milliseconds since `start` of the last progress.
    last_ms: AtomicU64,
}

impl Progress {
    /// A progress of `total` bytes labelled `label` ("uploading a.img"); the bar only shows
    /// when stderr is a terminal.
    pub fn new(total: u64, label: String) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{msg} {binary_bytes}/{binary_total_bytes} [{wide_bar}] {binary_bytes_per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style.progress_chars("=> "));
            bar.set_message(label);
            bar
        });
        Progress {
            bar,
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    /// Sets the size of the transfer once it is known (a download learns it from the first
    /// message).
    pub fn set_total(&self, total: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(total);
        }
    }

    /// Something moved without covering bytes (a response header, the closing checksum).
    pub fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// `bytes` of the range were covered (data or hole).
    pub fn advance(&self, bytes: u64) {
        self.touch();
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }

    /// How long since the last progress.
    pub fn idle(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }

    /// Resolves once nothing moved for `stall`; returns how long that was.
    pub async fn stalled(&self, stall: Duration) -> Duration {
        loop {
            let idle = self.idle();
            if idle >= stall {
                return idle;
            }
            tokio::time::sleep(stall - idle).await;
        }
    }

    /// Leaves the finished bar on screen.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }

    /// Removes the bar (the error that follows says why).
    pub fn abandon(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stall_after_silence_not_while_moving() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let p = Progress::new(100, "test".into());
            // Generous margins: progress every 20 ms against a 1 s limit.
            let stall = Duration::from_secs(1);
            let moving = async {
                for _ in 0..25 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    p.advance(1);
                }
            };
            tokio::select! {
                () = moving => {}
                idle = p.stalled(stall) => panic!("stalled after {idle:?} while moving"),
            }
            // Then silence: a stall, reported once the limit has passed.
            let idle = p.stalled(stall).await;
            assert!(idle >= stall, "{idle:?}");
        });
    }
}
