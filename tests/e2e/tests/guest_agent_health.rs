//! Guest agent health through the gateway with virtctl (issue #6): a VM without an agent
//! channel, a VM whose channel nobody in the guest opens, and the test guest (initramfs root,
//! booted once under TCG) whose real qemu-guest-agent is stopped mid-way (it SIGSTOPs itself
//! through guest-exec) and later continues. Agent calls must fail with UNAVAILABLE within the
//! domain's `guest-agent-timeout`, never hang, never hold up the domain's other calls, and
//! work again once the agent is back; `dominfo` and the agent lifecycle events follow.
//!
//! A restart of the domain service in between finds the agent's state again from QEMU.
//!
//! Also what the initramfs guest has no file systems for (freeze, trim and fsinfo find
//! nothing, and say so), and the agent events when the guest's agent starts and when the VM
//! is destroyed. Deadlines only stop hangs, except where a bound on the time to fail is the
//! property under test.

mod guest_agent_support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use guest_agent_support::{
    BOOT_DEADLINE, GuestSpec, HANG_GUARD, agent_event, audited_code, console_tail, fails_with_code,
    json, stderr, stdout, wait_agent, wait_event,
};
use virtplane_e2e::guest::build_guest;
use virtplane_e2e::{ADMIN_TOKEN, KillOnDrop, Stack, binary, watch_events};

const GUEST: &str = "e2e-agent-health";
/// No agent channel at all.
const BARE: &str = "e2e-no-channel";
/// An agent channel, but QEMU only runs its firmware: nothing opens it.
const SILENT: &str = "e2e-silent-channel";

/// The agent timeout set on the guest for the test of a hung agent.
const AGENT_TIMEOUT: Duration = Duration::from_secs(2);
/// What a failing call may take beyond the agent timeout: virtctl's start, the gateway, a
/// busy machine.
const SLACK: Duration = Duration::from_secs(4);
/// How long the guest's agent stays stopped: long enough for every check made meanwhile.
const STOPPED_FOR: Duration = Duration::from_secs(25);
/// The agent timeout while the other calls are made: the window they must fit in.
const PENDING_TIMEOUT: Duration = Duration::from_secs(6);

/// A firmware-only VM (no kernel: cheap), with or without the agent's channel.
fn firmware_xml(name: &str, channel: bool) -> String {
    let channel = if channel {
        "<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>"
    } else {
        ""
    };
    format!(
        "<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>\
         <os><type arch='x86_64' machine='pc'>hvm</type></os>\
         <devices>{channel}<memballoon model='none'/></devices></domain>"
    )
}

/// `virtctl guest-ping NAME` as admin: the error text, the audited code and the time it took.
fn failing_ping(stack: &Stack, name: &str) -> (String, String, Duration) {
    let started = Instant::now();
    let (text, code) = fails_with_code(
        stack,
        ADMIN_TOKEN,
        &["guest-ping", name],
        "GuestAgentService/Ping",
    );
    (text, code, started.elapsed())
}

