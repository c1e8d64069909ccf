//! The test guest (`tests/guest/build.sh`) builds, boots under TCG and answers the real
//! qemu-guest-agent over its virtio-serial channel.
//!
//! The build goes to the workspace's `target/guest` and is reused when already there (the script
//! is idempotent and caches its .debs). A failed build fails this test with the script's output.
//! QEMU runs as a child process killed in a Drop guard; every wait has a deadline that only
//! stops a hang — nothing here asserts a duration.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

const QEMU: &str = "/usr/bin/qemu-system-x86_64";

/// Hang guard for the boot (kernel + initramfs under TCG on a loaded 2-core machine).
const BOOT_DEADLINE: Duration = Duration::from_secs(120);
/// Hang guard for the whole agent conversation.
const AGENT_DEADLINE: Duration = Duration::from_secs(60);
/// How long one `guest-sync` waits for its reply before another is sent.
const SYNC_RETRY: Duration = Duration::from_secs(3);

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// Runs `tests/guest/build.sh` into `target/guest`; panics with its output when it fails.
fn build_guest() -> PathBuf {
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
    for f in ["vmlinuz", "initrd.img"] {
        assert!(
            out.join(f).is_file(),
            "build.sh succeeded but {f} is missing in {}",
            out.display()
        );
    }
    out
}

/// The QEMU child, killed (by its pid) and reaped when dropped.
struct Qemu(Child);

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serial(dir: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(dir.join("serial.log")).unwrap_or_default()).into_owned()
}

/// Reads JSON lines until one satisfies `want`, skipping others (late sync replies, noise).
async fn read_until(
    reader: &mut BufReader<OwnedReadHalf>,
    deadline: Instant,
    mut want: impl FnMut(&Value) -> bool,
) -> Option<Value> {
    let mut line = Vec::new();
    loop {
        line.clear();
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, reader.read_until(b'\n', &mut line)).await {
            Err(_) => return None,
            Ok(Err(e)) => panic!("reading from the guest agent socket: {e}"),
            Ok(Ok(0)) => panic!("the guest agent socket was closed by QEMU"),
            Ok(Ok(_)) => {}
        }
        // qemu-ga may emit a 0xff sentinel or partial output around a resync: skip non-JSON.
        let text: Vec<u8> = line.iter().copied().filter(|&b| b != 0xff).collect();
        if let Ok(v) = serde_json::from_slice::<Value>(&text)
            && want(&v)
        {
            return Some(v);
        }
    }
}

