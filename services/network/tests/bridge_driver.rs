//! The `bridge` driver through its driver API, on the real kernel, nft and dnsmasq, each test
//! in a network namespace of its own (see `common`): a NAT network defined and started is a
//! bridge with its address, a table of ours and a dnsmasq that hands out leases, which the
//! driver reports; a live `net-update` reaches dnsmasq; a restarted driver re-adopts the
//! running network without touching it; destroying it removes everything. Bad input — a
//! bridge name the host already uses, an overlapping subnet, a DHCP range outside the
//! subnet, an invalid MAC, a duplicate name — is refused clearly and leaves nothing.

mod common;

use std::path::Path;

use common::dhcp::dhcp_client;
use common::{addresses, has_flag, in_own_netns, ip, link, require};
use virtplane_network::driver::{self, DriverConfig, DriverKind, NetworkDriver};
use virtplane_network::error::NetworkError;
use virtplane_network::host::nft::{self, Family, Table};
use virtplane_network::model::{Impact, NetworkRef, UpdateSpec};
use virtplane_network::xml::{UpdateCommand, UpdateSection, parse_network};

const NAT_XML: &str = "<network>
  <name>vpnat</name>
  <forward mode='nat'/>
  <bridge name='vpnat0' stp='off'/>
  <mac address='52:54:00:5a:00:01'/>
  <ip address='192.168.91.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='192.168.91.100' end='192.168.91.150'/>
    </dhcp>
  </ip>
</network>
";

const GUEST_MAC: &str = "52:54:00:5a:00:42";

fn name(network: &str) -> NetworkRef {
    NetworkRef::Name(network.into())
}

/// State and run dirs of one driver, kept across its restarts.
struct Dirs {
    _top: tempfile::TempDir,
    config: DriverConfig,
}

impl Dirs {
    fn new() -> Self {
        let top = tempfile::Builder::new()
            .prefix("vp-bridge-drv-")
            .tempdir_in("/tmp")
            .unwrap();
        let config = DriverConfig {
            state_dir: top.path().join("state"),
            run_dir: top.path().join("run"),
        };
        Self { _top: top, config }
    }

    async fn open(&self) -> std::sync::Arc<dyn NetworkDriver> {
        driver::build(DriverKind::Bridge, &self.config)
            .await
            .expect("open the bridge driver")
    }
}

async fn table_exists(network: &str) -> bool {
    nft::exists(&Table::new(Family::Inet, &format!("virtplane_{network}")).unwrap())
        .await
        .unwrap()
}

fn dnsmasq_pid(dirs: &Dirs, network: &str) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(
        dirs.config
            .run_dir
            .join("dnsmasq")
            .join(format!("{network}.pid")),
    )
    .ok()?
    .trim()
    .parse()
    .ok()?;
    Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
}

fn update(section: UpdateSection, xml: &str) -> UpdateSpec {
    UpdateSpec {
        command: UpdateCommand::AddLast,
        section,
        parent_index: None,
        xml: xml.into(),
        impact: Impact {
            live: true,
            config: true,
        },
    }
}

#[test]
fn a_nat_network_runs_serves_leases_survives_a_restart_and_goes_away() {
    require("dnsmasq", "dnsmasq-base");
    require("nft", "nftables");
    require("busybox", "busybox");
    in_own_netns(|| async {
        let dirs = Dirs::new();
        let driver = dirs.open().await;
        // The bridge driver makes no network by itself.
        assert!(driver.list(&Default::default()).is_empty());

        driver
            .define(parse_network(NAT_XML).unwrap())
            .await
            .unwrap();
        assert!(
            link("vpnat0").is_none(),
            "defining changes nothing on the host"
        );
        driver.start(&name("vpnat")).await.unwrap();
        let bridge = link("vpnat0").expect("the bridge exists");
        assert!(has_flag(&bridge, "UP"), "{bridge}");
        assert_eq!(bridge["address"], "52:54:00:5a:00:01");
        assert_eq!(addresses("vpnat0"), ["192.168.91.1/24"]);
        assert!(table_exists("vpnat").await);
        let pid = dnsmasq_pid(&dirs, "vpnat").expect("dnsmasq runs");

        // A guest asks for an address and the driver reports its lease.
        let client = dhcp_client(
            dirs.config.run_dir.as_path(),
            "vpnat0",
            "192.168.91.1",
            GUEST_MAC,
            None,
        )
        .await;
        let address = client.lease.expect(&client.output);
        let leases = driver.leases(&name("vpnat"), None).await.unwrap();
        assert_eq!(leases.len(), 1, "{leases:?}");
        assert_eq!(leases[0].ip.to_string(), address);
        assert_eq!(leases[0].mac.as_deref(), Some(GUEST_MAC));
        assert_eq!((leases[0].iface.as_str(), leases[0].prefix), ("vpnat0", 24));
        assert!(
            driver
                .leases(&name("vpnat"), Some("52:54:00:00:00:01"))
                .await
                .unwrap()
                .is_empty()
        );

        // A live host entry: the next DHCP exchange gives the guest its fixed address.
        driver
            .update(
                &name("vpnat"),
                update(
                    UpdateSection::IpDhcpHost,
                    &format!("<host mac='{GUEST_MAC}' name='web' ip='192.168.91.7'/>"),
                ),
            )
            .await
            .unwrap();
        let client = dhcp_client(
            dirs.config.run_dir.as_path(),
            "vpnat0",
            "192.168.91.1",
            GUEST_MAC,
            None,
        )
        .await;
        assert_eq!(
            client.lease.as_deref(),
            Some("192.168.91.7"),
            "{}",
            client.output
        );
        let pid = dnsmasq_pid(&dirs, "vpnat").unwrap_or(pid);

        // The service restarts: the network is adopted as it runs, the same dnsmasq.
        drop(driver);
        let driver = dirs.open().await;
        let info = driver.info(&name("vpnat")).await.unwrap();
        assert!(info.summary.active, "{info:?}");
        assert_eq!(dnsmasq_pid(&dirs, "vpnat"), Some(pid));
        assert!(table_exists("vpnat").await);
        assert!(info.warnings.is_empty(), "{:?}", info.warnings);

        // Destroy removes bridge, table and dnsmasq; the definition stays.
        driver.destroy(&name("vpnat")).await.unwrap();
        assert!(link("vpnat0").is_none(), "the bridge is gone");
        assert!(!table_exists("vpnat").await);
        assert_eq!(dnsmasq_pid(&dirs, "vpnat"), None);
        assert!(!driver.lookup(&name("vpnat")).unwrap().active);
        driver.undefine(&name("vpnat")).await.unwrap();
        assert!(driver.list(&Default::default()).is_empty());
    });
}

