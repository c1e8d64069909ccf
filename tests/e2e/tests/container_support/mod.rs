//! Helpers of the container image test: the image (built once per test run by
//! deploy/container/build.sh, or the one `$VIRTPLANE_CONTAINER_IMAGE` names), its OCI config,
//! and containers run from it by runc, each removed by id when dropped.

pub mod image;
pub mod runc;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Output of a finished command.
pub struct Ran {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// Fails the test unless the command succeeded; returns its stdout.
    pub fn ok(self, what: &str) -> String {
        assert!(
            self.success,
            "{what} failed:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self.stdout
    }
}

/// Runs `command` to its end, killed (and the test failed) after `timeout`.
pub fn run(mut command: Command, timeout: Duration) -> Ran {
    let what = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let readers = [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    ]
    .map(|pipe| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for a child") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let [stdout, stderr] = readers.map(|r| r.join().expect("pipe reader"));
    Ran {
        success: status.success(),
        stdout,
        stderr,
    }
}
