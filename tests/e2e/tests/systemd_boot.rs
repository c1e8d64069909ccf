//! The units in deploy/systemd under a real systemd: systemd boots as PID 1 in a runc
//! container, deploy/systemd/install.sh installs the built binaries and the units in it, the
//! four units start with all their hardening (sandboxing, seccomp filters, capability bounding
//! sets, the gateway's `DynamicUser=`), and virtctl drives real work through the gateway: a
//! directory pool and a qcow2 volume (qemu-img), a NAT network with DHCP (bridge, nft,
//! dnsmasq), a disk-less QEMU domain under TCG. Then `systemctl restart` of the domain and the
//! network service must leave QEMU and dnsmasq running, same pids (`KillMode=process`), and
//! the services must report them running again.
//!
//! The container's root filesystem is assembled from the host (no download): the host's
//! /usr bind-mounted read-only (systemd, QEMU, dnsmasq, nft, glibc all come from it), a
//! writable /usr/local over it for install.sh, a small /etc of its own (the host's user and
//! group databases, loader cache), tmpfs /run and /tmp. It has its own PID, mount, network,
//! IPC, UTS and cgroup namespaces, so the bridge, the nft table and every process stay inside
//! and die with it; runc mounts a cgroupfs of the container's own cgroups read-write for
//! systemd. The container is killed and deleted by its id (runc removes its cgroups), and its
//! directory removed, when [`Machine`] is dropped, also when the test fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use virtplane_e2e::command::Ran;

use serde_json::{Value, json};

/// Bounds every wait and every external command; nothing asserts a duration.
const HANG_GUARD: Duration = Duration::from_secs(90);
/// systemd as PID 1, from the host's /usr.
const SYSTEMD: &str = "/usr/lib/systemd/systemd";
const TOKEN: &str = "systemd-boot-test-token";
const GATEWAY: &str = "unix:/run/virtplane/gateway/gateway.sock";
const UNITS: [&str; 4] = [
    "virtplane-networkd",
    "virtplane-storaged",
    "virtplane-domaind",
    "virtplane-gateway",
];
/// Units that would change the host's kernel settings or need what the container lacks.
const MASKED: [&str; 6] = [
    "systemd-sysctl.service",
    "systemd-modules-load.service",
    "systemd-udevd.service",
    "systemd-timesyncd.service",
    "systemd-networkd.service",
    "systemd-resolved.service",
];
/// Copied from the host's /etc: the user and group databases (install.sh adds to them), name
/// service and loader configuration.
const ETC_FILES: [&str; 11] = [
    "passwd",
    "group",
    "shadow",
    "gshadow",
    "nsswitch.conf",
    "ld.so.cache",
    "ld.so.conf",
    "hosts",
    "protocols",
    "services",
    "login.defs",
];

const DOMAIN_XML: &str = "<domain type='qemu'><name>vm</name><memory unit='MiB'>64</memory>\
    <vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os>\
    <devices><memballoon model='none'/></devices></domain>";
const NETWORK_XML: &str = "<network><name>n1</name><bridge name='vpbr1'/>\
    <forward mode='nat'/><ip address='192.168.150.1' netmask='255.255.255.0'><dhcp>\
    <range start='192.168.150.10' end='192.168.150.50'/></dhcp></ip></network>";

/// The container's capabilities: the host's bounding set without those that reach the host
/// kernel as a whole (modules, clock, reboot, raw I/O).
fn container_capabilities() -> Vec<&'static str> {
    virtplane_e2e::capabilities::host_bounding_set()
        .into_iter()
        .filter(|name| {
            !matches!(
                *name,
                "CAP_SYS_MODULE" | "CAP_SYS_TIME" | "CAP_SYS_BOOT" | "CAP_SYS_RAWIO"
            )
        })
        .collect()
}

/// Runs `command` to its end, killed (and the test failed) after [`HANG_GUARD`].
fn run(command: Command) -> Ran {
    virtplane_e2e::command::run(command, HANG_GUARD)
}

fn require_tool(path: &str, package: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: apt-get install {package}"
    );
}

/// A systemd machine in a runc container; killed and deleted by id when dropped.
struct Machine {
    id: String,
    /// The bundle (config.json, rootfs, /usr/local), runc's state root and the log.
    dir: tempfile::TempDir,
}

