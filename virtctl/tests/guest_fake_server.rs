//! virtctl's guest agent commands against a small in-process fake GuestAgentService on a
//! unix socket: checks what virtctl sends (the request fields, deadlines) and what it prints
//! (virsh's layouts byte for byte, guest-exec's output and exit codes), without a guest.
//!
//! The fake's domains: "web" has a working agent; "noagent" answers every call with
//! UNAVAILABLE, as the service does when no agent is connected.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use assert_cmd::Command;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};
use virtplane_proto::v1 as pb;
use virtplane_proto::v1::guest_agent_service_server::{GuestAgentService, GuestAgentServiceServer};

/// What the fake received, for the tests to check.
#[derive(Default, Debug)]
struct Log {
    /// (method, domain name, grpc-timeout header)
    calls: Vec<(String, String, Option<String>)>,
    guest_info: Vec<pb::GetGuestInfoRequest>,
    set_vcpus: Vec<pb::SetGuestVcpusRequest>,
    set_time: Vec<pb::SetGuestTimeRequest>,
    freeze: Vec<pb::FreezeGuestFilesystemsRequest>,
    trim: Vec<pb::TrimGuestFilesystemsRequest>,
    password: Vec<pb::SetGuestUserPasswordRequest>,
    add_keys: Vec<pb::AddGuestSshAuthorizedKeysRequest>,
    remove_keys: Vec<pb::RemoveGuestSshAuthorizedKeysRequest>,
    exec: Vec<pb::GuestExecRequest>,
    read_file: Vec<pb::ReadGuestFileRequest>,
    write_file: Vec<pb::WriteGuestFileRequest>,
    command: Vec<pb::GuestAgentCommandRequest>,
    set_timeout: Vec<pb::SetGuestAgentTimeoutRequest>,
}

#[derive(Clone, Default)]
struct Fake {
    log: Arc<Mutex<Log>>,
}

fn name_of(r: &Option<pb::DomainRef>) -> String {
    match r.as_ref().and_then(|r| r.id.clone()) {
        Some(pb::domain_ref::Id::Name(n)) => n,
        Some(pb::domain_ref::Id::Uuid(u)) => format!("uuid:{u}"),
        None => String::new(),
    }
}

impl Fake {
    /// Logs the call; refuses it as the service would for a domain without an agent.
    fn check<T>(
        &self,
        method: &str,
        req: &Request<T>,
        domain: &Option<pb::DomainRef>,
    ) -> Result<(), Status> {
        let name = name_of(domain);
        let deadline = req
            .metadata()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        self.log
            .lock()
            .unwrap()
            .calls
            .push((method.to_string(), name.clone(), deadline));
        if name == "noagent" {
            return Err(Status::unavailable(format!(
                "the guest agent of domain '{name}' is not connected"
            )));
        }
        Ok(())
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap()
    }
}

type Res<T> = Result<Response<T>, Status>;
type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

fn disk(dev: &str, serial: &str) -> pb::GuestDiskAddress {
    pb::GuestDiskAddress {
        pci_controller: "0000:00:05.0".into(),
        bus_type: "virtio".into(),
        bus: 0,
        target: 0,
        unit: 0,
        serial: serial.into(),
        dev: dev.into(),
    }
}

fn filesystems() -> Vec<pb::GuestFilesystem> {
    vec![
        pb::GuestFilesystem {
            mountpoint: "/".into(),
            name: "vda1".into(),
            r#type: "ext4".into(),
            total_bytes: Some(10_485_760_000),
            used_bytes: Some(2_097_152_000),
            disks: vec![disk("/dev/vda", "VP0001")],
        },
        pb::GuestFilesystem {
            mountpoint: "/srv/data".into(),
            name: "dm-0".into(),
            r#type: "xfs".into(),
            total_bytes: None,
            used_bytes: None,
            disks: vec![disk("/dev/vdb", ""), disk("/dev/vdc", "")],
        },
    ]
}

fn guest_info(r: &pb::GetGuestInfoRequest) -> pb::GetGuestInfoResponse {
    let all =
        !(r.os || r.hostname || r.timezone || r.users || r.filesystems || r.disks || r.interfaces);
    pb::GetGuestInfoResponse {
        os: (all || r.os).then(|| pb::GuestOsInfo {
            kernel_release: "6.1.0-18-amd64".into(),
            kernel_version: "#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1".into(),
            machine: "x86_64".into(),
            id: "debian".into(),
            name: "Debian GNU/Linux".into(),
            pretty_name: "Debian GNU/Linux 12 (bookworm)".into(),
            version: "12 (bookworm)".into(),
            version_id: "12".into(),
            variant: String::new(),
            variant_id: String::new(),
        }),
        hostname: (all || r.hostname).then(|| "web.example.com".to_string()),
        timezone: (all || r.timezone).then(|| pb::GuestTimezone {
            zone: "CET".into(),
            offset_seconds: 3600,
        }),
        users: (all || r.users).then(|| pb::GuestUserList {
            users: vec![pb::GuestUser {
                name: "root".into(),
                domain: String::new(),
                login_time: Some(prost_types::Timestamp {
                    seconds: 1_700_000_000,
                    nanos: 250_000_000,
                }),
            }],
        }),
        filesystems: (all || r.filesystems).then(|| pb::GuestFilesystemList {
            filesystems: filesystems()[..1].to_vec(),
        }),
        disks: (all || r.disks).then(|| pb::GuestDiskList {
            disks: vec![
                pb::GuestDisk {
                    name: "/dev/vda1".into(),
                    partition: true,
                    dependencies: vec!["/dev/vda".into()],
                    alias: String::new(),
                    address: None,
                },
                pb::GuestDisk {
                    name: "/dev/vda".into(),
                    partition: false,
                    dependencies: vec![],
                    alias: "rootdisk".into(),
                    address: Some(disk("/dev/vda", "VP0001")),
                },
            ],
        }),
        interfaces: (all || r.interfaces).then(|| pb::GuestInterfaceList {
            interfaces: vec![
                pb::GuestInterface {
                    name: "lo".into(),
                    hardware_address: "00:00:00:00:00:00".into(),
                    addresses: vec![pb::GuestIpAddress {
                        r#type: pb::IpAddrType::Ipv4 as i32,
                        address: "127.0.0.1".into(),
                        prefix: 8,
                    }],
                    stats: None,
                },
                pb::GuestInterface {
                    name: "eth0".into(),
                    hardware_address: "52:54:00:e2:e0:01".into(),
                    addresses: vec![
                        pb::GuestIpAddress {
                            r#type: pb::IpAddrType::Ipv4 as i32,
                            address: "192.168.122.50".into(),
                            prefix: 24,
                        },
                        pb::GuestIpAddress {
                            r#type: pb::IpAddrType::Ipv6 as i32,
                            address: "fe80::5054:ff:fee2:e001".into(),
                            prefix: 64,
                        },
                    ],
                    stats: Some(pb::GuestInterfaceStats {
                        rx_bytes: 1000,
                        ..Default::default()
                    }),
                },
            ],
        }),
    }
}

