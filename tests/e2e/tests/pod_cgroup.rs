//! VMs survive a pod restart (issue #7, item 2): the domain service runs in a container set up
//! as its DaemonSet pod is — a cgroup of its own (which the runtime kills as a whole on a
//! restart or deletion), its own mount namespace, the host's PID namespace, the host's cgroupfs
//! mounted read-write — and moves each QEMU out of the container's cgroup into
//! `/virtplane.vms/<vm>`, so deleting the container leaves the VM running and a new container
//! on the same state and run dirs reattaches to it.
//!
//! The containers are real: runc runs a bundle whose root filesystem is assembled from the
//! host (read-only binds of /usr, /etc, …, the built `virtplane-domaind`, the test's own
//! directory for state and run dirs), as privileged as the host allows. The domain service
//! listens on a unix socket in the test directory only; the test talks gRPC to it directly.
//!
//! The counter-case shows the check can fail: without the host's cgroupfs (runc mounts a
//! read-only cgroupfs of the container's own cgroup namespace, as for an unprivileged pod)
//! QEMU cannot leave, the service says so, and deleting the container kills the VM.
//!
//! Everything a test makes — containers, cgroups, QEMU processes, files — is removed by
//! [`Fixture`]'s `Drop`, by id, path and pid, also when the test fails. Deadlines only stop
//! hangs; nothing asserts a duration.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};
use virtplane_common::client::connect_channel;
use virtplane_common::server::ListenAddr;
use virtplane_e2e::binary;
use virtplane_proto::v1 as pb;
use virtplane_proto::v1::domain_service_client::DomainServiceClient;

/// Bounds every wait and every external command.
const HANG_GUARD: Duration = Duration::from_secs(60);

const RUNC: &str = "runc";
const VM: &str = "podvm";
/// The domain service's default VM cgroup root.
const VM_ROOT: &str = "virtplane.vms";

/// How the pod's container sees cgroups.
#[derive(Clone, Copy, Debug)]
enum Cgroups {
    /// The host's /sys/fs/cgroup bind-mounted read-write (every v1 controller mount with it,
    /// `rbind`), the container in a cgroup namespace of its own (Docker's default on cgroup
    /// v2, containerd's for unprivileged containers there): the service must leave it.
    HostFsOwnNamespace,
    /// The host's /sys/fs/cgroup read-write, the host's cgroup namespace (containerd gives
    /// privileged containers the host's).
    HostFsHostNamespace,
    /// runc's own read-only cgroupfs mount of the container's cgroup namespace: what a pod
    /// without the host's cgroupfs sees.
    ContainerOnly,
}

/// A cgroup filesystem mounted whole on the host (the test runs in the host's namespaces).
fn cgroup_mount_points() -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let fstype = right.split(' ').next()?;
            let point = PathBuf::from(left.get(4)?);
            (matches!(fstype, "cgroup" | "cgroup2") && left.get(3) == Some(&"/")).then_some(point)
        })
        .collect()
}