impl Machine {
    fn boot() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        assert!(
            nix::unistd::geteuid().is_root(),
            "the systemd boot test runs containers: run it as root"
        );
        require_tool("/usr/sbin/runc", "runc");
        require_tool(SYSTEMD, "systemd");
        require_tool("/usr/bin/qemu-system-x86_64", "qemu-system-x86");
        require_tool("/usr/bin/qemu-img", "qemu-utils");
        require_tool("/usr/sbin/dnsmasq", "dnsmasq-base");
        require_tool("/usr/sbin/nft", "nftables");
        let id = format!(
            "vp-sd-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let dir = tempfile::Builder::new()
            .prefix("vp-sd-")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let machine = Self { id, dir };
        machine.make_rootfs();
        let config = machine.config();
        std::fs::write(
            machine.dir.path().join("config.json"),
            serde_json::to_vec_pretty(&config).expect("config serialises"),
        )
        .expect("write config.json");
        machine.start();
        machine.wait_booted();
        machine
    }

    fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    fn make_rootfs(&self) {
        let root = self.rootfs();
        for sub in [
            "usr", "etc", "var/lib", "var/log", "run", "tmp", "proc", "sys", "dev", "root",
        ] {
            std::fs::create_dir_all(root.join(sub)).expect("rootfs dir");
        }
        std::fs::create_dir_all(self.dir.path().join("usr-local")).expect("/usr/local");
        // The host is /usr-merged (Debian 12): /bin, /lib... are links into /usr.
        for link in ["bin", "lib", "lib64", "sbin"] {
            std::os::unix::fs::symlink(format!("usr/{link}"), root.join(link))
                .expect("rootfs link");
        }
        let etc = root.join("etc");
        for file in ETC_FILES {
            let host = Path::new("/etc").join(file);
            if host.exists() {
                std::fs::copy(&host, etc.join(file)).expect("copy a file of the host's /etc");
            }
        }
        for tree in ["ld.so.conf.d", "alternatives"] {
            let mut copy = Command::new("cp");
            copy.arg("-a").arg(Path::new("/etc").join(tree)).arg(&etc);
            let ran = run(copy);
            assert!(ran.success, "cp -a /etc/{tree}: {}", ran.stderr);
        }
        std::os::unix::fs::symlink("../usr/lib/os-release", etc.join("os-release"))
            .expect("os-release link");
        let machine_id = std::fs::read_to_string("/proc/sys/kernel/random/uuid")
            .expect("a random uuid")
            .trim()
            .replace('-', "");
        std::fs::write(etc.join("machine-id"), format!("{machine_id}\n")).expect("machine-id");
        let system = etc.join("systemd/system");
        std::fs::create_dir_all(&system).expect("/etc/systemd/system");
        for unit in MASKED {
            std::os::unix::fs::symlink("/dev/null", system.join(unit)).expect("mask a unit");
        }
        std::fs::write(root.join("root/vm.xml"), DOMAIN_XML).expect("vm.xml");
        std::fs::write(root.join("root/net.xml"), NETWORK_XML).expect("net.xml");
    }

    fn config(&self) -> Value {
        let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/systemd");
        let caps = container_capabilities();
        let bind = |source: &Path, destination: &str, mode: &str| {
            json!({
                "destination": destination,
                "type": "bind",
                "source": source,
                "options": ["rbind", mode, "nosuid", "nodev"],
            })
        };
        let tmpfs = |destination: &str, mode: &str| {
            json!({
                "destination": destination,
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "nodev", format!("mode={mode}")],
            })
        };
        json!({
            "ociVersion": "1.0.2",
            "hostname": self.id,
            "root": { "path": self.rootfs(), "readonly": false },
            "process": {
                "terminal": false,
                "user": { "uid": 0, "gid": 0 },
                "cwd": "/",
                "args": [SYSTEMD],
                // systemd's signal that it runs in a container (no hardware, no udev).
                "env": [
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin",
                    "container=runc",
                ],
                "capabilities": {
                    "bounding": caps, "effective": caps, "permitted": caps,
                },
                "noNewPrivileges": false,
            },
            "mounts": [
                { "destination": "/proc", "type": "proc", "source": "proc" },
                { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                  "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
                { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
                  "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"] },
                { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                  "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
                { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
                  "options": ["nosuid", "noexec", "nodev"] },
                { "destination": "/sys", "type": "sysfs", "source": "sysfs",
                  "options": ["nosuid", "noexec", "nodev", "ro"] },
                // The container's own cgroups (its cgroup namespace), writable for systemd.
                { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                  "options": ["nosuid", "noexec", "nodev", "relatime", "rw"] },
                bind(Path::new("/usr"), "/usr", "ro"),
                bind(&self.dir.path().join("usr-local"), "/usr/local", "rw"),
                tmpfs("/run", "755"),
                tmpfs("/tmp", "1777"),
                bind(&deploy, "/deploy/systemd", "ro"),
                bind(&virtplane_e2e::bin_dir(), "/bins", "ro"),
            ],
            "linux": {
                "namespaces": [
                    { "type": "pid" }, { "type": "network" }, { "type": "ipc" },
                    { "type": "uts" }, { "type": "mount" }, { "type": "cgroup" },
                ],
                "cgroupsPath": format!("/{}", self.id),
                // Taps for QEMU (runc allows the standard devices itself).
                "devices": [
                    { "path": "/dev/net/tun", "type": "c", "major": 10, "minor": 200,
                      "fileMode": 0o666, "uid": 0, "gid": 0 },
                ],
                "resources": { "devices": [
                    { "allow": false, "access": "rwm" },
                    { "allow": true, "type": "c", "major": 10, "minor": 200, "access": "rwm" },
                ] },
                // /proc/sys stays writable: the network service sets forwarding sysctls in
                // the container's network namespace (systemd-sysctl is masked).
                "maskedPaths": [
                    "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
                    "/proc/scsi", "/sys/firmware",
                ],
                "readonlyPaths": [
                    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sysrq-trigger",
                ],
            },
        })
    }