fn exec_event(event: pb::guest_exec_event::Event) -> Result<pb::GuestExecEvent, Status> {
    Ok(pb::GuestExecEvent { event: Some(event) })
}

fn exited(status: pb::guest_exec_exited::Status, truncated: bool) -> pb::guest_exec_event::Event {
    pb::guest_exec_event::Event::Exited(pb::GuestExecExited {
        status: Some(status),
        stdout_truncated: truncated,
        stderr_truncated: false,
    })
}

fn output(stdout: &[u8], stderr: &[u8]) -> pb::guest_exec_event::Event {
    pb::guest_exec_event::Event::Output(pb::GuestExecOutput {
        stdout: stdout.to_vec(),
        stderr: stderr.to_vec(),
    })
}

/// The guest programs the fake knows, by path.
fn exec_events(r: &pb::GuestExecRequest) -> Vec<Result<pb::GuestExecEvent, Status>> {
    use pb::guest_exec_event::Event;
    use pb::guest_exec_exited::Status as Exit;
    let started = exec_event(Event::Started(pb::GuestExecStarted { pid: 4242 }));
    let mut events = vec![started];
    match r.path.as_str() {
        "true" => events.push(exec_event(exited(Exit::ExitCode(0), false))),
        // sh -c 'echo out; echo err >&2; exit 3'
        "sh" => {
            events.push(exec_event(output(b"out\n", b"err\n")));
            events.push(exec_event(exited(Exit::ExitCode(3), false)));
        }
        // Prints its arguments, one per line, then its environment and stdin.
        "echo-all" => {
            let mut text = r.args.join("\n");
            text.push('\n');
            for e in &r.env {
                text += &format!("env {e}\n");
            }
            let mut out = text.into_bytes();
            out.extend_from_slice(&r.stdin);
            events.push(exec_event(output(&out, b"")));
            events.push(exec_event(exited(Exit::ExitCode(0), false)));
        }
        "killed" => events.push(exec_event(exited(Exit::Signal(9), false))),
        "chatty" => {
            events.push(exec_event(output(b"first part", b"")));
            events.push(exec_event(exited(Exit::ExitCode(0), true)));
        }
        // Exits at once after the start, with no exit report: a broken server.
        "vanish" => {}
        other => {
            return vec![Err(Status::invalid_argument(format!(
                "guest-exec: failed to execute '{other}': No such file or directory"
            )))];
        }
    }
    events
}

/// The fake guest's one file.
const HOSTNAME_FILE: &[u8] = b"web.example.com\n";

