//! Storage for real (issue #5), end to end: the dir driver behind the gateway, driven by
//! virtctl as a user would, on a pool directory in the test's temp dir.
//!
//! - A pool is defined, built and started; volumes are created, cloned with a backing
//!   file, converted, resized, wiped and deleted; bad names and sizes are refused; a viewer
//!   reads but changes nothing.
//! - A 1 GiB sparse image goes up and comes back down through the gateway: the same
//!   checksum, a small fraction of it on the wire (the gateway's socket reads are counted),
//!   and bounded memory in every process.
//! - Uploads cut off by the client and by a kill -9 of the storage service leave the volume
//!   marked incomplete, never whole; after a restart everything is there, and `--resume`
//!   finishes the upload.
//!
//! Deadlines only stop hangs; nothing asserts a duration.

use std::io::Write;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use virtplane_e2e::{ADMIN_TOKEN, Stack, VIEWER_TOKEN, binary};

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

fn sha256_file(path: &Path) -> String {
    let mut file = std::fs::File::open(path).unwrap();
    let mut hash = Sha256::new();
    std::io::copy(&mut file, &mut hash).unwrap();
    hex::encode(hash.finalize())
}

/// A field of /proc/PID/status or /proc/PID/io, as a number (kB for the memory fields).
fn proc_field(pid: i32, file: &str, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim_start_matches(':').split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/{file}"))
}

/// A stack with the dir driver and a started pool `images` in its temp dir.
fn stack_with_pool() -> Stack {
    let stack = Stack::start_with_storage("test", "dir");
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
    stack
}

/// `vol-info`'s "Label: value" lines.
fn vol_info(stack: &Stack, volume: &str) -> String {
    stack.ok(&["vol-info", "--pool", "images", volume])
}

