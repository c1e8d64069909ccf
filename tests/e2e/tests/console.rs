//! `virtctl console` through the gateway to a real guest (qemu driver, TCG): a read-only
//! viewer sees the boot, a writer types a command and both see its output, a second viewer
//! attaching later sees the same output from the scrollback, a second writer is refused and
//! `--force` takes over, Ctrl-] detaches, the viewer role may not open consoles, and the
//! console ends for its viewers when the domain is destroyed.
//!
//! virtctl runs without a terminal here, so it relays bytes as they are (stdout: the console,
//! stderr: the banner and the closing message). Deadlines only stop hangs.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use virtplane_e2e::guest::build_guest;
use virtplane_e2e::{ADMIN_TOKEN, OPERATOR_TOKEN, Stack, VIEWER_TOKEN, binary};

/// Hang guard for the boot (kernel + initramfs under TCG on a loaded 2-core machine).
const BOOT_DEADLINE: Duration = Duration::from_secs(120);
const HANG_GUARD: Duration = Duration::from_secs(30);

fn guest_xml(name: &str, guest: &Path) -> String {
    let kernel = if guest.join("vmlinux").is_file() {
        guest.join("vmlinux")
    } else {
        guest.join("vmlinuz")
    };
    format!(
        r#"<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>128</memory>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{kernel}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>console=ttyS0</cmdline>
  </os>
  <features><acpi/></features>
  <devices>
    <serial type='pty'><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <memballoon model='none'/>
  </devices>
</domain>"#,
        kernel = kernel.display(),
        initrd = guest.join("initrd.img").display(),
    )
}

/// A `virtctl console` process: what it printed so far on stdout and stderr. Killed (by pid)
/// when dropped.
struct Console {
    child: Child,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Console {
    fn open(stack: &Stack, token: &str, args: &[&str], writer: bool) -> Self {
        let mut child = Command::new(binary("virtctl"))
            .env("VIRTCTL_CONFIG", stack.dir.path().join("none.yaml"))
            .arg("--server")
            .arg(format!("unix:{}", stack.gateway_sock.display()))
            .args(["--token", token, "console"])
            .args(args)
            .stdin(if writer {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn virtctl console");
        let stdout = collect(child.stdout.take().expect("stdout"));
        let stderr = collect(child.stderr.take().expect("stderr"));
        Self {
            child,
            stdout,
            stderr,
        }
    }

    fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned()
    }

    fn err(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    fn wait_for(&self, needle: &str, deadline: Duration) {
        let until = Instant::now() + deadline;
        while !self.out().contains(needle) {
            assert!(
                Instant::now() < until,
                "no {needle:?} on the console (hang guard)\n--- stdout ---\n{}\n--- stderr ---\n{}",
                self.out(),
                self.err()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn type_text(&mut self, text: &[u8]) {
        let stdin = self.child.stdin.as_mut().expect("a writer has stdin");
        stdin.write_all(text).expect("type into virtctl");
        stdin.flush().expect("flush");
    }

    /// Waits for virtctl to exit; its exit code.
    fn exit_code(&mut self) -> i32 {
        let until = Instant::now() + HANG_GUARD;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < until,
                "virtctl console did not exit (hang guard)\n--- stderr ---\n{}",
                self.err()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect(mut pipe: impl Read + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&buffer);
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut chunk) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    buffer
}

#[test]
fn console_through_the_gateway() {
    let guest = build_guest();
    let stack = Stack::start_with("qemu");
    let name = "e2e-console";
    let xml = stack.file("console.xml", &guest_xml(name, &guest));
    stack.ok(&["define", &xml]);
    stack.ok(&["start", name]);

    // A read-only viewer sees the guest boot.
    let viewer = Console::open(&stack, OPERATOR_TOKEN, &[name, "--read-only"], false);
    viewer.wait_for("Linux version", BOOT_DEADLINE);
    viewer.wait_for("virtplane-guest: ready", BOOT_DEADLINE);
    assert!(
        viewer.err().contains(&format!(
            "Connected to domain '{name}'\nEscape character is ^] (Ctrl + ])"
        )),
        "{}",
        viewer.err()
    );

    // The writer types a command; its output (not its echo) reaches both.
    let mut writer = Console::open(&stack, ADMIN_TOKEN, &[name], true);
    writer.wait_for("virtplane-guest: ready", HANG_GUARD);
    writer.type_text(b"\recho hello-$((6*7))-e2e\r");
    writer.wait_for("hello-42-e2e", HANG_GUARD);
    viewer.wait_for("hello-42-e2e", HANG_GUARD);

    // A second viewer attaching now sees the same output, from the scrollback.
    let second = Console::open(&stack, ADMIN_TOKEN, &[name, "--read-only"], false);
    second.wait_for("Linux version", HANG_GUARD);
    second.wait_for("hello-42-e2e", HANG_GUARD);

    // One writer at a time.
    let busy = stack.fails(Some(ADMIN_TOKEN), &["console", name]);
    assert!(
        busy.contains(&format!(
            "error: console of '{name}' is in use by another writer; use --force"
        )),
        "{busy}"
    );
    // The viewer role may not open consoles, read-only or not (libvirt: domain:open_device).
    let denied = stack.fails(Some(VIEWER_TOKEN), &["console", name, "--read-only"]);
    assert!(denied.contains("lacks 'domain:open_device'"), "{denied}");

    // --force takes over: the old writer is told and exits 1.
    let mut taker = Console::open(&stack, ADMIN_TOKEN, &[name, "--force"], true);
    assert_eq!(writer.exit_code(), 1, "{}", writer.err());
    assert!(
        writer.err().contains(&format!(
            "console of '{name}' was taken over by another session"
        )),
        "{}",
        writer.err()
    );
    taker.wait_for("hello-42-e2e", HANG_GUARD);
    taker.type_text(b"echo taker-$((2+3))\r");
    taker.wait_for("taker-5", HANG_GUARD);
    second.wait_for("taker-5", HANG_GUARD);
    // Ctrl-] detaches cleanly.
    taker.type_text(&[0x1d]);
    assert_eq!(taker.exit_code(), 0, "{}", taker.err());

    // The audit log names the domain of each console session.
    let audited = stack
        .audit_lines()
        .iter()
        .filter(|l| {
            l.contains("ConsoleService/Attach") && l.contains(&format!("\"object\":\"{name}\""))
        })
        .count();
    assert!(audited >= 2, "{:#?}", stack.audit_lines());

    // The domain goes: every viewer is told and exits 0.
    stack.ok(&["destroy", name]);
    for mut client in [viewer, second] {
        assert_eq!(client.exit_code(), 0, "{}", client.err());
        assert!(
            client
                .err()
                .contains(&format!("console of '{name}' closed: the domain stopped")),
            "{}",
            client.err()
        );
    }
    stack.ok(&["undefine", name]);
}
