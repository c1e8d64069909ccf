//! The console service against a real QEMU booting the test guest under TCG.
//!
//! The command line comes from the real argv builder (`<serial type='pty'>` becomes a unix
//! socket QEMU listens on, with a log), ConsoleService is served over a unix socket in this
//! process, and clients are real gRPC clients: two viewers and a writer see the boot output,
//! the writer types a shell command and everyone sees its output, a second writer is refused
//! and `force` takes over, a client attaching later gets the scrollback, a fresh service (as
//! after a restart) replays the output from QEMU's log and can still type, and the console
//! ends for its clients when QEMU goes.
//!
//! Deadlines here only stop hangs; nothing asserts a duration.

mod support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use qapi::qmp;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, UnixListenerStream};
use tonic::transport::{Channel, Endpoint, Server};
use virtplane_domain::api::console::ConsoleApi;
use virtplane_domain::console::ConsoleEndpoint;
use virtplane_domain::driver::qemu::argv::{ArgvContext, build};
use virtplane_domain::driver::qemu::monitor::Monitor;
use virtplane_domain::driver::qemu::process::QemuProcess;
use virtplane_domain::error::DomainError;
use virtplane_domain::model::DomainRef;
use virtplane_domain::xml::{DomainDef, parse_domain};
use virtplane_proto::v1 as pb;
use virtplane_proto::v1::console_closed::Reason;
use virtplane_proto::v1::console_input::Kind as In;
use virtplane_proto::v1::console_output::Kind as Out;
use virtplane_proto::v1::console_service_client::ConsoleServiceClient;
use virtplane_proto::v1::console_service_server::ConsoleServiceServer;

const QEMU: &str = "/usr/bin/qemu-system-x86_64";
/// Hang guard for the boot (kernel + initramfs under TCG on a loaded 2-core machine).
const BOOT_DEADLINE: Duration = Duration::from_secs(120);
/// Hang guard for everything else.
const HANG_GUARD: Duration = Duration::from_secs(30);

/// Kills QEMU (by pid) when dropped, so a failing test leaves nothing running.
struct KillOnDrop(i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.0), Signal::SIGKILL);
    }
}

fn domain_xml(guest: &Path) -> String {
    format!(
        r#"<domain type='qemu'>
  <name>console-test</name>
  <uuid>c7a5fdbd-edaf-9455-926a-d65c16db1877</uuid>
  <memory unit='MiB'>128</memory>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{kernel}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>console=ttyS0</cmdline>
  </os>
  <features><acpi/></features>
  <devices>
    <serial type='pty'><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <memballoon model='none'/>
  </devices>
</domain>"#,
        kernel = support::kernel(guest).display(),
        initrd = guest.join("initrd.img").display(),
    )
}

/// ConsoleService for the one domain, served on `socket` until the returned task is
/// aborted. As a driver would, it locates the console in the live definition and run dir.
fn serve(
    socket: &Path,
    def: Arc<DomainDef>,
    run_dir: PathBuf,
    token: String,
) -> (ConsoleApi, tokio::task::JoinHandle<()>) {
    let api = ConsoleApi::with_locator(
        move |domain: &DomainRef, device: Option<&str>| match domain {
            DomainRef::Name(name) if name == "console-test" => {
                ConsoleEndpoint::locate(name, &def, &run_dir, device, token.clone())
            }
            other => Err(DomainError::NotFound(other.to_string())),
        },
    );
    let _ = std::fs::remove_file(socket);
    let listener = tokio::net::UnixListener::bind(socket).expect("bind the service socket");
    let routes = ConsoleServiceServer::new(api.clone());
    let task = tokio::spawn(async move {
        Server::builder()
            .add_service(routes)
            .serve_with_incoming(UnixListenerStream::new(listener))
            .await
            .expect("console server");
    });
    (api, task)
}

async fn client(socket: &Path) -> ConsoleServiceClient<Channel> {
    let channel = Endpoint::from_shared(format!("unix:{}", socket.display()))
        .unwrap()
        .connect()
        .await
        .expect("connect to the console service");
    ConsoleServiceClient::new(channel)
}

/// One attached client: everything it received so far, and a way to type.
struct Session {
    output: Arc<Mutex<Vec<u8>>>,
    closed: Arc<Mutex<Option<pb::ConsoleClosed>>>,
    replayed: Arc<Mutex<Option<u64>>>,
    pongs: Arc<Mutex<Vec<u64>>>,
    input: mpsc::Sender<pb::ConsoleInput>,
    reader: tokio::task::JoinHandle<()>,
}