    fn runc(&self) -> Command {
        let mut command = Command::new("runc");
        command.arg("--root").arg(self.dir.path().join("state"));
        command
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("console.log")
    }

    fn start(&self) {
        let log = std::fs::File::create(self.log_path()).expect("container log");
        let mut command = self.runc();
        command
            .args(["run", "--detach", "--bundle"])
            .arg(self.dir.path())
            .arg(&self.id)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("dup log")))
            .stderr(Stdio::from(log));
        // Not `run()`: systemd inherits stdout/stderr, which must be the log file.
        let mut child = command.spawn().expect("spawn runc run --detach");
        let deadline = Instant::now() + HANG_GUARD;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for runc") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("runc run --detach {} did not return", self.id);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(
            status.success(),
            "runc run --detach {} failed: {}",
            self.id,
            std::fs::read_to_string(self.log_path()).unwrap_or_default()
        );
    }

    /// Runs `args` in the container.
    fn exec(&self, args: &[&str]) -> Ran {
        let mut command = self.runc();
        command.arg("exec").arg(&self.id).args(args);
        run(command)
    }

    /// Runs `args` in the container; fails the test unless it succeeds; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let ran = self.exec(args);
        assert!(
            ran.success,
            "{args:?} in the container failed:\nstdout: {}\nstderr: {}",
            ran.stdout, ran.stderr
        );
        ran.stdout
    }

    fn virtctl(&self, args: &[&str]) -> String {
        let mut full = vec!["virtctl", "--server", GATEWAY, "--token", TOKEN];
        full.extend_from_slice(args);
        let ran = self.exec(&full);
        assert!(
            ran.success,
            "virtctl {args:?} failed:\nstdout: {}\nstderr: {}\n{}",
            ran.stdout,
            ran.stderr,
            self.journals()
        );
        ran.stdout
    }

    /// The last journal lines of the four units, for failure messages.
    fn journals(&self) -> String {
        let mut args = vec!["journalctl", "--no-pager", "-n", "60"];
        for unit in UNITS {
            args.extend(["-u", unit]);
        }
        let ran = self.exec(&args);
        format!("journal:\n{}{}", ran.stdout, ran.stderr)
    }

    /// Waits until systemd has finished booting (`running`, or `degraded` with the failed
    /// units named, which the test reports but does not need).
    fn wait_booted(&self) {
        let deadline = Instant::now() + HANG_GUARD;
        loop {
            let ran = self.exec(&["systemctl", "is-system-running"]);
            let state = ran.stdout.trim();
            if state == "running" {
                return;
            }
            if state == "degraded" {
                let failed = self.exec(&["systemctl", "--failed", "--no-pager"]);
                eprintln!("systemd is degraded (not needed here):\n{}", failed.stdout);
                return;
            }
            assert!(
                Instant::now() < deadline,
                "systemd did not finish booting: {state} {}\n{}",
                ran.stderr,
                std::fs::read_to_string(self.log_path()).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until `unit` is active and has not been restarted by systemd (a daemon that
    /// crashed on a sandbox error would be restarted by `Restart=on-failure`).
    fn wait_active(&self, unit: &str) {
        let deadline = Instant::now() + HANG_GUARD;
        loop {
            let state = self.exec(&["systemctl", "is-active", unit]).stdout;
            if state.trim() == "active" {
                break;
            }
            assert!(
                Instant::now() < deadline && state.trim() != "failed",
                "{unit} is {}\n{}",
                state.trim(),
                self.journals()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let restarts = self.ok(&["systemctl", "show", "-P", "NRestarts", unit]);
        assert_eq!(
            restarts.trim(),
            "0",
            "{unit} was restarted\n{}",
            self.journals()
        );
    }

    /// The pid of the one process whose command line contains `pattern`.
    fn pid_of(&self, pattern: &str) -> String {
        let pids = self.exec(&["pgrep", "-f", pattern]).stdout;
        let pids: Vec<&str> = pids.split_whitespace().collect();
        assert_eq!(
            pids.len(),
            1,
            "processes matching {pattern}: {pids:?}\n{}",
            self.journals()
        );
        pids[0].to_string()
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        // Killing PID 1 of the container's PID namespace kills everything in it (QEMU,
        // dnsmasq); delete then removes the container's cgroups, and the netns goes with the
        // last process (the bridge and the nft table with it).
        let mut kill = self.runc();
        kill.args(["kill", &self.id, "KILL"]);
        let _ = run(kill);
        let mut delete = self.runc();
        delete.args(["delete", "--force", &self.id]);
        let ran = run(delete);
        if !ran.success {
            eprintln!("runc delete {} failed: {}", self.id, ran.stderr);
        }
    }
}

#[test]
fn units_run_hardened_under_systemd_and_restarts_spare_vms_and_dnsmasq() {
    let machine = Machine::boot();

    machine.ok(&["/deploy/systemd/install.sh", "--bin-dir", "/bins"]);
    let hash = machine.ok(&[
        "sh",
        "-c",
        &format!("printf %s {TOKEN} | virtplane-gateway hash-token"),
    ]);
    machine.ok(&[
        "sh",
        "-c",
        &format!(
            "umask 077 && echo 'admin admin {}' > /etc/virtplane/tokens && \
             chown root:virtplane /etc/virtplane/tokens && chmod 0640 /etc/virtplane/tokens",
            hash.trim()
        ),
    ]);
    machine.ok(&["systemctl", "daemon-reload"]);
    let mut enable = vec!["systemctl", "enable", "--now"];
    enable.extend(UNITS);
    machine.ok(&enable);
    for unit in UNITS {
        machine.wait_active(unit);
    }
    let gateway_user = machine.ok(&["systemctl", "show", "-P", "User", "virtplane-gateway"]);
    let gateway_pid = machine.ok(&["systemctl", "show", "-P", "MainPID", "virtplane-gateway"]);
    let uid = machine.ok(&["stat", "-c", "%u", &format!("/proc/{}", gateway_pid.trim())]);
    assert_ne!(uid.trim(), "0", "the gateway ({gateway_user}) runs as root");

    assert_eq!(machine.virtctl(&["health"]).trim(), "SERVING");
    machine.virtctl(&["list", "--all"]);

    machine.virtctl(&[
        "pool-define-as",
        "p1",
        "dir",
        "--target",
        "/var/lib/virtplane/images/p1",
    ]);
    machine.virtctl(&["pool-build", "p1"]);
    machine.virtctl(&["pool-start", "p1"]);
    machine.virtctl(&[
        "vol-create-as",
        "p1",
        "v1.qcow2",
        "10M",
        "--format",
        "qcow2",
    ]);
    let info = machine.ok(&["qemu-img", "info", "/var/lib/virtplane/images/p1/v1.qcow2"]);
    assert!(info.contains("file format: qcow2"), "{info}");

    machine.virtctl(&["net-define", "/root/net.xml"]);
    machine.virtctl(&["net-start", "n1"]);
    let dnsmasq = machine.pid_of("dnsmasq.*n1.conf");
    assert!(
        machine
            .ok(&["nft", "list", "tables"])
            .contains("virtplane_n1")
    );

    machine.virtctl(&["define", "/root/vm.xml"]);
    machine.virtctl(&["start", "vm"]);
    let qemu = machine.pid_of("qemu-system-x86_64 -name guest=vm,");
    assert!(machine.virtctl(&["list", "--all"]).contains("running"));

    machine.ok(&["systemctl", "restart", "virtplane-domaind"]);
    machine.wait_active("virtplane-domaind");
    assert_eq!(
        machine.pid_of("qemu-system-x86_64 -name guest=vm,"),
        qemu,
        "QEMU did not survive a restart of the domain service"
    );
    let list = machine.virtctl(&["list", "--all"]);
    assert!(
        list.lines()
            .any(|l| l.contains("vm") && l.contains("running")),
        "the VM is not reported running after the restart:\n{list}"
    );

    machine.ok(&["systemctl", "restart", "virtplane-networkd"]);
    machine.wait_active("virtplane-networkd");
    assert_eq!(
        machine.pid_of("dnsmasq.*n1.conf"),
        dnsmasq,
        "dnsmasq did not survive a restart of the network service"
    );
    let nets = machine.virtctl(&["net-list", "--all"]);
    assert!(
        nets.lines()
            .any(|l| l.contains("n1") && l.contains("active")),
        "the network is not reported active after the restart:\n{nets}"
    );

    machine.virtctl(&["destroy", "vm"]);
    machine.virtctl(&["net-destroy", "n1"]);
    for unit in UNITS {
        machine.wait_active(unit);
    }
}