#[test]
fn a_forward_policy_that_drops_is_reported_in_info() {
    require("dnsmasq", "dnsmasq-base");
    require("nft", "nftables");
    in_own_netns(|| async {
        let dirs = Dirs::new();
        let driver = dirs.open().await;
        driver
            .create(parse_network(NAT_XML).unwrap())
            .await
            .unwrap();
        // Someone else's firewall (in the test's own namespace) drops forwarded packets.
        let out = std::process::Command::new("nft")
            .args([
                "add table inet other_fw; \
                 add chain inet other_fw blockall { type filter hook forward priority 0; policy drop; }",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let info = driver.info(&name("vpnat")).await.unwrap();
        assert!(
            info.warnings
                .iter()
                .any(|w| w.contains("other_fw") && w.contains("policy drop")),
            "{:?}",
            info.warnings
        );
        // The foreign table is reported, never touched.
        driver.destroy(&name("vpnat")).await.unwrap();
        let out = std::process::Command::new("nft")
            .args(["list", "table", "inet", "other_fw"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    });
}

#[test]
fn bad_input_is_refused_and_leaves_nothing() {
    require("dnsmasq", "dnsmasq-base");
    require("nft", "nftables");
    in_own_netns(|| async {
        let dirs = Dirs::new();
        let driver = dirs.open().await;
        driver
            .define(parse_network(NAT_XML).unwrap())
            .await
            .unwrap();
        driver.start(&name("vpnat")).await.unwrap();

        // A bridge name the host already uses for something that is not ours.
        ip(&["link", "add", "taken0", "type", "bridge"]);
        let taken = parse_network(
            "<network><name>taken</name><bridge name='taken0'/>\
             <ip address='10.77.0.1' prefix='24'><dhcp>\
             <range start='10.77.0.10' end='10.77.0.20'/></dhcp></ip></network>",
        )
        .unwrap();
        driver.define(taken).await.unwrap();
        let error = driver.start(&name("taken")).await.unwrap_err();
        assert!(matches!(error, NetworkError::InUse(_)), "{error:?}");
        let text = error.to_string();
        assert!(
            text.contains("taken0") && text.contains("network 'taken'"),
            "{text}"
        );
        assert!(link("taken0").is_some(), "the host's bridge is left alone");
        assert!(!table_exists("taken").await, "no half-made network");
        assert_eq!(dnsmasq_pid(&dirs, "taken"), None);
        assert!(!driver.lookup(&name("taken")).unwrap().active);

        // A subnet overlapping the running network's.
        let overlap = parse_network(
            "<network><name>overlap</name><bridge name='vpover0'/>\
             <ip address='192.168.91.129' prefix='25'/></network>",
        )
        .unwrap();
        let error = driver.create(overlap).await.unwrap_err();
        assert!(error.to_string().contains("192.168.91"), "{error}");
        assert!(link("vpover0").is_none());

        // A duplicate name with another UUID.
        let mut twin = parse_network(NAT_XML).unwrap();
        twin.uuid = "11111111-2222-3333-4444-555555555555".into();
        let error = driver.define(twin).await.unwrap_err();
        assert!(matches!(error, NetworkError::NameTaken { .. }), "{error:?}");

        // XML the parser refuses, naming what is wrong.
        let outside = parse_network(
            "<network><name>outside</name><ip address='10.78.0.1' prefix='24'><dhcp>\
             <range start='10.79.0.10' end='10.79.0.20'/></dhcp></ip></network>",
        )
        .unwrap_err();
        assert!(outside.to_string().contains("10.79.0.10"), "{outside}");
        let mac = parse_network(
            "<network><name>badmac</name><mac address='52:54:00:zz:00:01'/></network>",
        )
        .unwrap_err();
        assert!(mac.to_string().contains("52:54:00:zz:00:01"), "{mac}");

        // Through all of it the running network was untouched.
        assert!(driver.lookup(&name("vpnat")).unwrap().active);
        assert!(table_exists("vpnat").await);
        driver.destroy(&name("vpnat")).await.unwrap();
    });
}