#[test]
fn pools_and_volumes_through_the_gateway() {
    let stack = stack_with_pool();
    let list = stack.ok(&["pool-list", "--all"]);
    assert!(
        list.lines()
            .any(|l| l.contains("images") && l.contains("active")),
        "{list}"
    );
    let info = stack.ok(&["pool-info", "images"]);
    assert!(info.contains("State:          running"), "{info}");

    stack.ok(&[
        "vol-create-as",
        "images",
        "base.qcow2",
        "64M",
        "--format",
        "qcow2",
    ]);
    let file = stack.dir.path().join("images/base.qcow2");
    let qemu = Command::new("qemu-img")
        .args(["info", "--output=json"])
        .arg(&file)
        .output()
        .unwrap();
    let info: serde_json::Value = serde_json::from_slice(&qemu.stdout).unwrap();
    assert_eq!(info["format"], "qcow2");
    assert_eq!(info["virtual-size"], 64 * MIB);
    let shown = vol_info(&stack, "base.qcow2");
    assert!(shown.contains("Capacity:       64.00 MiB"), "{shown}");

    // An overlay on it, a raw conversion, a clone; vol-list shows them all.
    let overlay = format!(
        "<volume><name>overlay.qcow2</name><capacity unit='M'>64</capacity>\
         <target><format type='qcow2'/></target><backingStore><path>{}</path>\
         <format type='qcow2'/></backingStore></volume>",
        file.display()
    );
    let overlay_file = stack.file("overlay.xml", &overlay);
    stack.ok(&["vol-create", "images", &overlay_file]);
    let xml = stack.ok(&["vol-dumpxml", "--pool", "images", "overlay.qcow2"]);
    assert!(xml.contains("<backingStore>"), "{xml}");
    let raw = stack.file(
        "raw.xml",
        "<volume><name>flat.img</name><target><format type='raw'/></target></volume>",
    );
    stack.ok(&[
        "vol-create-from",
        "images",
        &raw,
        "--inputpool",
        "images",
        "base.qcow2",
    ]);
    stack.ok(&["vol-clone", "--pool", "images", "flat.img", "flat2.img"]);
    let volumes = stack.ok(&["vol-list", "images"]);
    for name in ["base.qcow2", "overlay.qcow2", "flat.img", "flat2.img"] {
        assert!(volumes.contains(name), "{name}: {volumes}");
    }

    // Resize: grow; a shrink needs --shrink.
    stack.ok(&["vol-resize", "--pool", "images", "flat2.img", "128M"]);
    assert!(vol_info(&stack, "flat2.img").contains("128.00 MiB"));
    let refused = stack.fails(
        Some(ADMIN_TOKEN),
        &["vol-resize", "--pool", "images", "flat2.img", "16M"],
    );
    assert!(refused.contains("shrink"), "{refused}");

    // The viewer reads, and changes nothing.
    let out = stack.virtctl(Some(VIEWER_TOKEN), &["vol-list", "images"]);
    assert!(out.status.success(), "{out:?}");
    let denied = stack.fails(
        Some(VIEWER_TOKEN),
        &["vol-delete", "--pool", "images", "flat2.img"],
    );
    assert!(denied.contains("storage_vol:delete"), "{denied}");

    // Bad input: names that leave the pool, absurd sizes, unknown formats, a file as target.
    for name in ["../escape.img", "a/b.img"] {
        let error = stack.fails(Some(ADMIN_TOKEN), &["vol-create-as", "images", name, "1M"]);
        assert!(error.contains("name"), "{name}: {error}");
    }
    assert!(!stack.dir.path().join("escape.img").exists());
    let error = stack.fails(
        Some(ADMIN_TOKEN),
        &["vol-create-as", "images", "big", "-5M"],
    );
    assert!(!error.is_empty());
    let error = stack.fails(
        Some(ADMIN_TOKEN),
        &["vol-create-as", "images", "huge.img", "9000000T"],
    );
    assert!(!error.is_empty());
    assert!(!stack.dir.path().join("images/huge.img").exists());
    let error = stack.fails(
        Some(ADMIN_TOKEN),
        &[
            "vol-create-as",
            "images",
            "odd.vmdk",
            "1M",
            "--format",
            "vmdk",
        ],
    );
    assert!(error.contains("vmdk"), "{error}");
    for name in ["../evil", "a/b"] {
        let error = stack.fails(
            Some(ADMIN_TOKEN),
            &[
                "pool-define-as",
                name,
                "dir",
                "--target",
                "/tmp/virtplane-never",
            ],
        );
        assert!(error.contains("name"), "{name}: {error}");
    }
    assert!(!stack.ok(&["pool-list", "--all"]).contains("evil"));
    let not_dir = stack.file("not-a-dir", "x");
    stack.ok(&["pool-define-as", "onfile", "dir", "--target", &not_dir]);
    let error = stack.fails(Some(ADMIN_TOKEN), &["pool-start", "onfile"]);
    assert!(error.contains("not a directory"), "{error}");

    // Wipe and delete.
    stack.ok(&["vol-wipe", "--pool", "images", "flat.img"]);
    stack.ok(&["vol-delete", "--pool", "images", "flat.img"]);
    assert!(!stack.dir.path().join("images/flat.img").exists());
}

#[test]
fn a_sparse_gigabyte_goes_up_and_down_in_little_space_and_memory() {
    let stack = stack_with_pool();
    let source = stack.dir.path().join("source.img");
    {
        let file = std::fs::File::create(&source).unwrap();
        file.set_len(GIB).unwrap();
        for (i, offset) in [0, 300 * MIB, GIB - 4 * MIB].into_iter().enumerate() {
            let bytes: Vec<u8> = (0..4 * MIB).map(|b| (b as u8) ^ (i as u8 * 37)).collect();
            file.write_all_at(&bytes, offset).unwrap();
        }
    }
    let checksum = sha256_file(&source);
    stack.ok(&[
        "vol-create-as",
        "images",
        "disk.img",
        "1G",
        "--allocation",
        "0",
        "--format",
        "raw",
    ]);
    let gateway = stack.gateway_pid().unwrap();
    let read_before = proc_field(gateway, "io", "rchar");
    stack.ok(&[
        "vol-upload",
        "--pool",
        "images",
        "disk.img",
        &source.display().to_string(),
        "--sparse",
    ]);
    let uploaded = proc_field(gateway, "io", "rchar") - read_before;
    assert!(
        uploaded < 64 * MIB,
        "{uploaded} bytes crossed the gateway for 12 MiB of data"
    );
    let volume = stack.dir.path().join("images/disk.img");
    assert_eq!(sha256_file(&volume), checksum);
    assert!(std::fs::metadata(&volume).unwrap().blocks() * 512 < 64 * MIB);

    let copy = stack.dir.path().join("copy.img");
    let read_before = proc_field(gateway, "io", "rchar");
    stack.ok(&[
        "vol-download",
        "--pool",
        "images",
        "disk.img",
        &copy.display().to_string(),
        "--sparse",
    ]);
    let downloaded = proc_field(gateway, "io", "rchar") - read_before;
    assert!(
        downloaded < 64 * MIB,
        "{downloaded} bytes crossed the gateway"
    );
    assert_eq!(sha256_file(&copy), checksum);
    assert!(
        std::fs::metadata(&copy).unwrap().blocks() * 512 < 64 * MIB,
        "the copy is sparse"
    );

    // Memory stays bounded in every process that carried the gigabyte.
    for (name, pid) in [
        ("gateway", gateway),
        ("storaged", stack.storaged_pid().unwrap()),
    ] {
        let peak_kib = proc_field(pid, "status", "VmHWM");
        assert!(peak_kib < 200 * 1024, "{name} peaked at {peak_kib} KiB");
    }
    let usage =
        nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).unwrap();
    let peak_kib = usage.max_rss();
    assert!(
        peak_kib < 200 * 1024,
        "a child (virtctl) peaked at {peak_kib} KiB"
    );
}

