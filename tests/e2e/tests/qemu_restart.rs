//! Restart safety of the qemu driver, as issue #3 asks: the domain service runs in a cgroup of
//! its own; three VMs run (one paused, one a booted guest); the whole service cgroup is killed,
//! as systemd or a container runtime would. The VMs survive. While the service is dead the
//! guest is powered off over its QMP socket. After the restart all three are back with the
//! right states and are controllable, and the powered-off one is shut off with its events.
//!
//! Deadlines only stop hangs; nothing asserts a duration.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use virtplane_common::client::connect_channel;
use virtplane_common::server::ListenAddr;
use virtplane_e2e::guest::build_guest;
use virtplane_e2e::{Stack, wait_for_line, watch_events};
use virtplane_proto::v1 as pb;
use virtplane_proto::v1::domain_service_client::DomainServiceClient;

const DEADLINE: Duration = Duration::from_secs(120);

/// A cgroup v2 directory for the service, removed (after killing what is left in it) on drop.
struct ServiceCgroup(PathBuf);

impl ServiceCgroup {
    fn create() -> Option<Self> {
        let root = Path::new("/sys/fs/cgroup/unified");
        let root = if root.join("cgroup.procs").exists() {
            root
        } else {
            Path::new("/sys/fs/cgroup")
        };
        let dir = root.join(format!("vp-e2e-service-{}", std::process::id()));
        std::fs::create_dir(&dir).ok()?;
        Some(Self(dir))
    }

    fn add(&self, pid: i32) {
        std::fs::write(self.0.join("cgroup.procs"), pid.to_string()).expect("move into cgroup");
    }