#[tonic::async_trait]
impl GuestAgentService for Fake {
    async fn ping(&self, r: Request<pb::PingGuestAgentRequest>) -> Res<pb::PingGuestAgentResponse> {
        self.check("ping", &r, &r.get_ref().domain)?;
        Ok(Response::new(pb::PingGuestAgentResponse {}))
    }
    async fn get_info(
        &self,
        r: Request<pb::GetGuestAgentInfoRequest>,
    ) -> Res<pb::GetGuestAgentInfoResponse> {
        self.check("get_info", &r, &r.get_ref().domain)?;
        Ok(Response::new(pb::GetGuestAgentInfoResponse {
            version: "7.2.9".into(),
            commands: vec![
                pb::GuestAgentCommand {
                    name: "guest-exec".into(),
                    enabled: true,
                    success_response: true,
                },
                pb::GuestAgentCommand {
                    name: "guest-shutdown".into(),
                    enabled: false,
                    success_response: false,
                },
            ],
        }))
    }
    async fn get_guest_info(
        &self,
        r: Request<pb::GetGuestInfoRequest>,
    ) -> Res<pb::GetGuestInfoResponse> {
        self.check("get_guest_info", &r, &r.get_ref().domain)?;
        let reply = guest_info(r.get_ref());
        self.log().guest_info.push(r.into_inner());
        Ok(Response::new(reply))
    }
    async fn get_os_info(
        &self,
        r: Request<pb::GetGuestOsInfoRequest>,
    ) -> Res<pb::GetGuestOsInfoResponse> {
        self.check("get_os_info", &r, &r.get_ref().domain)?;
        Err(Status::unimplemented("not in this fake"))
    }
    async fn get_hostname(
        &self,
        r: Request<pb::GetGuestHostnameRequest>,
    ) -> Res<pb::GetGuestHostnameResponse> {
        self.check("get_hostname", &r, &r.get_ref().domain)?;
        Ok(Response::new(pb::GetGuestHostnameResponse {
            hostname: "web.example.com".into(),
        }))
    }
    async fn get_users(
        &self,
        r: Request<pb::GetGuestUsersRequest>,
    ) -> Res<pb::GetGuestUsersResponse> {
        self.check("get_users", &r, &r.get_ref().domain)?;
        Err(Status::unimplemented("not in this fake"))
    }
    async fn get_timezone(
        &self,
        r: Request<pb::GetGuestTimezoneRequest>,
    ) -> Res<pb::GetGuestTimezoneResponse> {
        self.check("get_timezone", &r, &r.get_ref().domain)?;
        Err(Status::unimplemented("not in this fake"))
    }
    async fn get_filesystems(
        &self,
        r: Request<pb::GetGuestFilesystemsRequest>,
    ) -> Res<pb::GetGuestFilesystemsResponse> {
        self.check("get_filesystems", &r, &r.get_ref().domain)?;
        Ok(Response::new(pb::GetGuestFilesystemsResponse {
            filesystems: filesystems(),
        }))
    }
    async fn get_disks(
        &self,
        r: Request<pb::GetGuestDisksRequest>,
    ) -> Res<pb::GetGuestDisksResponse> {
        self.check("get_disks", &r, &r.get_ref().domain)?;
        Err(Status::unimplemented("not in this fake"))
    }
    async fn get_interfaces(
        &self,
        r: Request<pb::GetGuestInterfacesRequest>,
    ) -> Res<pb::GetGuestInterfacesResponse> {
        self.check("get_interfaces", &r, &r.get_ref().domain)?;
        Err(Status::unimplemented("not in this fake"))
    }
    async fn get_vcpus(
        &self,
        r: Request<pb::GetGuestVcpusRequest>,
    ) -> Res<pb::GetGuestVcpusResponse> {
        self.check("get_vcpus", &r, &r.get_ref().domain)?;
        let vcpu = |logical_id, online, can_offline| pb::GuestVcpu {
            logical_id,
            online,
            can_offline,
        };
        Ok(Response::new(pb::GetGuestVcpusResponse {
            vcpus: vec![
                vcpu(0, true, false),
                vcpu(1, true, true),
                vcpu(2, false, true),
                vcpu(3, true, true),
                vcpu(5, false, true),
            ],
        }))
    }
    async fn set_vcpus(
        &self,
        r: Request<pb::SetGuestVcpusRequest>,
    ) -> Res<pb::SetGuestVcpusResponse> {
        self.check("set_vcpus", &r, &r.get_ref().domain)?;
        let processed = r.get_ref().logical_ids.len() as u32;
        self.log().set_vcpus.push(r.into_inner());
        Ok(Response::new(pb::SetGuestVcpusResponse { processed }))
    }
    async fn get_memory_blocks(
        &self,
        r: Request<pb::GetGuestMemoryBlocksRequest>,
    ) -> Res<pb::GetGuestMemoryBlocksResponse> {
        self.check("get_memory_blocks", &r, &r.get_ref().domain)?;
        Err(Status::unimplemented("not in this fake"))
    }
    async fn set_memory_blocks(
        &self,
        r: Request<pb::SetGuestMemoryBlocksRequest>,
    ) -> Res<pb::SetGuestMemoryBlocksResponse> {
        self.check("set_memory_blocks", &r, &r.get_ref().domain)?;
        Err(Status::unimplemented("not in this fake"))
    }
    async fn get_time(&self, r: Request<pb::GetGuestTimeRequest>) -> Res<pb::GetGuestTimeResponse> {
        self.check("get_time", &r, &r.get_ref().domain)?;
        Ok(Response::new(pb::GetGuestTimeResponse {
            time: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 123_000_000,
            }),
        }))
    }
    async fn set_time(&self, r: Request<pb::SetGuestTimeRequest>) -> Res<pb::SetGuestTimeResponse> {
        self.check("set_time", &r, &r.get_ref().domain)?;
        self.log().set_time.push(r.into_inner());
        Ok(Response::new(pb::SetGuestTimeResponse {}))
    }
    async fn freeze_filesystems(
        &self,
        r: Request<pb::FreezeGuestFilesystemsRequest>,
    ) -> Res<pb::FreezeGuestFilesystemsResponse> {
        self.check("freeze_filesystems", &r, &r.get_ref().domain)?;
        let n = r.get_ref().mountpoints.len() as u32;
        self.log().freeze.push(r.into_inner());
        Ok(Response::new(pb::FreezeGuestFilesystemsResponse {
            frozen: if n == 0 { 3 } else { n },
        }))
    }
    async fn thaw_filesystems(
        &self,
        r: Request<pb::ThawGuestFilesystemsRequest>,
    ) -> Res<pb::ThawGuestFilesystemsResponse> {
        self.check("thaw_filesystems", &r, &r.get_ref().domain)?;
        Ok(Response::new(pb::ThawGuestFilesystemsResponse {
            thawed: 3,
        }))
    }
    async fn get_freeze_status(
        &self,
        r: Request<pb::GetGuestFreezeStatusRequest>,
    ) -> Res<pb::GetGuestFreezeStatusResponse> {
        self.check("get_freeze_status", &r, &r.get_ref().domain)?;
        Err(Status::unimplemented("not in this fake"))
    }
    async fn trim_filesystems(
        &self,
        r: Request<pb::TrimGuestFilesystemsRequest>,
    ) -> Res<pb::TrimGuestFilesystemsResponse> {
        self.check("trim_filesystems", &r, &r.get_ref().domain)?;
        let minimum = r.get_ref().minimum_bytes;
        self.log().trim.push(r.into_inner());
        Ok(Response::new(pb::TrimGuestFilesystemsResponse {
            results: vec![
                pb::GuestTrimResult {
                    path: "/".into(),
                    trimmed_bytes: Some(1_048_576),
                    minimum_bytes: Some(minimum),
                    error: String::new(),
                },
                pb::GuestTrimResult {
                    path: "/boot".into(),
                    trimmed_bytes: None,
                    minimum_bytes: None,
                    error: "Operation not supported".into(),
                },
            ],
        }))
    }
    async fn set_user_password(
        &self,
        r: Request<pb::SetGuestUserPasswordRequest>,
    ) -> Res<pb::SetGuestUserPasswordResponse> {
        self.check("set_user_password", &r, &r.get_ref().domain)?;
        self.log().password.push(r.into_inner());
        Ok(Response::new(pb::SetGuestUserPasswordResponse {}))
    }
    async fn get_ssh_authorized_keys(
        &self,
        r: Request<pb::GetGuestSshAuthorizedKeysRequest>,
    ) -> Res<pb::GetGuestSshAuthorizedKeysResponse> {
        self.check("get_ssh_authorized_keys", &r, &r.get_ref().domain)?;
        if r.get_ref().user != "alice" {
            return Err(Status::invalid_argument(format!(
                "guest-ssh-get-authorized-keys: failed to get user '{}'",
                r.get_ref().user
            )));
        }
        Ok(Response::new(pb::GetGuestSshAuthorizedKeysResponse {
            keys: vec![
                "ssh-ed25519 AAAAC3Nza alice@laptop".into(),
                "ssh-rsa AAAAB3Nza alice@desk".into(),
            ],
        }))
    }
    async fn add_ssh_authorized_keys(
        &self,
        r: Request<pb::AddGuestSshAuthorizedKeysRequest>,
    ) -> Res<pb::AddGuestSshAuthorizedKeysResponse> {
        self.check("add_ssh_authorized_keys", &r, &r.get_ref().domain)?;
        self.log().add_keys.push(r.into_inner());
        Ok(Response::new(pb::AddGuestSshAuthorizedKeysResponse {}))
    }
    async fn remove_ssh_authorized_keys(
        &self,
        r: Request<pb::RemoveGuestSshAuthorizedKeysRequest>,
    ) -> Res<pb::RemoveGuestSshAuthorizedKeysResponse> {
        self.check("remove_ssh_authorized_keys", &r, &r.get_ref().domain)?;
        self.log().remove_keys.push(r.into_inner());
        Ok(Response::new(pb::RemoveGuestSshAuthorizedKeysResponse {}))
    }
    async fn shutdown(
        &self,
        r: Request<pb::GuestShutdownRequest>,
    ) -> Res<pb::GuestShutdownResponse> {
        self.check("shutdown", &r, &r.get_ref().domain)?;
        Err(Status::unimplemented("not in this fake"))
    }

    type ExecStream = BoxStream<pb::GuestExecEvent>;

    /// Programs by path (see `exec_events`); with `timeout_seconds`, "sleep" is stopped
    /// being watched after that long, as the service does.
    async fn exec(&self, r: Request<pb::GuestExecRequest>) -> Res<Self::ExecStream> {
        self.check("exec", &r, &r.get_ref().domain)?;
        let req = r.into_inner();
        self.log().exec.push(req.clone());
        if req.path == "sleep" {
            let secs = req.timeout_seconds;
            let started = tokio_stream::iter(vec![exec_event(
                pb::guest_exec_event::Event::Started(pb::GuestExecStarted { pid: 4243 }),
            )]);
            let expired = move |()| async move {
                tokio::time::sleep(Duration::from_secs(secs.into())).await;
                Err(Status::deadline_exceeded(format!(
                    "the program (pid 4243 in the guest) still runs after {secs} s; it was \
                     left running"
                )))
            };
            return Ok(Response::new(Box::pin(
                started.chain(tokio_stream::once(()).then(expired)),
            )));
        }
        Ok(Response::new(Box::pin(tokio_stream::iter(exec_events(
            &req,
        )))))
    }

    type ReadFileStream = BoxStream<pb::GuestFileChunk>;

    /// The one file, "/etc/hostname", in chunks of 4 bytes.
    async fn read_file(&self, r: Request<pb::ReadGuestFileRequest>) -> Res<Self::ReadFileStream> {
        self.check("read_file", &r, &r.get_ref().domain)?;
        let req = r.into_inner();
        self.log().read_file.push(req.clone());
        if req.path != "/etc/hostname" {
            return Err(Status::invalid_argument(format!(
                "guest-file-open: failed to open file '{}': No such file or directory",
                req.path
            )));
        }
        let start = (req.offset as usize).min(HOSTNAME_FILE.len());
        let end = match req.max_bytes {
            0 => HOSTNAME_FILE.len(),
            n => (start + n as usize).min(HOSTNAME_FILE.len()),
        };
        let chunks: Vec<Result<pb::GuestFileChunk, Status>> = HOSTNAME_FILE[start..end]
            .chunks(4)
            .map(|c| Ok(pb::GuestFileChunk { data: c.to_vec() }))
            .collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(chunks))))
    }
    async fn write_file(
        &self,
        r: Request<pb::WriteGuestFileRequest>,
    ) -> Res<pb::WriteGuestFileResponse> {
        self.check("write_file", &r, &r.get_ref().domain)?;
        let written = r.get_ref().data.len() as u64;
        self.log().write_file.push(r.into_inner());
        Ok(Response::new(pb::WriteGuestFileResponse { written }))
    }
    async fn command(
        &self,
        r: Request<pb::GuestAgentCommandRequest>,
    ) -> Res<pb::GuestAgentCommandResponse> {
        self.check("command", &r, &r.get_ref().domain)?;
        self.log().command.push(r.into_inner());
        Ok(Response::new(pb::GuestAgentCommandResponse {
            reply: r#"{"return":{"version":"7.2.9","supported_commands":[]}}"#.into(),
        }))
    }
    async fn set_timeout(
        &self,
        r: Request<pb::SetGuestAgentTimeoutRequest>,
    ) -> Res<pb::SetGuestAgentTimeoutResponse> {
        self.check("set_timeout", &r, &r.get_ref().domain)?;
        self.log().set_timeout.push(r.into_inner());
        Ok(Response::new(pb::SetGuestAgentTimeoutResponse {}))
    }
}