fn procs(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Alive and not a zombie.
fn running(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rfind(')')
        .is_some_and(|end| !stat[end + 1..].trim_start().starts_with('Z'))
}

fn wait_until_gone(pid: i32, what: &str) {
    let deadline = Instant::now() + HANG_GUARD;
    while running(pid) {
        assert!(Instant::now() < deadline, "{what} {pid} is still running");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `ID:CONTROLLERS:PATH` lines of `/proc/PID/cgroup`.
fn cgroup_lines(pid: i32) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Runs `command` to completion within [`HANG_GUARD`]; kills it (by pid) if it hangs.
fn run_bounded(mut command: Command) -> Output {
    let what = format!("{command:?}");
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(HANG_GUARD) {
        Ok(out) => out.unwrap_or_else(|e| panic!("{what}: {e}")),
        Err(_) => {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            panic!("{what} hung");
        }
    }
}

/// A running container of [`Fixture::start_pod`].
struct Pod {
    id: String,
    /// Its cgroup, from each hierarchy's top (`/virtplane-test-…`).
    cgroup: String,
    /// The container's process: the domain service.
    pid: i32,
}

/// The test's directory, runc's state, and everything to clean up.
struct Fixture {
    dir: tempfile::TempDir,
    tag: String,
    containers: Vec<String>,
    /// Container cgroups, from each hierarchy's top.
    cgroups: Vec<String>,
    /// The VM's cgroup key (`<prefix>-<id>-podvm`), once seen.
    vm_key: Option<String>,
}

impl Fixture {
    /// Fails, saying why, where containers cannot run: not root, no runc.
    fn new() -> Fixture {
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test runs containers: it needs root"
        );
        let version = Command::new(RUNC).arg("--version").output();
        assert!(
            version.is_ok_and(|o| o.status.success()),
            "this test needs runc (Debian package `runc`) on PATH"
        );
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        // Short: QEMU's sockets live below it, and unix socket paths are limited.
        let dir = tempfile::Builder::new()
            .prefix("vp-pod-")
            .tempdir_in("/tmp")
            .expect("temp dir");
        Fixture {
            dir,
            tag: format!("{}-{nanos:08x}", std::process::id()),
            containers: Vec::new(),
            cgroups: Vec::new(),
            vm_key: None,
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn socket(&self) -> PathBuf {
        self.path("run/domain.sock")
    }

    fn runc(&self, args: &[&str]) -> Output {
        let mut command = Command::new(RUNC);
        command.arg("--root").arg(self.path("runc")).args(args);
        run_bounded(command)
    }

    /// The OCI config of pod number `n`: the DaemonSet pod's settings, as a runc bundle.
    fn config(&self, n: u32, cgroups: Cgroups, rootfs: &Path, cgroup: &str) -> Value {
        let bind_ro = |dir: &str| json!({"destination": dir, "type": "bind", "source": dir, "options": ["rbind", "ro"]});
        let mut mounts = vec![
            json!({"destination": "/proc", "type": "proc", "source": "proc"}),
            json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                   "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
            json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                   "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}),
            json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                   "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
            json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
                   "options": ["nosuid", "noexec", "nodev", "ro"]}),
            json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                   "options": ["nosuid", "nodev", "mode=1777"]}),
        ];
        for dir in ["/usr", "/etc", "/bin", "/sbin", "/lib", "/lib64", "/lib32"] {
            let host = Path::new(dir);
            let inside = rootfs.join(&dir[1..]);
            match std::fs::symlink_metadata(host) {
                // Merged /usr: the same link in the rootfs (its target is bound above).
                Ok(meta) if meta.file_type().is_symlink() => {
                    let target = std::fs::read_link(host).unwrap();
                    if !inside.exists() {
                        std::os::unix::fs::symlink(target, &inside).unwrap();
                    }
                }
                Ok(_) => mounts.push(bind_ro(dir)),
                Err(_) => {}
            }
        }
        // The service binary, and the test directory (state, run dir, sockets) at its host path.
        mounts.push(json!({"destination": "/virtplane-domaind", "type": "bind",
            "source": binary("virtplane-domaind"), "options": ["bind", "ro"]}));
        let dir = self.dir.path().to_str().unwrap();
        mounts.push(json!({"destination": dir, "type": "bind", "source": dir,
            "options": ["rbind", "rw"]}));
        mounts.push(match cgroups {
            Cgroups::HostFsOwnNamespace | Cgroups::HostFsHostNamespace => {
                json!({"destination": "/sys/fs/cgroup", "type": "bind",
                       "source": "/sys/fs/cgroup", "options": ["rbind", "rw"]})
            }
            Cgroups::ContainerOnly => {
                json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                       "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]})
            }
        });
        // No pid namespace (hostPID) and no network namespace (hostNetwork: the service
        // listens on a unix socket only).
        let mut namespaces = vec![
            json!({"type": "mount"}),
            json!({"type": "ipc"}),
            json!({"type": "uts"}),
        ];
        if !matches!(cgroups, Cgroups::HostFsHostNamespace) {
            namespaces.push(json!({"type": "cgroup"}));
        }
        let caps = virtplane_e2e::capabilities::host_bounding_set();
        json!({
            "ociVersion": "1.0.2-dev",
            "hostname": format!("domaind-{n}"),
            "root": {"path": "rootfs", "readonly": true},
            "process": {
                "terminal": false,
                "user": {"uid": 0, "gid": 0},
                "cwd": "/",
                "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "RUST_LOG=info"],
                "args": [
                    "/virtplane-domaind", "--driver", "qemu",
                    "--state-dir", self.path("state"),
                    "--run-dir", self.path("run/domain"),
                    "--listen", format!("unix:{}", self.socket().display()),
                ],
                "capabilities": {
                    "bounding": caps, "effective": caps, "permitted": caps,
                },
                "noNewPrivileges": false,
            },
            "mounts": mounts,
            "linux": {
                "cgroupsPath": cgroup,
                "namespaces": namespaces,
                "resources": {"devices": [{"allow": true, "access": "rwm"}]},
                "maskedPaths": [],
                "readonlyPaths": [],
            },
        })
    }

    /// Starts pod number `n` (`runc run -d`) and waits until its domain service answers.
    fn start_pod(&mut self, n: u32, cgroups: Cgroups) -> Pod {
        let id = format!("vp-pod-{}-{n}", self.tag);
        let cgroup = format!("/virtplane-test-{}-pod{n}", self.tag);
        let bundle = self.path(&format!("bundle-{n}"));
        let rootfs = bundle.join("rootfs");
        std::fs::create_dir_all(&rootfs).unwrap();
        std::fs::create_dir_all(self.path("run")).unwrap();
        let config = self.config(n, cgroups, &rootfs, &cgroup);
        std::fs::write(bundle.join("config.json"), config.to_string()).unwrap();
        let _ = std::fs::remove_file(self.socket());

        // Detached: runc exits once the container runs; the service's output (and runc's
        // errors) go to the log, never to a pipe that would stay open.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(&format!("pod-{n}.log")))
            .unwrap();
        self.containers.push(id.clone());
        self.cgroups.push(cgroup.clone());
        let mut command = Command::new(RUNC);
        command
            .arg("--root")
            .arg(self.path("runc"))
            .args(["run", "--detach", "--bundle"])
            .arg(&bundle)
            .arg(&id)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let mut child = command.spawn().expect("runc run");
        let deadline = Instant::now() + HANG_GUARD;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("runc run {id} hung");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "runc run {id}: {}", self.log(n));

        let state = self.runc(&["state", &id]);
        assert!(state.status.success(), "runc state {id}: {state:?}");
        let state: Value = serde_json::from_slice(&state.stdout).unwrap();
        let pid = state["pid"].as_i64().expect("container pid") as i32;
        self.wait_healthy(n);
        Pod { id, cgroup, pid }
    }

    fn log(&self, n: u32) -> String {
        std::fs::read_to_string(self.path(&format!("pod-{n}.log"))).unwrap_or_default()
    }

    fn wait_healthy(&self, n: u32) {
        let deadline = Instant::now() + HANG_GUARD;
        loop {
            let mut command = Command::new(binary("virtctl"));
            command
                .env("VIRTCTL_CONFIG", self.path("no-virtctl-config.yaml"))
                .arg("--server")
                .arg(format!("unix:{}", self.socket().display()))
                .args(["--token", "", "--timeout", "2", "health"]);
            if run_bounded(command).status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the domain service in pod {n} never answered; log:\n{}",
                self.log(n)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `runc kill` then `runc delete --force`: with the host's PID namespace, deleting kills
    /// every process left in the container's cgroup, as a pod deletion does.
    fn delete_pod(&self, pod: &Pod) {
        let _ = self.runc(&["kill", &pod.id, "KILL"]);
        let out = self.runc(&["delete", "--force", &pod.id]);
        assert!(out.status.success(), "runc delete {}: {out:?}", pod.id);
        wait_until_gone(pod.pid, "the domain service");
        for top in cgroup_mount_points() {
            let dir = top.join(pod.cgroup.trim_start_matches('/'));
            assert!(
                procs(&dir).is_empty(),
                "{} still has processes after the container was deleted",
                dir.display()
            );
        }
    }

    fn client(&self) -> DomainServiceClient<tonic::transport::Channel> {
        DomainServiceClient::new(connect_channel(&ListenAddr::Unix(self.socket())))
    }

    /// The pid the driver recorded for the VM, if its QEMU still runs.
    fn qemu_pid(&self) -> Option<i32> {
        let root = self.path("run/domain/qemu");
        std::fs::read_dir(root)
            .ok()?
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("process.json")).ok())
            .filter_map(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
            .filter_map(|record| i32::try_from(record["pid"].as_i64()?).ok())
            .find(|&pid| is_our_qemu(pid))
    }
}

