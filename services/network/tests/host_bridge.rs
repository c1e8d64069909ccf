//! `host::bridge` and `host::sysctl` against the real kernel, each test in a network
//! namespace of its own (see `common`): bridges are created, given addresses, checked with
//! `ip -j`, and deleted; names that are taken are refused without harm.

mod common;

use std::net::IpAddr;

use common::{addresses, has_flag, in_own_netns, ip, link};
use virtplane_network::host::bridge::{BridgeConfig, BridgeError, Netlink};
use virtplane_network::host::sysctl::Sysctl;

fn config(name: &str) -> BridgeConfig {
    BridgeConfig {
        name: name.into(),
        mac: Some([0x52, 0x54, 0x00, 0x0a, 0x0b, 0x0c]),
        mtu: Some(1400),
        stp: true,
        forward_delay_secs: 0,
    }
}

#[test]
fn a_bridge_is_created_with_its_options_and_addresses_then_deleted() {
    in_own_netns(|| async {
        let netlink = Netlink::open().unwrap();
        let bridge = netlink.create_bridge(&config("vpbr0")).await.unwrap();
        assert!(bridge.is_bridge());
        assert_eq!(bridge.mac.as_deref(), Some("52:54:00:0a:0b:0c"));
        assert_eq!(bridge.mtu, Some(1400));
        assert!(!bridge.up, "created down; the driver brings it up last");

        let shown = link("vpbr0").expect("the bridge exists");
        assert_eq!(shown["linkinfo"]["info_kind"], "bridge", "{shown}");
        assert_eq!(shown["address"], "52:54:00:0a:0b:0c", "{shown}");
        assert_eq!(shown["mtu"], 1400, "{shown}");
        let data = &shown["linkinfo"]["info_data"];
        assert_eq!(data["stp_state"], 1, "{shown}");
        // libvirt's `stp='on' delay='0'`: the kernel's STP minimum, 2 s.
        assert_eq!(data["forward_delay"], 200, "{shown}");
        assert!(!has_flag(&shown, "UP"), "{shown}");

        let v4: IpAddr = "192.168.100.1".parse().unwrap();
        let v6: IpAddr = "2001:db8:100::1".parse().unwrap();
        netlink.add_address(&bridge, v4, 24).await.unwrap();
        netlink.add_address(&bridge, v6, 64).await.unwrap();
        let error = netlink.add_address(&bridge, v4, 24).await.unwrap_err();
        assert!(
            matches!(error, BridgeError::AddressExists { .. }),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            "cannot add address 192.168.100.1/24 to 'vpbr0': the address is already on the \
             bridge"
        );
        let error = netlink.add_address(&bridge, v4, 33).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid prefix length /33 for 192.168.100.1"
        );
        netlink.set_up(&bridge).await.unwrap();

        let shown = link("vpbr0").unwrap();
        assert!(has_flag(&shown, "UP"), "{shown}");
        let listed = addresses("vpbr0");
        assert!(
            listed.contains(&"192.168.100.1/24".to_owned()),
            "{listed:?}"
        );
        assert!(
            listed.contains(&"2001:db8:100::1/64".to_owned()),
            "{listed:?}"
        );

        // The lookup sees the same as `ip`.
        let found = netlink.device("vpbr0").await.unwrap().expect("found");
        assert!(found.up);
        assert_eq!(found.stp, Some(true));
        assert_eq!(found.forward_delay_centisecs, Some(200));
        let found_addresses: Vec<String> = found.addresses.iter().map(|a| a.to_string()).collect();
        assert!(
            found_addresses.contains(&"192.168.100.1/24".to_owned()),
            "{found_addresses:?}"
        );
        assert!(
            found_addresses.contains(&"2001:db8:100::1/64".to_owned()),
            "{found_addresses:?}"
        );
        assert!(netlink.names().await.unwrap().contains("vpbr0"));

        assert!(netlink.delete_bridge("vpbr0").await.unwrap());
        assert!(link("vpbr0").is_none(), "the bridge is gone");
        assert_eq!(netlink.device("vpbr0").await.unwrap(), None);
        assert!(
            !netlink.delete_bridge("vpbr0").await.unwrap(),
            "nothing to delete"
        );
    });
}

