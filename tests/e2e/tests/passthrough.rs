//! Monitoring and QEMU passthrough through the real gateway and virtctl: raw monitor access is
//! for the admin role only (`domain:passthrough`), refused to operators and viewers with the
//! permission named; statistics are reads any viewer may make. The last test runs the qemu
//! driver and makes real QMP round trips.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use virtplane_e2e::{
    ADMIN_TOKEN, KillOnDrop, OPERATOR_TOKEN, Stack, VIEWER_TOKEN, binary, domain_xml,
};

const QUERY_STATUS: &str = r#"{"execute":"query-status"}"#;

/// Hang guard for waits on a QEMU-backed stack.
const DEADLINE: Duration = Duration::from_secs(60);

fn assert_denied(stderr: &str, what: &str) {
    assert!(
        stderr.contains("permission denied") && stderr.contains("domain:passthrough"),
        "{what}: {stderr}"
    );
}

#[test]
fn passthrough_is_for_admins_only() {
    let stack = Stack::start();
    for (token, role) in [(OPERATOR_TOKEN, "operator"), (VIEWER_TOKEN, "viewer")] {
        let stderr = stack.fails(Some(token), &["qemu-monitor-command", "test", QUERY_STATUS]);
        assert_denied(&stderr, role);
        assert!(stderr.contains(&format!("role {role}")), "{stderr}");
        let stderr = stack.fails(
            Some(token),
            &["qemu-monitor-command", "test", "--hmp", "info", "status"],
        );
        assert_denied(&stderr, role);
        let stderr = stack.fails(
            Some(token),
            &["qemu-monitor-event", "--domain", "test", "--timeout", "5"],
        );
        assert_denied(&stderr, role);
    }
    // The admin passes the gateway; the test driver has no monitor, and says so.
    let stderr = stack.fails(
        Some(ADMIN_TOKEN),
        &["qemu-monitor-command", "test", QUERY_STATUS],
    );
    assert!(
        !stderr.contains("permission denied") && stderr.contains("unsupported by the test driver"),
        "{stderr}"
    );
    let stderr = stack.fails(Some(ADMIN_TOKEN), &["qemu-monitor-event", "--timeout", "5"]);
    assert!(
        stderr.contains("unsupported by the test driver"),
        "{stderr}"
    );
    // Every refusal of a passthrough call is audited with the permission in its message.
    let audit = stack.audit_lines().join("\n");
    assert!(
        audit.contains("QemuService/MonitorCommand") && audit.contains("domain:passthrough"),
        "{audit}"
    );
}