fn open(device: &str, force: bool, read_only: bool) -> pb::ConsoleInput {
    pb::ConsoleInput {
        domain: Some(pb::DomainRef {
            id: Some(pb::domain_ref::Id::Name("console-test".into())),
        }),
        kind: Some(In::Open(pb::ConsoleOpen {
            device: device.into(),
            force,
            read_only,
        })),
    }
}

async fn attach(socket: &Path, first: pb::ConsoleInput) -> Result<Session, tonic::Status> {
    let (input, rx) = mpsc::channel(16);
    input.send(first).await.unwrap();
    let mut stream = client(socket)
        .await
        .attach(ReceiverStream::new(rx))
        .await?
        .into_inner();
    let first = tokio::time::timeout(HANG_GUARD, stream.message())
        .await
        .expect("first message (hang guard)")?
        .expect("a first message");
    let Some(Out::Attached(attached)) = first.kind else {
        panic!("the first message is not `attached`: {first:?}");
    };
    assert_eq!(attached.domain, "console-test");
    assert_eq!(attached.device, "serial0");
    let (output, closed, replayed, pongs) = Default::default();
    let session = Session {
        output: Arc::clone(&output),
        closed: Arc::clone(&closed),
        replayed: Arc::clone(&replayed),
        pongs: Arc::clone(&pongs),
        input,
        reader: tokio::spawn(async move {
            while let Ok(Some(message)) = stream.message().await {
                match message.kind {
                    Some(Out::Data(data)) => output.lock().unwrap().extend_from_slice(&data),
                    Some(Out::ReplayDone(done)) => {
                        *replayed.lock().unwrap() = Some(done.replayed_bytes)
                    }
                    Some(Out::Pong(pong)) => pongs.lock().unwrap().push(pong.id),
                    Some(Out::Closed(end)) => *closed.lock().unwrap() = Some(end),
                    other => panic!("unexpected console message {other:?}"),
                }
            }
        }),
    };
    Ok(session)
}

