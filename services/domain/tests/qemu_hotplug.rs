//! Disk hotplug against real QEMU with the test guest booted under TCG: a qcow2 image made
//! with qemu-img is attached live as vdb and the guest sees it with the right size (asked on
//! its serial console); QEMU, the live XML and domblklist show it; it is detached live and
//! the guest, QEMU's block layer and the live XML all lose it. A config-only attach on the
//! running domain changes the next start's definition only. A disk QEMU cannot open leaves
//! nothing behind. A restarted driver finds a plugged disk in the live definition it
//! persisted. A guest that cannot answer (paused) makes the live detach fail with a timeout
//! that leaves the disk attached; once the guest let it go, detaching again finishes the job.
//!
//! Deadlines here only stop hangs; nothing asserts a duration.

mod support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::OwnedWriteHalf;
use virtplane_domain::driver::qemu::QemuDriver;
use virtplane_domain::driver::{DomainDriver, DriverConfig};
use virtplane_domain::error::DomainError;
use virtplane_domain::model::{DomainRef, Impact, XmlFlags};
use virtplane_domain::xml::{DomainDef, parse_device, parse_domain};

const BOOT_DEADLINE: Duration = Duration::from_secs(120);
const HANG_GUARD: Duration = Duration::from_secs(60);
const NAME: &str = "hotplug";

const LIVE: Impact = Impact {
    live: true,
    config: false,
};
const CONFIG: Impact = Impact {
    live: false,
    config: true,
};

/// The driver with its state in a short temp dir; every QEMU it still runs is killed (by
/// pid) and its VM cgroups removed when dropped, also when a test fails.
struct Fixture {
    driver: Option<Arc<QemuDriver>>,
    dir: tempfile::TempDir,
}

impl Fixture {
    async fn open() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("vp-hp-")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let driver = Some(Self::driver(dir.path()).await);
        Self { driver, dir }
    }

    async fn driver(dir: &Path) -> Arc<QemuDriver> {
        QemuDriver::open(&DriverConfig {
            state_dir: dir.join("state"),
            run_dir: dir.join("run"),
            emulator: None,
            vm_cgroup_root: Some(None),
            network_service: None,
            storage_service: None,
            guest_agent_timeout: None,
        })
        .await
        .expect("open the qemu driver")
    }

    fn d(&self) -> &QemuDriver {
        self.driver.as_ref().expect("a driver")
    }

    /// A service restart: the driver goes (its VMs keep running) and a new one reattaches.
    async fn restart(&mut self) {
        drop(self.driver.take());
        self.driver = Some(Self::driver(self.dir.path()).await);
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let pids: Vec<i32> = self
            .driver
            .iter()
            .flat_map(|d| d.running_vms())
            .map(|vm| vm.pid())
            .collect();
        support::kill_vms(&pids);
    }
}

fn name() -> DomainRef {
    DomainRef::Name(NAME.into())
}

/// The test guest with its serial port as an interactive console and a small boot-time disk
/// `vda`, so that the guest's own names match the targets (it names disks in the order it
/// finds them).
fn domain_xml(guest: &Path, vda: &Path) -> String {
    format!(
        r#"<domain type='qemu'>
  <name>{NAME}</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{kernel}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>console=ttyS0</cmdline>
  </os>
  <features><acpi/></features>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='{vda}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <serial type='pty'><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <memballoon model='none'/>
  </devices>
</domain>"#,
        kernel = support::kernel(guest).display(),
        initrd = guest.join("initrd.img").display(),
        vda = vda.display(),
    )
}

fn disk_xml(target: &str, image: &Path) -> String {
    format!(
        "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>\
         <source file='{}'/><target dev='{target}' bus='virtio'/></disk>",
        image.display()
    )
}

/// The guest's shell on its serial console: what it printed since we connected, and a way
/// to type.
struct Shell {
    output: Arc<Mutex<Vec<u8>>>,
    input: OwnedWriteHalf,
    asked: u32,
}

impl Shell {
    async fn open(driver: &QemuDriver) -> Self {
        let endpoint = driver.console_endpoint(&name(), None).expect("console");
        let log = endpoint.log.clone().expect("the console has a log");
        let deadline = tokio::time::Instant::now() + BOOT_DEADLINE;
        // The boot happened before anyone listened: QEMU's log of the console has it.
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("virtplane-guest: ready")
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the guest did not boot (hang guard):\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let stream = UnixStream::connect(&endpoint.socket)
            .await
            .expect("connect to the console");
        let (mut read, input) = stream.into_split();
        let output = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&output);
        // Drained all the time, so QEMU never waits for us.
        tokio::spawn(async move {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = read.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        });
        Self {
            output,
            input,
            asked: 0,
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }

