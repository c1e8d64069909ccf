//! Every rpc of `GuestAgentService`, called once through the gateway with a plain gRPC client
//! (as a program in another language would), against the real qemu-ga in the test guest
//! (initramfs root, 2 vCPUs, booted once under TCG). `guest_agent_calls.rs` covers the same
//! calls in depth through virtctl, on a guest with its root on a disk; this file makes sure
//! each typed rpc itself answers, including those virtctl has no command for (memory blocks,
//! freeze status, the agent's own shutdown).
//!
//! Deadlines only stop hangs.

mod guest_agent_support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use guest_agent_support::{BOOT_DEADLINE, GuestSpec, console_tail};
use tonic::Request;
use tonic::metadata::MetadataValue;
use virtplane_common::client::connect_channel;
use virtplane_common::server::ListenAddr;
use virtplane_e2e::guest::build_guest;
use virtplane_e2e::{ADMIN_TOKEN, Stack};
use virtplane_proto::v1 as pb;
use virtplane_proto::v1::domain_service_client::DomainServiceClient;
use virtplane_proto::v1::guest_agent_service_client::GuestAgentServiceClient;

const NAME: &str = "e2e-agent-grpc";

type Client = GuestAgentServiceClient<tonic::transport::Channel>;

/// A request carrying the admin token, as the gateway wants it.
fn admin<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    let token: MetadataValue<_> = format!("Bearer {ADMIN_TOKEN}").parse().expect("header");
    request.metadata_mut().insert("authorization", token);
    request.set_timeout(Duration::from_secs(60));
    request
}

fn domain() -> Option<pb::DomainRef> {
    Some(pb::DomainRef {
        id: Some(pb::domain_ref::Id::Name(NAME.into())),
    })
}