    fn pids(&self) -> Vec<i32> {
        std::fs::read_to_string(self.0.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Kills every process in the cgroup, as `systemctl stop` or a container restart does.
    fn kill_all(&self) {
        let kill_file = self.0.join("cgroup.kill");
        if kill_file.exists() {
            std::fs::write(&kill_file, "1").expect("cgroup.kill");
        } else {
            for pid in self.pids() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        let deadline = Instant::now() + DEADLINE;
        while !self.pids().is_empty() {
            assert!(Instant::now() < deadline, "cgroup not empty after kill");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServiceCgroup {
    fn drop(&mut self) {
        for pid in self.pids() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::remove_dir(&self.0).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn bare_xml(name: &str) -> String {
    format!(
        "<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>\
         <os><type arch='x86_64' machine='pc'>hvm</type></os>\
         <devices><memballoon model='none'/></devices></domain>"
    )
}

fn guest_xml(name: &str, guest: &Path, serial: &Path) -> String {
    let kernel = if guest.join("vmlinux").is_file() {
        guest.join("vmlinux")
    } else {
        guest.join("vmlinuz")
    };
    format!(
        "<domain type='qemu'><name>{name}</name><memory unit='MiB'>128</memory><vcpu>1</vcpu>\
         <os><type arch='x86_64' machine='pc'>hvm</type><kernel>{}</kernel>\
         <initrd>{}</initrd><cmdline>console=ttyS0</cmdline></os><features><acpi/></features>\
         <devices><serial type='file'><source path='{}'/></serial>\
         <memballoon model='none'/></devices></domain>",
        kernel.display(),
        guest.join("initrd.img").display(),
        serial.display()
    )
}

/// `system_powerdown` straight over the VM's QMP socket, as if the guest's user pressed the
/// power button while nobody watched; waits until QEMU reports the guest shut down.
fn power_button(qmp: &Path) {
    let stream = UnixStream::connect(qmp).expect("connect QMP (the service is dead)");
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut line = String::new();
    let mut greeting = String::new();
    reader.read_line(&mut greeting).expect("QMP greeting");
    assert!(greeting.contains("QMP"), "not a QMP greeting: {greeting}");
    let mut call = |cmd: &str| -> String {
        writeln!(writer, "{cmd}").unwrap();
        loop {
            line.clear();
            reader.read_line(&mut line).expect("QMP reply");
            if line.contains("\"return\"") || line.contains("\"error\"") {
                return line.clone();
            }
        }
    };
    call(r#"{"execute":"qmp_capabilities"}"#);
    call(r#"{"execute":"system_powerdown"}"#);
    let deadline = Instant::now() + DEADLINE;
    loop {
        let status = call(r#"{"execute":"query-status"}"#);
        if status.contains("\"shutdown\"") {
            return;
        }
        assert!(Instant::now() < deadline, "guest ignored ACPI: {status}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn qmp_socket_of(stack: &Stack, name: &str) -> PathBuf {
    let root = stack.dir.path().join("run/domain/qemu");
    std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(&format!("-{name}")))
        })
        .map(|p| p.join("qmp.sock"))
        .unwrap_or_else(|| panic!("no run dir for {name} in {}", root.display()))
}

fn state_line(stack: &Stack, name: &str) -> String {
    stack.ok(&["domstate", "--reason", name]).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vms_survive_a_killed_service_cgroup() {
    let Some(cgroup) = ServiceCgroup::create() else {
        panic!("cannot create a cgroup: this test needs root and a writable cgroup tree");
    };
    let guest = tokio::task::spawn_blocking(build_guest).await.unwrap();
    let mut stack = Stack::start_with("qemu");
    cgroup.add(stack.domaind_pid().expect("domaind pid"));

    let serial = stack.dir.path().join("g-serial.log");
    for (name, xml) in [
        ("a", bare_xml("a")),
        ("b", bare_xml("b")),
        ("g", guest_xml("g", &guest, &serial)),
    ] {
        let file = stack.file(&format!("{name}.xml"), &xml);
        stack.ok(&["define", &file]);
    }
    stack.ok(&["start", "a"]);
    stack.ok(&["start", "--paused", "b"]);
    stack.ok(&["start", "g"]);
    let deadline = Instant::now() + DEADLINE;
    while !std::fs::read_to_string(&serial)
        .unwrap_or_default()
        .contains("virtplane-guest: ready")
    {
        assert!(Instant::now() < deadline, "guest did not boot (hang guard)");
        std::thread::sleep(Duration::from_millis(100));
    }
    let vms_before = stack.qemu_pids();
    assert_eq!(vms_before.len(), 3, "three QEMUs recorded");
    // A user watching events across the restart (through the gateway, which stays up).
    let (watcher, lines) = watch_events(&stack);
    stack.ok(&["suspend", "a"]);
    wait_for_line(&lines, "for domain 'a': Suspended");
    stack.ok(&["resume", "a"]);
    wait_for_line(&lines, "for domain 'a': Resumed");

    cgroup.kill_all();
    stack.reap_domaind();
    for pid in &vms_before {
        assert!(
            Path::new(&format!("/proc/{pid}")).exists(),
            "QEMU {pid} died with the service's cgroup"
        );
    }
    power_button(&qmp_socket_of(&stack, "g"));

    stack.start_domaind();
    assert_eq!(state_line(&stack, "a"), "running (unpaused)");
    assert_eq!(state_line(&stack, "b"), "paused (user)");
    assert_eq!(state_line(&stack, "g"), "shut off (shutdown)");

    // The catch-up events of the restart, from the start of the new service's epoch.
    let addr = ListenAddr::Unix(stack.domain_sock.clone());
    let mut client = DomainServiceClient::new(connect_channel(&addr));
    let list = client
        .list(pb::ListDomainsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let epoch_start = list.event_sequence & !0xffff_ffff;
    let mut stream = client
        .watch_events(pb::WatchRequest {
            after_sequence: epoch_start,
        })
        .await
        .unwrap()
        .into_inner();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let event = tokio::time::timeout(DEADLINE, stream.message())
            .await
            .expect("events in time")
            .unwrap()
            .unwrap();
        if let Some(pb::domain_event::Body::Lifecycle(l)) = event.body {
            seen.push((event.domain_name, l.detail));
        }
    }
    assert_eq!(
        seen,
        vec![
            ("g".to_string(), "finished".to_string()),
            ("g".to_string(), "shutdown".to_string())
        ]
    );

    // The watcher was told of the restart and got the catch-up events, as virtctl prints them.
    let mut told = wait_for_line(&lines, "the service restarted since event");
    told.extend(wait_for_line(&lines, "for domain 'g': Stopped Shutdown"));
    drop(watcher);
    assert!(
        told.iter()
            .any(|l| l.contains("for domain 'g': Shutdown Finished")),
        "{told:#?}"
    );

    // Controllable after the restart.
    stack.ok(&["resume", "b"]);
    assert_eq!(state_line(&stack, "b"), "running (unpaused)");
    stack.ok(&["suspend", "a"]);
    stack.ok(&["destroy", "a"]);
    stack.ok(&["destroy", "b"]);
    assert_eq!(state_line(&stack, "a"), "shut off (destroyed)");
    assert!(stack.qemu_pids().is_empty(), "QEMUs left after destroy");
}
