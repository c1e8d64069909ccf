//! The test guest boots from a storage volume (issue #5): its root file system image
//! (`rootfs.img`, made by tests/guest/build.sh) is uploaded into a raw volume of a dir pool,
//! copied into a qcow2 volume with `vol-create-from`, and a domain whose `vda` is that volume
//! (`<disk type='volume'>`) boots with `virtplane.root=/dev/vda`: the guest switches to the
//! root on the disk and says so on its console. All through the gateway with virtctl, on
//! real QEMU under TCG.
//!
//! Deadlines only stop hangs; nothing asserts a duration.

use std::time::Duration;

use virtplane_e2e::guest::{Console, build_guest, kernel};
use virtplane_e2e::{ADMIN_TOKEN, Stack};

const BOOT_DEADLINE: Duration = Duration::from_secs(180);

#[test]
fn the_guest_boots_from_a_qcow2_volume_made_from_an_uploaded_image() {
    let guest = build_guest();
    let stack = Stack::start_with_storage("qemu", "dir");
    let target = stack.dir.path().join("images");
    stack.ok(&[
        "pool-define-as",
        "images",
        "dir",
        "--target",
        &target.display().to_string(),
    ]);
    stack.ok(&["pool-build", "images"]);
    stack.ok(&["pool-start", "images"]);

    let image = guest.join("rootfs.img");
    let size = std::fs::metadata(&image).unwrap().len().to_string();
    stack.ok(&[
        "vol-create-as",
        "images",
        "rootfs.img",
        &size,
        "--allocation",
        "0",
        "--format",
        "raw",
    ]);
    stack.ok(&[
        "vol-upload",
        "--pool",
        "images",
        "rootfs.img",
        &image.display().to_string(),
        "--sparse",
    ]);
    let qcow2 = stack.file(
        "root.xml",
        "<volume><name>root.qcow2</name><target><format type='qcow2'/></target></volume>",
    );
    stack.ok(&[
        "vol-create-from",
        "images",
        &qcow2,
        "--inputpool",
        "images",
        "rootfs.img",
    ]);
    let info = stack.ok(&["vol-dumpxml", "--pool", "images", "root.qcow2"]);
    assert!(info.contains("<format type='qcow2'/>"), "{info}");

    let xml = format!(
        r#"<domain type='qemu'>
  <name>e2e-volume-boot</name>
  <memory unit='MiB'>160</memory>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{kernel}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>console=ttyS0 virtplane.root=/dev/vda</cmdline>
  </os>
  <features><acpi/></features>
  <devices>
    <disk type='volume' device='disk'>
      <source pool='images' volume='root.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <serial type='pty'><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <memballoon model='none'/>
  </devices>
</domain>"#,
        kernel = kernel(&guest).display(),
        initrd = guest.join("initrd.img").display(),
    );
    let file = stack.file("boot.xml", &xml);
    stack.ok(&["define", &file]);
    stack.ok(&["start", "e2e-volume-boot"]);
    let mut console = Console::open(&stack, "e2e-volume-boot");
    console.wait_for(
        "virtplane-guest: root file system on /dev/vda",
        BOOT_DEADLINE,
    );
    console.wait_for("virtplane-guest: ready", BOOT_DEADLINE);
    // The running system writes to its root: the data lands in the qcow2 volume.
    console.type_text("\recho booted > /booted-from-volume && sync && echo wrote-$((1+1))\r");
    console.wait_for("wrote-2", BOOT_DEADLINE);
    drop(console);
    let blocks = stack.ok(&["domblklist", "e2e-volume-boot"]);
    assert!(blocks.contains("vda"), "{blocks}");

    let refused = stack.fails(
        Some(ADMIN_TOKEN),
        &["vol-delete", "--pool", "images", "root.qcow2"],
    );
    assert!(
        refused.contains("in use by domain 'e2e-volume-boot'"),
        "{refused}"
    );
    stack.ok(&["destroy", "e2e-volume-boot"]);
    stack.ok(&["undefine", "e2e-volume-boot"]);
    let allocation_after = stack.ok(&["vol-info", "--pool", "images", "root.qcow2"]);
    assert!(allocation_after.contains("Capacity:"), "{allocation_after}");
    stack.ok(&["vol-delete", "--pool", "images", "root.qcow2"]);
    stack.ok(&["vol-delete", "--pool", "images", "rootfs.img"]);
}