/// A running fake; the server thread ends with the test process.
struct Server {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    fake: Fake,
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("gw.sock");
        let fake = Fake::default();
        let served = fake.clone();
        let path = socket.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::UnixListener::bind(&path).unwrap();
                let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
                tonic::transport::Server::builder()
                    .add_service(GuestAgentServiceServer::new(served))
                    .serve_with_incoming(incoming)
                    .await
                    .unwrap();
            });
        });
        for _ in 0..200 {
            if socket.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Server {
            _dir: dir,
            socket,
            fake,
        }
    }

    fn virtctl(&self) -> Command {
        let mut cmd = Command::cargo_bin("virtctl").unwrap();
        cmd.env(
            "VIRTPLANE_SERVER",
            format!("unix:{}", self.socket.display()),
        )
        .env_remove("VIRTPLANE_TOKEN")
        .env("VIRTCTL_CONFIG", Path::new("/nonexistent/virtctl.yaml"));
        cmd
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.fake.log()
    }
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn domhostname_from_the_agent_only() {
    let s = Server::start();
    for args in [
        &["domhostname", "web"][..],
        &["domhostname", "web", "--source", "agent"][..],
    ] {
        let (code, out, err) = run(s.virtctl().args(args));
        assert_eq!(code, 0, "{args:?}: {err}");
        assert_eq!(out, "web.example.com\n");
    }
    let (code, out, err) = run(s
        .virtctl()
        .args(["domhostname", "web", "--source", "lease"]));
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert_eq!(
        err,
        "error: domhostname --source lease is not supported: virtplane reads the hostname \
         from the guest agent only (--source agent, the default)\n"
    );
    let (code, _, err) = run(s.virtctl().args(["domhostname", "web", "--source", "dns"]));
    assert_eq!(code, 2, "{err}");
    // The refused one never reached the server.
    assert_eq!(s.log().calls.len(), 2);
}