/// Pings until the agent answers (qemu-ga starts just before the guest says it is ready).
async fn wait_agent(client: &mut Client, serial: &std::path::Path) {
    let until = tokio::time::Instant::now() + BOOT_DEADLINE;
    loop {
        let ping = client
            .ping(admin(pb::PingGuestAgentRequest { domain: domain() }))
            .await;
        match ping {
            Ok(_) => return,
            Err(status) if tokio::time::Instant::now() > until => panic!(
                "the agent never answered (hang guard): {status}\nconsole:\n{}",
                console_tail(serial)
            ),
            Err(_) => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_guest_agent_rpc_answers_through_the_gateway() {
    let guest = tokio::task::spawn_blocking(build_guest).await.unwrap();
    let stack = Stack::start_with("qemu");
    let serial = stack.dir.path().join("grpc-serial.log");
    let xml = GuestSpec {
        name: NAME,
        vcpus: 2,
        memory_mib: 256,
        root_disk: None,
        nic_mac: None,
        serial_log: &serial,
    }
    .xml(&guest);
    let channel = connect_channel(&ListenAddr::Unix(stack.gateway_sock.clone()));
    let mut domains = DomainServiceClient::new(channel.clone());
    domains
        .create(admin(pb::CreateDomainRequest {
            xml,
            ..Default::default()
        }))
        .await
        .expect("create");
    let mut c = GuestAgentServiceClient::new(channel);
    wait_agent(&mut c, &serial).await;

    // Identity and information.
    let info = c
        .get_info(admin(pb::GetGuestAgentInfoRequest { domain: domain() }))
        .await
        .unwrap()
        .into_inner();
    assert!(info.version.starts_with("7."), "{}", info.version);
    let exec = info.commands.iter().find(|c| c.name == "guest-exec");
    assert!(
        exec.is_some_and(|c| c.enabled && c.success_response),
        "{info:?}"
    );
    let shutdown = info.commands.iter().find(|c| c.name == "guest-shutdown");
    assert!(shutdown.is_some_and(|c| !c.success_response), "{info:?}");

    let os = c
        .get_os_info(admin(pb::GetGuestOsInfoRequest { domain: domain() }))
        .await
        .unwrap()
        .into_inner()
        .os
        .unwrap();
    assert_eq!(
        (os.id.as_str(), os.machine.as_str()),
        ("virtplane-guest", "x86_64")
    );
    let host = c
        .get_hostname(admin(pb::GetGuestHostnameRequest { domain: domain() }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(host.hostname, "virtplane-guest");
    let tz = c
        .get_timezone(admin(pb::GetGuestTimezoneRequest { domain: domain() }))
        .await
        .unwrap()
        .into_inner()
        .timezone
        .unwrap();
    assert_eq!((tz.zone.as_str(), tz.offset_seconds), ("UTC", 0));
    // The console's `login -f root` records root in utmp a moment after boot.
    let until = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let users = c
            .get_users(admin(pb::GetGuestUsersRequest { domain: domain() }))
            .await
            .unwrap()
            .into_inner()
            .users;
        if users
            .iter()
            .any(|u| u.name == "root" && u.login_time.is_some())
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "no root login: {users:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let interfaces = c
        .get_interfaces(admin(pb::GetGuestInterfacesRequest { domain: domain() }))
        .await
        .unwrap()
        .into_inner()
        .interfaces;
    let lo = interfaces.iter().find(|i| i.name == "lo").expect("lo");
    assert!(
        lo.addresses
            .iter()
            .any(|a| a.address == "127.0.0.1" && a.prefix == 8),
        "{lo:?}"
    );
    // The initramfs root has no block devices behind its file systems.
    let filesystems = c
        .get_filesystems(admin(pb::GetGuestFilesystemsRequest { domain: domain() }))
        .await
        .unwrap()
        .into_inner();
    assert!(filesystems.filesystems.is_empty(), "{filesystems:?}");
    c.get_disks(admin(pb::GetGuestDisksRequest { domain: domain() }))
        .await
        .unwrap();
    let all = c
        .get_guest_info(admin(pb::GetGuestInfoRequest {
            domain: domain(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.hostname.as_deref(), Some("virtplane-guest"));
    assert!(all.os.is_some() && all.timezone.is_some() && all.users.is_some());
    assert!(all.filesystems.is_some() && all.disks.is_some());
    assert!(
        all.interfaces
            .is_some_and(|i| i.interfaces.iter().any(|i| i.name == "lo"))
    );
    let only_host = c
        .get_guest_info(admin(pb::GetGuestInfoRequest {
            domain: domain(),
            hostname: true,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(only_host.hostname.is_some() && only_host.os.is_none() && only_host.users.is_none());

    // vCPUs: cpu1 offline and back.
    let vcpus = c
        .get_vcpus(admin(pb::GetGuestVcpusRequest { domain: domain() }))
        .await
        .unwrap()
        .into_inner()
        .vcpus;
    assert_eq!(vcpus.len(), 2, "{vcpus:?}");
    for online in [false, true] {
        let set = c
            .set_vcpus(admin(pb::SetGuestVcpusRequest {
                domain: domain(),
                logical_ids: vec![1],
                online,
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(set.processed, 1);
        let now = c
            .get_vcpus(admin(pb::GetGuestVcpusRequest { domain: domain() }))
            .await
            .unwrap()
            .into_inner()
            .vcpus;
        assert_eq!(
            now.iter().find(|v| v.logical_id == 1).map(|v| v.online),
            Some(online)
        );
    }
    let refused = c
        .set_vcpus(admin(pb::SetGuestVcpusRequest {
            domain: domain(),
            logical_ids: vec![0],
            online: false,
        }))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition, "{refused}");

    // Memory blocks: listed with their size; an index the guest does not have is not found.
    let blocks = c
        .get_memory_blocks(admin(pb::GetGuestMemoryBlocksRequest { domain: domain() }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(blocks.block_size_bytes, 128 << 20);
    assert!(!blocks.blocks.is_empty());
    let results = c
        .set_memory_blocks(admin(pb::SetGuestMemoryBlocksRequest {
            domain: domain(),
            phys_indexes: vec![9999],
            online: true,
        }))
        .await
        .unwrap()
        .into_inner()
        .results;
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].result(), pb::GuestMemoryBlockResult::NotFound);

    // Time: set a day back, read it, then sync from the RTC.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let yesterday = now - 86_400;
    c.set_time(admin(pb::SetGuestTimeRequest {
        domain: domain(),
        time: Some(prost_types::Timestamp {
            seconds: yesterday,
            nanos: 0,
        }),
    }))
    .await
    .unwrap();
    let read = c
        .get_time(admin(pb::GetGuestTimeRequest { domain: domain() }))
        .await
        .unwrap()
        .into_inner()
        .time
        .unwrap();
    assert!(
        (read.seconds - yesterday).abs() < 120,
        "{read:?} vs {yesterday}"
    );
    c.set_time(admin(pb::SetGuestTimeRequest {
        domain: domain(),
        time: None,
    }))
    .await
    .unwrap();

    // Freeze, status, thaw and trim: nothing to freeze or trim on the initramfs root.
    let frozen = c
        .freeze_filesystems(admin(pb::FreezeGuestFilesystemsRequest {
            domain: domain(),
            mountpoints: vec![],
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(frozen.frozen, 0);
    let status = c
        .get_freeze_status(admin(pb::GetGuestFreezeStatusRequest { domain: domain() }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.status(), pb::GuestFreezeStatus::Thawed);
    c.thaw_filesystems(admin(pb::ThawGuestFilesystemsRequest { domain: domain() }))
        .await
        .unwrap();
    let trimmed = c
        .trim_filesystems(admin(pb::TrimGuestFilesystemsRequest {
            domain: domain(),
            minimum_bytes: 0,
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(trimmed.results.is_empty(), "{trimmed:?}");

    // Password and SSH keys.
    c.set_user_password(admin(pb::SetGuestUserPasswordRequest {
        domain: domain(),
        user: "root".into(),
        password: "grpc-s3cret".into(),
        crypted: false,
    }))
    .await
    .unwrap();
    let key =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGrpcTestKeyOnlyForTheE2eTest0000000000 e2e@grpc";
    c.add_ssh_authorized_keys(admin(pb::AddGuestSshAuthorizedKeysRequest {
        domain: domain(),
        user: "root".into(),
        keys: vec![key.into()],
        reset: true,
    }))
    .await
    .unwrap();
    let keys = c
        .get_ssh_authorized_keys(admin(pb::GetGuestSshAuthorizedKeysRequest {
            domain: domain(),
            user: "root".into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .keys;
    assert_eq!(keys, vec![key.to_owned()]);
    c.remove_ssh_authorized_keys(admin(pb::RemoveGuestSshAuthorizedKeysRequest {
        domain: domain(),
        user: "root".into(),
        keys: vec![key.into()],
    }))
    .await
    .unwrap();

    // Files: more than one 1 MiB piece each way, byte for byte.
    let data: Vec<u8> = (0..2_500_000u32).map(|i| (i % 251) as u8).collect();
    let written = c
        .write_file(admin(pb::WriteGuestFileRequest {
            domain: domain(),
            path: "/tmp/grpc.bin".into(),
            data: data.clone(),
            append: false,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(written.written, data.len() as u64);
    let mut chunks = c
        .read_file(admin(pb::ReadGuestFileRequest {
            domain: domain(),
            path: "/tmp/grpc.bin".into(),
            offset: 0,
            max_bytes: 0,
        }))
        .await
        .unwrap()
        .into_inner();
    let mut back = Vec::new();
    while let Some(chunk) = chunks.message().await.unwrap() {
        back.extend_from_slice(&chunk.data);
    }
    assert!(
        back == data,
        "read {} bytes back, not the {} written",
        back.len(),
        data.len()
    );

    // Exec: started, output, exited with the program's code.
    let mut events = c
        .exec(admin(pb::GuestExecRequest {
            domain: domain(),
            path: "/bin/sh".into(),
            args: vec![
                "-c".into(),
                "read x; echo out:$x; echo err >&2; exit 7".into(),
            ],
            stdin: b"in\n".to_vec(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let (mut pid, mut stdout, mut stderr, mut exit) = (None, Vec::new(), Vec::new(), None);
    while let Some(event) = events.message().await.unwrap() {
        match event.event.expect("an event body") {
            pb::guest_exec_event::Event::Started(s) => pid = Some(s.pid),
            pb::guest_exec_event::Event::Output(o) => {
                stdout.extend(o.stdout);
                stderr.extend(o.stderr);
            }
            pb::guest_exec_event::Event::Exited(e) => exit = e.status,
        }
    }
    assert!(pid.is_some_and(|p| p > 0));
    assert_eq!(
        (stdout.as_slice(), stderr.as_slice()),
        (&b"out:in\n"[..], &b"err\n"[..])
    );
    assert_eq!(exit, Some(pb::guest_exec_exited::Status::ExitCode(7)));

    // Raw passthrough, and the per-domain timeout.
    let raw = c
        .command(admin(pb::GuestAgentCommandRequest {
            domain: domain(),
            command: r#"{"execute":"guest-get-host-name"}"#.into(),
            timeout_seconds: 5,
        }))
        .await
        .unwrap()
        .into_inner();
    let raw: serde_json::Value = serde_json::from_str(&raw.reply).unwrap();
    assert_eq!(raw["return"]["host-name"], "virtplane-guest");
    c.set_timeout(admin(pb::SetGuestAgentTimeoutRequest {
        domain: domain(),
        timeout_seconds: 5,
    }))
    .await
    .unwrap();

    // The agent's own shutdown: the guest powers off and the (transient) domain is gone.
    c.shutdown(admin(pb::GuestShutdownRequest {
        domain: domain(),
        mode: pb::GuestShutdownMode::Powerdown.into(),
    }))
    .await
    .unwrap();
    let until = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let lookup = domains
            .lookup(admin(pb::LookupDomainRequest { domain: domain() }))
            .await;
        match lookup {
            Err(status) if status.code() == tonic::Code::NotFound => break,
            _ => {
                assert!(
                    tokio::time::Instant::now() < until,
                    "still there after the agent's shutdown: {lookup:?}\nconsole:\n{}",
                    console_tail(&serial)
                );
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    }
}
