//! The QMP monitor client against a real QEMU (`qemu-system-x86_64`, TCG, no guest: QEMU sits
//! in its firmware or paused, which is all the monitor needs). Every command the client is
//! expected to carry is run here against the installed QEMU, since qapi's types come from a
//! newer QEMU than hosts may run.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use qapi::qmp;
use serde_json::json;
use virtplane_domain::driver::qemu::monitor::{Monitor, MonitorError, MonitorEvent, MonitorEvents};

const QEMU: &str = "qemu-system-x86_64";

/// Guards every wait in these tests against a hang; not a speed assertion.
const HANG_GUARD: Duration = Duration::from_secs(20);

/// A QEMU child with a QMP socket in a temp dir; killed by pid when dropped, so a failing test
/// leaves no process behind.
struct Qemu {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Qemu {
    fn start() -> Qemu {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("qmp.sock");
        let child = Command::new(QEMU)
            .args(["-S", "-nodefaults", "-no-user-config", "-display", "none"])
            .args(["-machine", "pc,accel=tcg", "-m", "64"])
            .arg("-chardev")
            .arg(format!(
                "socket,id=mon,path={},server=on,wait=off",
                socket.display()
            ))
            .args(["-mon", "chardev=mon,mode=control"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {QEMU} ({e}): these tests need a real QEMU; \
                     install it with `apt-get install qemu-system-x86`"
                )
            });
        Qemu {
            child,
            socket,
            _dir: dir,
        }
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// Connects once QEMU has created its socket (it does so before it opens the monitor).
    async fn connect(&mut self) -> (Monitor, MonitorEvents) {
        let start = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut err = String::new();
                if let Some(mut stderr) = self.child.stderr.take() {
                    use std::io::Read;
                    let _ = stderr.read_to_string(&mut err);
                }
                panic!("{QEMU} exited early ({status}): {err}");
            }
            if self.socket.exists() {
                match Monitor::connect(&self.socket, HANG_GUARD).await {
                    Ok(pair) => return pair,
                    Err(MonitorError::Connect(_)) => {}
                    Err(e) => panic!("connect failed: {e}"),
                }
            }
            assert!(
                start.elapsed() < HANG_GUARD,
                "QEMU never opened {:?}",
                self.socket
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = kill(self.pid(), Signal::SIGCONT);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Skips events until one named `name`; panics if the stream ends first.
async fn expect_event(events: &mut MonitorEvents, name: &str) -> serde_json::Value {
    let wait = async {
        loop {
            match events.next().await {
                Some(MonitorEvent::Qmp(ev)) if ev.name == name => {
                    assert!(ev.timestamp.is_some(), "{name} without timestamp");
                    assert!(
                        ev.typed().is_some(),
                        "qapi cannot type {name}: {:?}",
                        ev.data
                    );
                    return ev.data;
                }
                Some(MonitorEvent::Qmp(_)) => {}
                other => panic!("waiting for {name}, got {other:?}"),
            }
        }
    };
    tokio::time::timeout(HANG_GUARD, wait)
        .await
        .unwrap_or_else(|_| panic!("no {name} event"))
}

async fn status(mon: &Monitor) -> qmp::StatusInfo {
    mon.execute(qmp::query_status {}).await.unwrap()
}

#[tokio::test]
async fn lifecycle_and_passthrough() {
    let mut qemu = Qemu::start();
    let (mon, mut events) = qemu.connect().await;
    assert!(mon.qemu_version().0 >= 7, "{:?}", mon.qemu_version());

    let st = status(&mon).await;
    assert!(!st.running);
    assert!(matches!(st.status, qmp::RunState::prelaunch), "{st:?}");

    mon.execute(qmp::cont {}).await.unwrap();
    expect_event(&mut events, "RESUME").await;
    let st = status(&mon).await;
    assert!(
        st.running && matches!(st.status, qmp::RunState::running),
        "{st:?}"
    );

    mon.execute(qmp::stop {}).await.unwrap();
    expect_event(&mut events, "STOP").await;
    assert!(matches!(status(&mon).await.status, qmp::RunState::paused));

    let version = mon
        .execute_raw(json!({"execute": "query-version"}))
        .await
        .unwrap();
    assert_eq!(version["qemu"]["major"], json!(mon.qemu_version().0));
    let with_args = mon
        .execute_raw(
            json!({"execute": "qom-get", "arguments": {"path": "/machine", "property": "type"}}),
        )
        .await
        .unwrap();
    assert_eq!(with_args, json!("pc-i440fx-7.2-machine"));

    match mon.execute_raw(json!({"execute": "no-such-command"})).await {
        Err(MonitorError::Qmp { class, desc }) => {
            assert_eq!(class, "CommandNotFound");
            assert!(desc.contains("no-such-command"), "{desc}");
        }
        other => panic!("expected a QMP error, got {other:?}"),
    }
    assert!(matches!(
        mon.execute_raw(json!({"arguments": {}})).await,
        Err(MonitorError::Invalid(_))
    ));

    let text = mon.human("info status").await.unwrap();
    assert!(text.contains("paused"), "{text:?}");

    quit_ends_the_connection(mon, events).await;
}

async fn quit_ends_the_connection(mon: Monitor, mut events: MonitorEvents) {
    mon.execute(qmp::quit {}).await.unwrap();
    expect_event(&mut events, "SHUTDOWN").await;
    let last = tokio::time::timeout(HANG_GUARD, events.next())
        .await
        .unwrap();
    assert_eq!(last, Some(MonitorEvent::Disconnected));
    assert_eq!(events.next().await, None);
    assert!(!mon.is_connected());
    // Disconnected, not a timeout: a long per-command timeout shows it fails at once.
    let patient = mon.with_timeout(Duration::from_secs(3600));
    let after = tokio::time::timeout(HANG_GUARD, patient.execute(qmp::query_status {}))
        .await
        .unwrap();
    assert!(
        matches!(after, Err(MonitorError::Disconnected)),
        "{after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commands_share_one_connection() {
    let mut qemu = Qemu::start();
    let (mon, events) = qemu.connect().await;
    // Nobody reads events here: replies must flow regardless.
    drop(events);
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let mon = mon.clone();
            tokio::spawn(async move {
                for _ in 0..25 {
                    if i % 2 == 0 {
                        assert!(!status(&mon).await.running);
                    } else {
                        let v = mon
                            .execute_raw(json!({"execute": "query-name"}))
                            .await
                            .unwrap();
                        assert!(v.is_object());
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        tokio::time::timeout(HANG_GUARD, task)
            .await
            .unwrap()
            .unwrap();
    }
}

/// Dropping every handle closes the connection (the event stream ends) but not QEMU, and a new
/// connection works: this is how the service reattaches after a restart.
#[tokio::test]
async fn reconnect_after_dropping_the_monitor() {
    let mut qemu = Qemu::start();
    let (mon, mut events) = qemu.connect().await;
    let clone = mon.clone();
    drop(mon);
    assert!(!status(&clone).await.running);
    drop(clone);
    let end = tokio::time::timeout(HANG_GUARD, events.next())
        .await
        .unwrap();
    assert_eq!(end, None);
    let (mon, _events) = qemu.connect().await;
    assert!(!status(&mon).await.running);
}

/// A frozen QEMU (SIGSTOP) makes a command time out; once it thaws, its late reply is dropped
/// and the same connection answers the next command correctly.
#[tokio::test]
async fn timeout_leaves_the_monitor_usable() {
    let mut qemu = Qemu::start();
    let (mon, _events) = qemu.connect().await;
    kill(qemu.pid(), Signal::SIGSTOP).unwrap();
    let short = mon.with_timeout(Duration::from_millis(300));
    match short.execute(qmp::query_name {}).await {
        Err(MonitorError::Timeout { command, after }) => {
            assert_eq!(command, "query-name");
            assert_eq!(after, Duration::from_millis(300));
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    kill(qemu.pid(), Signal::SIGCONT).unwrap();
    let st = mon
        .with_timeout(HANG_GUARD)
        .execute(qmp::query_status {})
        .await;
    assert!(
        matches!(st, Ok(qmp::StatusInfo { running: false, .. })),
        "{st:?}"
    );
    assert!(mon.is_connected());
}

/// qapi's types come from QEMU 9.1; a reply from 7.2 that does not fit fails that call only.
#[tokio::test]
async fn schema_mismatch_fails_one_call_only() {
    let mut qemu = Qemu::start();
    let (mon, _events) = qemu.connect().await;
    let machines = mon
        .execute(qmp::query_machines { compat_props: None })
        .await;
    if mon.qemu_version() < (9, 0, 0) {
        assert!(
            matches!(machines, Err(MonitorError::Protocol(_))),
            "{machines:?}"
        );
    }
    assert!(!status(&mon).await.running);
}

/// A socket that accepts but never greets (a wedged QEMU) must not hang connect.
#[tokio::test]
async fn silent_socket_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("silent.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let hold = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        std::future::pending::<()>().await;
        drop(stream);
    });
    let result = Monitor::connect(&path, Duration::from_millis(300)).await;
    assert!(
        matches!(result, Err(MonitorError::Timeout { .. })),
        "{result:?}"
    );
    hold.abort();
}

#[tokio::test]
async fn missing_socket_is_a_connect_error() {
    let result = Monitor::connect(Path::new("/nonexistent/qmp.sock"), HANG_GUARD).await;
    assert!(
        matches!(result, Err(MonitorError::Connect(_))),
        "{result:?}"
    );
}
