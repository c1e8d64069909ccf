//! The hub against a fake QEMU: a unix socket server in the test that plays the console
//! (a real socket; the real QEMU is in `tests/console_hub.rs`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use prost::bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

use super::*;

/// Bounds every wait; not a speed assertion.
const HANG_GUARD: Duration = Duration::from_secs(10);

struct FakeQemu {
    _dir: tempfile::TempDir,
    listener: UnixListener,
    socket: PathBuf,
    log: PathBuf,
}

impl FakeQemu {
    fn new(log: &[u8]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("serial0.sock");
        let log_path = dir.path().join("serial0.log");
        std::fs::write(&log_path, log).unwrap();
        Self {
            listener: UnixListener::bind(&socket).unwrap(),
            socket,
            log: log_path,
            _dir: dir,
        }
    }

    fn endpoint(&self, run_token: &str) -> ConsoleEndpoint {
        ConsoleEndpoint {
            domain: "web".into(),
            device: "serial0".into(),
            socket: self.socket.clone(),
            log: Some(self.log.clone()),
            run_token: run_token.into(),
        }
    }

    async fn accept(&self) -> UnixStream {
        let (stream, _) = tokio::time::timeout(HANG_GUARD, self.listener.accept())
            .await
            .expect("the hub connects")
            .unwrap();
        stream
    }
}

fn quick() -> HubConfig {
    HubConfig {
        settle: Duration::from_millis(50),
        ..HubConfig::default()
    }
}

async fn next(a: &mut Attachment) -> Output {
    tokio::time::timeout(HANG_GUARD, a.next())
        .await
        .expect("output (hang guard)")
}

async fn data(a: &mut Attachment) -> Vec<u8> {
    match next(a).await {
        Output::Data(d) => d.to_vec(),
        Output::Closed(c) => panic!("expected output, console closed: {c:?}"),
    }
}

async fn closed(a: &mut Attachment) -> Closed {
    loop {
        match next(a).await {
            Output::Data(_) => continue,
            Output::Closed(c) => return c,
        }
    }
}

/// Reads what the fake QEMU receives within `wait`.
async fn received(stream: &mut UnixStream, wait: Duration) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    got
}

const WRITER: AttachMode = AttachMode {
    read_only: false,
    force: false,
};
const FORCE: AttachMode = AttachMode {
    read_only: false,
    force: true,
};
const VIEWER: AttachMode = AttachMode {
    read_only: true,
    force: false,
};

#[tokio::test]
async fn replay_then_live_output_for_every_client() {
    let qemu = FakeQemu::new(b"[    0.000000] Linux version\nlogin: ");
    let hubs = ConsoleHubs::new(quick());
    let (hub, guest) = tokio::join!(hubs.attach(qemu.endpoint("1"), WRITER), qemu.accept());
    let mut writer = hub.unwrap();
    let mut guest = guest;
    assert_eq!(writer.domain(), "web");
    assert_eq!(writer.device(), "serial0");
    assert!(writer.is_writer());
    assert_eq!(
        writer.take_replay(),
        b"[    0.000000] Linux version\nlogin: ".to_vec()
    );
    let mut viewer = hubs.attach(qemu.endpoint("1"), VIEWER).await.unwrap();
    assert!(!viewer.is_writer());
    assert_eq!(
        hubs.open_count().await,
        1,
        "one connection for both clients"
    );

    guest.write_all(b"root\r\n# ").await.unwrap();
    assert_eq!(data(&mut writer).await, b"root\r\n# ");
    assert_eq!(data(&mut viewer).await, b"root\r\n# ");
    // A later client's replay holds everything so far.
    let mut late = hubs.attach(qemu.endpoint("1"), VIEWER).await.unwrap();
    assert!(late.take_replay().ends_with(b"login: root\r\n# "));

    writer.write(Bytes::from_static(b"uname\r")).await.unwrap();
    assert_eq!(
        received(&mut guest, Duration::from_millis(300)).await,
        b"uname\r"
    );
    let refused = viewer.write(Bytes::from_static(b"x")).await.unwrap_err();
    assert_eq!(
        refused.to_string(),
        "console of 'web' is attached read-only: input is not accepted"
    );
}

#[tokio::test]
async fn output_in_both_log_and_socket_is_replayed_once() {
    let qemu = FakeQemu::new(b"boot\nhello");
    let hubs = ConsoleHubs::new(HubConfig {
        settle: Duration::from_secs(5),
        ..HubConfig::default()
    });
    // QEMU logged "hello" and also sent it (and more) on the fresh connection.
    let serve = async {
        let mut guest = qemu.accept().await;
        guest.write_all(b"hello world\n").await.unwrap();
        guest
    };
    let (attached, _guest) = tokio::join!(hubs.attach(qemu.endpoint("1"), VIEWER), serve);
    let mut viewer = attached.unwrap();
    assert_eq!(viewer.take_replay(), b"boot\nhello world\n".to_vec());
}

