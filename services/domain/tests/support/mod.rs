//! Shared by the tests that run real QEMU guests: building the test guest and a domain XML
//! that boots it under TCG.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// Runs `tests/guest/build.sh` into `target/guest` (cached there); panics with its output
/// when it fails.
pub fn build_guest() -> PathBuf {
    let root = workspace_root();
    let out = root.join("target/guest");
    let script = root.join("tests/guest/build.sh");
    let output = Command::new("bash")
        .arg(&script)
        .arg(&out)
        .current_dir(&root)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        output.status.success(),
        "{} failed ({}):\n--- stdout ---\n{}\n--- stderr ---\n{}",
        script.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    out
}

/// The kernel to boot: the decompressed one boots seconds faster under TCG.
pub fn kernel(guest: &Path) -> PathBuf {
    let vmlinux = guest.join("vmlinux");
    if vmlinux.is_file() {
        vmlinux
    } else {
        guest.join("vmlinuz")
    }
}

/// A TCG domain booting the test guest: 128 MiB, `vcpus` online of `max_vcpus`, the guest
/// agent channel, a balloon, and its serial console written to `serial_log`.
pub fn guest_domain_xml(
    name: &str,
    guest: &Path,
    serial_log: &Path,
    vcpus: u32,
    max_vcpus: u32,
) -> String {
    format!(
        r#"<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>128</memory>
  <vcpu current='{vcpus}'>{max_vcpus}</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{kernel}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>console=ttyS0</cmdline>
  </os>
  <features><acpi/></features>
  <devices>
    <serial type='file'><source path='{serial}'/><target port='0'/></serial>
    <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
    <memballoon model='virtio'/>
  </devices>
</domain>"#,
        kernel = kernel(guest).display(),
        initrd = guest.join("initrd.img").display(),
        serial = serial_log.display(),
    )
}

/// A domain with no boot device: QEMU runs its firmware only. Cheap, for lifecycle tests
/// that need no guest OS.
pub fn bare_domain_xml(name: &str) -> String {
    format!(
        r#"<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices><memballoon model='none'/></devices>
</domain>"#
    )
}

/// How many times the guest's /init said it is ready (once per boot).
pub fn boots(serial_log: &Path) -> usize {
    std::fs::read_to_string(serial_log)
        .unwrap_or_default()
        .matches("virtplane-guest: ready")
        .count()
}

/// The qemu driver with its state in a short temp dir (unix socket paths are limited); every
/// QEMU it still runs is killed and its VM cgroups removed when dropped, also when a test
/// fails.
pub struct QemuFixture {
    pub driver: std::sync::Arc<virtplane_domain::driver::qemu::QemuDriver>,
    pub dir: tempfile::TempDir,
}

impl QemuFixture {
    /// A fresh driver in a temp dir named `prefix…` under /tmp.
    pub async fn open(prefix: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in("/tmp")
            .expect("temp dir");
        let driver = virtplane_domain::driver::qemu::QemuDriver::open(
            &virtplane_domain::driver::DriverConfig {
                state_dir: dir.path().join("state"),
                run_dir: dir.path().join("run"),
                emulator: None,
                vm_cgroup_root: Some(None),
                network_service: None,
                storage_service: None,
                guest_agent_timeout: None,
            },
        )
        .await
        .expect("open the qemu driver");
        Self { driver, dir }
    }
}

impl Drop for QemuFixture {
    fn drop(&mut self) {
        let pids: Vec<i32> = self
            .driver
            .running_vms()
            .iter()
            .map(|vm| vm.pid())
            .collect();
        kill_vms(&pids);
    }
}

/// Kills the QEMUs `pids` a test left running (it failed, or never destroyed them) and removes
/// the VM cgroups the driver put them in. The driver would remove those when it sees QEMU
/// exit, but a test's driver does not get to: its runtime ends with the test.
pub fn kill_vms(pids: &[i32]) {
    use std::time::{Duration, Instant};
    use virtplane_domain::driver::qemu::process::cgroup::VmCgroups;

    let keys: Vec<String> = pids.iter().flat_map(|&pid| vm_cgroup_keys(pid)).collect();
    for &pid in pids {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let cgroups = VmCgroups::new(None).expect("default VM cgroup root");
    let deadline = Instant::now() + Duration::from_secs(10);
    for key in keys {
        // Busy until the killed QEMU's last thread has exited.
        while cgroups
            .remove(&key)
            .is_ok_and(|removal| !removal.busy.is_empty())
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The names of the VM cgroups (below the default root) that `pid` is in.
fn vm_cgroup_keys(pid: i32) -> Vec<String> {
    let root = format!(
        "/{}/",
        virtplane_domain::driver::qemu::process::cgroup::DEFAULT_ROOT
    );
    let mut keys: Vec<String> = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.splitn(3, ':').nth(2))
        .filter_map(|path| path.strip_prefix(&root))
        .map(str::to_owned)
        .collect();
    keys.sort();
    keys.dedup();
    keys
}
