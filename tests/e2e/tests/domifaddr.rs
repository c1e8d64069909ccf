//! `virtctl domifaddr` end to end over the test drivers: the real domain service, network
//! service and gateway. What is checked here is the plumbing and the rules (sources,
//! permissions, a domain that is not running, errors carried through from the network
//! service, a domain service without one); real addresses from real dnsmasq leases are
//! checked in `network_nat.rs`.

use virtplane_e2e::{ADMIN_TOKEN, Stack, VIEWER_TOKEN};

const HEADER: &str = " Name       MAC address          Protocol     Address\n\
    -------------------------------------------------------------------------------\n";

fn domain_on(network: &str, name: &str, mac: &str) -> String {
    format!(
        "<domain type='test'><name>{name}</name><memory>131072</memory>\
         <os><type>hvm</type></os><devices>\
         <interface type='network'><mac address='{mac}'/><source network='{network}'/>\
         </interface></devices></domain>"
    )
}

#[test]
fn domifaddr_over_the_test_drivers() {
    let stack = Stack::start_with_network("test", "test");
    let web = stack.file("web.xml", &domain_on("default", "web", "52:54:00:e2:e0:11"));
    stack.ok(&["define", &web]);

    let stopped = stack.fails(Some(ADMIN_TOKEN), &["domifaddr", "web"]);
    assert!(stopped.contains("domain 'web' is not running"), "{stopped}");

    stack.ok(&["start", "web"]);
    // The test network driver gives out no leases, and nothing answers ARP for the MAC.
    assert_eq!(stack.ok(&["domifaddr", "web"]), HEADER);
    assert_eq!(stack.ok(&["domifaddr", "web", "--source", "arp"]), HEADER);
    let json = stack.ok(&["domifaddr", "web", "-o", "json"]);
    assert_eq!(json.trim(), "[]", "{json}");

    // Leases and ARP are read-only; the agent answers from inside the guest, so asking it
    // needs domain:write, as in libvirt.
    let out = stack.virtctl(Some(VIEWER_TOKEN), &["domifaddr", "web"]);
    assert!(out.status.success(), "{out:?}");
    let denied = stack.fails(
        Some(VIEWER_TOKEN),
        &["domifaddr", "web", "--source", "agent"],
    );
    assert!(denied.contains("domain:write"), "{denied}");
    let agent = stack.fails(
        Some(ADMIN_TOKEN),
        &["domifaddr", "web", "--source", "agent"],
    );
    assert!(
        agent.contains("unsupported by the test driver: the guest agent"),
        "{agent}"
    );

    // The network service's own refusal reaches the user, naming the network.
    let lost = stack.file(
        "lost.xml",
        &domain_on("nosuch", "lost", "52:54:00:e2:e0:12"),
    );
    stack.ok(&["define", &lost]);
    stack.ok(&["start", "lost"]);
    let missing = stack.fails(Some(ADMIN_TOKEN), &["domifaddr", "lost"]);
    assert!(missing.contains("'nosuch'"), "{missing}");
    assert!(missing.contains("DHCP leases"), "{missing}");
}

#[test]
fn domifaddr_without_a_network_service_says_what_is_missing() {
    let stack = Stack::start_with("test");
    let web = stack.file("web.xml", &domain_on("default", "web", "52:54:00:e2:e0:13"));
    stack.ok(&["define", &web]);
    stack.ok(&["start", "web"]);
    let error = stack.fails(Some(ADMIN_TOKEN), &["domifaddr", "web"]);
    assert!(error.contains("--network-service"), "{error}");
    // ARP needs no network service.
    assert_eq!(stack.ok(&["domifaddr", "web", "--source", "arp"]), HEADER);
}