    /// What the shell expansion `expr` (e.g. `$(cat /sys/block/vdb/size)`) gives in the guest.
    async fn eval(&mut self, expr: &str) -> String {
        self.asked += 1;
        let tag = format!("Q{}Q", self.asked);
        self.input
            .write_all(format!("\recho {tag}:{expr}:{tag}\r").as_bytes())
            .await
            .expect("type into the console");
        let deadline = tokio::time::Instant::now() + HANG_GUARD;
        loop {
            // The echo of what was typed holds the unexpanded `$(`; the answer does not.
            let text = self.text();
            let answer = text.split(&format!("{tag}:")).skip(1).find_map(|rest| {
                let (value, _) = rest.split_once(&format!(":{tag}"))?;
                (!value.contains('$') && !value.contains('\n')).then(|| value.trim().to_owned())
            });
            if let Some(answer) = answer {
                return answer;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no answer to {expr:?} (hang guard); console:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Asks `expr` until the guest answers `want` (a hotplug takes the guest a moment).
    async fn wait_for(&mut self, expr: &str, want: &str) {
        let deadline = tokio::time::Instant::now() + HANG_GUARD;
        loop {
            let got = self.eval(expr).await;
            if got == want {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                let dmesg = self.eval("$(dmesg | tail -15 | tr '\\n' '|')").await;
                panic!(
                    "the guest still says {got:?} for {expr:?}, not {want:?} (hang guard); \
                     its kernel log ends: {dmesg}"
                );
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

fn definition(driver: &QemuDriver, inactive: bool) -> DomainDef {
    let xml = driver
        .xml(
            &name(),
            XmlFlags {
                inactive,
                secure: false,
            },
        )
        .expect("dumpxml");
    parse_domain(&xml).expect("own XML parses")
}

fn targets(def: &DomainDef) -> Vec<&str> {
    def.devices
        .disks
        .iter()
        .map(|d| d.target.dev.as_str())
        .collect()
}

async fn qmp(driver: &QemuDriver, command: &str) -> Value {
    let (_, vm) = driver.running_vm(&name()).expect("running vm");
    vm.monitor
        .execute_raw(json!({"execute": command}))
        .await
        .unwrap_or_else(|e| panic!("{command}: {e}"))
}

/// The device ids QEMU has block backends for (`query-block`'s qdev paths).
async fn block_devices(driver: &QemuDriver) -> Vec<String> {
    qmp(driver, "query-block")
        .await
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| b["qdev"].as_str())
        .filter_map(|q| q.strip_prefix("/machine/peripheral/"))
        .filter_map(|q| q.split('/').next())
        .map(str::to_owned)
        .collect()
}

/// The block nodes that have `image` open.
async fn nodes_of(driver: &QemuDriver, image: &Path) -> Vec<String> {
    let (_, vm) = driver.running_vm(&name()).expect("running vm");
    let reply = vm
        .monitor
        .execute_raw(json!({"execute": "query-named-block-nodes", "arguments": {"flat": true}}))
        .await
        .expect("query-named-block-nodes");
    reply
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| n["file"].as_str() == Some(&image.display().to_string()))
        .filter_map(|n| n["node-name"].as_str().map(str::to_owned))
        .collect()
}

fn qemu_img(dir: &Path, file: &str, format: &str, size: &str) -> PathBuf {
    let path = dir.join(file);
    let out = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", format])
        .arg(&path)
        .arg(size)
        .output()
        .expect("run qemu-img (install qemu-utils)");
    assert!(
        out.status.success(),
        "qemu-img: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disks_come_and_go_in_a_running_guest() {
    let guest = tokio::task::spawn_blocking(support::build_guest)
        .await
        .expect("build task");
    let mut fx = Fixture::open().await;
    let d = fx.d();
    let images = fx.dir.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    let boot = qemu_img(&images, "boot.raw", "raw", "1M");
    let data = qemu_img(&images, "data.qcow2", "qcow2", "4M");
    let spare = qemu_img(&images, "spare.qcow2", "qcow2", "1M");

    d.define(parse_domain(&domain_xml(&guest, &boot)).unwrap())
        .await
        .expect("define");
    d.start(&name(), false).await.expect("start");
    let mut shell = Shell::open(d).await;
    assert_eq!(shell.eval("$(cat /sys/block/vda/size)").await, "2048");
    assert_eq!(shell.eval("$(ls /sys/block | grep -c vdb)").await, "0");

    // Live attach: the guest sees a 4 MiB disk, 8192 sectors.
    let vdb = parse_device(&disk_xml("vdb", &data)).unwrap();
    d.attach_device(&name(), vdb.clone(), LIVE)
        .await
        .expect("attach vdb live");
    shell
        .wait_for("$(cat /sys/block/vdb/size 2>/dev/null)", "8192")
        .await;
    let live = definition(d, false);
    assert_eq!(targets(&live), ["vda", "vdb"]);
    let disk = &live.devices.disks[1];
    assert_eq!(disk.info.alias.as_deref(), Some("virtio-disk1"));
    let address = disk
        .info
        .address
        .as_ref()
        .expect("a PCI address was assigned");
    assert_eq!(address.addr_type, "pci");
    assert_eq!(
        targets(&definition(d, true)),
        ["vda"],
        "a live attach leaves the config alone"
    );
    let blocks = d.block_devices(&name(), false).expect("domblklist");
    assert!(
        blocks
            .iter()
            .any(|b| b.target == "vdb" && b.source.as_deref() == Some(&*data.display().to_string())),
        "{blocks:?}"
    );
    assert!(block_devices(d).await.contains(&"virtio-disk1".to_owned()));
    assert_eq!(nodes_of(d, &data).await.len(), 2, "storage and format node");

    // A second attach of the same target is refused, naming it.
    let err = d
        .attach_device(
            &name(),
            parse_device(&disk_xml("vdb", &spare)).unwrap(),
            LIVE,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("target 'vdb'"), "{err}");

    // Live detach: the guest lets it go, QEMU forgets it.
    d.detach_device(&name(), vdb.clone(), LIVE)
        .await
        .expect("detach vdb live");
    shell.wait_for("$(ls /sys/block | grep -c vdb)", "0").await;
    assert_eq!(targets(&definition(d, false)), ["vda"]);
    assert_eq!(block_devices(d).await, ["virtio-disk0"]);
    assert!(
        nodes_of(d, &data).await.is_empty(),
        "the block nodes are removed"
    );
    let err = d
        .detach_device(&name(), vdb.clone(), LIVE)
        .await
        .unwrap_err();
    assert!(matches!(err, DomainError::DeviceMissing(_)), "{err:?}");
    assert_eq!(err.to_string(), "disk vdb not found");

    // Config only, while running: the next start's definition, not the running guest.
    let vdc = parse_device(&disk_xml("vdc", &spare)).unwrap();
    d.attach_device(&name(), vdc, CONFIG)
        .await
        .expect("attach vdc to the config");
    assert_eq!(targets(&definition(d, true)), ["vda", "vdc"]);
    assert_eq!(targets(&definition(d, false)), ["vda"]);
    assert!(nodes_of(d, &spare).await.is_empty());
    assert_eq!(shell.eval("$(ls /sys/block | grep -c vdc)").await, "0");

    // A disk QEMU cannot open: refused with QEMU's words, nothing left behind.
    let missing = images.join("missing.qcow2");
    let err = d
        .attach_device(
            &name(),
            parse_device(&disk_xml("vdd", &missing)).unwrap(),
            LIVE,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("missing.qcow2"), "{err}");
    assert_eq!(targets(&definition(d, false)), ["vda"]);
    let nodes: Vec<Value> = qmp(d, "query-named-block-nodes")
        .await
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(nodes.len(), 2, "only vda's nodes: {nodes:?}");

    // A guest that cannot answer (paused): the detach times out, the disk stays.
    d.attach_device(&name(), vdb.clone(), LIVE)
        .await
        .expect("attach vdb again");
    shell
        .wait_for("$(cat /sys/block/vdb/size 2>/dev/null)", "8192")
        .await;
    // A restarted service finds the disk in the live definition and can unplug it.
    fx.restart().await;
    let d = fx.d();
    let live = definition(d, false);
    assert_eq!(targets(&live), ["vda", "vdb"]);
    assert_eq!(
        live.devices.disks[1].info.alias.as_deref(),
        Some("virtio-disk1")
    );
    d.suspend(&name()).await.expect("suspend");
    let err = d
        .detach_device(&name(), vdb.clone(), LIVE)
        .await
        .unwrap_err();
    assert!(matches!(err, DomainError::Timeout(_)), "{err:?}");
    assert!(
        err.to_string().contains("did not release disk 'vdb'"),
        "{err}"
    );
    assert_eq!(targets(&definition(d, false)), ["vda", "vdb"]);
    // Once running again, the guest honours the pending request, and its DEVICE_DELETED
    // finishes the detach without another call (as libvirt's event handler does).
    d.resume(&name()).await.expect("resume");
    shell.wait_for("$(ls /sys/block | grep -c vdb)", "0").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while targets(&definition(d, false)) != ["vda"] {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the late release was not recorded: {:?}",
            targets(&definition(d, false))
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(nodes_of(d, &data).await.is_empty());
    // Nothing is left to detach.
    let err = d.detach_device(&name(), vdb, LIVE).await.unwrap_err();
    assert!(err.to_string().contains("vdb"), "{err}");

    d.destroy(&name(), false).await.expect("destroy");
    // The config-only disk is there at the next start.
    assert_eq!(targets(&definition(d, false)), ["vda", "vdc"]);
}