#[tokio::test]
async fn one_writer_and_force_takes_over() {
    let qemu = FakeQemu::new(b"");
    let hubs = ConsoleHubs::new(quick());
    let (first, guest) = tokio::join!(hubs.attach(qemu.endpoint("1"), WRITER), qemu.accept());
    let mut first = first.unwrap();
    let mut guest = guest;

    let busy = hubs.attach(qemu.endpoint("1"), WRITER).await.unwrap_err();
    assert!(matches!(busy, ConsoleError::Busy { .. }));
    assert_eq!(
        busy.to_string(),
        "console of 'web' is in use by another writer; use --force"
    );
    // Viewers are always welcome.
    let _viewer = hubs.attach(qemu.endpoint("1"), VIEWER).await.unwrap();

    let second = hubs.attach(qemu.endpoint("1"), FORCE).await.unwrap();
    let ended = closed(&mut first).await;
    assert_eq!(ended.reason, CloseReason::TakenOver);
    assert_eq!(
        ended.message,
        "console of 'web' was taken over by another session (--force)"
    );
    // The old writer's input never reaches the guest; the new one's does.
    first.write(Bytes::from_static(b"old")).await.unwrap();
    second.write(Bytes::from_static(b"new")).await.unwrap();
    assert_eq!(
        received(&mut guest, Duration::from_millis(300)).await,
        b"new"
    );

    // Detaching frees the role.
    drop(second);
    let third = hubs.attach(qemu.endpoint("1"), WRITER).await.unwrap();
    third.write(Bytes::from_static(b"3")).await.unwrap();
    assert_eq!(received(&mut guest, Duration::from_millis(300)).await, b"3");
}

#[tokio::test]
async fn the_console_ends_when_qemu_closes_it() {
    let qemu = FakeQemu::new(b"");
    let hubs = ConsoleHubs::new(quick());
    let (writer, guest) = tokio::join!(hubs.attach(qemu.endpoint("1"), WRITER), qemu.accept());
    let mut writer = writer.unwrap();
    let mut viewer = hubs.attach(qemu.endpoint("1"), VIEWER).await.unwrap();
    drop(guest);
    for client in [&mut writer, &mut viewer] {
        let end = closed(client).await;
        assert_eq!(end.reason, CloseReason::DomainStopped);
        assert_eq!(end.message, "console of 'web' closed: the domain stopped");
    }
    assert_eq!(hubs.open_count().await, 0);
    // Nothing listens any more: a new attach fails to connect, naming the socket.
    let endpoint = qemu.endpoint("1");
    drop(qemu);
    let err = hubs.attach(endpoint, VIEWER).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("cannot connect to console 'serial0' of domain 'web' at "),
        "{text}"
    );
}

#[tokio::test]
async fn a_new_run_of_the_domain_replaces_the_hub() {
    let qemu = FakeQemu::new(b"");
    let hubs = ConsoleHubs::new(quick());
    let (old, _guest) = tokio::join!(hubs.attach(qemu.endpoint("run-1"), VIEWER), qemu.accept());
    let mut old = old.unwrap();
    let (new, _guest2) = tokio::join!(hubs.attach(qemu.endpoint("run-2"), WRITER), qemu.accept());
    new.unwrap();
    let end = closed(&mut old).await;
    assert_eq!(end.reason, CloseReason::DomainStopped);
    assert!(end.message.contains("restarted"), "{}", end.message);
    assert_eq!(hubs.open_count().await, 1);
}

#[tokio::test]
async fn a_client_that_falls_behind_is_dropped_with_a_reason() {
    let qemu = FakeQemu::new(b"");
    let hubs = ConsoleHubs::new(HubConfig {
        client_backlog: 2,
        ..quick()
    });
    let (slow, guest) = tokio::join!(hubs.attach(qemu.endpoint("1"), VIEWER), qemu.accept());
    let mut slow = slow.unwrap();
    let mut guest = guest;
    let mut fast = hubs.attach(qemu.endpoint("1"), VIEWER).await.unwrap();
    // Separate chunks: wait for each to be relayed before sending the next.
    for i in 0..5u8 {
        guest.write_all(&[b'0' + i]).await.unwrap();
        assert_eq!(data(&mut fast).await, vec![b'0' + i]);
    }
    let end = closed(&mut slow).await;
    assert_eq!(end.reason, CloseReason::ClientTooSlow);
}

#[tokio::test]
async fn shutdown_ends_every_console_and_refuses_new_ones() {
    let qemu = FakeQemu::new(b"");
    let hubs = ConsoleHubs::new(quick());
    let (viewer, _guest) = tokio::join!(hubs.attach(qemu.endpoint("1"), VIEWER), qemu.accept());
    let mut viewer = viewer.unwrap();
    hubs.shutdown().await;
    assert_eq!(
        closed(&mut viewer).await.reason,
        CloseReason::ServiceShutdown
    );
    let refused = hubs.attach(qemu.endpoint("1"), VIEWER).await.unwrap_err();
    assert!(matches!(refused, ConsoleError::Closed(_)), "{refused:?}");
}

#[test]
fn fake_paths_are_where_the_convention_puts_them() {
    let run = Path::new("/run/vm");
    assert_eq!(
        socket_path(run, "serial0"),
        Path::new("/run/vm/serial0.sock")
    );
    assert_eq!(log_path(run, "console1"), Path::new("/run/vm/console1.log"));
}