async fn send(writer: &mut OwnedWriteHalf, json: &str) {
    writer
        .write_all(format!("{json}\n").as_bytes())
        .await
        .expect("writing to the guest agent socket");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_guest_boots_and_agent_answers() {
    assert!(
        Path::new(QEMU).exists(),
        "{QEMU} is missing: install qemu-system-x86 (Debian 12 ships QEMU 7.2)"
    );
    let guest = tokio::task::spawn_blocking(build_guest)
        .await
        .expect("build task");
    // The decompressed kernel boots faster under TCG; vmlinuz works too.
    let kernel = if guest.join("vmlinux").is_file() {
        guest.join("vmlinux")
    } else {
        guest.join("vmlinuz")
    };

    // Declared before the QEMU guard so that it is removed after QEMU is gone.
    let tmp = tempfile::Builder::new()
        .prefix("vp-guest-")
        .tempdir_in("/tmp")
        .expect("temp dir");
    let dir = tmp.path().to_path_buf();
    let sock = dir.join("qga.sock");
    let qemu = Command::new(QEMU)
        .args([
            "-accel",
            "tcg",
            "-m",
            "256",
            "-nodefaults",
            "-no-user-config",
        ])
        .args(["-display", "none"])
        .arg("-kernel")
        .arg(&kernel)
        .arg("-initrd")
        .arg(guest.join("initrd.img"))
        .args(["-append", "console=ttyS0"])
        .arg("-serial")
        .arg(format!("file:{}", dir.join("serial.log").display()))
        .args(["-device", "virtio-serial"])
        .arg("-chardev")
        .arg(format!(
            "socket,id=qga,path={},server=on,wait=off",
            sock.display()
        ))
        .args([
            "-device",
            "virtserialport,chardev=qga,name=org.qemu.guest_agent.0",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("qemu.stderr")).expect("stderr file"))
        .spawn()
        .expect("spawning qemu-system-x86_64");
    let mut qemu = Qemu(qemu);

    // Boot: poll the serial log for the marker the guest's /init prints.
    let boot_deadline = Instant::now() + BOOT_DEADLINE;
    loop {
        if serial(&dir).contains("virtplane-guest: ready") {
            break;
        }
        if let Ok(Some(status)) = qemu.0.try_wait() {
            panic!(
                "QEMU exited ({status}) before the guest was ready\n--- qemu stderr ---\n{}\n--- serial ---\n{}",
                std::fs::read_to_string(dir.join("qemu.stderr")).unwrap_or_default(),
                serial(&dir)
            );
        }
        assert!(
            Instant::now() < boot_deadline,
            "no 'virtplane-guest: ready' on the serial console within {BOOT_DEADLINE:?} (hang guard)\n--- serial ---\n{}",
            serial(&dir)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Agent: sync (qemu-ga may not have opened its port yet; resend until answered), then ping
    // and info.
    let agent_deadline = Instant::now() + AGENT_DEADLINE;
    let stream = UnixStream::connect(&sock)
        .await
        .expect("connecting to the agent socket");
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    let mut sent_ids = Vec::new();
    let mut id: u64 = 12345;
    loop {
        assert!(
            Instant::now() < agent_deadline,
            "no guest-sync reply from qemu-ga within {AGENT_DEADLINE:?} (hang guard)\n--- serial ---\n{}",
            serial(&dir)
        );
        send(
            &mut wr,
            &format!(r#"{{"execute":"guest-sync","arguments":{{"id":{id}}}}}"#),
        )
        .await;
        sent_ids.push(id);
        let until = (Instant::now() + SYNC_RETRY).min(agent_deadline);
        let got = read_until(&mut rd, until, |v| v["return"].as_u64() == Some(id)).await;
        if got.is_some() {
            break;
        }
        id += 1;
    }

    // Replies to earlier, unanswered syncs may still arrive: read_until skips them.
    let is_sync_reply = |v: &Value| v["return"].as_u64().is_some_and(|n| sent_ids.contains(&n));

    send(&mut wr, r#"{"execute":"guest-ping"}"#).await;
    let ping = read_until(&mut rd, agent_deadline, |v| !is_sync_reply(v))
        .await
        .expect("no guest-ping reply (hang guard)");
    assert_eq!(ping, serde_json::json!({"return": {}}), "guest-ping reply");

    send(&mut wr, r#"{"execute":"guest-info"}"#).await;
    let info = read_until(&mut rd, agent_deadline, |v| !is_sync_reply(v))
        .await
        .expect("no guest-info reply (hang guard)");
    let ret = info
        .get("return")
        .unwrap_or_else(|| panic!("guest-info failed: {info}"));
    let version = ret["version"].as_str().unwrap_or_default();
    assert!(!version.is_empty(), "guest-info has no version: {info}");
    let commands = ret["supported_commands"]
        .as_array()
        .unwrap_or_else(|| panic!("guest-info has no supported_commands: {info}"));
    let exec = commands
        .iter()
        .find(|c| c["name"] == "guest-exec")
        .unwrap_or_else(|| panic!("guest-exec is not among qemu-ga {version}'s commands: {info}"));
    assert_eq!(
        exec["enabled"],
        Value::Bool(true),
        "guest-exec is disabled: {exec}"
    );

    drop(wr);
    drop(rd);
    drop(qemu);
    drop(tmp);
}