/// Starts `vol-upload` of `file` (not waiting), as admin.
fn upload_in_background(stack: &Stack, file: &Path, extra: &[&str]) -> std::process::Child {
    Command::new(binary("virtctl"))
        .env("VIRTCTL_CONFIG", stack.dir.path().join("none.yaml"))
        .arg("--server")
        .arg(format!("unix:{}", stack.gateway_sock.display()))
        .args([
            "--token",
            ADMIN_TOKEN,
            "vol-upload",
            "--pool",
            "images",
            "data.img",
        ])
        .arg(file)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits (bounded) until `vol-info` shows the upload past its first commit.
fn wait_for_progress(stack: &Stack) {
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        let info = stack.virtctl(
            Some(ADMIN_TOKEN),
            &["vol-info", "--pool", "images", "data.img", "-o", "json"],
        );
        if info.status.success() {
            let v: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap_or_default();
            if v["upload_offset"].as_u64().unwrap_or(0) > 0 {
                return;
            }
        }
        assert!(
            Instant::now() < until,
            "the upload made no durable progress (hang guard)"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn cut_off_uploads_are_marked_and_resume() {
    let mut stack = stack_with_pool();
    // Incompressible data, so the upload takes a while and commits on the way.
    let source = stack.dir.path().join("data.src");
    {
        let mut file = std::fs::File::create(&source).unwrap();
        let mut state = 0x9e3779b97f4a7c15u64;
        let mut block = vec![0u8; MIB as usize];
        for _ in 0..320 {
            for byte in block.iter_mut() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *byte = state as u8;
            }
            file.write_all(&block).unwrap();
        }
    }
    let checksum = sha256_file(&source);
    stack.ok(&[
        "vol-create-as",
        "images",
        "data.img",
        "320M",
        "--allocation",
        "0",
    ]);

    // The client goes away mid-way.
    let mut client = upload_in_background(&stack, &source, &[]);
    wait_for_progress(&stack);
    client.kill().unwrap();
    client.wait().unwrap();
    let info = vol_info(&stack, "data.img");
    assert!(info.contains("did not finish"), "{info}");

    // The storage service is killed mid-way; after its restart all is there, still marked.
    let mut client = upload_in_background(&stack, &source, &["--resume"]);
    wait_for_progress(&stack);
    stack.kill_storaged();
    let status = client.wait().unwrap();
    assert!(!status.success(), "the upload cannot have finished");
    stack.start_storaged();
    let pools = stack.ok(&["pool-list", "--all"]);
    assert!(pools.contains("images"), "{pools}");
    let info = vol_info(&stack, "data.img");
    assert!(info.contains("did not finish"), "{info}");

    // --resume finishes it; the volume is then whole and unmarked.
    stack.ok(&[
        "vol-upload",
        "--pool",
        "images",
        "data.img",
        &source.display().to_string(),
        "--resume",
    ]);
    let info = vol_info(&stack, "data.img");
    assert!(!info.contains("did not finish"), "{info}");
    assert_eq!(
        sha256_file(&stack.dir.path().join("images/data.img")),
        checksum
    );
}
