//! `console`: a domain's serial console over ConsoleService's bidirectional stream.
//!
//! As virsh: "Connected to domain 'NAME'" and the escape-key banner, the terminal in raw mode
//! (restored on every way out: detach, error, signal, panic), Ctrl-] detaches, `--devname`
//! picks the device, `--force` takes the console over from another session. `--safe` is
//! accepted and changes nothing: a virtplane console is always safe (one writer at a time).
//!
//! What virsh lacks: `--read-only` watches without typing, next to the writer (any number of
//! read-only sessions may watch); on attach the console's recent output (the server's
//! scrollback) is printed first; keepalive pings every [`KEEPALIVE`] keep an idle console
//! from being dropped by proxies, and show a dead connection.
//!
//! Without a terminal on standard input, bytes are relayed as they are, so scripts and tests
//! can drive a console: output goes to stdout, the banner to stderr, and the end of input
//! detaches a writer (a `--read-only` session keeps watching until the console closes or a
//! signal arrives). A Ctrl-] byte in the input detaches too.

use std::io::{IsTerminal, Read, Write};
use std::time::Duration;

use clap::Args;
use nix::sys::termios::{SetArg, Termios, cfmakeraw, tcgetattr, tcsetattr};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use virtplane_proto::v1 as pb;
use virtplane_proto::v1::console_closed::Reason;
use virtplane_proto::v1::console_input::Kind as In;
use virtplane_proto::v1::console_output::Kind as Out;

use super::{Ctx, domain_ref};
use crate::error::Error;
use crate::output::eprint_line;

/// `console DOMAIN [--devname DEV] [--force] [--read-only] [--safe]`.
#[derive(Debug, Args)]
pub struct ConsoleArgs {
    /// Domain name or UUID
    #[arg(value_name = "DOMAIN")]
    pub domain: String,
    /// Console device alias (serial0, serial1, console1, ...); default: the first console
    #[arg(long, value_name = "DEV")]
    pub devname: Option<String>,
    /// Take the console over from the session now typing into it
    #[arg(long)]
    pub force: bool,
    /// Watch without typing; any number of read-only sessions may watch next to the writer
    #[arg(long)]
    pub read_only: bool,
    /// Accepted for virsh compatibility: virtplane consoles are always safe (one writer)
    #[arg(long)]
    pub safe: bool,
}

/// virsh's escape character, Ctrl-].
const ESCAPE: u8 = 0x1d;
/// How often a keepalive ping is sent; three unanswered in a row mean the connection is dead.
pub const KEEPALIVE: Duration = Duration::from_secs(10);
const MISSED_KEEPALIVES: u32 = 3;
/// How long a detaching client waits for the server to end the stream.
const DETACH_GRACE: Duration = Duration::from_secs(2);

/// How a session ended, when it did not fail.
enum Ending {
    /// The user detached (escape key, end of input, signal) or stdout was closed.
    Detached,
    /// The server ended the console: a reason and its message.
    Closed(Reason, String),
}

