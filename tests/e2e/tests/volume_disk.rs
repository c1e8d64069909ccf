//! `<disk type='volume'>` end to end (issue #5 item 6), with the real binaries, the dir
//! storage driver and a real guest under TCG: a pool and a qcow2 volume are made with
//! `virtctl pool-define-as` / `vol-create-as`; the test guest (kernel + initramfs, no boot
//! disk; a small file as `vda`) gets the volume as its virtio disk `vdb`, which the domain service resolves through
//! the storage service at start. The guest sees the disk; the live XML keeps naming the
//! volume; `vol-delete` is refused naming the domain while it runs and works once it is
//! destroyed.
//!
//! Then the leases across restarts: the domain service is killed (-9) under a running VM and
//! restarted: the volume stays protected, and destroying the VM releases it. A VM that ends
//! while the domain service is down has its lease released when the service comes back. And
//! a SCSI volume disk hot-plugged into a running VM holds its lease until it is unplugged.
//!
//! Deadlines only stop hangs; nothing asserts a duration.

use std::path::Path;
use std::time::{Duration, Instant};

use virtplane_e2e::guest::{Console, build_guest, kernel};
use virtplane_e2e::{ADMIN_TOKEN, Stack};

/// Hang guard for the boot (kernel + initramfs under TCG on a loaded 2-core machine).
const BOOT_DEADLINE: Duration = Duration::from_secs(120);
const HANG_GUARD: Duration = Duration::from_secs(30);
const NAME: &str = "e2e-volume";
const POOL: &str = "images";
const VOLUME: &str = "data.qcow2";

/// The guest: `vda` a plain file (so the guest's first virtio disk is not ours and it names
/// ours `vdb`, as the XML does), `vdb` the pool volume.
fn guest_xml(guest: &Path, first_disk: &str) -> String {
    format!(
        r#"<domain type='qemu'>
  <name>{NAME}</name>
  <memory unit='MiB'>128</memory>
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
      <source file='{first_disk}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='volume' device='disk'>
      <source pool='{POOL}' volume='{VOLUME}'/>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <controller type='scsi' index='0' model='virtio-scsi'/>
    <serial type='pty'><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <memballoon model='none'/>
  </devices>
</domain>"#,
        kernel = kernel(guest).display(),
        initrd = guest.join("initrd.img").display(),
    )
}

fn in_use(volume: &str) -> String {
    format!("volume '{volume}' in pool '{POOL}' is in use by domain '{NAME}'")
}

/// Asserts `vol-delete` of `volume` is refused because the domain uses it.
fn delete_refused(stack: &Stack, volume: &str) {
    let refused = stack.fails(Some(ADMIN_TOKEN), &["vol-delete", "--pool", POOL, volume]);
    assert!(refused.contains(&in_use(volume)), "{refused}");
}

fn create_volume(stack: &Stack, volume: &str) {
    stack.ok(&["vol-create-as", POOL, volume, "64M", "--format", "qcow2"]);
}

