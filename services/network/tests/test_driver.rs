//! The test driver (the shared core over its simulated host), through the `NetworkDriver`
//! trait: libvirt's transitions and refusals, bridge and subnet claims, `net-update` flags,
//! ports, events, and what a restart of the service (a new driver on the same directories)
//! and a reboot of the host keep.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use virtplane_network::driver::{DriverConfig, NetworkDriver, test};
use virtplane_network::error::NetworkError;
use virtplane_network::model::{Impact, Lifecycle, ListFilter, NetworkRef, UpdateSpec, Updated};
use virtplane_network::xml::{PortDef, UpdateCommand, UpdateSection, parse_network};

fn config(dir: &Path) -> DriverConfig {
    DriverConfig {
        state_dir: dir.join("state"),
        run_dir: dir.join("run"),
    }
}

async fn open(dir: &Path) -> Arc<dyn NetworkDriver> {
    Arc::new(test::open(&config(dir)).await.expect("open test driver"))
}

fn name(n: &str) -> NetworkRef {
    NetworkRef::Name(n.into())
}

fn net_xml(n: &str, third_octet: u8) -> String {
    format!(
        "<network><name>{n}</name><forward mode='nat'/>\
         <ip address='10.9.{third_octet}.1' prefix='24'>\
         <dhcp><range start='10.9.{third_octet}.10' end='10.9.{third_octet}.99'/></dhcp></ip>\
         </network>"
    )
}