impl Session {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }

    /// Waits until the output contains `needle`.
    async fn wait_for(&self, needle: &str, deadline: Duration) {
        let until = tokio::time::Instant::now() + deadline;
        while !self.text().contains(needle) {
            assert!(
                tokio::time::Instant::now() < until,
                "no {needle:?} on the console (hang guard); got:\n{}",
                self.text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn type_text(&self, text: &str) {
        let data = pb::ConsoleInput {
            domain: None,
            kind: Some(In::Data(text.as_bytes().to_vec())),
        };
        self.input.send(data).await.expect("console input");
    }

    /// Waits for the end-of-replay marker and returns how many bytes it says were replayed.
    async fn wait_replay_done(&self) -> u64 {
        let until = tokio::time::Instant::now() + HANG_GUARD;
        loop {
            if let Some(bytes) = *self.replayed.lock().unwrap() {
                return bytes;
            }
            assert!(
                tokio::time::Instant::now() < until,
                "no end of replay (hang guard)"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn wait_closed(&self) -> pb::ConsoleClosed {
        let until = tokio::time::Instant::now() + HANG_GUARD;
        loop {
            if let Some(end) = self.closed.lock().unwrap().clone() {
                return end;
            }
            assert!(
                tokio::time::Instant::now() < until,
                "console not closed (hang guard)"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Detaches: ends the input, as virtctl does on Ctrl-].
    async fn detach(self) {
        drop(self.input);
        let _ = tokio::time::timeout(HANG_GUARD, self.reader).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_of_a_booting_guest() {
    assert!(
        Path::new(QEMU).exists(),
        "{QEMU} is missing: install qemu-system-x86 (Debian 12 ships QEMU 7.2)"
    );
    let guest = tokio::task::spawn_blocking(support::build_guest)
        .await
        .expect("build task");
    // Short: unix socket paths are limited to 108 bytes.
    let tmp = tempfile::Builder::new()
        .prefix("vp-con-")
        .tempdir_in("/tmp")
        .expect("temp dir");
    let run_dir = tmp.path().join("run");
    std::fs::create_dir_all(&run_dir).unwrap();
    let def = Arc::new(parse_domain(&domain_xml(&guest)).expect("domain XML"));
    let cmd = build(
        &def,
        &ArgvContext {
            emulator: PathBuf::from(QEMU),
            run_dir: run_dir.clone(),
            kvm_usable: false,
        },
    )
    .expect("command line");
    let chardev = cmd
        .args
        .iter()
        .find(|a| a.starts_with("socket,id=charserial0"))
        .expect("serial0 is a socket chardev");
    assert!(chardev.contains("logfile="), "{chardev}");

    let qemu = QemuProcess::spawn(
        &cmd,
        "console-test",
        &tmp.path().join("qemu.log"),
        HANG_GUARD,
    )
    .await
    .expect("start QEMU");
    let _guard = KillOnDrop(qemu.pid());
    let token = format!("{}", qemu.pid());

    let service = tmp.path().join("console.sock");
    let (api, server) = serve(&service, def.clone(), run_dir.clone(), token.clone());

    // A viewer attached before the guest runs sees the boot live.
    let early = attach(&service, open("", false, true)).await.unwrap();
    let (monitor, _events) = Monitor::connect(qemu.qmp_socket(), HANG_GUARD)
        .await
        .expect("QMP");
    monitor.execute(qmp::cont {}).await.expect("cont");
    early.wait_for("Linux version", BOOT_DEADLINE).await;
    early
        .wait_for("virtplane-guest: ready", BOOT_DEADLINE)
        .await;

    // Clients attaching now get the boot output from the scrollback.
    let writer = attach(&service, open("serial0", false, false))
        .await
        .unwrap();
    let viewer = attach(&service, open("", false, true)).await.unwrap();
    for s in [&writer, &viewer] {
        s.wait_for("Linux version", HANG_GUARD).await;
        // The end-of-replay marker follows the replayed bytes on the stream; the reader task
        // may not have taken it yet when the bytes are already visible.
        let replayed = s.wait_replay_done().await;
        assert!(replayed > 0, "replay announced {replayed} bytes");
    }

    // Type a command; the shell's answer (not the echo of what was typed) reaches everyone.
    writer.type_text("\recho hello-$((6*7))-console\r").await;
    for s in [&writer, &viewer, &early] {
        s.wait_for("hello-42-console", HANG_GUARD).await;
    }

    // Keepalive.
    writer
        .input
        .send(pb::ConsoleInput {
            domain: None,
            kind: Some(In::Ping(pb::ConsolePing { id: 77 })),
        })
        .await
        .unwrap();
    let until = tokio::time::Instant::now() + HANG_GUARD;
    while !writer.pongs.lock().unwrap().contains(&77) {
        assert!(tokio::time::Instant::now() < until, "no pong (hang guard)");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // One writer: a second is refused, `force` takes over.
    let refused = attach(&service, open("", false, false))
        .await
        .err()
        .expect("a second writer is refused");
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert_eq!(
        refused.message(),
        "console of 'console-test' is in use by another writer; use --force"
    );
    let taker = attach(&service, open("", true, false)).await.unwrap();
    let end = writer.wait_closed().await;
    assert_eq!(end.reason(), Reason::TakenOver);
    assert_eq!(
        end.message,
        "console of 'console-test' was taken over by another session (--force)"
    );
    taker.type_text("echo taker-$((2+3))\r").await;
    taker.wait_for("taker-5", HANG_GUARD).await;
    viewer.wait_for("taker-5", HANG_GUARD).await;

    // Unknown device, unknown domain.
    let no_dev = attach(&service, open("serial7", false, true))
        .await
        .err()
        .expect("no such device");
    assert_eq!(no_dev.code(), tonic::Code::InvalidArgument);
    assert!(
        no_dev.message().contains("'serial7'"),
        "{}",
        no_dev.message()
    );

    // Detach everyone; a client attaching later still sees it all in the scrollback.
    for s in [writer, viewer, taker, early] {
        s.detach().await;
    }
    let later = attach(&service, open("", false, true)).await.unwrap();
    later.wait_for("taker-5", HANG_GUARD).await;
    later.detach().await;

    // "Service restart": the old service lets go of QEMU's socket, a fresh one (no memory of
    // the console) replays the output from QEMU's log and takes input again.
    api.shutdown().await;
    server.abort();
    let _ = server.await;
    let (api, server) = serve(&service, def.clone(), run_dir.clone(), token);
    let after = attach(&service, open("", false, false)).await.unwrap();
    after.wait_for("hello-42-console", HANG_GUARD).await;
    after.wait_for("taker-5", HANG_GUARD).await;
    after.type_text("echo after-restart-$((1+1))\r").await;
    after.wait_for("after-restart-2", HANG_GUARD).await;

    // QEMU goes: the console ends for its clients.
    qemu.kill(HANG_GUARD).await.expect("kill QEMU");
    let end = after.wait_closed().await;
    assert_eq!(end.reason(), Reason::DomainStopped);
    assert_eq!(
        end.message,
        "console of 'console-test' closed: the domain stopped"
    );
    after.detach().await;
    api.shutdown().await;
    server.abort();
}
