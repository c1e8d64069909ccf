//! The network service with its test driver, end to end: the real virtplane-networkd and
//! gateway binaries, driven by virtctl's `net-*` commands as a user would. Every command's
//! output is checked against virsh's wording; a viewer reads but changes nothing; a network
//! and its active state, its live changes and its ports survive a kill -9 of the service;
//! the event stream shows each change.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;

use virtplane_e2e::{ADMIN_TOKEN, KillOnDrop, Stack, VIEWER_TOKEN, binary, wait_for_line};

const DEFAULT_UUID: &str = "dd8fe884-6c02-601e-7551-cca97df1c5df";
const PORT_UUID: &str = "7b1c7a30-5c1e-4a52-9b8a-0d5d0f0e9a11";

const LAB_XML: &str = "<network>
  <name>lab</name>
  <forward mode='nat'/>
  <ip address='10.77.0.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='10.77.0.10' end='10.77.0.99'/>
    </dhcp>
  </ip>
</network>
";

const TEMP_XML: &str = "<network>
  <name>temp</name>
  <ip address='10.78.0.1' prefix='24'/>
</network>
";

const PORT_XML: &str = "<networkport>
  <uuid>7b1c7a30-5c1e-4a52-9b8a-0d5d0f0e9a11</uuid>
  <owner>
    <name>vm1</name>
    <uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>
  </owner>
  <mac address='52:54:00:aa:bb:01'/>
</networkport>
";