fn port(owner: &str, mac: &str) -> PortDef {
    PortDef {
        uuid: uuid::Uuid::new_v4().hyphenated().to_string(),
        owner_name: owner.into(),
        owner_uuid: "6695eb01-f6a4-8304-79aa-97f2502e193f".into(),
        mac: mac.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn the_default_world_is_seeded_once_running_and_autostarted() {
    let dir = tempfile::tempdir().unwrap();
    let driver = open(dir.path()).await;
    let all = driver.list(&ListFilter::default());
    assert_eq!(all.len(), 1);
    let default = &all[0];
    assert_eq!(default.name, "default");
    assert_eq!(default.uuid, "dd8fe884-6c02-601e-7551-cca97df1c5df");
    assert!(default.active && default.persistent && default.autostart);
    assert_eq!(default.bridge.as_deref(), Some("virbr0"));
    let xml = driver.xml(&name("default"), false).unwrap();
    for part in [
        "<forward mode='nat'",
        "<bridge name='virbr0' stp='on' delay='0'/>",
        "<ip address='192.168.122.1' netmask='255.255.255.0'>",
        "<range start='192.168.122.2' end='192.168.122.254'/>",
        "<mac address='52:54:00:",
    ] {
        assert!(xml.contains(part), "{part} missing from\n{xml}");
    }
    assert!(
        driver
            .leases(&name("default"), None)
            .await
            .unwrap()
            .is_empty()
    );
    // Undefined, it stays gone when the service comes back: seeding happens once.
    driver.destroy(&name("default")).await.unwrap();
    driver.undefine(&name("default")).await.unwrap();
    drop(driver);
    let driver = open(dir.path()).await;
    assert!(driver.list(&ListFilter::default()).is_empty());
}

#[tokio::test]
async fn lifecycle_follows_libvirt() {
    let dir = tempfile::tempdir().unwrap();
    let driver = open(dir.path()).await;
    let (summary, updated) = driver
        .define(parse_network(&net_xml("lab", 1)).unwrap())
        .await
        .unwrap();
    assert!(!updated && summary.persistent && !summary.active);
    // A bridge name was chosen that no other network has.
    assert_eq!(summary.bridge.as_deref(), Some("virbr1"));
    let lab = name("lab");
    let error = driver.destroy(&lab).await.unwrap_err();
    assert_eq!(error.to_string(), "network 'lab' is not active");
    assert!(driver.start(&lab).await.unwrap().active);
    let error = driver.start(&lab).await.unwrap_err();
    assert_eq!(error.to_string(), "network 'lab' is already active");
    // Redefining a running network changes its next start only.
    let mut changed = parse_network(&net_xml("lab", 1)).unwrap();
    changed.uuid = summary.uuid.clone();
    changed.title = Some("renumbered".into());
    let (_, updated) = driver.define(changed).await.unwrap();
    assert!(updated);
    assert!(!driver.xml(&lab, false).unwrap().contains("renumbered"));
    assert!(driver.xml(&lab, true).unwrap().contains("renumbered"));
    // Undefining a running network leaves it running, transient; stopping removes it.
    driver.undefine(&lab).await.unwrap();
    let s = driver.lookup(&lab).unwrap();
    assert!(s.active && !s.persistent);
    let error = driver.set_autostart(&lab, true).await.unwrap_err();
    assert!(error.to_string().contains("transient"), "{error}");
    driver.destroy(&lab).await.unwrap();
    assert!(matches!(
        driver.lookup(&lab),
        Err(NetworkError::NotFound(_))
    ));
    // A transient network from XML.
    let s = driver
        .create(parse_network(&net_xml("temp", 2)).unwrap())
        .await
        .unwrap();
    assert!(s.active && !s.persistent);
    let error = driver.undefine(&name("temp")).await.unwrap_err();
    assert!(error.to_string().contains("transient"), "{error}");
    let filter = ListFilter {
        transient: true,
        ..Default::default()
    };
    let names: Vec<String> = driver.list(&filter).into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["temp"]);
}

#[tokio::test]
async fn names_uuids_bridges_and_subnets_are_claimed_once() {
    let dir = tempfile::tempdir().unwrap();
    let driver = open(dir.path()).await;
    // The default network's name with another UUID.
    let error = driver
        .define(parse_network(&net_xml("default", 3)).unwrap())
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("network 'default' already exists with uuid dd8fe884"),
        "{error}"
    );
    // Its UUID under another name.
    let mut twin = parse_network(&net_xml("twin", 3)).unwrap();
    twin.uuid = "dd8fe884-6c02-601e-7551-cca97df1c5df".into();
    let error = driver.define(twin).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "network 'default' is already defined with uuid dd8fe884-6c02-601e-7551-cca97df1c5df"
    );
    // Its bridge.
    let error = driver
        .define(
            parse_network(
                "<network><name>clash</name><bridge name='virbr0'/>\
                 <ip address='10.9.4.1' prefix='24'/></network>",
            )
            .unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "bridge name 'virbr0' already in use.");
    // Its subnet: defined fine, but it cannot run next to `default`.
    driver
        .define(
            parse_network(
                "<network><name>overlap</name><ip address='192.168.122.129' prefix='25'/>\
                 </network>",
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let error = driver.start(&name("overlap")).await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("overlaps 192.168.122.0/24 of active network 'default'"),
        "{error}"
    );
    assert!(!driver.lookup(&name("overlap")).unwrap().active);
    // Names that cannot be file names are refused before anything is stored.
    let error = driver
        .define(parse_network("<network><name>-rf</name></network>").unwrap())
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("must not start with '-'"),
        "{error}"
    );
}

