//! `<interface type='bridge'>` end to end (issue #3 item 4), with the real binaries and a real
//! guest under TCG, in a network namespace the test makes (never the host's interfaces):
//! the domain service runs inside it (`ip netns exec`), the gateway outside.
//!
//! A missing bridge is refused with its name and leaves no tap. Then the guest boots with a
//! bridge interface without `<target dev>`: the service creates a `vnetN` tap, attached to the
//! bridge, and records the name in the live XML. The bridge and (through the serial console)
//! the guest get addresses; the namespace pings the guest; `domifstat` counts the traffic in
//! the guest's view. The service is killed and restarted: the running VM keeps its tap. The
//! VM is destroyed: its tap goes. Started again and killed while the service is down: the
//! restarted service removes the tap of the VM that ended without it.
//!
//! Deadlines only stop hangs; nothing asserts a duration.

use std::path::Path;
use std::time::{Duration, Instant};

use virtplane_e2e::guest::{Console, build_guest, kernel};
use virtplane_e2e::netns::NetNs;
use virtplane_e2e::{ADMIN_TOKEN, Stack};

/// Hang guard for the boot (kernel + initramfs under TCG on a loaded 2-core machine).
const BOOT_DEADLINE: Duration = Duration::from_secs(120);
const HANG_GUARD: Duration = Duration::from_secs(30);

const BRIDGE: &str = "vpbr0";
/// Addresses inside the test's namespace only (TEST-NET-1).
const HOST_IP: &str = "192.0.2.1";
const GUEST_IP: &str = "192.0.2.2";

fn guest_xml(name: &str, guest: &Path, bridge: &str) -> String {
    let kernel = kernel(guest);
    format!(
        r#"<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>128</memory>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{kernel}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>console=ttyS0</cmdline>
  </os>
  <features><acpi/></features>
  <devices>
    <interface type='bridge'>
      <source bridge='{bridge}'/>
      <model type='virtio'/>
    </interface>
    <serial type='pty'><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <memballoon model='none'/>
  </devices>
</domain>"#,
        kernel = kernel.display(),
        initrd = guest.join("initrd.img").display(),
    )
}

/// `virtctl domifstat NAME DEV` → (rx_packets, tx_packets) as the guest sees them.
fn packets(stack: &Stack, name: &str, dev: &str) -> (u64, u64) {
    let out = stack.ok(&["domifstat", name, dev]);
    let value = |key: &str| -> u64 {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{dev} {key} ")))
            .unwrap_or_else(|| panic!("no {key} in:\n{out}"))
            .trim()
            .parse()
            .unwrap()
    };
    (value("rx_packets"), value("tx_packets"))
}

/// Waits (bounded) until `check` holds.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let until = Instant::now() + HANG_GUARD;
    while !check() {
        assert!(Instant::now() < until, "{what} (hang guard)");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn bridge_interface_with_a_tap_the_service_makes() {
    let guest = build_guest();
    let ns = NetNs::create();
    ns.ip(&["link", "add", BRIDGE, "type", "bridge"]);
    ns.ip(&["addr", "add", &format!("{HOST_IP}/24"), "dev", BRIDGE]);
    ns.ip(&["link", "set", BRIDGE, "up"]);
    let mut stack = Stack::start_in_netns("qemu", ns.name());

    // A missing bridge: a clear refusal naming it, and no tap left behind.
    let xml = stack.file("nobr.xml", &guest_xml("e2e-nobr", &guest, "nosuchbr0"));
    stack.ok(&["define", &xml]);
    let refused = stack.fails(Some(ADMIN_TOKEN), &["start", "e2e-nobr"]);
    assert!(
        refused.contains("cannot start domain 'e2e-nobr': bridge 'nosuchbr0' does not exist"),
        "{refused}"
    );
    assert_eq!(ns.taps(), Vec::<String>::new());
    stack.ok(&["undefine", "e2e-nobr"]);

    // Boot with a bridge interface and no <target dev>.
    let name = "e2e-bridge";
    let xml = stack.file("bridge.xml", &guest_xml(name, &guest, BRIDGE));
    stack.ok(&["define", &xml]);
    stack.ok(&["start", name]);
    // A generated vnetN (N counts up per service, as libvirt's; the refused start used one).
    let taps = ns.taps();
    let [vnet] = taps.as_slice() else {
        panic!("one tap expected: {taps:?}")
    };
    let vnet = vnet.as_str();
    assert!(vnet.starts_with("vnet"), "{vnet}");
    let tap = ns.link(vnet).unwrap();
    assert_eq!(tap["master"], BRIDGE, "{tap}");
    let live = stack.ok(&["dumpxml", name]);
    assert!(live.contains(&format!("<target dev='{vnet}'/>")), "{live}");
    let inactive = stack.ok(&["dumpxml", name, "--inactive"]);
    assert!(!inactive.contains(vnet), "{inactive}");
    let list = stack.ok(&["domiflist", name]);
    assert!(
        list.lines()
            .any(|l| l.contains(vnet) && l.contains("bridge") && l.contains(BRIDGE)),
        "{list}"
    );

    // The guest gets an address over its console; the namespace pings it.
    let mut console = Console::open(&stack, name);
    console.wait_for("virtplane-guest: ready", BOOT_DEADLINE);
    console.type_text(&format!(
        "\rkillall udhcpc; ip addr add {GUEST_IP}/24 dev eth0 && echo addr-$((40+2))-set\r"
    ));
    console.wait_for("addr-42-set", HANG_GUARD);
    let before = packets(&stack, name, vnet);
    let until = Instant::now() + HANG_GUARD;
    loop {
        let ping = ns.exec(&["ping", "-c1", "-W2", GUEST_IP]);
        if ping.status.success() {
            break;
        }
        assert!(
            Instant::now() < until,
            "the guest never answered a ping: {}\n{}\nconsole:\n{}",
            String::from_utf8_lossy(&ping.stdout),
            String::from_utf8_lossy(&ping.stderr),
            console.out()
        );
    }
    // The guest received the request and sent the reply: its rx and tx both grew (the tap's
    // host-side counters, swapped as libvirt reports them).
    let after = packets(&stack, name, vnet);
    assert!(
        after.0 > before.0 && after.1 > before.1,
        "{before:?} → {after:?}"
    );
    let stats = stack.ok(&["domstats", name, "--interface"]);
    assert!(stats.contains(&format!("net.0.name={vnet}")), "{stats}");
    drop(console);

    // A service restart leaves a running VM's tap alone.
    stack.kill_domaind();
    assert!(ns.link(vnet).is_some());
    stack.start_domaind();
    assert!(stack.ok(&["domstate", name]).contains("running"));
    assert_eq!(ns.taps(), taps);
    packets(&stack, name, vnet);

    // Destroy: the tap goes.
    stack.ok(&["destroy", name]);
    assert_eq!(ns.taps(), Vec::<String>::new());

    // A VM that ends while the service is down: the restarted service removes its tap.
    stack.ok(&["start", name]);
    let tap = ns.taps();
    assert_eq!(tap.len(), 1, "{tap:?}");
    stack.kill_domaind();
    for pid in stack.qemu_pids() {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .expect("kill QEMU");
    }
    eventually("QEMU gone", || stack.qemu_pids().is_empty());
    assert_eq!(ns.taps(), tap, "persistent taps outlive QEMU");
    stack.start_domaind();
    assert!(stack.ok(&["domstate", name]).contains("shut off"));
    assert_eq!(ns.taps(), Vec::<String>::new());
    stack.ok(&["undefine", name]);
}