#[test]
fn viewers_read_statistics() {
    let stack = Stack::start();
    let file = stack.file("off.xml", &domain_xml("off"));
    stack.ok(&["define", &file]);
    let viewer = |args: &[&str]| {
        let out = stack.virtctl(Some(VIEWER_TOKEN), args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let all = viewer(&["domstats"]);
    assert!(all.contains("Domain: 'off'\n  state.state=5\n"), "{all}");
    assert!(
        all.contains("Domain: 'test'\n  state.state=1\n  state.reason=1\n"),
        "{all}"
    );
    assert!(all.contains("  balloon.maximum="), "{all}");
    let running = viewer(&["domstats", "--state", "--list-running"]);
    assert_eq!(
        running, "Domain: 'test'\n  state.state=1\n  state.reason=1\n",
        "only the running domain, only its state"
    );
    let json = viewer(&["domstats", "test", "--vcpu", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v[0]["name"], "test");
    assert!(v[0]["vcpu"]["current"].as_u64().is_some(), "{json}");
    assert!(
        v[0].get("state").is_none(),
        "only the group asked for: {json}"
    );
    let missing = stack.fails(Some(VIEWER_TOKEN), &["domstats", "nosuch"]);
    assert!(missing.contains("domain not found"), "{missing}");
    let list = viewer(&["domblklist", "test"]);
    assert!(list.starts_with(" Target "), "{list}");
    let list = viewer(&["domiflist", "test"]);
    assert!(list.starts_with(" Interface "), "{list}");
    // Counters need a hypervisor: the test driver says clearly that it has none.
    let stderr = stack.fails(Some(VIEWER_TOKEN), &["dommemstat", "test"]);
    assert!(
        stderr.contains("unsupported by the test driver"),
        "{stderr}"
    );
    // Changing the period is a write.
    let stderr = stack.fails(
        Some(VIEWER_TOKEN),
        &["dommemstat", "test", "--period", "5", "--live"],
    );
    assert!(
        stderr.contains("permission denied") && stderr.contains("domain:write"),
        "{stderr}"
    );
}

/// A domain for the qemu driver: a qcow2 disk made by qemu-img and a balloon; no kernel,
/// QEMU sits in its firmware, which is all the monitor needs.
fn qemu_xml(name: &str, disk: &str) -> String {
    format!(
        "<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>\
         <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>\
         <disk type='file' device='disk'><driver name='qemu' type='qcow2'/>\
         <source file='{disk}'/><target dev='vda' bus='virtio'/></disk>\
         <memballoon model='virtio'/></devices></domain>"
    )
}

/// Starts `virtctl qemu-monitor-event` as admin in the background; its stdout lines arrive
/// on the receiver. Killed on drop.
fn watch_monitor_events(stack: &Stack, args: &[&str]) -> (KillOnDrop, mpsc::Receiver<String>) {
    let mut child = Command::new(binary("virtctl"))
        .env_remove("VIRTPLANE_SERVER")
        .env_remove("VIRTPLANE_TOKEN")
        .env("VIRTCTL_CONFIG", stack.dir.path().join("no-config.yaml"))
        .arg("--server")
        .arg(format!("unix:{}", stack.gateway_sock.display()))
        .args([
            "--token",
            ADMIN_TOKEN,
            "--timeout",
            "60",
            "qemu-monitor-event",
        ])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn virtctl qemu-monitor-event");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (KillOnDrop(child), rx)
}

#[test]
fn qemu_monitor_and_stats_through_the_gateway() {
    let stack = Stack::start_with("qemu");
    let disk = stack.dir.path().join("vm.qcow2");
    let out = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&disk)
        .arg("32M")
        .output()
        .expect("qemu-img (install qemu-utils)");
    assert!(out.status.success(), "qemu-img: {out:?}");
    let file = stack.file("vm.xml", &qemu_xml("vm", &disk.display().to_string()));
    stack.ok(&["define", &file]);
    stack.ok(&["start", "vm"]);

    let info = stack.ok(&["dominfo", "vm"]);
    assert!(!info.contains("tainted"), "{info}");

    // Raw QMP, HMP, and the reply options.
    let reply = stack.ok(&["qemu-monitor-command", "vm", QUERY_STATUS]);
    // As libvirt: the run is tainted by the first raw monitor command, once.
    let info = stack.ok(&["dominfo", "vm"]);
    assert_eq!(info.matches("tainted: custom-monitor").count(), 1, "{info}");
    let v: serde_json::Value = serde_json::from_str(reply.trim()).unwrap();
    assert_eq!(v["return"]["status"], "running", "{reply}");
    let wrapped = stack.ok(&[
        "qemu-monitor-command",
        "vm",
        "--return-value",
        "query-status",
    ]);
    let v: serde_json::Value = serde_json::from_str(wrapped.trim()).unwrap();
    assert_eq!(v["running"], true, "{wrapped}");
    let hmp = stack.ok(&["qemu-monitor-command", "vm", "--hmp", "info", "status"]);
    assert!(hmp.contains("VM status: running"), "{hmp}");
    let refused = stack.fails(
        Some(ADMIN_TOKEN),
        &[
            "qemu-monitor-command",
            "vm",
            r#"{"execute":"no-such-command"}"#,
        ],
    );
    assert!(refused.contains("CommandNotFound"), "{refused}");
    let not_json = stack.fails(
        Some(ADMIN_TOKEN),
        &["qemu-monitor-command", "vm", "qom-get", "not json"],
    );
    assert!(not_json.contains("failed to wrap arguments"), "{not_json}");
    let stderr = stack.fails(
        Some(OPERATOR_TOKEN),
        &["qemu-monitor-command", "vm", QUERY_STATUS],
    );
    assert_denied(&stderr, "operator on a real domain");

    // Statistics from the real QEMU.
    let stats = stack.ok(&["domstats", "vm"]);
    for want in [
        "  state.state=1\n",
        "  cpu.time=",
        "  balloon.current=65536\n",
        "  vcpu.0.state=1\n",
        "  block.count=1\n",
        "  block.0.name=vda\n",
        "  block.0.rd.reqs=",
        "  block.0.capacity=33554432\n",
    ] {
        assert!(stats.contains(want), "{want:?} missing from\n{stats}");
    }
    let blk = stack.ok(&["domblkstat", "vm", "vda"]);
    assert!(blk.starts_with("vda rd_req "), "{blk}");
    let list = stack.ok(&["domblklist", "vm"]);
    assert!(list.contains(" vda      /"), "{list}");
    stack.ok(&["dommemstat", "vm", "--period", "2", "--live"]);
    // The config keeps its own period for the next start; the live XML records the live one.
    stack.ok(&["dommemstat", "vm", "--period", "3", "--config"]);
    let inactive = stack.ok(&["dumpxml", "vm", "--inactive"]);
    assert!(inactive.contains("<stats period='3'/>"), "{inactive}");
    let live = stack.ok(&["dumpxml", "vm"]);
    assert!(live.contains("<stats period='2'/>"), "{live}");
    let mem = stack.ok(&["dommemstat", "vm"]);
    assert!(
        mem.starts_with("actual 65536\n") && mem.contains("rss "),
        "{mem}"
    );
    let viewer = stack.virtctl(Some(VIEWER_TOKEN), &["domblkstat", "vm"]);
    assert!(viewer.status.success(), "viewers read counters: {viewer:?}");

    // Raw events: STOP when the domain is suspended. The stream may open after a suspend,
    // so suspend and resume until the watcher has seen one.
    let (_watcher, lines) = watch_monitor_events(&stack, &["--domain", "vm", "--event", "STOP"]);
    let deadline = Instant::now() + DEADLINE;
    let line = loop {
        stack.ok(&["suspend", "vm"]);
        if let Ok(line) = lines.recv_timeout(Duration::from_secs(2)) {
            break line;
        }
        stack.ok(&["resume", "vm"]);
        assert!(Instant::now() < deadline, "no STOP event (hang guard)");
    };
    assert!(
        line.starts_with("event STOP at ") && line.contains(" for domain 'vm': "),
        "{line}"
    );
    stack.ok(&["resume", "vm"]);
    drop(_watcher);

    // A stream for every domain follows VMs started after it opened: a restarted domain's
    // new QEMU announces RESUME when the driver lets it run.
    let (_watcher, lines) = watch_monitor_events(&stack, &["--event", "RESUME", "--loop"]);
    let deadline = Instant::now() + DEADLINE;
    loop {
        stack.ok(&["destroy", "vm"]);
        stack.ok(&["start", "vm"]);
        if let Ok(line) = lines.recv_timeout(Duration::from_secs(2)) {
            assert!(line.starts_with("event RESUME at "), "{line}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no RESUME of the restarted VM (hang guard)"
        );
    }
    // A new run starts untainted.
    let info = stack.ok(&["dominfo", "vm"]);
    assert!(!info.contains("tainted"), "{info}");
    stack.ok(&["destroy", "vm"]);
}