#[tokio::test]
async fn update_follows_the_live_config_and_current_flags() {
    let dir = tempfile::tempdir().unwrap();
    let driver = open(dir.path()).await;
    let default = name("default");
    let host = |mac: &str, ip: &str| -> String { format!("<host mac='{mac}' ip='{ip}'/>") };
    let spec = |xml: String, live: bool, config: bool| UpdateSpec {
        command: UpdateCommand::AddLast,
        section: UpdateSection::IpDhcpHost,
        parent_index: None,
        xml,
        impact: Impact { live, config },
    };
    // Current on an active network: live only.
    let done = driver
        .update(
            &default,
            spec(host("52:54:00:00:00:0a", "192.168.122.10"), false, false),
        )
        .await
        .unwrap();
    assert_eq!(
        done,
        Updated {
            live: true,
            config: false
        }
    );
    assert!(
        driver
            .xml(&default, false)
            .unwrap()
            .contains("192.168.122.10")
    );
    assert!(
        !driver
            .xml(&default, true)
            .unwrap()
            .contains("192.168.122.10")
    );
    // Both.
    driver
        .update(
            &default,
            spec(host("52:54:00:00:00:0b", "192.168.122.11"), true, true),
        )
        .await
        .unwrap();
    assert!(
        driver
            .xml(&default, true)
            .unwrap()
            .contains("192.168.122.11")
    );
    // A duplicate is refused and changes nothing.
    let before = driver.xml(&default, false).unwrap();
    let error = driver
        .update(
            &default,
            spec(host("52:54:00:00:00:0b", "192.168.122.11"), true, false),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, NetworkError::OperationInvalid(_)),
        "{error:?}"
    );
    assert_eq!(driver.xml(&default, false).unwrap(), before);
    // An unsupported section says so.
    let mut unsupported = spec(
        "<range start='192.168.122.2' end='192.168.122.3'/>".into(),
        true,
        false,
    );
    unsupported.section = UpdateSection::IpDhcpRange;
    let error = driver.update(&default, unsupported).await.unwrap_err();
    assert!(matches!(error, NetworkError::NotSupported(_)), "{error:?}");
    // Live on an inactive network is refused; config works.
    driver.destroy(&default).await.unwrap();
    let error = driver
        .update(
            &default,
            spec(host("52:54:00:00:00:0c", "192.168.122.12"), true, false),
        )
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "network 'default' is not running");
    let done = driver
        .update(
            &default,
            spec(host("52:54:00:00:00:0c", "192.168.122.12"), false, false),
        )
        .await
        .unwrap();
    assert!(done.config && !done.live);
    // Stopping dropped the live-only host; the config kept its own.
    let xml = driver.xml(&default, false).unwrap();
    assert!(!xml.contains("192.168.122.10"), "{xml}");
    assert!(
        xml.contains("192.168.122.11") && xml.contains("192.168.122.12"),
        "{xml}"
    );
}

#[tokio::test]
async fn ports_live_with_the_active_network() {
    let dir = tempfile::tempdir().unwrap();
    let driver = open(dir.path()).await;
    let default = name("default");
    let made = driver
        .create_port(&default, port("vm1", "52:54:00:00:00:01"))
        .await
        .unwrap();
    assert_eq!(made.bridge.as_deref(), Some("virbr0"));
    assert_eq!(made.plug_type.as_deref(), Some("network"));
    let error = driver
        .create_port(&default, made.clone())
        .await
        .unwrap_err();
    assert!(matches!(error, NetworkError::PortExists(_)), "{error:?}");
    assert_eq!(driver.list_ports(&default).unwrap(), vec![made.clone()]);
    assert!(
        driver
            .xml(&default, false)
            .unwrap()
            .starts_with("<network connections='1'>")
    );
    assert_eq!(
        driver.port(&default, &made.uuid.to_uppercase()).unwrap(),
        made
    );
    driver.delete_port(&default, &made.uuid).await.unwrap();
    assert!(matches!(
        driver.delete_port(&default, &made.uuid).await,
        Err(NetworkError::PortNotFound(_))
    ));
    // Stopping the network deletes its ports; an inactive network takes none.
    driver
        .create_port(&default, port("vm2", "52:54:00:00:00:02"))
        .await
        .unwrap();
    driver.destroy(&default).await.unwrap();
    let error = driver
        .create_port(&default, port("vm3", "52:54:00:00:00:03"))
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "network 'default' is not active");
    assert!(driver.list_ports(&default).is_err());
    driver.start(&default).await.unwrap();
    assert!(driver.list_ports(&default).unwrap().is_empty());
}

