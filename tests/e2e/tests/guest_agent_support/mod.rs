//! Shared by the guest agent end-to-end tests (`guest_agent_calls.rs`,
//! `guest_agent_health.rs`): the test guest's domain XML with an agent channel, waits on the
//! agent and on the event stream, and the gRPC code of a call as the gateway's audit log
//! records it (virtctl prints only the server's message).
//!
//! Deadlines here only stop hangs: TCG on a shared 2-core machine is slow.

#![allow(dead_code)]

use std::path::Path;
use std::process::Output;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use virtplane_e2e::guest::kernel;
use virtplane_e2e::{ADMIN_TOKEN, Stack};

/// Hang guard for a boot (kernel + initramfs, or + a root disk, under TCG).
pub const BOOT_DEADLINE: Duration = Duration::from_secs(180);
/// Hang guard for anything else that waits.
pub const HANG_GUARD: Duration = Duration::from_secs(60);

/// What the test guest's domain has besides its kernel and the agent channel.
pub struct GuestSpec<'a> {
    pub name: &'a str,
    pub vcpus: u32,
    pub memory_mib: u32,
    /// A copy of `rootfs.img` to boot from as `vda` (`virtplane.root=/dev/vda`).
    pub root_disk: Option<&'a Path>,
    /// A user-mode NIC with this MAC address.
    pub nic_mac: Option<&'a str>,
    /// Where the console (ttyS0) is logged, for failure messages.
    pub serial_log: &'a Path,
}

impl GuestSpec<'_> {
    /// The domain XML: type 'qemu' (TCG), direct kernel boot, and the agent's channel.
    pub fn xml(&self, guest: &Path) -> String {
        let mut cmdline = String::from("console=ttyS0");
        let mut devices = String::new();
        if let Some(root) = self.root_disk {
            cmdline.push_str(" virtplane.root=/dev/vda");
            devices += &format!(
                "    <disk type='file' device='disk'>\n      \
                 <driver name='qemu' type='raw' discard='unmap'/>\n      \
                 <source file='{}'/>\n      <target dev='vda' bus='virtio'/>\n    </disk>\n",
                root.display()
            );
        }
        if let Some(mac) = self.nic_mac {
            devices += &format!(
                "    <interface type='user'><mac address='{mac}'/><model type='virtio'/>\
                 </interface>\n"
            );
        }
        format!(
            r#"<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>{memory}</memory>
  <vcpu>{vcpus}</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{kernel}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>{cmdline}</cmdline>
  </os>
  <features><acpi/></features>
  <devices>
{devices}    <serial type='file'><source path='{serial}'/><target port='0'/></serial>
    <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
    <memballoon model='none'/>
  </devices>
</domain>"#,
            name = self.name,
            memory = self.memory_mib,
            vcpus = self.vcpus,
            kernel = kernel(guest).display(),
            initrd = guest.join("initrd.img").display(),
            serial = self.serial_log.display(),
        )
    }
}

/// The last lines of a console log, for failure messages.
pub fn console_tail(serial_log: &Path) -> String {
    let text = std::fs::read_to_string(serial_log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// virtplane's agent lifecycle line, as `virtctl event` prints it.
pub fn agent_event(domain: &str, state: &str, reason: &str) -> String {
    format!("event 'agent-lifecycle' for domain '{domain}': state: '{state}' reason: '{reason}'")
}

/// Collects event lines until one contains `what`, for at most `deadline` in all; the lines
/// seen, the matching one last.
pub fn wait_event(lines: &Receiver<String>, what: &str, deadline: Duration) -> Vec<String> {
    let until = Instant::now() + deadline;
    let mut seen = Vec::new();
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                let done = line.contains(what);
                seen.push(line);
                if done {
                    return seen;
                }
            }
            Err(_) => panic!("never saw {what:?} (hang guard); saw {seen:#?}"),
        }
    }
}

/// Collects event lines until each of `wanted` was seen, in any order, for at most
/// `deadline` in all; the lines seen.
pub fn wait_events(lines: &Receiver<String>, wanted: &[&str], deadline: Duration) -> Vec<String> {
    let until = Instant::now() + deadline;
    let mut seen: Vec<String> = Vec::new();
    while !wanted
        .iter()
        .all(|w| seen.iter().any(|line| line.contains(w)))
    {
        let left = until.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => panic!("never saw all of {wanted:#?} (hang guard); saw {seen:#?}"),
        }
    }
    seen
}

/// Pings the agent as admin until it answers.
pub fn wait_agent(stack: &Stack, name: &str, serial_log: &Path) {
    let until = Instant::now() + BOOT_DEADLINE;
    loop {
        let out = stack.virtctl(Some(ADMIN_TOKEN), &["guest-ping", name]);
        if out.status.success() {
            return;
        }
        assert!(
            Instant::now() < until,
            "the agent of '{name}' never answered (hang guard): {}\nconsole:\n{}",
            stderr(&out),
            console_tail(serial_log)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `virtctl -o json ARGS` as admin, parsed.
pub fn json(stack: &Stack, args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let text = stack.ok(&all);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"))
}

/// Runs virtctl with `token` and expects it to fail; its stderr and the gRPC code the gateway
/// recorded for the call of `method` (e.g. `GuestAgentService/Ping`) in its audit log.
pub fn fails_with_code(
    stack: &Stack,
    token: &str,
    args: &[&str],
    method: &str,
) -> (String, String) {
    let before = stack.audit_lines().len();
    let stderr = stack.fails(Some(token), args);
    (stderr, audited_code(stack, before, method))
}

/// The code of the first audit line after the first `before` lines that is about `method`.
/// The gateway writes the line as the response ends, which may be just after virtctl exits.
pub fn audited_code(stack: &Stack, before: usize, method: &str) -> String {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let found = stack
            .audit_lines()
            .into_iter()
            .skip(before)
            .find_map(|line| {
                let v: serde_json::Value = serde_json::from_str(&line).ok()?;
                (v["method"] == method).then(|| v["code"].as_str().unwrap_or_default().to_owned())
            });
        if let Some(code) = found {
            return code;
        }
        assert!(
            Instant::now() < until,
            "no audit line for {method} (hang guard): {:#?}",
            stack.audit_lines()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
