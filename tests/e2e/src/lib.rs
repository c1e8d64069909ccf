//! Harness for end-to-end tests: starts the real daemons (built by `cargo build --bins`) on
//! temporary unix sockets, runs `virtctl` against them, and stops every process it started by
//! pid when dropped, also when a test fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

pub mod capabilities;
pub mod command;
pub mod guest;
pub mod netns;

/// The directory holding the workspace's binaries (target/debug when run by `cargo test`).
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("VIRTPLANE_BIN_DIR") {
        return PathBuf::from(dir);
    }
    // target/debug/deps/<test> → target/debug
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps");
    dir.to_path_buf()
}

/// Path of one binary, with a clear failure when it was not built.
pub fn binary(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first (scripts/test.sh does)",
        path.display()
    );
    path
}

/// Tokens of the three roles.
pub const ADMIN_TOKEN: &str = "e2e-admin-token-0123456789";
pub const OPERATOR_TOKEN: &str = "e2e-operator-token-0123456789";
pub const VIEWER_TOKEN: &str = "e2e-viewer-token-0123456789";

/// A running domain service + gateway (+ network service, when asked for) in a temporary
/// directory.
pub struct Stack {
    pub dir: tempfile::TempDir,
    pub domain_sock: PathBuf,
    pub gateway_sock: PathBuf,
    pub network_sock: PathBuf,
    pub storage_sock: PathBuf,
    domaind: Option<Child>,
    gateway: Option<Child>,
    networkd: Option<Child>,
    storaged: Option<Child>,
    /// The storage service's driver (`test`, `dir`), when this stack runs one.
    storage_driver: Option<&'static str>,
    /// The network service's driver (`test`, `bridge`), when this stack runs one.
    network_driver: Option<&'static str>,
    /// `test` or `qemu`.
    driver: &'static str,
    /// The network namespace the domain service runs in (`ip netns exec`), if not the host's.
    netns: Option<String>,
}

impl Stack {
    /// Starts both daemons with the test driver and waits until they answer.
    pub fn start() -> Self {
        Self::start_with("test")
    }

    /// Starts both daemons with `driver` (`test` or `qemu`). The directory is short (in
    /// /tmp): QEMU's unix sockets live under it and their paths are limited to 107 bytes.
    pub fn start_with(driver: &'static str) -> Self {
        Self::start_full(driver, None, None)
    }

    /// Like [`Self::start_with`], plus the network service with `network_driver`, which the
    /// gateway routes NetworkService calls to.
    pub fn start_with_network(driver: &'static str, network_driver: &'static str) -> Self {
        Self::start_full(driver, None, Some(network_driver))
    }

    /// Like [`Self::start_with`], with the domain service (and so its QEMUs and taps) in the
    /// network namespace `netns` (see [`netns::NetNs`]); the gateway stays in the host's and
    /// reaches it over its unix socket, which works across network namespaces.
    pub fn start_in_netns(driver: &'static str, netns: &str) -> Self {
        Self::start_full(driver, Some(netns.to_owned()), None)
    }

    /// Like [`Self::start_in_netns`], plus the network service with `network_driver` in the
    /// same namespace: its bridges, dnsmasq and nftables tables live there with the taps.
    pub fn start_with_network_in_netns(
        driver: &'static str,
        network_driver: &'static str,
        netns: &str,
    ) -> Self {
        Self::start_full(driver, Some(netns.to_owned()), Some(network_driver))
    }

    /// Like [`Self::start_with`], plus the storage service with `storage_driver`, which the
    /// gateway routes StorageService calls to.
    pub fn start_with_storage(driver: &'static str, storage_driver: &'static str) -> Self {
        Self::start_all(driver, None, None, Some(storage_driver))
    }

    fn start_full(
        driver: &'static str,
        netns: Option<String>,
        network_driver: Option<&'static str>,
    ) -> Self {
        Self::start_all(driver, netns, network_driver, None)
    }