#[tokio::test]
async fn a_restart_keeps_networks_states_autostart_and_ports() {
    let dir = tempfile::tempdir().unwrap();
    let driver = open(dir.path()).await;
    driver
        .define(parse_network(&net_xml("lab", 5)).unwrap())
        .await
        .unwrap();
    driver.set_autostart(&name("lab"), true).await.unwrap();
    driver
        .create(parse_network(&net_xml("temp", 6)).unwrap())
        .await
        .unwrap();
    let made = driver
        .create_port(&name("default"), port("vm", "52:54:00:00:00:09"))
        .await
        .unwrap();
    let live_only = UpdateSpec {
        command: UpdateCommand::AddLast,
        section: UpdateSection::DnsHost,
        parent_index: None,
        xml: "<host ip='192.168.122.50'><hostname>printer</hostname></host>".into(),
        impact: Impact {
            live: true,
            config: false,
        },
    };
    driver.update(&name("default"), live_only).await.unwrap();
    let before = driver.list(&ListFilter::default());
    let live_xml = driver.xml(&name("default"), false).unwrap();
    drop(driver);

    // A restart of the service (same boot): everything as it was, autostart not rerun.
    let driver = open(dir.path()).await;
    assert_eq!(driver.list(&ListFilter::default()), before);
    assert_eq!(driver.xml(&name("default"), false).unwrap(), live_xml);
    assert_eq!(driver.list_ports(&name("default")).unwrap(), vec![made]);
    assert!(!driver.lookup(&name("lab")).unwrap().active);
    drop(driver);

    // A reboot of the host: nothing runs any more; autostart brings back default and lab,
    // the transient network is gone, the live-only change and the ports too.
    std::fs::write(dir.path().join("run/autostarted"), "another-boot\n").unwrap();
    let driver = open(dir.path()).await;
    let names: Vec<(String, bool)> = driver
        .list(&ListFilter::default())
        .into_iter()
        .map(|s| (s.name, s.active))
        .collect();
    assert_eq!(
        names,
        [("default".to_owned(), true), ("lab".to_owned(), true)]
    );
    assert!(driver.list_ports(&name("default")).unwrap().is_empty());
    assert!(
        !driver
            .xml(&name("default"), false)
            .unwrap()
            .contains("printer")
    );
}

#[tokio::test]
async fn broken_files_are_set_aside_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let driver = open(dir.path()).await;
    drop(driver);
    let configs = dir.path().join("state/networks");
    std::fs::write(configs.join("junk.xml"), "<network>").unwrap();
    std::fs::write(configs.join("misfiled.xml"), net_xml("other", 7)).unwrap();
    let driver = open(dir.path()).await;
    let names: Vec<String> = driver
        .list(&ListFilter::default())
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["default"]);
    let broken: Vec<String> = std::fs::read_dir(configs.join("broken"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(broken.len(), 2, "{broken:?}");
}

#[tokio::test]
async fn events_announce_each_lifecycle_change() {
    let dir = tempfile::tempdir().unwrap();
    let driver = open(dir.path()).await;
    let (_, events) = driver.events().subscribe_from(0).unwrap();
    let mut events = Box::pin(events);
    driver
        .define(parse_network(&net_xml("lab", 8)).unwrap())
        .await
        .unwrap();
    driver.start(&name("lab")).await.unwrap();
    driver.destroy(&name("lab")).await.unwrap();
    driver.undefine(&name("lab")).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..4 {
        let event = tokio::time::timeout(Duration::from_secs(2), events.next())
            .await
            .expect("event in time")
            .expect("stream open")
            .expect("no lag");
        assert_eq!(event.name, "lab");
        seen.push(event.lifecycle);
    }
    assert_eq!(
        seen,
        [
            Lifecycle::Defined,
            Lifecycle::Started,
            Lifecycle::Stopped,
            Lifecycle::Undefined
        ]
    );
}

#[tokio::test]
async fn concurrent_defines_never_share_a_bridge() {
    let dir = tempfile::tempdir().unwrap();
    let driver = open(dir.path()).await;
    let mut tasks = Vec::new();
    for i in 0..8u8 {
        let driver = driver.clone();
        tasks.push(tokio::spawn(async move {
            driver
                .define(parse_network(&net_xml(&format!("n{i}"), 20 + i)).unwrap())
                .await
                .unwrap()
                .0
                .bridge
                .unwrap()
        }));
    }
    let mut bridges = std::collections::HashSet::new();
    for task in tasks {
        assert!(
            bridges.insert(task.await.unwrap()),
            "a bridge name was given twice"
        );
    }
    assert!(!bridges.contains("virbr0"));
}
