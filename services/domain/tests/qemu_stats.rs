//! Monitoring and passthrough against a real QEMU launched from the driver's own command line
//! builder (so the stats code is checked against the device ids and node names the driver
//! really uses): block counters and sizes, balloon, vCPU threads, CPU time, raw QMP and HMP.
//!
//! One test keeps QEMU paused (`-S`, nothing runs in the guest); one boots the test guest under
//! TCG so its virtio_blk driver reads the disk and its virtio_balloon driver reports memory
//! figures, and checks the counters move. QEMU is killed by pid in a Drop guard; every wait has
//! a deadline that only stops a hang.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};
use virtplane_domain::domains::Snapshot;
use virtplane_domain::driver::qemu::argv::{ArgvContext, build};
use virtplane_domain::driver::qemu::monitor::{Monitor, MonitorError};
use virtplane_domain::driver::qemu::passthrough::monitor_command;
use virtplane_domain::driver::qemu::stats;
use virtplane_domain::error::DomainError;
use virtplane_domain::model::{Reason, State};
use virtplane_domain::stats::{StatsGroups, VcpuState};
use virtplane_domain::xml::{DomainDef, parse_domain};

const QEMU: &str = "/usr/bin/qemu-system-x86_64";
const QEMU_IMG: &str = "qemu-img";

/// Hang guard for QEMU to open its monitor.
const START_GUARD: Duration = Duration::from_secs(30);
/// Hang guard for the TCG boot of the test guest on a loaded 2-core machine.
const BOOT_GUARD: Duration = Duration::from_secs(120);

/// A QEMU child killed (by its pid) and reaped when dropped.
struct Qemu {
    child: Child,
    dir: PathBuf,
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Qemu {
    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("qemu.log")).unwrap_or_default()
    }

    fn serial(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(self.dir.join("serial.log")).unwrap_or_default())
            .into_owned()
    }
}

