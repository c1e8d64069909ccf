//! Virtual networks for real (issue #4): the bridge driver and the qemu driver, real binaries
//! through the gateway, and real guests under TCG, all inside a network namespace the test
//! makes (the services run in it with `ip netns exec`; the gateway stays outside). Nothing
//! touches the host's interfaces, routes or nftables tables.
//!
//! - A NAT network is defined and started: its bridge, its nftables table and its dnsmasq
//!   appear in the namespace. A guest with `<interface type='network'>` boots on it, gets a
//!   DHCP lease, which `net-dhcp-leases` and `domifaddr` show; the namespace pings the guest.
//!   A second card hot-plugged onto the network gets a port and a tap on the bridge and is
//!   seen by the guest; unplugged, port and tap are gone.
//! - The network service is killed with SIGKILL: the guest stays reachable; the restarted
//!   service adopts the network (the same dnsmasq, the lease still known).
//! - An isolated network gives a second guest a lease but no route out.
//! - Stopping the VMs releases their ports; destroying the networks removes bridge, dnsmasq
//!   and table.
//!
//! Deadlines only stop hangs; nothing asserts a duration.

use std::path::Path;
use std::time::{Duration, Instant};

use virtplane_e2e::guest::{Console, build_guest, kernel};
use virtplane_e2e::netns::NetNs;
use virtplane_e2e::{Stack, VIEWER_TOKEN};

/// Hang guard for a boot (kernel + initramfs under TCG on a loaded 2-core machine).
const BOOT_DEADLINE: Duration = Duration::from_secs(120);
const HANG_GUARD: Duration = Duration::from_secs(60);

const NAT_XML: &str = "<network>
  <name>vpnat</name>
  <forward mode='nat'/>
  <bridge name='vpnat0'/>
  <ip address='192.168.123.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='192.168.123.100' end='192.168.123.150'/>
    </dhcp>
  </ip>
</network>
";

const ISOLATED_XML: &str = "<network>
  <name>vpiso</name>
  <bridge name='vpiso0'/>
  <ip address='10.123.0.1' prefix='24'>
    <dhcp>
      <range start='10.123.0.100' end='10.123.0.150'/>
    </dhcp>
  </ip>
</network>
";

const NAT_MAC: &str = "52:54:00:e2:e0:01";
const ISO_MAC: &str = "52:54:00:e2:e0:02";
const HOTPLUG_MAC: &str = "52:54:00:e2:e0:03";

fn guest_xml(name: &str, guest: &Path, network: &str, mac: &str) -> String {
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
    <interface type='network'>
      <source network='{network}'/>
      <mac address='{mac}'/>
      <model type='virtio'/>
    </interface>
    <serial type='pty'><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <memballoon model='none'/>
  </devices>
</domain>"#,
        kernel = kernel(guest).display(),
        initrd = guest.join("initrd.img").display(),
    )
}

/// Waits (bounded) until `check` gives a value.
fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let until = Instant::now() + HANG_GUARD;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < until, "{what} (hang guard)");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The IPv4 address `net-dhcp-leases NETWORK` shows for `mac`, without its prefix.
fn leased_address(stack: &Stack, network: &str, mac: &str) -> Option<String> {
    let out = stack.ok(&["net-dhcp-leases", network]);
    let line = out.lines().find(|l| l.contains(mac))?;
    let cols: Vec<&str> = line.split_whitespace().collect();
    let at = cols.iter().position(|c| *c == "ipv4")?;
    Some(cols.get(at + 1)?.split('/').next()?.to_owned())
}

fn pings(ns: &NetNs, address: &str) -> bool {
    ns.exec(&["ping", "-c1", "-W2", address]).status.success()
}

fn table_exists(ns: &NetNs, network: &str) -> bool {
    ns.exec(&[
        "nft",
        "list",
        "table",
        "inet",
        &format!("virtplane_{network}"),
    ])
    .status
    .success()
}

/// The pid of the network's dnsmasq, from its pid file, while that process lives.
fn dnsmasq_pid(stack: &Stack, network: &str) -> Option<i32> {
    let file = stack
        .dir
        .path()
        .join(format!("run/network/dnsmasq/{network}.pid"));
    let pid: i32 = std::fs::read_to_string(file).ok()?.trim().parse().ok()?;
    Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
}