#[test]
fn a_missing_or_hung_agent_is_unavailable_in_time_and_blocks_nothing_else() {
    let guest = build_guest();
    let mut stack = Stack::start_with("qemu");
    let serial = stack.dir.path().join("serial.log");
    let spec = GuestSpec {
        name: GUEST,
        vcpus: 1,
        memory_mib: 128,
        root_disk: None,
        nic_mac: None,
        serial_log: &serial,
    };
    for (file, xml) in [
        ("guest.xml", spec.xml(&guest)),
        ("bare.xml", firmware_xml(BARE, false)),
        ("silent.xml", firmware_xml(SILENT, true)),
    ] {
        stack.ok(&["define", &stack.file(file, &xml)]);
    }
    let (text, code, _) = failing_ping(&stack, GUEST);
    assert_eq!(text, format!("error: domain '{GUEST}' is not running\n"));
    assert_eq!(code, "FAILED_PRECONDITION");

    let (_watcher, events) = watch_events(&stack);
    for name in [GUEST, BARE, SILENT] {
        stack.ok(&["start", name]);
    }

    // No channel: UNAVAILABLE at once, saying what to add.
    let (text, code, took) = failing_ping(&stack, BARE);
    assert!(
        text.starts_with(&format!(
            "error: domain '{BARE}' has no guest agent channel: add <channel type='unix'>"
        )),
        "{text}"
    );
    assert_eq!(code, "UNAVAILABLE");
    assert!(took < SLACK, "took {took:?}");
    let info = stack.ok(&["dominfo", BARE]);
    assert!(info.contains("Guest agent:    none\n"), "{info}");
    for args in [
        &["guestinfo", BARE][..],
        &["domifaddr", BARE, "--source", "agent"],
        &["shutdown", BARE, "--mode", "agent"],
    ] {
        let text = stack.fails(Some(ADMIN_TOKEN), args);
        assert!(
            text.contains("has no guest agent channel"),
            "{args:?}: {text}"
        );
    }

    // A channel nobody opens: UNAVAILABLE at once, "not connected".
    let (text, code, took) = failing_ping(&stack, SILENT);
    assert_eq!(
        text,
        format!(
            "error: the guest agent of domain '{SILENT}' is not connected: nothing in the guest \
             has its channel open (is qemu-guest-agent installed and running?)\n"
        )
    );
    assert_eq!(code, "UNAVAILABLE");
    assert!(took < SLACK, "took {took:?}");
    let info = stack.ok(&["dominfo", SILENT]);
    assert!(info.contains("Guest agent:    disconnected\n"), "{info}");
    let text = stack.fails(
        Some(ADMIN_TOKEN),
        &["qemu-agent-command", SILENT, r#"{"execute":"guest-ping"}"#],
    );
    assert!(text.contains("is not connected"), "{text}");
    let text = stack.fails(Some(ADMIN_TOKEN), &["reboot", SILENT, "--mode", "agent"]);
    assert!(text.contains("is not connected"), "{text}");

    // The guest's agent starts: announced on the stream.
    wait_event(
        &events,
        &agent_event(GUEST, "connected", "channel event"),
        BOOT_DEADLINE,
    );
    wait_agent(&stack, GUEST, &serial);
    let info = stack.ok(&["dominfo", GUEST]);
    assert!(info.contains("Guest agent:    connected\n"), "{info}");

    initramfs_has_no_filesystems(&stack);
    hung_agent(&stack, &events, &serial);

    // A restarted domain service reads the agent's state from QEMU (query-chardev): the
    // guest's agent is connected again at once, announced as found at start; the silent
    // channel stays disconnected.
    stack.kill_domaind();
    stack.start_domaind();
    wait_event(
        &events,
        &agent_event(GUEST, "connected", "domain started"),
        HANG_GUARD,
    );
    let info = stack.ok(&["dominfo", GUEST]);
    assert!(info.contains("Guest agent:    connected\n"), "{info}");
    stack.ok(&["guest-ping", GUEST]);
    let info = stack.ok(&["dominfo", SILENT]);
    assert!(info.contains("Guest agent:    disconnected\n"), "{info}");

    // Destroying the VM takes its agent along: announced, and calls say the domain is off.
    stack.ok(&["destroy", GUEST]);
    wait_event(
        &events,
        &agent_event(GUEST, "disconnected", "domain stopped"),
        HANG_GUARD,
    );
    let (text, code, _) = failing_ping(&stack, GUEST);
    assert_eq!(text, format!("error: domain '{GUEST}' is not running\n"));
    assert_eq!(code, "FAILED_PRECONDITION");
    let info = stack.ok(&["dominfo", GUEST]);
    assert!(!info.contains("Guest agent:"), "{info}");
}

/// With its root in RAM the guest has no block-device file system: fsinfo lists none, a
/// freeze freezes none (qemu-ga says 0, not an error) and a trim trims none.
fn initramfs_has_no_filesystems(stack: &Stack) {
    assert_eq!(
        stack.ok(&["domfsinfo", GUEST]),
        "No filesystems are mounted in the domain\n"
    );
    assert_eq!(stack.ok(&["guestinfo", GUEST, "--filesystem"]), "");
    assert_eq!(stack.ok(&["guestinfo", GUEST, "--disk"]), "");
    assert_eq!(stack.ok(&["domfsfreeze", GUEST]), "Froze 0 filesystem(s)\n");
    let status = stack.ok(&[
        "qemu-agent-command",
        GUEST,
        r#"{"execute":"guest-fsfreeze-status"}"#,
    ]);
    assert_eq!(status, "{\"return\":\"thawed\"}\n");
    assert_eq!(stack.ok(&["domfsthaw", GUEST]), "Thawed 0 filesystem(s)\n");
    assert_eq!(json(stack, &["domfstrim", GUEST]), serde_json::json!([]));
    // No NIC: the agent reports the loopback interface only.
    let ifs = json(stack, &["guestinfo", GUEST, "--interface"]);
    let names: Vec<&str> = ifs["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["lo"], "{ifs}");
}

/// `virtctl ARGS` as admin, started in the background (killed when dropped).
fn spawn_virtctl(stack: &Stack, args: &[&str]) -> KillOnDrop {
    let child = Command::new(binary("virtctl"))
        .env_remove("VIRTPLANE_SERVER")
        .env_remove("VIRTPLANE_TOKEN")
        .env("VIRTCTL_CONFIG", stack.dir.path().join("none.yaml"))
        .arg("--server")
        .arg(format!("unix:{}", stack.gateway_sock.display()))
        .args(["--token", ADMIN_TOKEN])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn virtctl");
    KillOnDrop(child)
}

/// qemu-ga stops itself (SIGSTOP, from a shell it runs through guest-exec) and continues
/// `STOPPED_FOR` later.
fn hung_agent(stack: &Stack, events: &std::sync::mpsc::Receiver<String>, serial: &std::path::Path) {
    stack.ok(&[
        "guest-agent-timeout",
        GUEST,
        "--timeout",
        &AGENT_TIMEOUT.as_secs().to_string(),
    ]);
    // The shell's parent is qemu-ga. It returns at once; the stopper runs on, its output
    // elsewhere, so qemu-ga sees the exec end before it is stopped.
    let stopper = format!(
        "(sleep 1; kill -STOP $PPID; sleep {}; kill -CONT $PPID) </dev/null >/dev/null 2>&1 &",
        STOPPED_FOR.as_secs()
    );
    let stopping = Instant::now();
    stack.ok(&["guest-exec", GUEST, "--", "sh", "-c", &stopper]);
    let wakes = stopping + STOPPED_FOR;

    // Wait for the first call that is not answered: the agent is stopped from then on.
    let until = Instant::now() + HANG_GUARD;
    loop {
        let out = stack.virtctl(Some(ADMIN_TOKEN), &["guest-ping", GUEST]);
        if !out.status.success() {
            assert!(stderr(&out).contains("not responding"), "{out:?}");
            break;
        }
        assert!(Instant::now() < until, "qemu-ga never stopped (hang guard)");
        std::thread::sleep(Duration::from_millis(200));
    }

    // A call to the hung agent: UNAVAILABLE within the timeout (+ slack), saying so.
    let (text, code, took) = failing_ping(stack, GUEST);
    assert_eq!(
        text,
        format!(
            "error: domain '{GUEST}': the guest agent is not responding: no answer to \
             guest-ping within {}s (is qemu-guest-agent running in the guest?)\n",
            AGENT_TIMEOUT.as_secs()
        )
    );
    assert_eq!(code, "UNAVAILABLE");
    assert!(
        took >= AGENT_TIMEOUT - Duration::from_millis(100) && took < AGENT_TIMEOUT + SLACK,
        "took {took:?} with an agent timeout of {AGENT_TIMEOUT:?}"
    );
    let (text, code) = fails_with_code(
        stack,
        ADMIN_TOKEN,
        &["guestinfo", GUEST, "--hostname"],
        "GuestAgentService/GetGuestInfo",
    );
    assert!(text.contains("not responding"), "{text}");
    assert_eq!(code, "UNAVAILABLE");
    let info = stack.ok(&["dominfo", GUEST]);
    assert!(info.contains("Guest agent:    not responding\n"), "{info}");
    wait_event(
        events,
        &agent_event(GUEST, "not responding", "agent response"),
        HANG_GUARD,
    );

    // While an agent call hangs, the domain's other calls answer: they all finish before it.
    stack.ok(&[
        "guest-agent-timeout",
        GUEST,
        "--timeout",
        &PENDING_TIMEOUT.as_secs().to_string(),
    ]);
    let mut pending = spawn_virtctl(stack, &["guest-ping", GUEST]);
    std::thread::sleep(Duration::from_millis(500));
    let info = stack.ok(&["dominfo", GUEST]);
    assert!(info.contains("State:          running\n"), "{info}");
    let stats = stack.ok(&["domstats", GUEST, "--state"]);
    assert!(stats.contains("state.state=1"), "{stats}");
    stack.ok(&["suspend", GUEST]);
    assert_eq!(stack.ok(&["domstate", GUEST]), "paused\n");
    stack.ok(&["resume", GUEST]);
    assert_eq!(stack.ok(&["domstate", GUEST]), "running\n");
    assert!(
        pending.0.try_wait().expect("try_wait").is_none(),
        "the agent call ended before the other calls did: they waited for it"
    );
    let out = pending.0.wait_with_output_guarded();
    assert!(!out.status.success(), "{out:?}");
    assert!(
        stderr(&out).contains(&format!(
            "no answer to guest-ping within {}s",
            PENDING_TIMEOUT.as_secs()
        )),
        "{out:?}"
    );
    assert!(
        Instant::now() < wakes,
        "the checks of the stopped agent outlasted its {STOPPED_FOR:?} stop: the machine is \
         too slow for this test"
    );

    // The agent continues: calls work again (on a fresh, re-synced connection: the answer
    // is to this call, not a stale one), and the state says so.
    stack.ok(&["guest-agent-timeout", GUEST, "--timeout", "0"]);
    let until = wakes + HANG_GUARD;
    while !stack
        .virtctl(Some(ADMIN_TOKEN), &["guest-ping", GUEST])
        .status
        .success()
    {
        assert!(
            Instant::now() < until,
            "the agent never answered again (hang guard)\nconsole:\n{}",
            console_tail(serial)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    wait_event(
        events,
        &agent_event(GUEST, "connected", "agent response"),
        HANG_GUARD,
    );
    let info = stack.ok(&["dominfo", GUEST]);
    assert!(info.contains("Guest agent:    connected\n"), "{info}");
    let out = stack.virtctl(
        Some(ADMIN_TOKEN),
        &["guest-exec", GUEST, "--", "sh", "-c", "echo woke-$((6*7))"],
    );
    assert_eq!(stdout(&out), "woke-42\n", "{out:?}");
    assert_eq!(stack.ok(&["domhostname", GUEST]), "virtplane-guest\n");
    let before = stack.audit_lines().len();
    stack.ok(&["guest-ping", GUEST]);
    assert_eq!(audited_code(stack, before, "GuestAgentService/Ping"), "OK");
}

/// Waiting on a child with a hang guard: `KillOnDrop` kills it if the guard trips.
trait WaitGuarded {
    fn wait_with_output_guarded(&mut self) -> std::process::Output;
}

impl WaitGuarded for std::process::Child {
    fn wait_with_output_guarded(&mut self) -> std::process::Output {
        use std::io::Read;
        let until = Instant::now() + HANG_GUARD;
        let status = loop {
            if let Some(status) = self.try_wait().expect("try_wait") {
                break status;
            }
            assert!(Instant::now() < until, "virtctl did not exit (hang guard)");
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut out = Vec::new();
        let mut err = Vec::new();
        if let Some(mut pipe) = self.stdout.take() {
            pipe.read_to_end(&mut out).expect("read stdout");
        }
        if let Some(mut pipe) = self.stderr.take() {
            pipe.read_to_end(&mut err).expect("read stderr");
        }
        std::process::Output {
            status,
            stdout: out,
            stderr: err,
        }
    }
}