pub async fn console(ctx: &mut Ctx, a: ConsoleArgs) -> Result<(), Error> {
    let terminal = std::io::stdin().is_terminal();
    let (to_server, from_client) = mpsc::channel::<pb::ConsoleInput>(64);
    let open = pb::ConsoleInput {
        domain: domain_ref(&a.domain),
        kind: Some(In::Open(pb::ConsoleOpen {
            device: a.devname.clone().unwrap_or_default(),
            force: a.force,
            read_only: a.read_only,
        })),
    };
    // Queued before the call: the gateway reads the first message before it forwards.
    to_server
        .send(open)
        .await
        .map_err(|_| Error::Other("console request could not be queued".into()))?;
    let mut client = ctx.conn.console();
    let server = ctx.conn.server.clone();
    // No deadline on the stream itself (it is meant to stay open), only on opening it.
    let call = client.attach(ReceiverStream::new(from_client));
    let mut output = match tokio::time::timeout(ctx.conn.timeout, call).await {
        Err(_) => {
            return Err(Error::Timeout {
                server,
                secs: ctx.conn.timeout.as_secs(),
            });
        }
        Ok(Err(status)) => return Err(Error::from_status(status, &server)),
        Ok(Ok(response)) => response.into_inner(),
    };
    let attached = match tokio::time::timeout(ctx.conn.timeout, output.message()).await {
        Err(_) => {
            return Err(Error::Timeout {
                server,
                secs: ctx.conn.timeout.as_secs(),
            });
        }
        Ok(Err(status)) => return Err(Error::from_status(status, &server)),
        Ok(Ok(Some(pb::ConsoleOutput {
            kind: Some(Out::Attached(attached)),
        }))) => attached,
        Ok(Ok(_)) => {
            return Err(Error::Other(
                "the server did not open the console (unexpected first message)".into(),
            ));
        }
    };

    let mut banner = format!(
        "Connected to domain '{}'\nEscape character is ^] (Ctrl + ])\n",
        attached.domain
    );
    if attached.read_only {
        banner.push_str("Read-only: what you type is not sent\n");
    }
    if terminal && std::io::stdout().is_terminal() {
        print_now(&banner);
    } else {
        // Keeps stdout to the console's own bytes.
        eprint_line(banner.trim_end());
    }

    let raw = if terminal {
        Some(RawMode::enter()?)
    } else {
        None
    };
    let ending = relay(&mut output, to_server, attached.read_only, &server).await;
    // The terminal is back to normal before anything more is printed.
    drop(raw);
    match ending? {
        Ending::Detached => {
            // Our input has ended (relay dropped its sender): the server ends the stream
            // with OK. Waiting for that (briefly) makes a detach a clean end of the call,
            // not a cancellation, in the gateway's audit log.
            let _ = tokio::time::timeout(DETACH_GRACE, async {
                while let Ok(Some(_)) = output.message().await {}
            })
            .await;
            Ok(())
        }
        Ending::Closed(Reason::DomainStopped, message) => {
            eprint_line(message);
            Ok(())
        }
        Ending::Closed(_, message) => Err(Error::Other(message)),
    }
}

/// Relays until the session ends: output to stdout, keys to the server, keepalives.
async fn relay(
    output: &mut tonic::Streaming<pb::ConsoleOutput>,
    to_server: mpsc::Sender<pb::ConsoleInput>,
    read_only: bool,
    server: &str,
) -> Result<Ending, Error> {
    let mut keys = Some(read_stdin());
    let mut keepalive = tokio::time::interval_at(Instant::now() + KEEPALIVE, KEEPALIVE);
    // Any message from the server proves the connection alive, not only pongs.
    let mut last_heard = Instant::now();
    let mut ping_id: u64 = 0;
    let signal_failed = |e: std::io::Error| Error::Other(format!("cannot watch signals: {e}"));
    let mut term = signal(SignalKind::terminate()).map_err(signal_failed)?;
    let mut hangup = signal(SignalKind::hangup()).map_err(signal_failed)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(signal_failed)?;
    loop {
        tokio::select! {
            // Output first: after a stall (a slow stdout reader), messages already received
            // count before the keepalive check does.
            biased;
            message = output.message() => {
                last_heard = Instant::now();
                let kind = match message {
                    Ok(Some(message)) => message.kind,
                    Ok(None) => {
                        return Ok(Ending::Closed(
                            Reason::Unspecified,
                            "the server ended the console session".into(),
                        ));
                    }
                    Err(status) => return Err(Error::from_status(status, server)),
                };
                match kind {
                    Some(Out::Data(data)) => {
                        // Written at once: a console is interactive. A slow reader of stdout
                        // holds the session up, which is the backpressure wanted.
                        let mut stdout = std::io::stdout().lock();
                        let written = stdout.write_all(&data).and_then(|()| stdout.flush());
                        if let Err(e) = written {
                            return match Error::from_write(e) {
                                Error::BrokenPipe => Ok(Ending::Detached),
                                other => Err(other),
                            };
                        }
                    }
                    Some(Out::Closed(closed)) => {
                        return Ok(Ending::Closed(closed.reason(), closed.message));
                    }
                    Some(Out::Attached(_) | Out::ReplayDone(_) | Out::Pong(_)) | None => {}
                }
            }
            key = next_key(&mut keys) => match key {
                Ok(Some(bytes)) => {
                    let (typed, escaped) = split_at_escape(&bytes);
                    if !typed.is_empty() && !read_only {
                        let input = pb::ConsoleInput {
                            domain: None,
                            kind: Some(In::Data(typed.to_vec())),
                        };
                        if to_server.send(input).await.is_err() {
                            return Err(lost(server));
                        }
                    }
                    if escaped {
                        return Ok(Ending::Detached);
                    }
                }
                // End of input: a writer is done; a read-only session keeps watching.
                Ok(None) if read_only => keys = None,
                Ok(None) => return Ok(Ending::Detached),
                Err(e) => return Err(Error::Other(format!("cannot read standard input: {e}"))),
            },
            _ = keepalive.tick() => {
                if last_heard.elapsed() > KEEPALIVE * MISSED_KEEPALIVES {
                    return Err(Error::Other(format!(
                        "console connection to {server} lost: no keepalive answer for {} s",
                        last_heard.elapsed().as_secs()
                    )));
                }
                ping_id += 1;
                let ping = pb::ConsoleInput {
                    domain: None,
                    kind: Some(In::Ping(pb::ConsolePing { id: ping_id })),
                };
                if to_server.send(ping).await.is_err() {
                    return Err(lost(server));
                }
            }
            _ = term.recv() => return Ok(Ending::Detached),
            _ = hangup.recv() => return Ok(Ending::Detached),
            _ = interrupt.recv() => return Ok(Ending::Detached),
        }
    }
}