/// Asks the guest over its console how many ethN cards it has until it says `count`.
fn guest_sees_cards(console: &mut Console, count: usize) {
    let needle = format!("nic-count-{count}");
    let until = Instant::now() + HANG_GUARD;
    loop {
        let seen = console.out().len();
        console.type_text("\recho nic-count-$(ls /sys/class/net | grep -c eth)\r");
        std::thread::sleep(Duration::from_secs(1));
        if console.out()[seen..].contains(&needle) {
            return;
        }
        assert!(
            Instant::now() < until,
            "the guest never saw {count} cards (hang guard)\n{}",
            console.out()
        );
    }
}

/// Rows of `net-port-list NETWORK` (after virsh's two header lines).
fn ports(stack: &Stack, network: &str) -> usize {
    stack
        .ok(&["net-port-list", network])
        .lines()
        .skip(2)
        .filter(|l| !l.trim().is_empty())
        .count()
}

#[test]
fn guests_on_nat_and_isolated_networks() {
    let guest = build_guest();
    let ns = NetNs::create();
    let mut stack = Stack::start_with_network_in_netns("qemu", "bridge", ns.name());

    // The bridge driver starts with no network of its own.
    let list = stack.ok(&["net-list", "--all"]);
    assert_eq!(
        list.lines().skip(2).filter(|l| !l.is_empty()).count(),
        0,
        "{list}"
    );

    let nat = stack.file("nat.xml", NAT_XML);
    stack.ok(&["net-define", &nat]);
    stack.ok(&["net-start", "vpnat"]);
    let bridge = ns.link("vpnat0").expect("the NAT network's bridge");
    assert!(
        bridge["flags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "UP"),
        "{bridge}"
    );
    assert!(table_exists(&ns, "vpnat"), "the network's nftables table");
    let dnsmasq = dnsmasq_pid(&stack, "vpnat").expect("the network's dnsmasq");

    // A guest on the NAT network: a port, a tap on the bridge, a DHCP lease.
    let xml = stack.file(
        "nat-vm.xml",
        &guest_xml("e2e-nat", &guest, "vpnat", NAT_MAC),
    );
    stack.ok(&["define", &xml]);
    stack.ok(&["start", "e2e-nat"]);
    assert_eq!(ports(&stack, "vpnat"), 1);
    let live = stack.ok(&["dumpxml", "e2e-nat"]);
    assert!(live.contains("portid="), "{live}");
    let taps = ns.taps();
    let [tap] = taps.as_slice() else {
        panic!("one tap expected: {taps:?}")
    };
    assert_eq!(ns.link(tap).unwrap()["master"], "vpnat0");
    let mut console = Console::open(&stack, "e2e-nat");
    console.wait_for("virtplane-guest: ready", BOOT_DEADLINE);
    let address = eventually("a lease for the NAT guest", || {
        leased_address(&stack, "vpnat", NAT_MAC)
    });
    assert!(address.starts_with("192.168.123."), "{address}");
    eventually("the NAT guest answers a ping", || {
        pings(&ns, &address).then_some(())
    });

    // domifaddr answers from the lease, saying so; the viewer may read it.
    let addrs = stack.ok(&["domifaddr", "e2e-nat"]);
    assert!(
        addrs.lines().any(|l| l.contains(NAT_MAC)
            && l.contains("ipv4")
            && l.contains(&format!("{address}/24"))),
        "{addrs}"
    );
    let viewer = stack.virtctl(
        Some(VIEWER_TOKEN),
        &["domifaddr", "e2e-nat", "--source", "lease"],
    );
    assert!(viewer.status.success(), "{viewer:?}");

    // A second card on the network, hot-plugged: a second port and tap on the bridge, seen
    // by the guest; unplugged: the port and the tap are gone again.
    stack.ok(&[
        "attach-interface",
        "e2e-nat",
        "network",
        "vpnat",
        "--mac",
        HOTPLUG_MAC,
        // The guest's initramfs has virtio drivers only (the default model is rtl8139).
        "--model",
        "virtio",
        "--live",
    ]);
    assert_eq!(ports(&stack, "vpnat"), 2);
    let taps = ns.taps();
    assert_eq!(taps.len(), 2, "{taps:?}");
    for tap in &taps {
        assert_eq!(ns.link(tap).unwrap()["master"], "vpnat0", "{tap}");
    }
    guest_sees_cards(&mut console, 2);
    stack.ok(&[
        "detach-interface",
        "e2e-nat",
        "network",
        "--mac",
        HOTPLUG_MAC,
        "--live",
    ]);
    assert_eq!(ports(&stack, "vpnat"), 1);
    assert_eq!(ns.taps().len(), 1);
    guest_sees_cards(&mut console, 1);

    // kill -9 the network service: the guest stays reachable; the restarted service adopts
    // the running network as it is.
    stack.kill_networkd();
    assert!(
        pings(&ns, &address),
        "connectivity while the network service is down"
    );
    stack.start_networkd();
    let list = stack.ok(&["net-list"]);
    assert!(
        list.lines()
            .any(|l| l.contains("vpnat") && l.contains("active")),
        "{list}"
    );
    assert_eq!(
        dnsmasq_pid(&stack, "vpnat"),
        Some(dnsmasq),
        "the same dnsmasq"
    );
    assert!(table_exists(&ns, "vpnat"));
    assert_eq!(
        leased_address(&stack, "vpnat", NAT_MAC),
        Some(address.clone())
    );
    assert_eq!(ports(&stack, "vpnat"), 1, "the VM's port survived");
    assert!(pings(&ns, &address));
    drop(console);

    // An isolated network: a lease, but no default route in the guest and so no way out.
    let iso = stack.file("iso.xml", ISOLATED_XML);
    stack.ok(&["net-create", &iso]);
    let xml = stack.file(
        "iso-vm.xml",
        &guest_xml("e2e-iso", &guest, "vpiso", ISO_MAC),
    );
    stack.ok(&["define", &xml]);
    stack.ok(&["start", "e2e-iso"]);
    let mut console = Console::open(&stack, "e2e-iso");
    console.wait_for("virtplane-guest: ready", BOOT_DEADLINE);
    let iso_address = eventually("a lease for the isolated guest", || {
        leased_address(&stack, "vpiso", ISO_MAC)
    });
    assert!(iso_address.starts_with("10.123.0."), "{iso_address}");
    eventually("the isolated guest has its address", || {
        pings(&ns, &iso_address).then_some(())
    });
    console.type_text(
        "\rip route | grep -c default | sed 's/^/default-routes-/'; \
         ping -c1 -W2 192.168.123.1 >/dev/null 2>&1 && echo route-$((1+1))-out || \
         echo route-$((0+0))-out\r",
    );
    console.wait_for("default-routes-0", HANG_GUARD);
    console.wait_for("route-0-out", HANG_GUARD);
    drop(console);

    // Stopping the VMs releases their ports; destroying the networks removes everything.
    stack.ok(&["destroy", "e2e-nat"]);
    stack.ok(&["destroy", "e2e-iso"]);
    assert_eq!(ports(&stack, "vpnat"), 0);
    assert_eq!(ports(&stack, "vpiso"), 0);
    stack.ok(&["net-destroy", "vpnat"]);
    stack.ok(&["net-destroy", "vpiso"]);
    assert!(ns.link("vpnat0").is_none(), "the NAT bridge is gone");
    assert!(ns.link("vpiso0").is_none(), "the isolated bridge is gone");
    assert!(!table_exists(&ns, "vpnat"));
    assert!(!table_exists(&ns, "vpiso"));
    assert_eq!(dnsmasq_pid(&stack, "vpnat"), None);
    assert_eq!(dnsmasq_pid(&stack, "vpiso"), None);
    // The transient isolated network is gone; the NAT network stays defined, inactive.
    let list = stack.ok(&["net-list", "--all"]);
    assert!(!list.contains("vpiso"), "{list}");
    assert!(
        list.lines()
            .any(|l| l.contains("vpnat") && l.contains("inactive")),
        "{list}"
    );
    stack.ok(&["undefine", "e2e-nat"]);
    stack.ok(&["undefine", "e2e-iso"]);
    stack.ok(&["net-undefine", "vpnat"]);
}