/// Waits (bounded) until `check` holds.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let until = Instant::now() + HANG_GUARD;
    while !check() {
        assert!(Instant::now() < until, "{what} (hang guard)");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_guest_disk_on_a_pool_volume() {
    let guest = build_guest();
    let mut stack = Stack::start_with_storage("qemu", "dir");
    let pool_dir = stack.dir.path().join("pool");
    let target = pool_dir.display().to_string();
    stack.ok(&["pool-define-as", POOL, "dir", "--target", &target]);
    stack.ok(&["pool-build", POOL]);
    stack.ok(&["pool-start", POOL]);
    create_volume(&stack, VOLUME);
    let first_disk = stack.dir.path().join("first.raw");
    let made = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "raw"])
        .arg(&first_disk)
        .arg("1M")
        .output()
        .expect("run qemu-img (install qemu-utils)");
    assert!(made.status.success(), "{made:?}");
    let xml = stack.file(
        "vm.xml",
        &guest_xml(&guest, &first_disk.display().to_string()),
    );
    stack.ok(&["define", &xml]);

    // A volume that does not exist: the start is refused in the storage service's words.
    stack.ok(&["vol-delete", "--pool", POOL, VOLUME]);
    let refused = stack.fails(Some(ADMIN_TOKEN), &["start", NAME]);
    assert!(
        refused.contains(&format!("cannot start domain '{NAME}'")) && refused.contains(VOLUME),
        "{refused}"
    );
    create_volume(&stack, VOLUME);

    stack.ok(&["start", NAME]);
    // The live XML names the volume (with its format); QEMU opened the file in the pool.
    let live = stack.ok(&["dumpxml", NAME]);
    assert!(
        live.contains(&format!("<source pool='{POOL}' volume='{VOLUME}'/>")),
        "{live}"
    );
    assert!(live.contains("type='qcow2'"), "{live}");
    let volume_path = pool_dir.join(VOLUME).display().to_string();
    let pids = stack.qemu_pids();
    let [pid] = pids.as_slice() else {
        panic!("one QEMU expected: {pids:?}")
    };
    let cmdline = String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap())
        .replace('\0', " ");
    assert!(cmdline.contains(&volume_path), "{cmdline}");
    let list = stack.ok(&["domblklist", NAME]);
    assert!(
        list.lines()
            .any(|l| l.contains("vdb") && l.contains(VOLUME)),
        "{list}"
    );

    // The guest sees a 64 MiB disk vdb (131072 sectors of 512 bytes).
    let mut console = Console::open(&stack, NAME);
    console.wait_for("virtplane-guest: ready", BOOT_DEADLINE);
    console.type_text("\recho vdb-size-$(cat /sys/block/vdb/size)-end\r");
    console.wait_for("vdb-size-131072-end", HANG_GUARD);
    drop(console);
    // Its counters are found although the live XML names no path.
    let blk = stack.ok(&["domblkstat", NAME, "vdb"]);
    assert!(blk.starts_with("vdb rd_req "), "{blk}");

    // In use: not deleted. Destroyed: deletable.
    delete_refused(&stack, VOLUME);
    assert!(pool_dir.join(VOLUME).exists());
    stack.ok(&["destroy", NAME]);
    stack.ok(&["vol-delete", "--pool", POOL, VOLUME]);
    assert!(!pool_dir.join(VOLUME).exists());

    // A kill -9 of the domain service under a running VM: the lease stays with the VM, and
    // destroying it after the restart gives the volume back.
    create_volume(&stack, VOLUME);
    stack.ok(&["start", NAME]);
    stack.kill_domaind();
    stack.start_domaind();
    assert!(stack.ok(&["domstate", NAME]).contains("running"));
    delete_refused(&stack, VOLUME);
    stack.ok(&["destroy", NAME]);
    stack.ok(&["vol-delete", "--pool", POOL, VOLUME]);

    // A volume disk hot-plugged (SCSI: unplugs without the guest's help) holds its lease
    // until it is unplugged.
    create_volume(&stack, VOLUME);
    create_volume(&stack, "hot.qcow2");
    stack.ok(&["start", NAME]);
    let hot = stack.file(
        "hot.xml",
        &format!(
            "<disk type='volume' device='disk'><source pool='{POOL}' volume='hot.qcow2'/>\
             <target dev='sdb' bus='scsi'/></disk>"
        ),
    );
    stack.ok(&["attach-device", NAME, &hot, "--live"]);
    let cmd_path = pool_dir.join("hot.qcow2").display().to_string();
    let live = stack.ok(&["dumpxml", NAME]);
    assert!(live.contains("volume='hot.qcow2'"), "{live}");
    assert!(
        !live.contains(&cmd_path),
        "the live XML names the volume: {live}"
    );
    delete_refused(&stack, "hot.qcow2");
    stack.ok(&["detach-device", NAME, &hot, "--live"]);
    stack.ok(&["vol-delete", "--pool", POOL, "hot.qcow2"]);
    // The boot disk's volume is still held.
    delete_refused(&stack, VOLUME);

    // A VM that ends while the domain service is down: the restarted service releases its
    // lease.
    stack.kill_domaind();
    for pid in stack.qemu_pids() {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .expect("kill QEMU");
    }
    eventually("QEMU gone", || stack.qemu_pids().is_empty());
    delete_refused(&stack, VOLUME);
    stack.start_domaind();
    assert!(stack.ok(&["domstate", NAME]).contains("shut off"));
    stack.ok(&["vol-delete", "--pool", POOL, VOLUME]);
    stack.ok(&["undefine", NAME]);
}
