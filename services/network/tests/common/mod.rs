//! What the host tests share: a network namespace of the test's own, and `ip`.
//!
//! Each test runs on a thread of its own that first moves into a new, empty network
//! namespace (`unshare(CLONE_NEWNET)`), then runs a tokio runtime on that thread: the
//! netlink sockets it opens and the processes it spawns (`nft`, `dnsmasq`, `ip`) are in that
//! namespace, never in the host's. When the test ends — also when it fails — a guard kills
//! every process still in the namespace (dnsmasq daemonizes, so it is not our child), and
//! the kernel then tears the namespace down with its bridges, veths and nftables tables.
//! The tests need root (CAP_SYS_ADMIN, CAP_NET_ADMIN); without it they say so on stderr and
//! pass.

#![allow(dead_code)]

use std::future::Future;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod dhcp;

/// Runs `test` in a network namespace of its own (module docs); false when skipped.
pub fn in_own_netns<F, Fut>(test: F) -> bool
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let thread = std::thread::spawn(move || {
        if let Err(error) = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET) {
            eprintln!("SKIPPED: cannot make a network namespace (needs root): {error}");
            return false;
        }
        let _reaper = KillNamespaceOnDrop::new();
        ip(&["link", "set", "lo", "up"]);
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(test());
        true
    });
    match thread.join() {
        Ok(ran) => ran,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// The identity of the calling thread's network namespace (`net:[INODE]`).
pub fn current_netns() -> String {
    netns_of("/proc/thread-self/ns/net").expect("read /proc/thread-self/ns/net")
}

fn netns_of(link: impl AsRef<Path>) -> Option<String> {
    std::fs::read_link(link)
        .ok()
        .map(|target| target.to_string_lossy().into_owned())
}

/// The network namespace of process `pid`.
pub fn netns_of_pid(pid: u32) -> Option<String> {
    netns_of(format!("/proc/{pid}/ns/net"))
}

/// Kills every process in the test's namespace when dropped. Only the test's own processes
/// can be there: the namespace is new, and nobody else knows it.
struct KillNamespaceOnDrop {
    netns: String,
}

impl KillNamespaceOnDrop {
    fn new() -> Self {
        Self {
            netns: current_netns(),
        }
    }

    fn pids(&self) -> Vec<i32> {
        let own = std::process::id() as i32;
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| *pid != own)
            .filter(|pid| netns_of(format!("/proc/{pid}/ns/net")).as_deref() == Some(&self.netns))
            .collect()
    }
}

impl Drop for KillNamespaceOnDrop {
    fn drop(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let pids = self.pids();
            if pids.is_empty() || Instant::now() > deadline {
                break;
            }
            for pid in pids {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `ip ARGS…` in the test's namespace; its stdout. Panics when it fails.
pub fn ip(args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("run ip (install iproute2)");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `ip -j -d link show dev NAME`, or `None` when there is no such device.
pub fn link(name: &str) -> Option<Value> {
    let out = Command::new("ip")
        .args(["-j", "-d", "link", "show", "dev", name])
        .output()
        .expect("run ip");
    if !out.status.success() {
        return None;
    }
    let mut links: Vec<Value> = serde_json::from_slice(&out.stdout).expect("ip -j output");
    links.pop()
}

/// The addresses of `name` as `ip -j addr` shows them: `["192.168.100.1/24", …]`.
pub fn addresses(name: &str) -> Vec<String> {
    let out: Vec<Value> =
        serde_json::from_str(&ip(&["-j", "addr", "show", "dev", name])).expect("ip -j output");
    out.iter()
        .flat_map(|link| link["addr_info"].as_array().cloned().unwrap_or_default())
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
        .collect()
}

pub fn has_flag(link: &Value, flag: &str) -> bool {
    link["flags"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == flag))
}

/// Whether a program is installed; the message to install it otherwise.
pub fn require(program: &str, package: &str) {
    let found = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        .iter()
        .any(|dir| Path::new(dir).join(program).exists());
    assert!(
        found,
        "{program} is needed by this test: apt-get install {package}"
    );
}