fn lost(server: &str) -> Error {
    Error::Unreachable {
        server: server.to_string(),
        detail: "the console stream closed".into(),
    }
}

/// The bytes typed before the escape key, and whether it was pressed.
fn split_at_escape(bytes: &[u8]) -> (&[u8], bool) {
    match bytes.iter().position(|b| *b == ESCAPE) {
        Some(at) => (&bytes[..at], true),
        None => (bytes, false),
    }
}

type Keys = mpsc::Receiver<std::io::Result<Option<Vec<u8>>>>;

/// The next chunk of standard input (`None`: its end); pending forever once it has ended.
async fn next_key(keys: &mut Option<Keys>) -> std::io::Result<Option<Vec<u8>>> {
    match keys.as_mut() {
        Some(rx) => rx.recv().await.unwrap_or(Ok(None)),
        None => std::future::pending().await,
    }
}

/// Standard input, read by a thread of its own: tokio's stdin reads on the blocking pool,
/// and a read blocked there would keep the process alive after the session ends (tokio
/// recommends a dedicated thread for interactive input). The thread dies with the process.
fn read_stdin() -> Keys {
    let (tx, rx) = mpsc::channel(16);
    let spawned = std::thread::Builder::new()
        .name("console-stdin".into())
        .spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut buf = [0u8; 4096];
            loop {
                let chunk = match stdin.read(&mut buf) {
                    Ok(0) => Ok(None),
                    Ok(n) => Ok(Some(buf[..n].to_vec())),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => Err(e),
                };
                let last = !matches!(chunk, Ok(Some(_)));
                if tx.blocking_send(chunk).is_err() || last {
                    return;
                }
            }
        });
    if let Err(e) = spawned {
        let (tx, rx) = mpsc::channel(1);
        let _ = tx.try_send(Err(e));
        return rx;
    }
    rx
}

fn print_now(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// The terminal in raw mode (no echo, no line editing, no signals from keys: everything goes
/// to the guest) until dropped, which restores it — on every path out, panics included.
struct RawMode {
    saved: Termios,
}

impl RawMode {
    fn enter() -> Result<Self, Error> {
        let failed =
            |e: nix::Error| Error::Other(format!("cannot set the terminal to raw mode: {e}"));
        let stdin = std::io::stdin();
        let saved = tcgetattr(&stdin).map_err(failed)?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(&stdin, SetArg::TCSAFLUSH, &raw).map_err(failed)?;
        Ok(Self { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = tcsetattr(std::io::stdin(), SetArg::TCSADRAIN, &self.saved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_escape_key_ends_the_input() {
        assert_eq!(split_at_escape(b"ls\r"), (&b"ls\r"[..], false));
        assert_eq!(split_at_escape(b"ls\x1d\r"), (&b"ls"[..], true));
        assert_eq!(split_at_escape(b"\x1d"), (&b""[..], true));
    }
}
