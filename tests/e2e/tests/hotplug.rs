//! `virtctl attach-disk`, `detach-disk`, `attach-device` and `detach-device` through the
//! gateway on a running QEMU VM with the qemu driver. The VM runs its firmware only (what the
//! guest sees is checked in services/domain/tests/qemu_hotplug.rs): a virtio disk is plugged
//! live and survives a restart of the domain service; its unplug needs a guest OS that lets
//! it go, so here it ends in the timeout error and the disk stays; a SCSI disk unplugs without
//! the guest; config-only and `--persistent` changes; `attach-device`/`detach-device` with
//! files; the viewer role is refused.
//!
//! Deadlines only stop hangs; nothing asserts a duration.

use std::path::Path;

use virtplane_e2e::{
    ADMIN_TOKEN, OPERATOR_TOKEN, Stack, VIEWER_TOKEN, wait_for_line, watch_events,
};

const NAME: &str = "e2e-hotplug";

fn domain_xml() -> String {
    format!(
        r#"<domain type='qemu'>
  <name>{NAME}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <features><acpi/></features>
  <devices>
    <controller type='scsi' index='0' model='virtio-scsi'/>
    <memballoon model='none'/>
  </devices>
</domain>"#
    )
}

fn image(stack: &Stack, file: &str) -> String {
    let path = stack.dir.path().join(file);
    let out = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "raw"])
        .arg(&path)
        .arg("1M")
        .output()
        .expect("run qemu-img (install qemu-utils)");
    assert!(
        out.status.success(),
        "qemu-img: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    path.display().to_string()
}

/// `domblklist` rows as (target, source).
fn disks(stack: &Stack, extra: &[&str]) -> Vec<(String, String)> {
    let mut args = vec!["domblklist", NAME];
    args.extend_from_slice(extra);
    stack
        .ok(&args)
        .lines()
        .skip(2)
        .filter_map(|l| {
            let mut cols = l.split_whitespace();
            Some((cols.next()?.to_owned(), cols.next()?.to_owned()))
        })
        .collect()
}

fn targets(stack: &Stack, extra: &[&str]) -> Vec<String> {
    disks(stack, extra).into_iter().map(|(t, _)| t).collect()
}