#[test]
fn stp_off_keeps_the_forward_delay_and_the_kernel_may_choose_the_mac() {
    in_own_netns(|| async {
        let netlink = Netlink::open().unwrap();
        let bridge = netlink
            .create_bridge(&BridgeConfig {
                name: "vpbr1".into(),
                mac: None,
                mtu: None,
                stp: false,
                forward_delay_secs: 5,
            })
            .await
            .unwrap();
        let shown = link("vpbr1").unwrap();
        let data = &shown["linkinfo"]["info_data"];
        assert_eq!(data["stp_state"], 0, "{shown}");
        assert_eq!(data["forward_delay"], 500, "{shown}");
        assert_eq!(shown["mtu"], 1500, "{shown}");
        assert_eq!(bridge.stp, Some(false));
        assert_eq!(bridge.mac.as_deref(), shown["address"].as_str());

        // The MTU stays pinned when a port with a larger one joins.
        netlink.set_mtu(&bridge, 1300).await.unwrap();
        ip(&[
            "link", "add", "vp-a", "type", "veth", "peer", "name", "vp-b",
        ]);
        ip(&["link", "set", "vp-a", "master", "vpbr1"]);
        assert_eq!(link("vpbr1").unwrap()["mtu"], 1300);
        netlink.delete_bridge("vpbr1").await.unwrap();
        assert!(link("vp-a").is_some(), "ports are let go, not deleted");
    });
}

#[test]
fn taken_names_and_bad_settings_are_refused_without_harm() {
    in_own_netns(|| async {
        let netlink = Netlink::open().unwrap();
        netlink.create_bridge(&config("vpbr0")).await.unwrap();
        let error = netlink.create_bridge(&config("vpbr0")).await.unwrap_err();
        assert!(matches!(error, BridgeError::BridgeExists(_)), "{error:?}");

        ip(&[
            "link", "add", "vpveth0", "type", "veth", "peer", "name", "vpveth1",
        ]);
        let error = netlink.create_bridge(&config("vpveth0")).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            "cannot create bridge 'vpveth0': the name is taken by a veth device, not a \
             bridge; choose another bridge name"
        );
        let error = netlink.delete_bridge("vpveth0").await.unwrap_err();
        assert_eq!(
            error.to_string(),
            "'vpveth0' is not a bridge but a veth device; it is left alone"
        );
        assert!(link("vpveth0").is_some(), "the veth is untouched");
        let error = netlink.delete_bridge("lo").await.unwrap_err();
        assert!(matches!(error, BridgeError::NotABridge { .. }), "{error:?}");

        // An MTU the kernel refuses: an error naming it, and no bridge left behind.
        let mut bad = config("vpbr2");
        bad.mtu = Some(10);
        let error = netlink.create_bridge(&bad).await.unwrap_err();
        let text = error.to_string();
        assert!(
            text.starts_with("cannot set the MTU of 'vpbr2' to 10: "),
            "{text}"
        );
        assert!(link("vpbr2").is_none(), "no half-made bridge");

        let error = netlink
            .create_bridge(&config("vpbr-far-too-long"))
            .await
            .unwrap_err();
        assert!(
            matches!(error, BridgeError::InvalidName { .. }),
            "{error:?}"
        );
    });
}

#[test]
fn sysctls_are_set_in_the_namespace_only_and_only_once() {
    let host_forwarding = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let ran = in_own_netns(|| async {
        let sysctl = Sysctl::default();
        let before = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
        assert_eq!(
            before.trim(),
            "0",
            "a new namespace starts without forwarding"
        );
        assert!(sysctl.enable_ipv4_forwarding().unwrap(), "it was off");
        assert!(!sysctl.enable_ipv4_forwarding().unwrap(), "a no-op now");
        let after = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
        assert_eq!(after.trim(), "1");
        assert!(sysctl.enable_ipv6_forwarding().unwrap());

        let netlink = Netlink::open().unwrap();
        let mut without_v6 = config("vpbr3");
        without_v6.mtu = None;
        netlink.create_bridge(&without_v6).await.unwrap();
        sysctl.configure_bridge_ipv6("vpbr3", false).unwrap();
        let disabled =
            std::fs::read_to_string("/proc/sys/net/ipv6/conf/vpbr3/disable_ipv6").unwrap();
        assert_eq!(disabled.trim(), "1");
        sysctl.configure_bridge_ipv6("vpbr3", true).unwrap();
        for (key, value) in [("disable_ipv6", "0"), ("accept_ra", "0"), ("autoconf", "0")] {
            let path = format!("/proc/sys/net/ipv6/conf/vpbr3/{key}");
            assert_eq!(
                std::fs::read_to_string(&path).unwrap().trim(),
                value,
                "{key}"
            );
        }
    });
    if ran {
        assert_eq!(
            std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
            host_forwarding,
            "the host's own setting is untouched"
        );
    }
}