/// `virtctl net-event --loop` as admin, as in another terminal: its output and error lines
/// (merged) arrive on the receiver. Killed when dropped.
fn watch_network_events(stack: &Stack) -> (KillOnDrop, Receiver<String>) {
    let child = Command::new(binary("virtctl"))
        .env("VIRTCTL_CONFIG", stack.dir.path().join("none.yaml"))
        .arg("--server")
        .arg(format!("unix:{}", stack.gateway_sock.display()))
        .args(["--token", ADMIN_TOKEN, "net-event", "--loop"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("virtctl net-event --loop");
    let mut watcher = KillOnDrop(child);
    let (tx, lines) = std::sync::mpsc::channel();
    let pipes: [Box<dyn Read + Send>; 2] = [
        Box::new(watcher.0.stdout.take().expect("stdout")),
        Box::new(watcher.0.stderr.take().expect("stderr")),
    ];
    for pipe in pipes {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    // Give it time to open its stream before the test changes anything.
    std::thread::sleep(std::time::Duration::from_millis(300));
    (watcher, lines)
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

#[test]
fn every_net_command_through_the_gateway() {
    let mut stack = Stack::start_with_network("test", "test");
    let (_watcher, events) = watch_network_events(&stack);

    // The seeded world: libvirt's default network, running and autostarted.
    assert_eq!(
        stack.ok(&["net-list"]),
        " Name      State    Autostart   Persistent\n\
         --------------------------------------------\n \
         default   active   yes         yes\n"
    );
    assert_eq!(
        lines(&stack.ok(&["net-info", "default"])),
        [
            "Name:           default",
            &format!("UUID:           {DEFAULT_UUID}"),
            "Active:         yes",
            "Persistent:     yes",
            "Autostart:      yes",
            "Bridge:         virbr0",
        ]
    );
    let xml = stack.ok(&["net-dumpxml", "default"]);
    for part in [
        "<name>default</name>",
        "<forward mode='nat'",
        "<bridge name='virbr0' stp='on' delay='0'/>",
        "<ip address='192.168.122.1' netmask='255.255.255.0'>",
        "<range start='192.168.122.2' end='192.168.122.254'/>",
    ] {
        assert!(xml.contains(part), "{part} missing:\n{xml}");
    }
    assert_eq!(
        stack.ok(&["net-uuid", "default"]),
        format!("{DEFAULT_UUID}\n")
    );
    assert_eq!(stack.ok(&["net-name", DEFAULT_UUID]), "default\n");

    // Define, list with libvirt's filters, start.
    let lab = stack.file("lab.xml", LAB_XML);
    assert_eq!(
        stack.ok(&["net-define", &lab]),
        format!("Network lab defined from {lab}\n")
    );
    wait_for_line(&events, "event 'lifecycle' for network lab: Defined");
    assert_eq!(stack.ok(&["net-list", "--name"]), "default\n");
    assert_eq!(stack.ok(&["net-list", "--all", "--name"]), "default\nlab\n");
    assert_eq!(stack.ok(&["net-list", "--inactive", "--name"]), "lab\n");
    assert_eq!(
        stack.ok(&["net-list", "--all", "--autostart", "--name"]),
        "default\n"
    );
    assert_eq!(
        stack.ok(&["net-list", "--all", "--no-autostart", "--name"]),
        "lab\n"
    );
    assert_eq!(
        stack.ok(&["net-list", "--all", "--persistent", "--name"]),
        "default\nlab\n"
    );
    assert_eq!(
        stack.ok(&["net-list", "--all", "--transient", "--name"]),
        ""
    );
    let info = stack.ok(&["net-info", "lab"]);
    assert!(info.contains("Active:         no\n"), "{info}");
    assert!(info.contains("Bridge:         virbr1\n"), "{info}");
    assert_eq!(stack.ok(&["net-start", "lab"]), "Network lab started\n");
    wait_for_line(&events, "event 'lifecycle' for network lab: Started");
    let stderr = stack.fails(Some(ADMIN_TOKEN), &["net-start", "lab"]);
    assert_eq!(stderr, "error: network 'lab' is already active\n");

    // Autostart.
    assert_eq!(
        stack.ok(&["net-autostart", "lab"]),
        "Network lab marked as autostarted\n"
    );
    assert!(
        stack
            .ok(&["net-info", "lab"])
            .contains("Autostart:      yes")
    );
    assert_eq!(
        stack.ok(&["net-autostart", "lab", "--disable"]),
        "Network lab unmarked as autostarted\n"
    );

    // net-update: an element inline, live and config; a file, current (= live here).
    let host = "<host mac='52:54:00:00:00:21' name='db' ip='10.77.0.21'/>";
    assert_eq!(
        stack.ok(&[
            "net-update",
            "lab",
            "add",
            "ip-dhcp-host",
            host,
            "--live",
            "--config"
        ]),
        "Updated network lab persistent config and live state\n"
    );
    let dns = stack.file(
        "dns-host.xml",
        "<host ip='10.77.0.5'><hostname>printer</hostname></host>",
    );
    assert_eq!(
        stack.ok(&["net-update", "lab", "add-last", "dns-host", &dns]),
        "Updated network lab live state\n"
    );
    let live = stack.ok(&["net-dumpxml", "lab"]);
    let config = stack.ok(&["net-dumpxml", "lab", "--inactive"]);
    assert!(live.contains("ip='10.77.0.21'") && config.contains("ip='10.77.0.21'"));
    assert!(live.contains("<hostname>printer</hostname>"), "{live}");
    assert!(!config.contains("printer"), "{config}");
    assert_eq!(
        stack.ok(&[
            "net-update",
            "lab",
            "delete",
            "ip-dhcp-host",
            host,
            "--config"
        ]),
        "Updated network lab persistent config\n"
    );
    let bad = stack.fails(
        Some(ADMIN_TOKEN),
        &["net-update", "lab", "add", "dhcp", host],
    );
    assert_eq!(bad, "error: unrecognized section name 'dhcp'\n");
    let unsupported = stack.fails(
        Some(ADMIN_TOKEN),
        &[
            "net-update",
            "lab",
            "add",
            "ip-dhcp-range",
            "<range start='10.77.0.100' end='10.77.0.110'/>",
        ],
    );
    assert!(unsupported.contains("not supported"), "{unsupported}");

    // Leases: the test driver gives out none, and says so with virsh's empty table.
    let leases = stack.ok(&["net-dhcp-leases", "lab"]);
    assert_eq!(
        lines(&leases),
        [
            " Expiry Time   MAC address   Protocol   IP address   Hostname   Client ID or DUID",
            "-----------------------------------------------------------------------------------",
        ]
    );
    assert_eq!(
        stack.ok(&["net-dhcp-leases", "lab", "--mac", "52:54:00:00:00:21"]),
        leases
    );

    // Ports.
    let port = stack.file("port.xml", PORT_XML);
    assert_eq!(
        stack.ok(&["net-port-create", "default", &port]),
        format!("Network port {PORT_UUID} created from {port}\n")
    );
    assert_eq!(
        lines(&stack.ok(&["net-port-list", "default"])),
        [
            " UUID",
            "---------------------------------------",
            &format!(" {PORT_UUID}"),
        ]
    );
    let port_xml = stack.ok(&["net-port-dumpxml", "default", PORT_UUID]);
    for part in [
        "<name>vm1</name>",
        "<mac address='52:54:00:aa:bb:01'/>",
        "<plug type='network' bridge='virbr0'/>",
    ] {
        assert!(port_xml.contains(part), "{part} missing:\n{port_xml}");
    }
    assert!(
        stack
            .ok(&["net-dumpxml", "default"])
            .starts_with("<network connections='1'>")
    );

    // A transient network.
    let temp = stack.file("temp.xml", TEMP_XML);
    assert_eq!(
        stack.ok(&["net-create", &temp]),
        format!("Network temp created from {temp}\n")
    );
    wait_for_line(&events, "event 'lifecycle' for network temp: Started");
    assert_eq!(stack.ok(&["net-list", "--transient", "--name"]), "temp\n");
    assert_eq!(
        stack.ok(&["net-destroy", "temp"]),
        "Network temp destroyed\n"
    );
    wait_for_line(&events, "event 'lifecycle' for network temp: Stopped");
    let gone = stack.fails(Some(ADMIN_TOKEN), &["net-info", "temp"]);
    assert_eq!(
        gone,
        "error: network not found: no network with matching name 'temp'\n"
    );

    // A viewer reads everything but changes nothing.
    for args in [
        &["net-list", "--all"][..],
        &["net-info", "lab"],
        &["net-dumpxml", "lab"],
        &["net-dumpxml", "lab", "--inactive"],
        &["net-dhcp-leases", "lab"],
        &["net-port-list", "default"],
        &["net-port-dumpxml", "default", PORT_UUID],
    ] {
        let out = stack.virtctl(Some(VIEWER_TOKEN), args);
        assert!(
            out.status.success(),
            "viewer {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for (args, permission) in [
        (&["net-define", lab.as_str()][..], "network:write"),
        (&["net-start", "lab"], "network:start"),
        (&["net-destroy", "lab"], "network:stop"),
        (
            &["net-update", "lab", "add", "ip-dhcp-host", host, "--live"],
            "network:write",
        ),
        (&["net-autostart", "lab"], "network:write"),
        (
            &["net-port-delete", "default", PORT_UUID],
            "network_port:delete",
        ),
    ] {
        let stderr = stack.fails(Some(VIEWER_TOKEN), args);
        assert!(
            stderr.contains("permission denied") && stderr.contains(permission),
            "viewer {args:?}: {stderr}"
        );
    }
    assert!(
        stack
            .ok(&["net-info", "lab"])
            .contains("Active:         yes")
    );

    // kill -9 of the service: networks, active state, live changes and ports survive.
    let live_before = stack.ok(&["net-dumpxml", "lab"]);
    let list_before = stack.ok(&["net-list", "--all"]);
    stack.kill_networkd();
    let down = stack.fails(Some(ADMIN_TOKEN), &["net-list"]);
    assert!(down.contains("network"), "{down}");
    stack.start_networkd();
    assert_eq!(stack.ok(&["net-list", "--all"]), list_before);
    assert_eq!(stack.ok(&["net-dumpxml", "lab"]), live_before);
    assert!(
        stack
            .ok(&["net-port-list", "default", "--uuid"])
            .contains(PORT_UUID)
    );
    wait_for_line(&events, "the network service restarted");

    // The watcher, reconnected, still sees what happens next.
    assert_eq!(stack.ok(&["net-destroy", "lab"]), "Network lab destroyed\n");
    wait_for_line(&events, "event 'lifecycle' for network lab: Stopped");
    assert_eq!(
        stack.ok(&["net-port-delete", "default", PORT_UUID]),
        format!("Network port {PORT_UUID} deleted\n")
    );
    assert_eq!(stack.ok(&["net-port-list", "default", "--uuid"]), "");
    assert_eq!(
        stack.ok(&["net-undefine", "lab"]),
        "Network lab has been undefined\n"
    );
    wait_for_line(&events, "event 'lifecycle' for network lab: Undefined");
    assert_eq!(stack.ok(&["net-list", "--all", "--name"]), "default\n");

    // The gateway audited the changes, naming the network (Define names it from the XML).
    let audit = stack.audit_lines();
    for (method, object) in [
        ("NetworkService/Define", "lab"),
        ("NetworkService/Start", "lab"),
        ("NetworkService/Update", "lab"),
        ("NetworkService/CreatePort", "default"),
        ("NetworkService/Undefine", "lab"),
    ] {
        assert!(
            audit
                .iter()
                .any(|l| l.contains(&format!("\"method\":\"{method}\""))
                    && l.contains(&format!("\"object\":\"{object}\""))
                    && l.contains("\"object_kind\":\"network\"")),
            "no audit line for {method} on {object}:\n{audit:#?}"
        );
    }
}

#[test]
fn single_events_json_output_and_refusals() {
    let stack = Stack::start_with_network("test", "test");
    // One event and exit, as virsh's net-event without --loop.
    let mut child = Command::new(binary("virtctl"))
        .env("VIRTCTL_CONFIG", stack.dir.path().join("none.yaml"))
        .arg("--server")
        .arg(format!("unix:{}", stack.gateway_sock.display()))
        .args([
            "--token",
            ADMIN_TOKEN,
            "--timeout",
            "20",
            "net-event",
            "--event",
            "lifecycle",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("virtctl net-event");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(
        stack.ok(&["net-destroy", "default"]),
        "Network default destroyed\n"
    );
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(
        stdout,
        "event 'lifecycle' for network default: Stopped\nevents received: 1\n"
    );

    // Machine output.
    let json: serde_json::Value =
        serde_json::from_str(&stack.ok(&["-o", "json", "net-info", "default"])).unwrap();
    assert_eq!(json["name"], "default");
    assert_eq!(json["active"], false);
    assert_eq!(json["bridge"], "virbr0");

    // Refusals name the problem.
    let inactive = stack.fails(Some(ADMIN_TOKEN), &["net-port-list", "default"]);
    assert_eq!(inactive, "error: network 'default' is not active\n");
    let live = stack.fails(
        Some(ADMIN_TOKEN),
        &[
            "net-update",
            "default",
            "add",
            "ip-dhcp-host",
            "<host mac='52:54:00:00:00:31' ip='192.168.122.31'/>",
            "--live",
        ],
    );
    assert_eq!(live, "error: network 'default' is not running\n");
    let twin = stack.file(
        "twin.xml",
        "<network><name>twin</name><bridge name='virbr0'/><ip address='10.79.0.1' prefix='24'/></network>",
    );
    let clash = stack.fails(Some(ADMIN_TOKEN), &["net-define", &twin]);
    assert_eq!(clash, "error: bridge name 'virbr0' already in use.\n");
    let broken = stack.file(
        "broken.xml",
        "<network><name>x</name><ip address='nope'/></network>",
    );
    let invalid = stack.fails(Some(ADMIN_TOKEN), &["net-define", &broken]);
    assert!(
        invalid.starts_with("error: invalid network XML: "),
        "{invalid}"
    );
}

/// deploy/local/up.sh runs the network service next to the domain service, routes it
/// through the gateway, restarts a gateway an older up.sh started without it, and
/// down.sh stops it.
#[test]
fn up_script_runs_the_network_service() {
    use std::path::Path;

    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root");
    let dir = tempfile::tempdir().expect("temp dir");
    let state_dir = dir.path().join("vp");
    let script = |name: &str, extra: &[&str]| {
        Command::new("bash")
            .arg(repo.join("deploy/local").join(name))
            .arg("--state-dir")
            .arg(&state_dir)
            .args(extra)
            .env("VIRTPLANE_BIN_DIR", virtplane_e2e::bin_dir())
            .output()
            .expect("run script")
    };
    struct Down<F: Fn()>(F);
    impl<F: Fn()> Drop for Down<F> {
        fn drop(&mut self) {
            (self.0)();
        }
    }
    let _down = Down(|| {
        let _ = script("down.sh", &[]);
    });
    let pid_of = |binary: &str| -> i32 {
        std::fs::read_to_string(state_dir.join("run").join(format!("{binary}.pid")))
            .expect("pid file")
            .trim()
            .parse()
            .expect("pid")
    };
    let net_list = || {
        let env = std::fs::read_to_string(state_dir.join("env")).expect("env file");
        let value = |name: &str| {
            env.lines()
                .find_map(|l| l.strip_prefix(&format!("export {name}=")))
                .map(|v| v.trim_matches('\'').to_owned())
                .expect("variable in env file")
        };
        Command::new(binary("virtctl"))
            .env("VIRTCTL_CONFIG", "/nonexistent/virtctl.yaml")
            .env("VIRTPLANE_SERVER", value("VIRTPLANE_SERVER"))
            .env("VIRTPLANE_TOKEN", value("VIRTPLANE_TOKEN"))
            .args(["--timeout", "20", "net-list", "--name"])
            .output()
            .expect("virtctl")
    };

    let up = script("up.sh", &["--driver", "test", "--detach"]);
    let up_text = String::from_utf8_lossy(&up.stdout).into_owned();
    assert!(
        up.status.success(),
        "up.sh failed:\n{up_text}\n{}",
        String::from_utf8_lossy(&up.stderr)
    );
    assert!(up_text.contains("network service: unix:"), "{up_text}");
    let listed = net_list();
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout),
        "default\n",
        "{listed:?}"
    );

    // A gateway from before the network service (no network backend) is restarted.
    let gateway = pid_of("virtplane-gateway");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(gateway),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("stop gateway");
    while std::fs::read_to_string(format!("/proc/{gateway}/stat"))
        .is_ok_and(|s| !s.contains(") Z "))
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Started in the background by a shell that exits, as up.sh starts daemons: not our
    // child, so up.sh sees it gone as soon as it stops it.
    let spawned = Command::new("bash")
        .arg("-c")
        .arg(r#""$0" --listen "unix:$1" --tokens "$2" --backend "domain=unix:$3" >/dev/null 2>&1 </dev/null & echo $!"#)
        .arg(binary("virtplane-gateway"))
        .arg(state_dir.join("run/gateway.sock"))
        .arg(state_dir.join("tokens"))
        .arg(state_dir.join("run/domain.sock"))
        .output()
        .expect("old-style gateway");
    let old_gateway = String::from_utf8_lossy(&spawned.stdout).trim().to_owned();
    // up.sh and down.sh find it by its pid file.
    std::fs::write(
        state_dir.join("run/virtplane-gateway.pid"),
        format!("{old_gateway}\n"),
    )
    .expect("pid file");
    let again = script("up.sh", &["--detach"]);
    let again_text = String::from_utf8_lossy(&again.stdout).into_owned();
    assert!(again.status.success(), "{again_text}");
    assert!(
        again_text.contains("restarting virtplane-gateway to route the network service"),
        "{again_text}"
    );
    let networkd = pid_of("virtplane-networkd");
    assert!(
        again_text.contains("virtplane-networkd is already running"),
        "{again_text}"
    );
    let listed = net_list();
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout),
        "default\n",
        "{listed:?}"
    );

    let down = script("down.sh", &[]);
    let down_text = String::from_utf8_lossy(&down.stdout).into_owned();
    assert!(down.status.success(), "{down_text}");
    assert!(
        down_text.contains(&format!("stopped virtplane-networkd (pid {networkd})")),
        "{down_text}"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while Path::new(&format!("/proc/{networkd}")).exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        !Path::new(&format!("/proc/{networkd}")).exists(),
        "networkd still runs"
    );
}