/// Makes a qcow2 image with the real qemu-img.
fn qemu_img(path: &Path, size: &str) {
    let out = Command::new(QEMU_IMG)
        .args(["create", "-q", "-f", "qcow2"])
        .arg(path)
        .arg(size)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {QEMU_IMG} ({e}): install qemu-utils (`apt-get install qemu-utils`)")
        });
    assert!(
        out.status.success(),
        "qemu-img create failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The definition under test: a qcow2 virtio disk, an empty CD-ROM, a user-mode NIC, a
/// balloon, 2 of 4 vCPUs; with `boot`, the test guest's kernel and a serial log.
fn definition(dir: &Path, boot: Option<&Path>) -> DomainDef {
    let os = match boot {
        Some(guest) => {
            let kernel = if guest.join("vmlinux").is_file() {
                guest.join("vmlinux")
            } else {
                guest.join("vmlinuz")
            };
            format!(
                "<os><type arch='x86_64' machine='pc'>hvm</type><kernel>{}</kernel>\
                 <initrd>{}</initrd><cmdline>console=ttyS0</cmdline></os>",
                kernel.display(),
                guest.join("initrd.img").display()
            )
        }
        None => "<os><type arch='x86_64' machine='pc'>hvm</type></os>".to_owned(),
    };
    let xml = format!(
        "<domain type='qemu'><name>stats</name><uuid>0b7f7e58-5d6e-4c4b-9d3a-2d7f3a1c0001</uuid>\
         <memory unit='MiB'>256</memory><currentMemory unit='MiB'>256</currentMemory>\
         <vcpu current='2'>4</vcpu>{os}<devices>\
         <disk type='file' device='disk'><driver name='qemu' type='qcow2'/>\
           <source file='{disk}'/><target dev='vda' bus='virtio'/></disk>\
         <disk type='file' device='cdrom'><target dev='hdc' bus='ide'/><readonly/></disk>\
         <interface type='user'><mac address='52:54:00:5e:00:01'/><model type='virtio'/></interface>\
         <serial type='file'><source path='{serial}'/><target port='0'/></serial>\
         <memballoon model='virtio'/></devices></domain>",
        disk = dir.join("disk.qcow2").display(),
        serial = dir.join("serial.log").display(),
    );
    parse_domain(&xml).unwrap_or_else(|e| panic!("test XML: {e}"))
}

/// Starts QEMU with the driver's command line for `def` (paused, as the driver starts it) and
/// connects to its monitor.
async fn launch(dir: &Path, def: &DomainDef) -> (Qemu, Monitor) {
    assert!(
        Path::new(QEMU).exists(),
        "{QEMU} is missing: install qemu-system-x86 (Debian 12 ships QEMU 7.2)"
    );
    let ctx = ArgvContext {
        emulator: PathBuf::from(QEMU),
        run_dir: dir.to_path_buf(),
        kvm_usable: false,
    };
    let cmd = build(def, &ctx).unwrap_or_else(|e| panic!("argv: {e}"));
    let log = std::fs::File::create(dir.join("qemu.log")).unwrap();
    let child = Command::new(&cmd.program)
        .args(&cmd.args)
        .envs(cmd.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {}: {e}", cmd.program.display()));
    let mut qemu = Qemu {
        child,
        dir: dir.to_path_buf(),
    };
    let deadline = Instant::now() + START_GUARD;
    loop {
        if let Some(status) = qemu.child.try_wait().unwrap() {
            panic!("QEMU exited early ({status}):\n{}", qemu.log());
        }
        if cmd.qmp_socket.exists() {
            match Monitor::connect(&cmd.qmp_socket, START_GUARD).await {
                // Events are not needed here: dropping them is allowed (they are buffered
                // apart from replies, so commands still work).
                Ok((monitor, _events)) => return (qemu, monitor),
                Err(MonitorError::Connect(_)) => {}
                Err(e) => panic!("QMP connect: {e}"),
            }
        }
        assert!(
            Instant::now() < deadline,
            "QEMU never opened its monitor (hang guard)"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn running(def: DomainDef) -> Snapshot {
    Snapshot {
        def: Arc::new(def),
        next_def: None,
        state: State::Running,
        reason: Reason::RunningBooted,
        id: 1,
        persistent: true,
        autostart: false,
        started_at: Some(SystemTime::now()),
        run_taints: Vec::new(),
        visible: true,
        removed: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_and_passthrough_of_a_paused_qemu() {
    let tmp = tempfile::Builder::new()
        .prefix("vp-stats-")
        .tempdir_in("/tmp")
        .unwrap();
    let dir = tmp.path();
    qemu_img(&dir.join("disk.qcow2"), "64M");
    let def = definition(dir, None);
    let (qemu, mon) = launch(dir, &def).await;

    // Block: matched to the driver's device, sized from the image, nothing read yet.
    let disks = stats::disks(&mon, &def).await.unwrap();
    assert_eq!(disks.len(), 2);
    let vda = disks[0];
    assert_eq!(vda.capacity, Some(64 * 1024 * 1024), "{vda:?}");
    assert!(vda.physical.is_some_and(|p| p > 0), "{vda:?}");
    assert_eq!(vda.stats.unwrap().rd_req, 0, "paused: nothing read yet");
    assert_eq!(disks[1].stats, None, "an empty CD-ROM has no counters");
    assert!(stats::block_stats(&mon, &def, "vda").await.is_ok());
    let by_path = dir.join("disk.qcow2").display().to_string();
    assert!(stats::block_stats(&mon, &def, &by_path).await.is_ok());
    let total = stats::block_stats(&mon, &def, "").await.unwrap();
    assert_eq!(total.rd_bytes, 0);
    let missing = stats::block_stats(&mon, &def, "vdz").await.unwrap_err();
    assert!(
        matches!(missing, DomainError::InvalidArg(_)) && missing.to_string().contains("vdz"),
        "{missing}"
    );
    let empty = stats::block_stats(&mon, &def, "hdc").await.unwrap_err();
    assert!(empty.to_string().contains("no medium"), "{empty}");

    // Memory: the balloon's size, the process's RSS; the guest reports nothing while paused.
    let memory = stats::memory_stats(&mon, qemu.pid(), &def).await.unwrap();
    assert_eq!(memory.actual_kib, Some(256 * 1024));
    assert!(memory.rss_kib.is_some_and(|r| r > 0), "{memory:?}");
    assert_eq!(memory.last_update, None);
    assert_eq!(memory.unused_kib, None);
    stats::set_stats_period(&mon, &def, 7).await.unwrap();
    let interval = mon
        .execute_raw(json!({"execute": "qom-get", "arguments": {
            "path": "/machine/peripheral/balloon0", "property": "guest-stats-polling-interval"}}))
        .await
        .unwrap();
    assert_eq!(interval, json!(7));

    // vCPUs: two online with their threads' times, two hot-pluggable slots offline.
    let vcpus = stats::vcpus(&mon, qemu.pid(), 4).await.unwrap();
    assert_eq!(vcpus.len(), 4);
    assert!(
        vcpus[..2]
            .iter()
            .all(|v| v.state == VcpuState::Running && v.time_ns.is_some())
    );
    assert!(
        vcpus[2..]
            .iter()
            .all(|v| v.state == VcpuState::Offline && v.time_ns.is_none())
    );
    let cpu = stats::cpu_stats(qemu.pid()).unwrap();
    assert!(cpu.time_ns > 0, "QEMU used no CPU at all? {cpu:?}");

    // The whole record, as domstats gets it.
    let snapshot = running(def.clone());
    let record = stats::live_record(&mon, qemu.pid(), &snapshot, StatsGroups::ALL).await;
    assert_eq!(record.state, Some((State::Running, Reason::RunningBooted)));
    assert_eq!(record.balloon.as_ref().unwrap().current_kib, 256 * 1024);
    assert_eq!(record.vcpu.as_ref().unwrap().vcpus.len(), 4);
    let nics = record.interfaces.as_ref().unwrap();
    assert_eq!(nics.len(), 1);
    assert_eq!(
        nics[0].stats, None,
        "user networking has no host device to count on"
    );
    let blocks = record.blocks.as_ref().unwrap();
    assert_eq!(blocks[0].name, "vda");
    assert_eq!(blocks[0].capacity, Some(64 * 1024 * 1024));
    assert!(blocks[0].stats.is_some());
    let only_block = stats::live_record(
        &mon,
        qemu.pid(),
        &snapshot,
        StatsGroups {
            block: true,
            ..Default::default()
        },
    )
    .await;
    assert!(only_block.balloon.is_none() && only_block.cpu.is_none());

    // Passthrough: raw QMP, HMP, and QEMU's own refusals.
    let reply = monitor_command(&mon, "stats", r#"{"execute":"query-status"}"#, false)
        .await
        .unwrap();
    let reply: Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(reply["return"]["status"], "prelaunch", "{reply}");
    let text = monitor_command(&mon, "stats", "info status", true)
        .await
        .unwrap();
    assert!(text.contains("paused"), "{text:?}");
    let refused = monitor_command(&mon, "stats", r#"{"execute":"no-such-command"}"#, false)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, DomainError::OperationFailed(_))
            && refused.to_string().contains("CommandNotFound"),
        "{refused}"
    );
    for bad in ["query-status", "[1]", r#"{"arguments":{}}"#] {
        let err = monitor_command(&mon, "stats", bad, false)
            .await
            .unwrap_err();
        assert!(matches!(err, DomainError::InvalidArg(_)), "{bad}: {err}");
    }
    let hmp_refused = monitor_command(&mon, "stats", "no-such-hmp-command", true)
        .await
        .unwrap();
    assert!(
        hmp_refused.contains("unknown command"),
        "HMP reports its errors as text, as in libvirt: {hmp_refused:?}"
    );
    drop(qemu);
}

/// Runs `tests/guest/build.sh` into `target/guest` (cached) and returns that directory.
fn build_guest() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap();
    let out = root.join("target/guest");
    let output = Command::new("bash")
        .arg(root.join("tests/guest/build.sh"))
        .arg(&out)
        .current_dir(&root)
        .stdin(Stdio::null())
        .output()
        .expect("running tests/guest/build.sh");
    assert!(
        output.status.success(),
        "tests/guest/build.sh failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_move_when_the_guest_boots() {
    let guest = tokio::task::spawn_blocking(build_guest).await.unwrap();
    let tmp = tempfile::Builder::new()
        .prefix("vp-stats-boot-")
        .tempdir_in("/tmp")
        .unwrap();
    let dir = tmp.path();
    qemu_img(&dir.join("disk.qcow2"), "16M");
    let def = definition(dir, Some(&guest));
    let (qemu, mon) = launch(dir, &def).await;
    // The guest's balloon driver reports every second once it is loaded.
    stats::set_stats_period(&mon, &def, 1).await.unwrap();
    mon.execute(qapi::qmp::cont {}).await.unwrap();

    let deadline = Instant::now() + BOOT_GUARD;
    while !qemu.serial().contains("virtplane-guest: ready") {
        assert!(
            Instant::now() < deadline,
            "the guest did not boot (hang guard)\n--- serial ---\n{}\n--- qemu ---\n{}",
            qemu.serial(),
            qemu.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // virtio_blk read the partition table at probe time.
    let vda = stats::block_stats(&mon, &def, "vda").await.unwrap();
    assert!(vda.rd_req > 0 && vda.rd_bytes > 0, "{vda:?}");
    assert!(vda.rd_total_time_ns > 0, "{vda:?}");

    // The guest's memory figures arrive once its balloon driver has reported.
    let memory = loop {
        let memory = stats::memory_stats(&mon, qemu.pid(), &def).await.unwrap();
        if memory.last_update.is_some() {
            break memory;
        }
        assert!(
            Instant::now() < deadline,
            "the guest's balloon driver never reported (hang guard): {memory:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let available = memory.available_kib.expect("stat-total-memory");
    let unused = memory.unused_kib.expect("stat-free-memory");
    assert!(
        available > 100 * 1024 && available <= 256 * 1024,
        "the guest sees about 256 MiB: {memory:?}"
    );
    assert!(unused > 0 && unused < available, "{memory:?}");

    // The vCPU threads have run.
    let vcpus = stats::vcpus(&mon, qemu.pid(), 4).await.unwrap();
    assert!(vcpus[0].time_ns.is_some_and(|t| t > 0), "{vcpus:?}");
    drop(qemu);
}