#[test]
fn agent_absent_is_the_servers_message() {
    let s = Server::start();
    for args in [
        &["domhostname", "noagent"][..],
        &["guestinfo", "noagent"][..],
        &["guest-exec", "noagent", "--", "true"][..],
        &["guest-file-read", "noagent", "/etc/hostname"][..],
    ] {
        let (code, out, err) = run(s.virtctl().args(args));
        assert_eq!(code, 1, "{args:?}");
        assert!(out.is_empty(), "{args:?}: {out}");
        assert_eq!(
            err, "error: the guest agent of domain 'noagent' is not connected\n",
            "{args:?}"
        );
    }
}

#[test]
fn domfsinfo_like_virsh() {
    let s = Server::start();
    let (code, out, err) = run(s.virtctl().args(["domfsinfo", "web"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        " Mountpoint   Name   Type   Target\n\
         -------------------------------------\n \
         /            vda1   ext4   vda\n \
         /srv/data    dm-0   xfs    vdb,vdc\n"
    );
    let (code, out, _) = run(s.virtctl().args(["domfsinfo", "web", "-o", "json"]));
    assert_eq!(code, 0);
    let v = json(&out);
    assert_eq!(v[0]["mountpoint"], "/");
    assert_eq!(v[0]["type"], "ext4");
    assert_eq!(v[0]["total_bytes"], 10_485_760_000u64);
    assert_eq!(v[0]["disks"][0]["dev"], "/dev/vda");
    assert_eq!(v[0]["disks"][0]["serial"], "VP0001");
    assert_eq!(v[1]["used_bytes"], serde_json::Value::Null);
}

#[test]
fn freeze_thaw_trim() {
    let s = Server::start();
    let (code, out, err) = run(s.virtctl().args([
        "domfsfreeze",
        "web",
        "--mountpoint",
        "/",
        "--mountpoint",
        "/srv/data",
    ]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "Froze 2 filesystem(s)\n");
    let (_, out, _) = run(s.virtctl().args(["domfsfreeze", "web"]));
    assert_eq!(out, "Froze 3 filesystem(s)\n");
    let (_, out, _) = run(s.virtctl().args(["domfsthaw", "web"]));
    assert_eq!(out, "Thawed 3 filesystem(s)\n");
    let (_, out, _) = run(s.virtctl().args(["domfsthaw", "web", "-o", "json"]));
    assert_eq!(json(&out)["thawed"], 3);
    {
        let log = s.log();
        assert_eq!(log.freeze[0].mountpoints, ["/", "/srv/data"]);
        assert!(log.freeze[1].mountpoints.is_empty());
    }

    // virsh prints nothing for fstrim; the agent's per-file-system failure is a warning.
    let (code, out, err) = run(s.virtctl().args(["domfstrim", "web", "--minimum", "65536"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "");
    assert_eq!(
        err,
        "warning: /boot was not trimmed: Operation not supported\n"
    );
    let (_, out, _) = run(s.virtctl().args(["domfstrim", "web", "-o", "json"]));
    let v = json(&out);
    assert_eq!(v[0]["trimmed_bytes"], 1_048_576);
    assert_eq!(v[1]["error"], "Operation not supported");
    assert!(v[0].get("error").is_none());
    let log = s.log();
    assert_eq!(log.trim[0].minimum_bytes, 65536);
    assert_eq!(log.trim[1].minimum_bytes, 0);
}

#[test]
fn domtime_like_virsh() {
    let s = Server::start();
    let (code, out, err) = run(s.virtctl().args(["domtime", "web"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "Time: 1700000000\n");
    let (_, out, _) = run(s.virtctl().args(["domtime", "web", "--pretty"]));
    assert_eq!(out, "Time: 2023-11-14 22:13:20\n");
    let (_, out, _) = run(s.virtctl().args(["domtime", "web", "-o", "json"]));
    let v = json(&out);
    assert_eq!(v["seconds"], 1_700_000_000);
    assert_eq!(v["time"], "2023-11-14T22:13:20.123+00:00");

    for args in [
        &["domtime", "web", "--time", "1234567890"][..],
        &["domtime", "web", "--sync"][..],
        &["domtime", "web", "--now"][..],
        &["domtime", "web", "--time", "-5"][..],
    ] {
        let (code, out, err) = run(s.virtctl().args(args));
        assert_eq!((code, out.as_str()), (0, ""), "{args:?}: {err}");
    }
    for args in [
        &["domtime", "web", "--now", "--sync"][..],
        &["domtime", "web", "--time", "5", "--now"][..],
        &["domtime", "web", "--time", "5", "--sync"][..],
    ] {
        let (code, _, _) = run(s.virtctl().args(args));
        assert_eq!(code, 2, "{args:?}");
    }
    let log = s.log();
    let times: Vec<Option<i64>> = log
        .set_time
        .iter()
        .map(|r| r.time.as_ref().map(|t| t.seconds))
        .collect();
    assert_eq!(times[0], Some(1_234_567_890));
    // --sync sends no time: the guest reads its RTC.
    assert_eq!(times[1], None);
    let host_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let sent_now = times[2].unwrap();
    assert!((host_now - sent_now).abs() < 60, "{sent_now} vs {host_now}");
    assert_eq!(times[3], Some(-5));
    assert_eq!(times.len(), 4);
}

#[test]
fn user_password_and_ssh_keys() {
    let s = Server::start();
    let (code, out, err) = run(s
        .virtctl()
        .args(["set-user-password", "web", "alice", "s3cret"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "Password set successfully for alice in web\n");
    let (_, _, _) = run(s.virtctl().args([
        "set-user-password",
        "web",
        "bob",
        "$6$salt$hash",
        "--encrypted",
    ]));
    {
        let log = s.log();
        assert_eq!(
            (
                log.password[0].user.as_str(),
                log.password[0].password.as_str(),
                log.password[0].crypted
            ),
            ("alice", "s3cret", false)
        );
        assert!(log.password[1].crypted);
        assert_eq!(log.password[1].password, "$6$salt$hash");
    }

    let (code, out, err) = run(s.virtctl().args(["get-user-sshkeys", "web", "alice"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "ssh-ed25519 AAAAC3Nza alice@laptop\nssh-rsa AAAAB3Nza alice@desk\n"
    );
    let (code, _, err) = run(s.virtctl().args(["get-user-sshkeys", "web", "mallory"]));
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "error: guest-ssh-get-authorized-keys: failed to get user 'mallory'\n"
    );

    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.pub");
    std::fs::write(&keys, "ssh-ed25519 AAAA one@a\n\nssh-rsa BBBB two@b\n").unwrap();
    let keys = keys.to_str().unwrap();
    let empty = dir.path().join("empty.pub");
    std::fs::write(&empty, "\n\n").unwrap();
    let empty = empty.to_str().unwrap();

    for args in [
        &["set-user-sshkeys", "web", "alice", "--file", keys][..],
        &[
            "set-user-sshkeys",
            "web",
            "alice",
            "--file",
            keys,
            "--reset",
        ][..],
        &["set-user-sshkeys", "web", "alice", "--reset"][..],
        &[
            "set-user-sshkeys",
            "web",
            "alice",
            "--file",
            keys,
            "--remove",
        ][..],
    ] {
        let (code, out, err) = run(s.virtctl().args(args));
        assert_eq!((code, out.as_str()), (0, ""), "{args:?}: {err}");
    }
    // virsh's rules: --remove needs --file, --reset and --remove exclude each other, and
    // adding needs --file.
    for args in [
        &["set-user-sshkeys", "web", "alice", "--remove"][..],
        &[
            "set-user-sshkeys",
            "web",
            "alice",
            "--reset",
            "--remove",
            "--file",
            keys,
        ][..],
        &["set-user-sshkeys", "web", "alice"][..],
    ] {
        let (code, _, _) = run(s.virtctl().args(args));
        assert_eq!(code, 2, "{args:?}");
    }
    let (code, _, err) =
        run(s
            .virtctl()
            .args(["set-user-sshkeys", "web", "alice", "--file", empty]));
    assert_eq!(code, 1);
    assert_eq!(err, format!("error: File {empty} contains no keys\n"));

    let log = s.log();
    let two = ["ssh-ed25519 AAAA one@a", "ssh-rsa BBBB two@b"];
    assert_eq!(log.add_keys.len(), 3);
    assert_eq!(log.add_keys[0].keys, two);
    assert!(!log.add_keys[0].reset);
    assert!(log.add_keys[1].reset);
    assert_eq!(log.add_keys[1].keys, two);
    assert!(log.add_keys[2].reset && log.add_keys[2].keys.is_empty());
    assert_eq!(log.remove_keys.len(), 1);
    assert_eq!(log.remove_keys[0].keys, two);
    assert_eq!(log.remove_keys[0].user, "alice");
}

#[test]
fn guestinfo_like_virsh() {
    let s = Server::start();
    let (code, out, err) = run(s.virtctl().args(["guestinfo", "web"]));
    assert_eq!(code, 0, "{err}");
    let want = "\
user.count          : 1
user.0.name         : root
user.0.login-time   : 1700000000250
os.id               : debian
os.name             : Debian GNU/Linux
os.pretty-name      : Debian GNU/Linux 12 (bookworm)
os.version          : 12 (bookworm)
os.version-id       : 12
os.machine          : x86_64
os.kernel-release   : 6.1.0-18-amd64
os.kernel-version   : #1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1
timezone.name       : CET
timezone.offset     : 3600
hostname            : web.example.com
fs.count            : 1
fs.0.name           : vda1
fs.0.mountpoint     : /
fs.0.fstype         : ext4
fs.0.total-bytes    : 10485760000
fs.0.used-bytes     : 2097152000
fs.0.disk.count     : 1
fs.0.disk.0.alias   : vda
fs.0.disk.0.serial  : VP0001
fs.0.disk.0.device  : /dev/vda
disk.count          : 2
disk.0.name         : /dev/vda1
disk.0.partition    : yes
disk.0.dependency.count: 1
disk.0.dependency.0.name: /dev/vda
disk.1.name         : /dev/vda
disk.1.partition    : no
disk.1.serial       : VP0001
disk.1.alias        : vda
disk.1.guest_alias  : rootdisk
if.count            : 2
if.0.name           : lo
if.0.hwaddr         : 00:00:00:00:00:00
if.0.addr.count     : 1
if.0.addr.0.type    : ipv4
if.0.addr.0.addr    : 127.0.0.1
if.0.addr.0.prefix  : 8
if.1.name           : eth0
if.1.hwaddr         : 52:54:00:e2:e0:01
if.1.addr.count     : 2
if.1.addr.0.type    : ipv4
if.1.addr.0.addr    : 192.168.122.50
if.1.addr.0.prefix  : 24
if.1.addr.1.type    : ipv6
if.1.addr.1.addr    : fe80::5054:ff:fee2:e001
if.1.addr.1.prefix  : 64
";
    assert_eq!(out, want);

    let (code, out, err) = run(s
        .virtctl()
        .args(["guestinfo", "web", "--hostname", "--user"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "user.count          : 1\n\
         user.0.name         : root\n\
         user.0.login-time   : 1700000000250\n\
         hostname            : web.example.com\n"
    );
    let (_, out, _) = run(s
        .virtctl()
        .args(["guestinfo", "web", "--interface", "-o", "json"]));
    let v = json(&out);
    assert_eq!(v["interfaces"][1]["name"], "eth0");
    assert_eq!(v["interfaces"][1]["addresses"][1]["type"], "ipv6");
    assert_eq!(v["interfaces"][1]["stats"]["rx_bytes"], 1000);
    assert!(v.get("os").is_none(), "{out}");

    let log = s.log();
    let first = &log.guest_info[0];
    assert!(
        !(first.os
            || first.hostname
            || first.timezone
            || first.users
            || first.filesystems
            || first.disks
            || first.interfaces)
    );
    let second = &log.guest_info[1];
    assert!(second.hostname && second.users);
    assert!(!(second.os || second.timezone || second.filesystems || second.disks));
    assert!(log.guest_info[2].interfaces);
}

#[test]
fn guestvcpus_like_virsh() {
    let s = Server::start();
    let (code, out, err) = run(s.virtctl().args(["guestvcpus", "web"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "vcpus          : 0-3,5\n\
         online         : 0-1,3\n\
         offlinable     : 1-3,5\n"
    );
    let (code, out, err) =
        run(s
            .virtctl()
            .args(["guestvcpus", "web", "--cpulist", "1-3,^2", "--disable"]));
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    let (code, _, err) = run(s
        .virtctl()
        .args(["guestvcpus", "web", "--cpulist", "5", "--enable"]));
    assert_eq!(code, 0, "{err}");
    {
        let log = s.log();
        assert_eq!(log.set_vcpus[0].logical_ids, [1, 3]);
        assert!(!log.set_vcpus[0].online);
        assert_eq!(log.set_vcpus[1].logical_ids, [5]);
        assert!(log.set_vcpus[1].online);
    }

    // A bad list is a usage error naming it, before any call.
    let calls_before = s.log().calls.len();
    let (code, out, err) =
        run(s
            .virtctl()
            .args(["guestvcpus", "web", "--cpulist", "1-x", "--enable"]));
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(
        err.contains("'1-x' is not a CPU list ('x' is not a CPU number)"),
        "{err}"
    );
    for args in [
        // virsh: --cpulist needs one of --enable/--disable, and they need --cpulist.
        &["guestvcpus", "web", "--cpulist", "1"][..],
        &["guestvcpus", "web", "--enable"][..],
        &[
            "guestvcpus",
            "web",
            "--cpulist",
            "1",
            "--enable",
            "--disable",
        ][..],
        &["guestvcpus", "web", "--cpulist", "3-1", "--enable"][..],
    ] {
        let (code, _, _) = run(s.virtctl().args(args));
        assert_eq!(code, 2, "{args:?}");
    }
    assert_eq!(s.log().calls.len(), calls_before);
}

#[test]
fn guest_exec_passes_output_and_exit_code() {
    let s = Server::start();
    let (code, out, err) = run(s.virtctl().args(["guest-exec", "web", "--", "true"]));
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));

    let (code, out, err) = run(s.virtctl().args([
        "guest-exec",
        "web",
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]));
    assert_eq!(code, 3);
    assert_eq!(out, "out\n");
    assert_eq!(err, "err\n");

    // Killed by signal 9: 128 + 9, as a shell says.
    let (code, out, err) = run(s.virtctl().args(["guest-exec", "web", "--", "killed"]));
    assert_eq!((code, out.as_str(), err.as_str()), (137, "", ""));

    let (code, out, err) = run(s.virtctl().args(["guest-exec", "web", "--", "chatty"]));
    assert_eq!(code, 0);
    assert_eq!(out, "first part");
    assert_eq!(
        err,
        "warning: the guest agent kept only part of the program's stdout\n"
    );

    // The guest's own failure to start the program: virtctl's error, exit 1.
    let (code, _, err) = run(s.virtctl().args(["guest-exec", "web", "--", "nosuch"]));
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "error: guest-exec: failed to execute 'nosuch': No such file or directory\n"
    );
    let (code, _, err) = run(s.virtctl().args(["guest-exec", "web", "--", "vanish"]));
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "error: the server ended guest-exec before the program exited (it may still run in \
         the guest as pid 4242)\n"
    );

    // The exec stream has no deadline without --timeout.
    let log = s.log();
    assert!(
        log.calls.iter().all(|(_, _, deadline)| deadline.is_none()),
        "{:?}",
        log.calls
    );
}

#[test]
fn guest_exec_arguments_pass_through() {
    let s = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input");
    std::fs::write(&input, b"from a file\n").unwrap();
    let (code, out, err) = run(s.virtctl().args([
        "guest-exec",
        "web",
        "--env",
        "LANG=C",
        "--env",
        "EMPTY=",
        "--stdin",
        input.to_str().unwrap(),
        "--",
        "echo-all",
        "-la",
        "--timeout",
        "5",
        "--",
        "-o",
        "json",
    ]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "-la\n--timeout\n5\n--\n-o\njson\nenv LANG=C\nenv EMPTY=\nfrom a file\n"
    );
    // stdin from virtctl's own stdin.
    let (code, out, err) = run(s
        .virtctl()
        .args(["guest-exec", "web", "--stdin", "-", "--", "echo-all"])
        .write_stdin("piped\n"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "\npiped\n");
    {
        let log = s.log();
        let r = &log.exec[0];
        assert_eq!(name_of(&r.domain), "web");
        assert_eq!(r.path, "echo-all");
        assert_eq!(r.args, ["-la", "--timeout", "5", "--", "-o", "json"]);
        assert_eq!(r.env, ["LANG=C", "EMPTY="]);
        assert_eq!(r.stdin, b"from a file\n");
        assert_eq!(r.timeout_seconds, 0);
        assert!(!r.discard_output);
    }

    // Usage errors (exit 2), no call made: no program, no `--`, a bad --env.
    let calls = s.log().calls.len();
    for args in [
        &["guest-exec", "web"][..],
        &["guest-exec", "web", "--"][..],
        &["guest-exec", "web", "ls", "-l"][..],
        &["guest-exec", "web", "--env", "NOEQUALS", "--", "true"][..],
    ] {
        let (code, out, err) = run(s.virtctl().args(args));
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(out.is_empty());
    }
    let (_, _, err) = run(s.virtctl().args(["guest-exec", "web"]));
    assert!(err.contains("<PROGRAM>"), "{err}");
    assert_eq!(s.log().calls.len(), calls);
}

#[test]
fn guest_exec_timeout_and_json() {
    let s = Server::start();
    let (code, out, err) =
        run(s
            .virtctl()
            .args(["guest-exec", "web", "--timeout", "1", "--", "sleep", "60"]));
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert_eq!(
        err,
        "error: the program (pid 4243 in the guest) still runs after 1 s; it was left running\n"
    );
    {
        let log = s.log();
        assert_eq!(log.exec[0].timeout_seconds, 1);
        // The deadline leaves the server time to say so itself.
        let deadline = log.calls[0].2.clone().unwrap_or_default();
        assert!(deadline.starts_with("600"), "{deadline}");
    }

    let (code, out, err) = run(s.virtctl().args([
        "guest-exec",
        "web",
        "-o",
        "json",
        "--",
        "sh",
        "-c",
        "exit 3",
    ]));
    // The exit code passes also with data output.
    assert_eq!(code, 3, "{err}");
    let v = json(&out);
    assert_eq!(v["pid"], 4242);
    assert_eq!(v["exit_code"], 3);
    assert_eq!(v["signal"], serde_json::Value::Null);
    assert_eq!(v["stdout"], "out\n");
    assert_eq!(v["stderr"], "err\n");
}

#[test]
fn guest_files() {
    let s = Server::start();
    let (code, out, err) = run(s
        .virtctl()
        .args(["guest-file-read", "web", "/etc/hostname"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "web.example.com\n");
    let (code, out, _) = run(s.virtctl().args([
        "guest-file-read",
        "web",
        "/etc/hostname",
        "--offset",
        "4",
        "--length",
        "7",
    ]));
    assert_eq!((code, out.as_str()), (0, "example"));
    let (code, _, err) = run(s.virtctl().args(["guest-file-read", "web", "/nope"]));
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "error: guest-file-open: failed to open file '/nope': No such file or directory\n"
    );
    {
        let log = s.log();
        assert_eq!(
            (log.read_file[1].offset, log.read_file[1].max_bytes),
            (4, 7)
        );
        assert_eq!(log.read_file[0].max_bytes, 0);
    }

    let (code, out, err) = run(s
        .virtctl()
        .args(["guest-file-write", "web", "/tmp/motd"])
        .write_stdin("hello\n"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "Wrote 6 bytes to /tmp/motd in domain 'web'\n");

    // More than one call's worth (3 MiB): split, the rest appended.
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big");
    let data: Vec<u8> = (0..(3 << 20) + 100).map(|i| (i % 251) as u8).collect();
    std::fs::write(&big, &data).unwrap();
    let (code, out, err) = run(s.virtctl().args([
        "guest-file-write",
        "web",
        "/tmp/big",
        "--file",
        big.to_str().unwrap(),
        "-o",
        "json",
    ]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(&out)["written"], data.len());

    // An empty input still makes the file.
    let (code, out, _) = run(s
        .virtctl()
        .args(["guest-file-write", "web", "/tmp/empty", "--append"])
        .write_stdin(""));
    assert_eq!(
        (code, out.as_str()),
        (0, "Wrote 0 bytes to /tmp/empty in domain 'web'\n")
    );

    let log = s.log();
    let w = &log.write_file;
    assert_eq!(w.len(), 4);
    assert_eq!(
        (w[0].path.as_str(), w[0].data.as_slice(), w[0].append),
        ("/tmp/motd", &b"hello\n"[..], false)
    );
    assert_eq!((w[1].data.len(), w[1].append), (3 << 20, false));
    assert_eq!((w[2].data.len(), w[2].append), (100, true));
    assert_eq!([w[1].data.clone(), w[2].data.clone()].concat(), data);
    assert!(w[3].data.is_empty() && w[3].append);
}

#[test]
fn qemu_agent_command_and_timeout() {
    let s = Server::start();
    let (code, out, err) =
        run(s
            .virtctl()
            .args(["qemu-agent-command", "web", r#"{"execute":"guest-info"}"#]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "{\"return\":{\"version\":\"7.2.9\",\"supported_commands\":[]}}\n"
    );
    let (_, out, _) = run(s.virtctl().args([
        "qemu-agent-command",
        "web",
        "--timeout",
        "7",
        r#"{"execute":"#,
        r#""guest-info"}"#,
        "--pretty",
    ]));
    assert_eq!(
        out,
        "{\n  \"return\": {\n    \"version\": \"7.2.9\",\n    \"supported_commands\": []\n  }\n}\n"
    );
    let (code, _, err) = run(s
        .virtctl()
        .args(["qemu-agent-command", "web", "guest-info"]));
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "error: the agent command must be a JSON object such as {\"execute\":\"guest-info\"}, \
         not 'guest-info'\n"
    );
    {
        let log = s.log();
        assert_eq!(log.command[0].timeout_seconds, 0);
        assert_eq!(log.command[0].command, r#"{"execute":"guest-info"}"#);
        assert_eq!(log.command[1].timeout_seconds, 7);
        // Words joined with spaces, as virsh does.
        assert_eq!(log.command[1].command, r#"{"execute": "guest-info"}"#);
        // The call's deadline: the agent's 7 s plus a grace, not 7 s.
        let deadline = log.calls[1].2.clone().unwrap_or_default();
        assert!(deadline.starts_with("1200"), "{deadline}");
    }

    let (code, out, err) = run(s
        .virtctl()
        .args(["guest-agent-timeout", "web", "--timeout", "0"]));
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    let (code, _, err) = run(s
        .virtctl()
        .args(["guest-agent-timeout", "web", "--timeout", "90"]));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(s.virtctl().args(["guest-agent-timeout", "web"]));
    assert_eq!(code, 2);
    assert!(
        err.contains("guest-agent-timeout needs --timeout SECS"),
        "{err}"
    );
    // 0 is a value only for guest-agent-timeout.
    let (code, _, err) = run(s.virtctl().args(["domhostname", "web", "--timeout", "0"]));
    assert_eq!(code, 2);
    assert!(err.contains("give at least 1 second"), "{err}");
    let log = s.log();
    let sent: Vec<u32> = log.set_timeout.iter().map(|r| r.timeout_seconds).collect();
    assert_eq!(sent, [0, 90]);
}

#[test]
fn ping_and_agent_info() {
    let s = Server::start();
    let (code, out, err) = run(s.virtctl().args(["guest-ping", "web"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "Guest agent of domain 'web' is responding\n");
    let (_, out, _) = run(s.virtctl().args(["guest-ping", "web", "-o", "json"]));
    assert_eq!(json(&out)["result"], "responding");
    let (code, out, err) = run(s.virtctl().args(["guest-agent-info", "web"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "Version:        7.2.9\n\
         Commands:       2\n\
         \n \
         Command          Enabled   Success response\n\
         ----------------------------------------------\n \
         guest-exec       yes       yes\n \
         guest-shutdown   no        no\n"
    );
    let (_, out, _) = run(s.virtctl().args(["guest-agent-info", "web", "-o", "yaml"]));
    assert!(out.contains("version: 7.2.9\n"), "{out}");
    // Typed agent calls carry the usual call deadline.
    assert!(s.log().calls.iter().all(|c| c.2.is_some()));
}
