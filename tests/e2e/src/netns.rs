//! A network namespace made for one test, so that bridges, taps and addresses never touch the
//! host's own interfaces, routes or firewall: `ip netns add vp-test-<pid>-<nanos>`, deleted
//! when dropped — also when the test fails — after killing what still runs in it. Only the
//! test's own processes can be there: the namespace is new and its name unique.

use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

pub struct NetNs {
    name: String,
}

impl NetNs {
    /// Makes the namespace and brings its loopback up.
    pub fn create() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let name = format!("vp-test-{}-{nanos:x}", std::process::id());
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .expect("run ip (install iproute2)");
        assert!(
            out.status.success(),
            "ip netns add {name} (needs root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ns = Self { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `COMMAND ARGS…` run inside the namespace.
    pub fn exec(&self, command: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(command)
            .output()
            .expect("run ip netns exec")
    }

    /// `ip ARGS…` inside the namespace; asserts success and returns stdout.
    pub fn ip(&self, args: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["-n", &self.name])
            .args(args)
            .output()
            .expect("run ip");
        assert!(
            out.status.success(),
            "ip -n {} {args:?}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Every device in the namespace, as `ip -j -d link show` describes it.
    pub fn links(&self) -> Vec<Value> {
        serde_json::from_str(&self.ip(&["-j", "-d", "link", "show"])).expect("ip -j output")
    }

    /// The device `name`, if it exists.
    pub fn link(&self, name: &str) -> Option<Value> {
        self.links().into_iter().find(|l| l["ifname"] == name)
    }

    /// The names of the taps (and tuns) in the namespace.
    pub fn taps(&self) -> Vec<String> {
        self.links()
            .iter()
            .filter(|l| l["linkinfo"]["info_kind"] == "tun")
            .filter_map(|l| l["ifname"].as_str().map(str::to_owned))
            .collect()
    }

    fn pids(&self) -> Vec<i32> {
        Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .filter_map(|l| l.trim().parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for NetNs {
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
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}
