//! `host::network`: a whole network started, found again (as after a restart of the service),
//! repaired, and stopped, against the real kernel, nft and dnsmasq, in a network namespace of
//! the test's own (see `common`); and a start that fails half way leaves nothing behind.

mod common;

use std::net::IpAddr;
use std::path::Path;

use common::{addresses, has_flag, in_own_netns, link, require};
use virtplane_network::host::bridge::{BridgeConfig, IfAddress};
use virtplane_network::host::dnsmasq::DnsmasqFiles;
use virtplane_network::host::network::{self, DnsmasqPlan, Firewall, HostError, HostPlan};
use virtplane_network::host::nft::{self, Family, Table};

const BRIDGE: &str = "vpnet0";

fn plan(dir: &Path, dnsmasq_conf_extra: &str) -> HostPlan {
    let files = DnsmasqFiles::in_dir(dir, "vpnet");
    let hosts = dir.join("vpnet.hostsfile");
    let table = Table::new(Family::Inet, "virtplane_vpnet").unwrap();
    HostPlan {
        network: "vpnet".into(),
        bridge: BridgeConfig {
            name: BRIDGE.into(),
            mac: Some([0x52, 0x54, 0x00, 0x0a, 0x0b, 0x0c]),
            mtu: None,
            stp: false,
            forward_delay_secs: 0,
        },
        addresses: vec![IfAddress {
            address: "192.168.79.1".parse::<IpAddr>().unwrap(),
            prefix: 24,
        }],
        forward_ipv4: true,
        forward_ipv6: false,
        firewall: Some(Firewall {
            ruleset: format!(
                "table inet virtplane_vpnet {{\n  chain input {{\n    type filter hook input \
                 priority 0; policy accept;\n    iifname \"{BRIDGE}\" udp dport {{ 53, 67 }} \
                 accept\n  }}\n}}\n"
            ),
            tables: vec![table],
        }),
        dnsmasq: Some(DnsmasqPlan {
            conf: format!(
                "strict-order\nno-resolv\nexcept-interface=lo\nbind-dynamic\n\
                 interface={BRIDGE}\ndhcp-range=192.168.79.2,192.168.79.254,255.255.255.0\n\
                 dhcp-hostsfile={}\n{dnsmasq_conf_extra}",
                hosts.display()
            ),
            hosts_files: vec![(hosts, "52:54:00:00:00:09,192.168.79.9\n".into())],
            files,
        }),
    }
}

fn run_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("vp-hostnet-")
        .tempdir_in("/tmp")
        .unwrap();
    // dnsmasq drops to `nobody` and must still read its hosts files.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

async fn our_table_exists() -> bool {
    nft::exists(&Table::new(Family::Inet, "virtplane_vpnet").unwrap())
        .await
        .unwrap()
}

#[test]
fn a_network_starts_is_found_again_repaired_and_stopped() {
    require("dnsmasq", "dnsmasq-base");
    require("nft", "nftables");
    in_own_netns(|| async {
        let dir = run_dir();
        let plan = plan(dir.path(), "");
        let running = network::start(&plan).await.unwrap();
        let bridge = link(BRIDGE).expect("the bridge exists");
        assert!(has_flag(&bridge, "UP"), "{bridge}");
        assert_eq!(bridge["address"], "52:54:00:0a:0b:0c");
        assert!(addresses(BRIDGE).contains(&"192.168.79.1/24".to_owned()));
        assert!(our_table_exists().await);
        assert_eq!(
            std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
                .unwrap()
                .trim(),
            "1"
        );
        let hosts = std::fs::read_to_string(dir.path().join("vpnet.hostsfile")).unwrap();
        assert_eq!(hosts, "52:54:00:00:00:09,192.168.79.9\n");
        let pid = running.dnsmasq.as_ref().unwrap().pid();
        drop(running); // the service goes away; the network stays

        // A restarted service finds it as it was: the same dnsmasq.
        let found = network::reattach(&plan)
            .await
            .unwrap()
            .expect("still running");
        assert_eq!(found.dnsmasq.as_ref().unwrap().pid(), pid);
        drop(found);

        // Someone killed dnsmasq and flushed our table meanwhile: both come back.
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        wait_gone(pid);
        nft::delete(&Table::new(Family::Inet, "virtplane_vpnet").unwrap())
            .await
            .unwrap();
        let repaired = network::reattach(&plan).await.unwrap().expect("repaired");
        let new_pid = repaired.dnsmasq.as_ref().unwrap().pid();
        assert_ne!(new_pid, pid);
        assert!(our_table_exists().await);

        network::stop(&plan, repaired).await.unwrap();
        assert!(link(BRIDGE).is_none(), "the bridge is gone");
        assert!(!our_table_exists().await);
        assert!(!alive(new_pid), "dnsmasq {new_pid} was stopped");
        // Stopped: nothing to find any more.
        assert!(network::reattach(&plan).await.unwrap().is_none());
    });
}