    fn start_all(
        driver: &'static str,
        netns: Option<String>,
        network_driver: Option<&'static str>,
        storage_driver: Option<&'static str>,
    ) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("vp-e2e-")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let tokens = [
            ("admin", "admin", ADMIN_TOKEN),
            ("operator", "operator", OPERATOR_TOKEN),
            ("viewer", "viewer", VIEWER_TOKEN),
        ]
        .iter()
        .map(|(user, role, token)| {
            format!(
                "{user} {role} sha256:{}\n",
                hex::encode(Sha256::digest(token))
            )
        })
        .collect::<String>();
        std::fs::write(dir.path().join("tokens"), tokens).expect("tokens file");
        let mut stack = Self {
            domain_sock: dir.path().join("run/domain.sock"),
            gateway_sock: dir.path().join("run/gateway.sock"),
            network_sock: dir.path().join("run/network.sock"),
            storage_sock: dir.path().join("run/storage.sock"),
            dir,
            domaind: None,
            gateway: None,
            networkd: None,
            storaged: None,
            storage_driver,
            network_driver,
            driver,
            netns,
        };
        stack.start_domaind();
        if network_driver.is_some() {
            stack.start_networkd();
        }
        if storage_driver.is_some() {
            stack.start_storaged();
        }
        stack.start_gateway();
        stack
    }

    fn log(&self, name: &str) -> Stdio {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("{name}.log")))
            .expect("log file");
        Stdio::from(file)
    }

    /// (Re)starts the domain service on the same state dir and waits for its socket.
    pub fn start_domaind(&mut self) {
        let _ = std::fs::remove_file(&self.domain_sock);
        let mut command = self.in_netns(binary("virtplane-domaind"));
        if self.network_driver.is_some() {
            // Connected lazily: the network service may start after the domain service.
            command
                .arg("--network-service")
                .arg(format!("unix:{}", self.network_sock.display()));
        }
        if self.storage_driver.is_some() {
            // Connected lazily as well: leases on the volumes of `<disk type='volume'>`.
            command
                .arg("--storage-service")
                .arg(format!("unix:{}", self.storage_sock.display()));
        }
        let child = command
            .args(["--driver", self.driver, "--state-dir"])
            .arg(self.dir.path().join("domain"))
            .arg("--run-dir")
            .arg(self.dir.path().join("run/domain"))
            .arg("--listen")
            .arg(format!("unix:{}", self.domain_sock.display()))
            .stdout(self.log("domaind"))
            .stderr(self.log("domaind"))
            .spawn()
            .expect("spawn virtplane-domaind");
        self.domaind = Some(child);
        self.wait_healthy(&self.domain_sock.clone(), "virtplane-domaind");
    }

    /// (Re)starts the network service on the same state dir and waits for its socket.
    pub fn start_networkd(&mut self) {
        let driver = self
            .network_driver
            .expect("a stack started with a network service");
        let _ = std::fs::remove_file(&self.network_sock);
        let child = self
            .in_netns(binary("virtplane-networkd"))
            .args(["--driver", driver, "--state-dir"])
            .arg(self.dir.path().join("network"))
            .arg("--run-dir")
            .arg(self.dir.path().join("run/network"))
            .arg("--listen")
            .arg(format!("unix:{}", self.network_sock.display()))
            .stdout(self.log("networkd"))
            .stderr(self.log("networkd"))
            .spawn()
            .expect("spawn virtplane-networkd");
        self.networkd = Some(child);
        self.wait_healthy(&self.network_sock.clone(), "virtplane-networkd");
    }

    /// A command for `program`, run in the stack's network namespace when it has one
    /// (`ip netns exec` execs in place: the pid stays the program's).
    fn in_netns(&self, program: PathBuf) -> Command {
        match &self.netns {
            None => Command::new(program),
            Some(netns) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", netns]).arg(program);
                command
            }
        }
    }

    /// (Re)starts the storage service on the same state dir and waits for its socket.
    pub fn start_storaged(&mut self) {
        let driver = self
            .storage_driver
            .expect("a stack started with a storage service");
        let _ = std::fs::remove_file(&self.storage_sock);
        let child = self
            .in_netns(binary("virtplane-storaged"))
            .args(["--driver", driver, "--state-dir"])
            .arg(self.dir.path().join("storage"))
            .arg("--run-dir")
            .arg(self.dir.path().join("run/storage"))
            .arg("--listen")
            .arg(format!("unix:{}", self.storage_sock.display()))
            .stdout(self.log("storaged"))
            .stderr(self.log("storaged"))
            .spawn()
            .expect("spawn virtplane-storaged");
        self.storaged = Some(child);
        self.wait_healthy(&self.storage_sock.clone(), "virtplane-storaged");
    }

    /// SIGKILLs the storage service (as a crash would) and waits for it to be gone.
    pub fn kill_storaged(&mut self) {
        if let Some(mut child) = self.storaged.take() {
            child.kill().expect("kill -9 storaged");
            child.wait().expect("reap storaged");
        }
    }

    /// SIGKILLs the network service (as a crash would) and waits for it to be gone.
    pub fn kill_networkd(&mut self) {
        if let Some(mut child) = self.networkd.take() {
            child.kill().expect("kill -9 networkd");
            child.wait().expect("reap networkd");
        }
    }

    fn start_gateway(&mut self) {
        let mut command = Command::new(binary("virtplane-gateway"));
        if self.network_driver.is_some() {
            command
                .arg("--backend")
                .arg(format!("network=unix:{}", self.network_sock.display()));
        }
        if self.storage_driver.is_some() {
            command
                .arg("--backend")
                .arg(format!("storage=unix:{}", self.storage_sock.display()));
        }
        let child = command
            .arg("--listen")
            .arg(format!("unix:{}", self.gateway_sock.display()))
            .arg("--tokens")
            .arg(self.dir.path().join("tokens"))
            .arg("--backend")
            .arg(format!("domain=unix:{}", self.domain_sock.display()))
            .arg("--audit-log")
            .arg(self.dir.path().join("audit.log"))
            .stdout(self.log("gateway"))
            .stderr(self.log("gateway"))
            .spawn()
            .expect("spawn virtplane-gateway");
        self.gateway = Some(child);
        self.wait_healthy(&self.gateway_sock.clone(), "virtplane-gateway");
    }

    fn wait_healthy(&mut self, sock: &Path, name: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = Command::new(binary("virtctl"))
                .arg("--server")
                .arg(format!("unix:{}", sock.display()))
                .args(["--token", "", "--timeout", "2", "health"])
                .output()
                .expect("run virtctl health");
            if out.status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not become healthy; log:\n{}",
                self.read_log(if name.contains("gateway") {
                    "gateway"
                } else if name.contains("networkd") {
                    "networkd"
                } else {
                    "domaind"
                })
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn read_log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default()
    }

    /// The audit log's lines.
    pub fn audit_lines(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("audit.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// SIGKILLs the domain service (as a crash would) and waits for it to be gone.
    pub fn kill_domaind(&mut self) {
        if let Some(mut child) = self.domaind.take() {
            child.kill().expect("kill -9 domaind");
            child.wait().expect("reap domaind");
        }
    }

    /// `virtctl --server <gateway> [--token TOKEN] ARGS…`.
    pub fn virtctl(&self, token: Option<&str>, args: &[&str]) -> Output {
        self.virtctl_with_stdin(token, args, None)
    }

    pub fn virtctl_with_stdin(
        &self,
        token: Option<&str>,
        args: &[&str],
        stdin: Option<&str>,
    ) -> Output {
        let mut command = Command::new(binary("virtctl"));
        command
            .env_remove("VIRTPLANE_SERVER")
            .env_remove("VIRTPLANE_TOKEN")
            .env(
                "VIRTCTL_CONFIG",
                self.dir.path().join("no-virtctl-config.yaml"),
            )
            .arg("--server")
            .arg(format!("unix:{}", self.gateway_sock.display()))
            .arg("--token")
            .arg(token.unwrap_or(""))
            // Every call is bounded, so a hung server fails the test instead of hanging it.
            .args(["--timeout", "20"])
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn virtctl");
        if let Some(text) = stdin {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(text.as_bytes())
                .expect("write stdin");
        }
        child.wait_with_output().expect("virtctl output")
    }

    /// Runs virtctl as admin and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.virtctl(Some(ADMIN_TOKEN), args);
        assert!(
            out.status.success(),
            "virtctl {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs virtctl with `token` and asserts failure; returns stderr.
    pub fn fails(&self, token: Option<&str>, args: &[&str]) -> String {
        let out = self.virtctl(token, args);
        assert!(
            !out.status.success(),
            "virtctl {args:?} unexpectedly succeeded:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Writes a file into the stack's directory and returns its path.
    pub fn file(&self, name: &str, contents: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).expect("write file");
        path.display().to_string()
    }
}

impl Stack {
    /// The domain service's pid, while this stack runs it.
    pub fn domaind_pid(&self) -> Option<i32> {
        self.domaind
            .as_ref()
            .and_then(|c| i32::try_from(c.id()).ok())
    }

    /// The gateway's pid.
    pub fn gateway_pid(&self) -> Option<i32> {
        self.gateway
            .as_ref()
            .and_then(|c| i32::try_from(c.id()).ok())
    }

    /// The storage service's pid, while this stack runs it.
    pub fn storaged_pid(&self) -> Option<i32> {
        self.storaged
            .as_ref()
            .and_then(|c| i32::try_from(c.id()).ok())
    }

    /// Reaps a domain service that was killed from outside (e.g. with its cgroup).
    pub fn reap_domaind(&mut self) {
        if let Some(mut child) = self.domaind.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The pids of the QEMU processes the qemu driver recorded in this stack's run dir, only
    /// those whose command line is still QEMU's for that domain.
    pub fn qemu_pids(&self) -> Vec<i32> {
        qemu_pids_in(&self.dir.path().join("run/domain"))
    }
}

/// The pids of the QEMU processes the qemu driver recorded under its run dir `run_dir`, only
/// those whose command line is still QEMU's for that domain.
pub fn qemu_pids_in(run_dir: &Path) -> Vec<i32> {
    let root = run_dir.join("qemu");
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("process.json")).ok())
        .filter_map(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .filter_map(|record| {
            let pid = i32::try_from(record["pid"].as_i64()?).ok()?;
            let name = record["domain_name"].as_str()?.to_owned();
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline);
            cmdline.contains(&format!("guest={name}")).then_some(pid)
        })
        .collect()
}

impl Drop for Stack {
    fn drop(&mut self) {
        for child in [
            self.gateway.take(),
            self.storaged.take(),
            self.networkd.take(),
            self.domaind.take(),
        ]
        .into_iter()
        .flatten()
        {
            stop(child);
        }
        kill_vms(&self.qemu_pids());
    }
}

/// Kills the QEMUs `pids` (by pid) and removes the VM cgroups the service made for them.
/// VMs outlive the service by design; a test's must not outlive the test, nor the cgroups
/// the service made for them (a stopped service cannot remove them).
pub fn kill_vms(pids: &[i32]) {
    let cgroups: Vec<PathBuf> = pids.iter().flat_map(|&pid| vm_cgroup_dirs(pid)).collect();
    for &pid in pids {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    for dir in cgroups {
        // Empty once every thread of the killed QEMU is gone; rmdir only removes an
        // empty cgroup.
        while std::fs::remove_dir(&dir).is_err() && dir.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The VM cgroup directories (below a `virtplane.vms` root, in every mounted hierarchy) that
/// `pid` is in, read from `/proc/PID/cgroup`.
fn vm_cgroup_dirs(pid: i32) -> Vec<PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let mounts: Vec<PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    let mut dirs = Vec::new();
    for line in text.lines() {
        let Some(path) = line.splitn(3, ':').nth(2) else {
            continue;
        };
        if !path.contains("/virtplane.vms/") {
            continue;
        }
        let rel = path.trim_start_matches('/');
        for top in mounts
            .iter()
            .chain(std::iter::once(&PathBuf::from("/sys/fs/cgroup")))
        {
            let dir = top.join(rel);
            if dir.is_dir() && !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
    }
    dirs
}

/// SIGTERM, a grace period, then SIGKILL: only the process we started, by pid.
fn stop(mut child: Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A child process (e.g. `virtctl event --loop`) killed by pid when dropped, so a failing
/// test leaves nothing running.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `virtctl event --loop` as admin against the stack's gateway, as in another terminal:
/// its output and error lines (merged) arrive on the receiver. Killed when dropped.
pub fn watch_events(stack: &Stack) -> (KillOnDrop, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead, BufReader, Read};
    let child = Command::new(binary("virtctl"))
        .env("VIRTCTL_CONFIG", stack.dir.path().join("none.yaml"))
        .arg("--server")
        .arg(format!("unix:{}", stack.gateway_sock.display()))
        .args(["--token", ADMIN_TOKEN, "event", "--loop"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("virtctl event --loop");
    let mut watcher = KillOnDrop(child);
    let (tx, lines) = std::sync::mpsc::channel();
    let pipes: [Box<dyn Read + Send>; 2] = [
        Box::new(watcher.0.stdout.take().expect("stdout")),
        Box::new(watcher.0.stderr.take().expect("stderr")),
    ];
    for pipe in pipes {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    // Give it time to open its stream before the test changes anything.
    std::thread::sleep(Duration::from_millis(300));
    (watcher, lines)
}

/// Collects lines until one contains `what` (20 s at most per line).
pub fn wait_for_line(lines: &std::sync::mpsc::Receiver<String>, what: &str) -> Vec<String> {
    let mut seen = Vec::new();
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(20)) {
        let done = line.contains(what);
        seen.push(line);
        if done {
            return seen;
        }
    }
    panic!("never saw {what:?}; saw {seen:#?}");
}

/// A libvirt-format domain XML for tests.
pub fn domain_xml(name: &str) -> String {
    format!(
        "<domain type='test'>\n  <name>{name}</name>\n  <memory unit='MiB'>512</memory>\n  \
         <vcpu placement='static'>1</vcpu>\n  <os>\n    <type arch='x86_64'>hvm</type>\n  </os>\n\
         </domain>\n"
    )
}