#[test]
fn disks_through_the_gateway() {
    assert!(
        Path::new("/usr/bin/qemu-system-x86_64").exists(),
        "install qemu-system-x86"
    );
    let mut stack = Stack::start_with("qemu");
    let data = image(&stack, "data.raw");
    let scsi = image(&stack, "scsi.raw");
    let more = image(&stack, "more.raw");
    let xml = stack.file("vm.xml", &domain_xml());
    stack.ok(&["define", &xml]);
    stack.ok(&["start", NAME]);
    let (watcher, events) = watch_events(&stack);

    // A virtio disk, live.
    let out = stack.ok(&[
        "attach-disk",
        NAME,
        &data,
        "vdb",
        "--live",
        "--subdriver",
        "raw",
    ]);
    assert_eq!(out.trim(), "Disk attached successfully");
    assert_eq!(disks(&stack, &[]), [("vdb".to_owned(), data.clone())]);
    assert!(targets(&stack, &["--inactive"]).is_empty());
    let live = stack.ok(&["dumpxml", NAME]);
    assert!(live.contains("<alias name='virtio-disk1'/>"), "{live}");
    assert!(live.contains("<address type='pci'"), "{live}");
    // virsh's device-added event, naming the alias.
    wait_for_line(
        &events,
        &format!("event 'device-added' for domain '{NAME}': virtio-disk1"),
    );

    // The viewer may look but not attach or detach.
    let denied = stack.fails(
        Some(VIEWER_TOKEN),
        &["attach-disk", NAME, &more, "vdd", "--live"],
    );
    assert!(
        denied.contains("permission denied") && denied.contains("domain:write"),
        "{denied}"
    );
    let denied = stack.fails(Some(VIEWER_TOKEN), &["detach-disk", NAME, "vdb", "--live"]);
    assert!(denied.contains("permission denied"), "{denied}");
    assert_eq!(targets(&stack, &[]), ["vdb"]);

    // A SCSI disk unplugs without the guest's help.
    let out = stack.ok(&[
        "attach-disk",
        NAME,
        &scsi,
        "sdb",
        "--targetbus",
        "scsi",
        "--live",
    ]);
    assert_eq!(out.trim(), "Disk attached successfully");
    assert_eq!(targets(&stack, &[]), ["vdb", "sdb"]);
    let out = stack.ok(&["detach-disk", NAME, &scsi, "--live"]);
    assert_eq!(out.trim(), "Disk detached successfully");
    assert_eq!(targets(&stack, &[]), ["vdb"]);
    let seen = wait_for_line(&events, "event 'device-removed'");
    assert!(
        seen.last()
            .is_some_and(|l| l.contains(&format!("for domain '{NAME}': scsi"))),
        "{seen:#?}"
    );
    drop(watcher);

    // The live definition survives a crash of the domain service.
    stack.kill_domaind();
    stack.start_domaind();
    assert_eq!(disks(&stack, &[]), [("vdb".to_owned(), data.clone())]);

    // No guest OS answers the unplug request: a clear timeout, and the disk stays.
    let err = stack.fails(Some(ADMIN_TOKEN), &["detach-disk", NAME, "vdb", "--live"]);
    assert!(err.contains("did not release disk 'vdb'"), "{err}");
    assert_eq!(targets(&stack, &[]), ["vdb"]);

    // --persistent on a running domain: live and config; --config alone: config only. The
    // operator may change the config.
    let out = stack.virtctl(
        Some(OPERATOR_TOKEN),
        &["attach-disk", NAME, &more, "vdc", "--persistent"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(targets(&stack, &[]), ["vdb", "vdc"]);
    assert_eq!(targets(&stack, &["--inactive"]), ["vdc"]);
    let out = stack.ok(&["detach-disk", NAME, "vdc", "--config"]);
    assert_eq!(out.trim(), "Disk detached successfully");
    assert!(targets(&stack, &["--inactive"]).is_empty());
    assert_eq!(targets(&stack, &[]), ["vdb", "vdc"]);

    // Device files.
    let disk_file = stack.file(
        "disk.xml",
        &format!(
            "<disk type='file' device='disk'><driver name='qemu' type='raw'/>\
             <source file='{more}'/><target dev='vde' bus='virtio'/></disk>"
        ),
    );
    let out = stack.ok(&["attach-device", NAME, &disk_file, "--config"]);
    assert_eq!(out.trim(), "Device attached successfully");
    assert_eq!(targets(&stack, &["--inactive"]), ["vde"]);
    let out = stack.ok(&["detach-device", NAME, &disk_file, "--config"]);
    assert_eq!(out.trim(), "Device detached successfully");
    assert!(targets(&stack, &["--inactive"]).is_empty());
    let hostdev = stack.file("hostdev.xml", "<hostdev mode='subsystem' type='pci'/>");
    let err = stack.fails(
        Some(ADMIN_TOKEN),
        &["attach-device", NAME, &hostdev, "--live"],
    );
    assert!(err.contains("<hostdev>"), "{err}");

    // virsh's own refusals.
    let err = stack.fails(Some(ADMIN_TOKEN), &["detach-disk", NAME, "vdz"]);
    assert!(
        err.contains("No disk found whose source path or target is vdz"),
        "{err}"
    );
    let err = stack.fails(
        Some(ADMIN_TOKEN),
        &["attach-disk", NAME, &more, "vdb", "--live"],
    );
    assert!(err.contains("target 'vdb'"), "{err}");

    // Every change is audited with the domain it was about.
    let audit = stack.audit_lines();
    assert!(
        audit
            .iter()
            .any(|l| l.contains("AttachDevice") && l.contains(NAME)),
        "{audit:#?}"
    );

    stack.ok(&["destroy", NAME]);
}
