//! A DHCP client as a guest would be: busybox `udhcpc` in a second, fresh namespace joined
//! to a network's bridge by a veth pair.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::{current_netns, ip, netns_of_pid};

/// Guards waits against hangs; not a speed assertion.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// What the DHCP client saw.
#[derive(Debug)]
pub struct ClientRun {
    pub lease: Option<String>,
    pub output: String,
}

/// Runs busybox `udhcpc` for `mac` in a fresh namespace joined to the bridge by a veth
/// pair, then, when `lookup` is given, asks the network's DNS for that name. The client's
/// namespace (and the veth pair with it) goes when the client exits.
pub async fn dhcp_client(
    script_dir: &Path,
    bridge: &str,
    server: &str,
    mac: &str,
    lookup: Option<&str>,
) -> ClientRun {
    let script = script_dir.join("udhcpc.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\ncase \"$1\" in\n  bound|renew)\n    \
         ip addr add \"$ip/$mask\" dev \"$interface\"\n    \
         echo \"LEASE $ip\"\n    ;;\nesac\nexit 0\n",
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    ip(&[
        "link", "add", "vp-h", "type", "veth", "peer", "name", "vp-g", "address", mac,
    ]);
    ip(&["link", "set", "vp-h", "master", bridge, "up"]);
    let lookup_line = lookup
        .map(|name| format!("busybox nslookup {name} {server}\n"))
        .unwrap_or_default();
    let client_script = format!(
        "i=0\nwhile ! ip link show vp-g >/dev/null 2>&1; do\n  i=$((i+1)); [ $i -gt 400 ] && \
         exit 90; sleep 0.05\ndone\nip link set lo up\nip link set vp-g up\n\
         busybox udhcpc -i vp-g -f -q -n -t 10 -T 1 -s {}\n{lookup_line}",
        script.display()
    );
    let child = tokio::process::Command::new("unshare")
        .args(["--net", "--", "busybox", "sh", "-c", &client_script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run unshare");
    let pid = child.id().unwrap();
    // Move the guest's end once the client is in its own namespace.
    let ours = current_netns();
    let deadline = Instant::now() + HANG_GUARD;
    while netns_of_pid(pid).is_some_and(|ns| ns == ours) {
        assert!(
            Instant::now() < deadline,
            "the client never left our namespace"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    ip(&["link", "set", "vp-g", "netns", &pid.to_string()]);
    let out = tokio::time::timeout(HANG_GUARD, child.wait_with_output())
        .await
        .expect("the DHCP client finished")
        .unwrap();
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let lease = output
        .lines()
        .find_map(|line| line.strip_prefix("LEASE "))
        .map(str::to_owned);
    // The veth pair went with the client's namespace.
    let deadline = Instant::now() + HANG_GUARD;
    while super::link("vp-h").is_some() {
        assert!(Instant::now() < deadline, "vp-h outlived the client");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ClientRun { lease, output }
}
