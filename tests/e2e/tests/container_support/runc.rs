//! Containers from the image, run by runc the way a container runtime runs a pod's
//! container: the image's own OCI config (user, env, working dir, as `umoci unpack` renders
//! it), a read-only root filesystem, the test's host directories bind-mounted in.
//!
//! Every container has its own runc state dir (`--root`) and a unique id, and is killed and
//! deleted by that id when its guard is dropped, also when the test fails.

use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use super::image::Image;
use super::{Ran, run};

const UMOCI_TIMEOUT: Duration = Duration::from_secs(300);
const RUNC_TIMEOUT: Duration = Duration::from_secs(30);

fn tool(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    });
    found.unwrap_or_else(|| panic!("{name} is not on PATH: apt-get install {name}"))
}

/// The image unpacked into a runtime bundle of its own (a temporary dir): its rootfs and the
/// runtime config umoci derived from the image config.
pub struct Unpacked {
    dir: tempfile::TempDir,
    template: Value,
}

impl Unpacked {
    pub fn new(image: &Image) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("vp-img-")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let bundle = dir.path().join("bundle");
        let mut unpack = Command::new(tool("umoci"));
        unpack
            .arg("unpack")
            .arg("--image")
            .arg(image.reference())
            .arg(&bundle);
        run(unpack, UMOCI_TIMEOUT).ok("umoci unpack");
        let config_path = bundle.join("config.json");
        let template = serde_json::from_str(
            &std::fs::read_to_string(&config_path).expect("umoci wrote config.json"),
        )
        .expect("config.json is JSON");
        Self { dir, template }
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("bundle/rootfs")
    }

    /// The runtime config umoci derived from the image config.
    pub fn template(&self) -> &Value {
        &self.template
    }

    /// A container running `args` (the first found on the image's PATH, as a pod's
    /// `args` with no entrypoint are).
    pub fn container(&self, args: &[&str]) -> Spec<'_> {
        let mut config = self.template.clone();
        config["process"]["terminal"] = json!(false);
        config["process"]["args"] = json!(args);
        config["root"] = json!({ "path": self.rootfs(), "readonly": true });
        config["mounts"]
            .as_array_mut()
            .expect("config.json has mounts")
            .push(json!({
                "destination": "/tmp",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "nodev", "mode=1777"],
            }));
        Spec {
            config,
            _rootfs: PhantomData,
        }
    }
}

/// A container's config, before it runs.
pub struct Spec<'a> {
    config: Value,
    _rootfs: PhantomData<&'a Unpacked>,
}

impl<'a> Spec<'a> {
    /// Bind-mounts the host path `source` at `destination`.
    pub fn bind(mut self, source: &Path, destination: &str, writable: bool) -> Self {
        let mode = if writable { "rw" } else { "ro" };
        self.config["mounts"]
            .as_array_mut()
            .expect("config.json has mounts")
            .push(json!({
                "destination": destination,
                "type": "bind",
                "source": source,
                "options": ["rbind", mode, "nosuid", "nodev"],
            }));
        self
    }

    fn create(self) -> Container<'a> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let id = format!(
            "vp-img-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let dir = tempfile::Builder::new()
            .prefix("vp-ctr-")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let mut config = self.config;
        config["hostname"] = json!(id);
        std::fs::write(
            dir.path().join("config.json"),
            serde_json::to_vec_pretty(&config).expect("config serialises"),
        )
        .expect("write config.json");
        Container {
            id,
            dir,
            _rootfs: PhantomData,
        }
    }

    /// Starts the container detached; its output goes to [`Container::log`].
    pub fn start(self) -> Container<'a> {
        let container = self.create();
        let log = std::fs::File::create(container.log_path()).expect("container log");
        let mut command = container.runc();
        command
            .args(["run", "--detach", "--bundle"])
            .arg(container.dir.path())
            .arg(&container.id)
            .stdout(Stdio::from(log.try_clone().expect("dup log")))
            .stderr(Stdio::from(log));
        // Not `run()`: the container inherits stdout/stderr, which must be the log file.
        let mut child = command.spawn().expect("spawn runc run --detach");
        let deadline = std::time::Instant::now() + RUNC_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for runc") {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("runc run --detach {} did not return", container.id);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(
            status.success(),
            "runc run --detach {} failed: {}",
            container.id,
            container.log()
        );
        container
    }

    /// Runs the container in the foreground to its end (within `timeout`) and deletes it.
    pub fn run_to_end(self, timeout: Duration) -> Ran {
        let container = self.create();
        let mut command = container.runc();
        command
            .args(["run", "--bundle"])
            .arg(container.dir.path())
            .arg(&container.id);
        run(command, timeout)
    }
}

/// A created container; killed and deleted when dropped.
pub struct Container<'a> {
    id: String,
    /// The bundle (config.json), runc's state root and the log.
    dir: tempfile::TempDir,
    _rootfs: PhantomData<&'a Unpacked>,
}

impl Container<'_> {
    fn runc(&self) -> Command {
        let mut command = Command::new(tool("runc"));
        command.arg("--root").arg(self.dir.path().join("state"));
        command
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("container.log")
    }

    /// What the container wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// `runc state`: status (`running`, `stopped`, ...) and the init process's host pid.
    pub fn state(&self) -> Value {
        let mut command = self.runc();
        command.arg("state").arg(&self.id);
        let stdout = run(command, RUNC_TIMEOUT).ok("runc state");
        serde_json::from_str(&stdout).expect("runc state prints JSON")
    }

    pub fn is_running(&self) -> bool {
        self.state()["status"] == "running"
    }

    /// The host pid of the container's first process (the daemon).
    pub fn init_pid(&self) -> i32 {
        let state = self.state();
        let pid = state["pid"].as_i64().expect("runc state has a pid");
        i32::try_from(pid).expect("pid fits i32")
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        // Errors are expected here (a container that already ended or never started); what
        // matters is that none stays behind.
        let mut kill = self.runc();
        kill.args(["kill", &self.id, "KILL"]);
        quietly_within(kill, RUNC_TIMEOUT);
        let mut delete = self.runc();
        delete.args(["delete", "--force", &self.id]);
        if !quietly_within(delete, RUNC_TIMEOUT)
            && self.dir.path().join("state").join(&self.id).exists()
        {
            eprintln!(
                "runc delete --force {} failed: the container may be left behind",
                self.id
            );
        }
    }
}

/// Runs `command` without output, killed after `timeout`; whether it succeeded. For cleanup,
/// where a panic would abort an unwinding test.
fn quietly_within(mut command: Command, timeout: Duration) -> bool {
    let Ok(mut child) = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        return false;
    };
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}