#[test]
fn a_failed_start_leaves_nothing_behind() {
    require("dnsmasq", "dnsmasq-base");
    require("nft", "nftables");
    in_own_netns(|| async {
        let dir = run_dir();
        // dnsmasq refuses an unknown option: the last step fails.
        let plan = plan(dir.path(), "no-such-option-at-all\n");
        let error = network::start(&plan).await.unwrap_err();
        assert!(matches!(error, HostError::Dnsmasq(_)), "{error:?}");
        assert!(
            error.to_string().contains("no-such-option-at-all")
                || error.to_string().contains("bad option"),
            "dnsmasq's own words: {error}"
        );
        assert!(link(BRIDGE).is_none(), "the bridge was removed again");
        assert!(!our_table_exists().await, "the table was removed again");
        // And it can then start for real.
        let good = plan_without_error(dir.path());
        let running = network::start(&good).await.unwrap();
        network::stop(&good, running).await.unwrap();
    });
}

fn plan_without_error(dir: &Path) -> HostPlan {
    plan(dir, "")
}

/// Running: it exists and is not a zombie (a daemon that is not our child is reaped by
/// PID 1, which on these machines takes its time).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat.rsplit_once(") ")?.1.chars().next()?;
            Some(state != 'Z' && state != 'X')
        })
        .unwrap_or(false)
}

fn wait_gone(pid: i32) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while alive(pid) {
        assert!(
            std::time::Instant::now() < deadline,
            "dnsmasq {pid} did not go"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The renderers' output, carried out for real: libvirt's default NAT network with a DHCP
/// host and a DNS host starts (nft and dnsmasq accept what was rendered) and stops clean.
#[test]
fn a_rendered_nat_network_runs() {
    require("dnsmasq", "dnsmasq-base");
    require("nft", "nftables");
    in_own_netns(|| async {
        let dir = run_dir();
        let def = virtplane_network::xml::parse_network(
            "<network><name>default</name><forward mode='nat'/>\
             <bridge name='vpnat0' stp='on' delay='0'/><mac address='52:54:00:0a:cd:21'/>\
             <dns><host ip='192.168.124.7'><hostname>seven</hostname></host></dns>\
             <ip address='192.168.124.1' netmask='255.255.255.0'><dhcp>\
             <range start='192.168.124.2' end='192.168.124.254'/>\
             <host mac='52:54:00:00:00:07' name='seven' ip='192.168.124.7'/>\
             </dhcp></ip></network>",
        )
        .unwrap();
        let plan = virtplane_network::render::plan::host_plan(&def, dir.path()).unwrap();
        let running = network::start(&plan).await.unwrap();
        assert!(addresses("vpnat0").contains(&"192.168.124.1/24".to_owned()));
        let table = Table::new(Family::Inet, "virtplane_default").unwrap();
        assert!(nft::exists(&table).await.unwrap());
        let hosts = std::fs::read_to_string(dir.path().join("default.hostsfile")).unwrap();
        assert!(hosts.contains("52:54:00:00:00:07"), "{hosts}");
        let pid = running.dnsmasq.as_ref().expect("dnsmasq runs").pid();
        network::stop(&plan, running).await.unwrap();
        assert!(link("vpnat0").is_none());
        assert!(!nft::exists(&table).await.unwrap());
        assert!(!alive(pid));
    });
}
