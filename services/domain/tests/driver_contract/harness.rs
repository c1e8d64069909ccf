//! What the contract needs from each driver: opening it on a pair of state and run dirs, a
//! domain definition it can really run, a look at the hypervisor process behind a running
//! domain, and cleaning up after it, also when a case fails.

use std::path::Path;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use virtplane_domain::driver::qemu::QemuDriver;
use virtplane_domain::driver::test::TestDriver;
use virtplane_domain::driver::{DomainDriver, DriverConfig};
use virtplane_domain::model::DomainRef;

/// Every domain of the contract has this much memory (MiB): little, since QEMU really
/// allocates it.
pub const MEMORY_MIB: u64 = 64;

/// Guards waits on QEMU against hangs; nothing asserts a duration.
pub const HANG_GUARD: Duration = Duration::from_secs(60);

/// The hypervisor process behind a running domain, as the hypervisor itself reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestProcess {
    pub pid: i32,
    /// QMP `query-status`: "running", "paused", ...
    pub run_state: String,
}

/// One driver under the contract. A harness owns its state and run dirs; every
/// [`Harness::open`] opens a new driver instance on them (a service restart).
pub trait Harness: Sized {
    /// The driver's name, for messages.
    const DRIVER: &'static str;

    /// Whether a shutdown request reaches a paused domain. libvirt's drivers differ: the
    /// test driver refuses only a shut-off domain (testDomainShutdownFlags) and its
    /// simulated guest powers off at once; the qemu driver refuses every state but running
    /// (qemuDomainShutdownFlagsMonitor: "domain is not running"), since a paused guest
    /// cannot act on the ACPI power button.
    const SHUTS_DOWN_PAUSED: bool;

    /// Fresh, empty state and run dirs. May wait for this driver's turn (see
    /// [`QemuHarness`]).
    async fn new() -> Self;

    /// Opens the driver on this harness's dirs.
    async fn open(&self) -> Arc<dyn DomainDriver>;

    fn config(&self) -> &DriverConfig;

    /// A definition of domain `name` (with `uuid` if given) that this driver can start:
    /// [`MEMORY_MIB`] of memory, 1 vCPU.
    fn domain_xml(&self, name: &str, uuid: Option<&str>) -> String;

    /// The hypervisor process of running domain `name` in the driver last opened, asked
    /// directly; `None` for a driver without one (the test driver simulates its guests).
    async fn guest_process(&self, name: &str) -> Option<GuestProcess>;
}

fn uuid_element(uuid: Option<&str>) -> String {
    uuid.map(|u| format!("<uuid>{u}</uuid>"))
        .unwrap_or_default()
}

/// libvirt's test:///default: domains in memory, persisted to the dirs.
pub struct TestHarness {
    _dir: tempfile::TempDir,
    config: DriverConfig,
}

impl Harness for TestHarness {
    const DRIVER: &'static str = "test";
    const SHUTS_DOWN_PAUSED: bool = true;

    async fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = DriverConfig {
            state_dir: dir.path().join("state"),
            run_dir: dir.path().join("run"),
            emulator: None,
            vm_cgroup_root: None,
            network_service: None,
            storage_service: None,
            guest_agent_timeout: None,
        };
        Self { _dir: dir, config }
    }

    async fn open(&self) -> Arc<dyn DomainDriver> {
        Arc::new(
            TestDriver::open(&self.config)
                .await
                .expect("open the test driver"),
        )
    }

    fn config(&self) -> &DriverConfig {
        &self.config
    }

    fn domain_xml(&self, name: &str, uuid: Option<&str>) -> String {
        format!(
            "<domain type='test'><name>{name}</name>{uuid}\
             <memory unit='MiB'>{MEMORY_MIB}</memory><vcpu>1</vcpu>\
             <os><type>hvm</type></os></domain>",
            uuid = uuid_element(uuid),
        )
    }

    async fn guest_process(&self, _name: &str) -> Option<GuestProcess> {
        None
    }
}

/// One qemu case at a time: each runs at most two QEMUs, and the machine is shared.
static QEMU_TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The qemu driver with real QEMUs that run firmware only (no disk, no kernel): enough for
/// every state transition, and light. Its dirs are short (unix socket paths are limited).
/// When dropped it kills every QEMU its drivers left running, so a failing case leaves no
/// process and no cgroup behind.
pub struct QemuHarness {
    _turn: tokio::sync::MutexGuard<'static, ()>,
    dir: tempfile::TempDir,
    config: DriverConfig,
    /// The driver last opened, for [`Harness::guest_process`]; weak, so that dropping the
    /// case's handle really drops the driver (a restart).
    last: Mutex<Weak<QemuDriver>>,
}

impl Harness for QemuHarness {
    const DRIVER: &'static str = "qemu";
    const SHUTS_DOWN_PAUSED: bool = false;

    async fn new() -> Self {
        let turn = QEMU_TURN.lock().await;
        let dir = tempfile::Builder::new()
            .prefix("vp-dc-")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let config = DriverConfig {
            state_dir: dir.path().join("state"),
            run_dir: dir.path().join("run"),
            emulator: None,
            vm_cgroup_root: Some(None),
            network_service: None,
            storage_service: None,
            guest_agent_timeout: None,
        };
        Self {
            _turn: turn,
            dir,
            config,
            last: Mutex::new(Weak::new()),
        }
    }

    async fn open(&self) -> Arc<dyn DomainDriver> {
        let driver = QemuDriver::open(&self.config)
            .await
            .expect("open the qemu driver");
        *self.last.lock().unwrap() = Arc::downgrade(&driver);
        driver
    }

    fn config(&self) -> &DriverConfig {
        &self.config
    }

    fn domain_xml(&self, name: &str, uuid: Option<&str>) -> String {
        format!(
            "<domain type='qemu'><name>{name}</name>{uuid}\
             <memory unit='MiB'>{MEMORY_MIB}</memory><vcpu>1</vcpu>\
             <os><type arch='x86_64' machine='pc'>hvm</type></os>\
             <devices><memballoon model='none'/></devices></domain>",
            uuid = uuid_element(uuid),
        )
    }

    async fn guest_process(&self, name: &str) -> Option<GuestProcess> {
        let driver = self.last.lock().unwrap().upgrade()?;
        let (_, vm) = driver.running_vm(&DomainRef::Name(name.into())).ok()?;
        let status =
            tokio::time::timeout(HANG_GUARD, vm.monitor.execute(qapi::qmp::query_status {}))
                .await
                .expect("query-status hangs")
                .expect("query-status");
        let run_state = serde_json::to_value(status.status)
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned();
        Some(GuestProcess {
            pid: vm.pid(),
            run_state,
        })
    }
}

impl Drop for QemuHarness {
    fn drop(&mut self) {
        let leftovers = qemus_under(self.dir.path());
        if !leftovers.is_empty() {
            eprintln!("killing QEMUs {leftovers:?}, left running");
            crate::support::kill_vms(&leftovers);
        }
    }
}

/// The QEMUs whose command line names a path under `dir` (their QMP socket is in the run
/// dir): only this harness's, since `dir` is its own temp dir. Found through `/proc`, so a
/// QEMU is found even if its driver lost track of it.
fn qemus_under(dir: &Path) -> Vec<i32> {
    let dir = dir.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            args.first().is_some_and(|p| p.contains("qemu-system"))
                && args.iter().any(|a| a.contains(&dir))
        })
        .collect()
}
