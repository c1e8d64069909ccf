//! The test guest (tests/guest: a Debian kernel, a busybox initramfs and qemu-guest-agent,
//! booted under TCG) as the end-to-end tests use it: built once into target/guest, and
//! driven through `virtctl console`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{ADMIN_TOKEN, Stack, binary};

/// Builds (or reuses) the test guest in target/guest; its directory.
pub fn build_guest() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root");
    let out = root.join("target/guest");
    let output = Command::new("bash")
        .arg(root.join("tests/guest/build.sh"))
        .arg(&out)
        .current_dir(&root)
        .stdin(Stdio::null())
        .output()
        .expect("run tests/guest/build.sh");
    assert!(
        output.status.success(),
        "tests/guest/build.sh failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    out
}

/// The guest's kernel: the uncompressed one when the build extracted it (faster to load
/// under TCG), else the compressed one.
pub fn kernel(guest: &Path) -> PathBuf {
    if guest.join("vmlinux").is_file() {
        guest.join("vmlinux")
    } else {
        guest.join("vmlinuz")
    }
}

/// `virtctl console NAME` as a writer: what it printed so far. Killed by pid when dropped.
pub struct Console {
    child: Child,
    stdout: Arc<Mutex<Vec<u8>>>,
}

impl Console {
    pub fn open(stack: &Stack, name: &str) -> Self {
        let mut child = Command::new(binary("virtctl"))
            .env("VIRTCTL_CONFIG", stack.dir.path().join("none.yaml"))
            .arg("--server")
            .arg(format!("unix:{}", stack.gateway_sock.display()))
            .args(["--token", ADMIN_TOKEN, "console", name, "--force"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn virtctl console");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&stdout);
        let mut pipe = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        });
        Self { child, stdout }
    }

    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned()
    }

    pub fn wait_for(&self, needle: &str, deadline: Duration) {
        let until = Instant::now() + deadline;
        while !self.out().contains(needle) {
            assert!(
                Instant::now() < until,
                "no {needle:?} on the console (hang guard)\n{}",
                self.out()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn type_text(&mut self, text: &str) {
        let stdin = self.child.stdin.as_mut().expect("a writer has stdin");
        stdin.write_all(text.as_bytes()).expect("type into virtctl");
        stdin.flush().expect("flush");
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