/// Whether `pid` is QEMU running this test's VM (not a recycled pid).
fn is_our_qemu(pid: i32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&format!("guest={VM}")))
        && running(pid)
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for id in &self.containers {
            let _ = self.runc(&["kill", id, "KILL"]);
            let _ = self.runc(&["delete", "--force", id]);
        }
        if let Some(pid) = self.qemu_pid() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            let deadline = Instant::now() + Duration::from_secs(10);
            while running(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let mut dirs = Vec::new();
        for top in cgroup_mount_points() {
            if let Some(key) = &self.vm_key {
                dirs.push(top.join(VM_ROOT).join(key));
            }
            for cgroup in &self.cgroups {
                dirs.push(top.join(cgroup.trim_start_matches('/')));
            }
        }
        for dir in dirs {
            // Only this test's processes can be in these cgroups.
            for pid in procs(&dir) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while dir.exists() && std::fs::remove_dir(&dir).is_err() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

fn by_name(name: &str) -> Option<pb::DomainRef> {
    Some(pb::DomainRef {
        id: Some(pb::domain_ref::Id::Name(name.to_owned())),
    })
}

/// A VM that needs no guest: no disks, QEMU idles in the firmware under TCG.
fn vm_xml() -> String {
    format!(
        "<domain type='qemu'><name>{VM}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>\
         <os><type arch='x86_64' machine='pc'>hvm</type></os>\
         <devices><memballoon model='none'/></devices></domain>"
    )
}

async fn bounded<T>(what: &str, call: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(HANG_GUARD, call)
        .await
        .unwrap_or_else(|_| panic!("{what} hung"))
}

/// Defines and starts the VM through the pod's domain service; returns QEMU's pid.
async fn start_vm(fx: &Fixture) -> i32 {
    let mut client = fx.client();
    bounded(
        "define",
        client.define(pb::DefineDomainRequest { xml: vm_xml() }),
    )
    .await
    .expect("define");
    bounded(
        "start",
        client.start(pb::StartDomainRequest {
            domain: by_name(VM),
            paused: false,
        }),
    )
    .await
    .expect("start");
    fx.qemu_pid().expect("QEMU runs after start")
}

async fn vm_state(fx: &Fixture) -> pb::DomainSummary {
    let mut client = fx.client();
    bounded(
        "lookup",
        client.lookup(pb::LookupDomainRequest {
            domain: by_name(VM),
        }),
    )
    .await
    .expect("lookup")
    .into_inner()
    .domain
    .expect("a domain")
}

async fn vm_survives_a_pod_restart(cgroups: Cgroups) {
    let mut fx = Fixture::new();
    let pod = fx.start_pod(1, cgroups);
    let service_lines = cgroup_lines(pod.pid);
    assert!(
        service_lines
            .iter()
            .all(|l| l.ends_with(&format!(":{}", pod.cgroup))),
        "the service is not in its container's cgroup: {service_lines:?}"
    );

    let qemu = start_vm(&fx).await;
    // QEMU left the container's cgroup for its own, in every hierarchy.
    let lines = cgroup_lines(qemu);
    assert_eq!(lines.len(), service_lines.len(), "{lines:?}");
    let prefix = format!(":/{VM_ROOT}/");
    let key = lines[0]
        .split_once(&prefix)
        .map(|(_, key)| key.to_owned())
        .unwrap_or_else(|| panic!("QEMU is not below /{VM_ROOT}: {lines:?}"));
    fx.vm_key = Some(key.clone());
    for line in &lines {
        assert!(line.ends_with(&format!("{prefix}{key}")), "{lines:?}");
    }
    assert!(
        !fx.log(1).contains("cannot move QEMU") && !fx.log(1).contains("QEMU stays"),
        "{}",
        fx.log(1)
    );
    eprintln!(
        "QEMU {qemu} placed in /{VM_ROOT}/{key}, out of {}",
        pod.cgroup
    );

    // The pod goes: everything in its cgroup dies, and the cgroup with it. Not the VM.
    fx.delete_pod(&pod);
    assert!(is_our_qemu(qemu), "QEMU {qemu} died with the pod");

    // A new pod on the same state and run dirs finds the VM and controls it (over QMP).
    let pod2 = fx.start_pod(2, cgroups);
    let vm = vm_state(&fx).await;
    assert_eq!(vm.state, pb::DomainState::Running as i32, "{vm:?}");
    assert_eq!(fx.qemu_pid(), Some(qemu), "not the same QEMU");
    let mut client = fx.client();
    bounded(
        "suspend",
        client.suspend(pb::SuspendDomainRequest {
            domain: by_name(VM),
        }),
    )
    .await
    .expect("suspend after the pod restart");
    assert_eq!(vm_state(&fx).await.state, pb::DomainState::Paused as i32);

    // Destroyed through the new pod: QEMU and its cgroups go, in every hierarchy.
    bounded(
        "destroy",
        client.destroy(pb::DestroyDomainRequest {
            domain: by_name(VM),
            graceful: false,
        }),
    )
    .await
    .expect("destroy");
    wait_until_gone(qemu, "QEMU");
    assert_eq!(vm_state(&fx).await.state, pb::DomainState::Shutoff as i32);
    for top in cgroup_mount_points() {
        let dir = top.join(VM_ROOT).join(&key);
        assert!(!dir.exists(), "{} was not removed", dir.display());
    }
    fx.delete_pod(&pod2);
}

/// The DaemonSet's setting on a runtime that gives the container a cgroup namespace of its
/// own: the service works from the host's (PID 1's) cgroup namespace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vm_survives_a_pod_restart_from_its_own_cgroup_namespace() {
    vm_survives_a_pod_restart(Cgroups::HostFsOwnNamespace).await;
}

/// The DaemonSet's setting on containerd, whose privileged containers share the host's cgroup
/// namespace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vm_survives_a_pod_restart_in_the_host_cgroup_namespace() {
    vm_survives_a_pod_restart(Cgroups::HostFsHostNamespace).await;
}

/// Without the host's cgroupfs QEMU stays in the container's cgroup, the service warns, and
/// the VM dies with the pod: what the host cgroupfs mount is for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_host_cgroupfs_the_vm_dies_with_the_pod() {
    let mut fx = Fixture::new();
    let pod = fx.start_pod(1, Cgroups::ContainerOnly);
    let qemu = start_vm(&fx).await;

    let lines = cgroup_lines(qemu);
    assert!(
        lines
            .iter()
            .all(|l| l.ends_with(&format!(":{}", pod.cgroup))),
        "QEMU left the container's cgroup: {lines:?}"
    );
    let log = fx.log(1);
    assert!(
        log.contains("cannot move QEMU out of the service's cgroup"),
        "no warning in the log:\n{log}"
    );
    // The reason names the mount that shows only the container's cgroups.
    assert!(log.contains(&format!("shows only {}", pod.cgroup)), "{log}");

    fx.delete_pod(&pod);
    wait_until_gone(qemu, "QEMU, in the deleted pod's cgroup,");
    assert!(fx.qemu_pid().is_none());
}
