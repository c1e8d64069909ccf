//! Attaching and detaching network interfaces on the test driver, and through the gRPC
//! handlers: libvirt's live/config/current semantics, a MAC generated once for both copies,
//! duplicate MACs refused, detach by MAC or by type and source with libvirt's errors, events,
//! persistence across a restart, and the same `domain:save` rule as every device edit.

use std::sync::Arc;

use futures::StreamExt;
use tonic::Request;
use virtplane_common::identity::Caller;
use virtplane_domain::api::DomainApi;
use virtplane_domain::driver::test::TestDriver;
use virtplane_domain::driver::{DomainDriver, DriverConfig};
use virtplane_domain::error::DomainError;
use virtplane_domain::model::{DomainRef, EventBody, Impact, XmlFlags};
use virtplane_domain::xml::{DeviceDef, Interface, parse_device, parse_domain};
use virtplane_proto::v1 as pb;
use virtplane_proto::v1::domain_service_server::DomainService;

const LIVE: Impact = Impact {
    live: true,
    config: false,
};
const CONFIG: Impact = Impact {
    live: false,
    config: true,
};
const BOTH: Impact = Impact {
    live: true,
    config: true,
};
const CURRENT: Impact = Impact {
    live: false,
    config: false,
};

fn name(n: &str) -> DomainRef {
    DomainRef::Name(n.into())
}

fn device(xml: &str) -> DeviceDef {
    parse_device(xml).unwrap()
}

struct World {
    _dir: tempfile::TempDir,
    config: DriverConfig,
    driver: TestDriver,
}

/// A running persistent domain `web` with one bridge interface, and a shut-off one `off`.
async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let config = DriverConfig {
        state_dir: dir.path().join("state"),
        run_dir: dir.path().join("run"),
        emulator: None,
        vm_cgroup_root: None,
        network_service: None,
        storage_service: None,
        guest_agent_timeout: None,
    };
    let driver = TestDriver::open(&config).await.unwrap();
    for n in ["web", "off"] {
        let xml = format!(
            "<domain type='test'><name>{n}</name><memory unit='MiB'>512</memory>\
             <vcpu>1</vcpu><os><type>hvm</type></os><devices>\
             <interface type='bridge'><mac address='52:54:00:00:00:01'/>\
             <source bridge='br0'/></interface></devices></domain>"
        );
        driver.define(parse_domain(&xml).unwrap()).await.unwrap();
    }
    driver.start(&name("web"), false).await.unwrap();
    World {
        _dir: dir,
        config,
        driver,
    }
}

/// The interfaces of the live (or, with `inactive`, the persistent) definition.
fn nics(driver: &impl DomainDriver, n: &str, inactive: bool) -> Vec<Interface> {
    let xml = driver
        .xml(
            &name(n),
            XmlFlags {
                inactive,
                secure: false,
            },
        )
        .unwrap();
    parse_domain(&xml).unwrap().devices.interfaces
}

fn macs(driver: &impl DomainDriver, n: &str, inactive: bool) -> Vec<String> {
    nics(driver, n, inactive)
        .into_iter()
        .map(|nic| nic.mac.unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn live_config_and_current_touch_what_libvirt_touches() {
    let w = world().await;
    let d = &w.driver;
    // Current on a running domain = live only; a MAC is generated.
    d.attach_device(&name("web"), device("<interface type='user'/>"), CURRENT)
        .await
        .unwrap();
    let live = nics(d, "web", false);
    assert_eq!(live.len(), 2);
    let generated = live[1].mac.clone().expect("a generated MAC");
    assert!(generated.starts_with("52:54:00:"), "{generated}");
    assert_eq!(macs(d, "web", true), ["52:54:00:00:00:01"]);

    // Both, without a MAC: the live and the config copy are the same interface.
    d.attach_device(
        &name("web"),
        device("<interface type='bridge'><source bridge='br1'/><model type='virtio'/></interface>"),
        BOTH,
    )
    .await
    .unwrap();
    let live = nics(d, "web", false);
    let config = nics(d, "web", true);
    assert_eq!(live.len(), 3);
    assert_eq!(config.len(), 2);
    assert_eq!(live[2].mac, config[1].mac);
    assert_eq!(config[1].model.as_deref(), Some("virtio"));

    // Config only, and current on a shut-off domain = config.
    d.attach_device(
        &name("web"),
        device("<interface type='network'><mac address='52:54:00:00:00:0a'/><source network='default'/></interface>"),
        CONFIG,
    )
    .await
    .unwrap();
    assert_eq!(nics(d, "web", false).len(), 3);
    assert_eq!(macs(d, "web", true)[2], "52:54:00:00:00:0a");
    d.attach_device(&name("off"), device("<interface type='user'/>"), CURRENT)
        .await
        .unwrap();
    assert_eq!(nics(d, "off", true).len(), 2);

    // Detach by MAC, live only.
    d.detach_device(
        &name("web"),
        device(&format!(
            "<interface type='user'><mac address='{generated}'/></interface>"
        )),
        LIVE,
    )
    .await
    .unwrap();
    assert_eq!(nics(d, "web", false).len(), 2);
    // By type and source where the MAC is not given: the br1 one, from both copies.
    d.detach_device(
        &name("web"),
        device("<interface type='bridge'><source bridge='br1'/></interface>"),
        BOTH,
    )
    .await
    .unwrap();
    assert_eq!(macs(d, "web", false), ["52:54:00:00:00:01"]);
    assert_eq!(
        macs(d, "web", true),
        ["52:54:00:00:00:01", "52:54:00:00:00:0a"]
    );
}

#[tokio::test]
async fn refusals_are_libvirts() {
    let w = world().await;
    let d = &w.driver;
    let taken = "<interface type='user'><mac address='52:54:00:00:00:01'/></interface>";
    for flags in [LIVE, CONFIG] {
        let err = d
            .attach_device(&name("web"), device(taken), flags)
            .await
            .unwrap_err();
        assert!(matches!(err, DomainError::OperationInvalid(_)), "{err:?}");
        assert!(
            err.to_string().contains("MAC address 52:54:00:00:00:01"),
            "{err}"
        );
    }
    let err = d
        .attach_device(&name("off"), device("<interface type='user'/>"), LIVE)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "domain is not running");

    let err = d
        .detach_device(
            &name("web"),
            device("<interface type='bridge'><mac address='52:54:00:00:00:99'/></interface>"),
            LIVE,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, DomainError::DeviceMissing(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "no device matching MAC address 52:54:00:00:00:99 found"
    );
    d.attach_device(
        &name("web"),
        device("<interface type='bridge'><source bridge='br0'/></interface>"),
        LIVE,
    )
    .await
    .unwrap();
    let err = d
        .detach_device(
            &name("web"),
            device("<interface type='bridge'><source bridge='br0'/></interface>"),
            LIVE,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, DomainError::OperationFailed(_)), "{err:?}");
    assert_eq!(err.to_string(), "multiple matching devices found");
    let err = d
        .detach_device(&name("web"), device("<interface type='ethernet'/>"), LIVE)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "no matching network device was found");
    // Nothing changed by the refusals.
    assert_eq!(nics(d, "web", false).len(), 2);
    assert_eq!(nics(d, "web", true).len(), 1);
}

#[tokio::test]
async fn changes_are_announced_and_survive_a_restart() {
    let w = world().await;
    let (_, events) = w.driver.events().subscribe_from(0).unwrap();
    let mut events = Box::pin(events);
    w.driver
        .attach_device(
            &name("web"),
            device("<interface type='user'><mac address='52:54:00:00:00:02'/></interface>"),
            BOTH,
        )
        .await
        .unwrap();
    w.driver
        .detach_device(
            &name("web"),
            device("<interface type='bridge'><mac address='52:54:00:00:00:01'/></interface>"),
            LIVE,
        )
        .await
        .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let event = tokio::time::timeout(std::time::Duration::from_secs(5), events.next())
            .await
            .expect("event (hang guard)")
            .unwrap()
            .unwrap();
        if let EventBody::ConfigChanged(what) = event.body {
            seen.push(what);
        }
    }
    assert_eq!(seen, ["device-added", "device-removed"]);

    let again = TestDriver::open(&w.config).await.unwrap();
    assert_eq!(macs(&again, "web", false), ["52:54:00:00:00:02"]);
    assert_eq!(
        macs(&again, "web", true),
        ["52:54:00:00:00:01", "52:54:00:00:00:02"]
    );
}

fn request<T>(message: T, permissions: &[&str]) -> Request<T> {
    let mut request = Request::new(message);
    Caller::with_permissions("ann", "custom", permissions.iter().copied())
        .to_metadata(request.metadata_mut());
    request
}

#[tokio::test]
async fn the_api_takes_interfaces_with_the_same_permissions_as_disks() {
    let w = world().await;
    let api = DomainApi::new(Arc::new(w.driver));
    let web = Some(pb::DomainRef {
        id: Some(pb::domain_ref::Id::Name("web".into())),
    });
    let xml = "<interface type='user'><mac address='52:54:00:00:00:07'/></interface>";
    let attach = |live, config| pb::AttachDeviceRequest {
        domain: web.clone(),
        xml: xml.into(),
        flags: Some(pb::ModifyFlags { live, config }),
    };
    for (live, config) in [(false, false), (false, true), (true, true)] {
        let err = api
            .attach_device(request(attach(live, config), &["domain:write"]))
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err:?}");
        assert!(err.message().contains("domain:save"), "{}", err.message());
    }
    api.attach_device(request(attach(true, false), &["domain:write"]))
        .await
        .unwrap();

    let missing = pb::DetachDeviceRequest {
        domain: web.clone(),
        xml: "<interface type='user'><mac address='52:54:00:00:00:08'/></interface>".into(),
        flags: Some(pb::ModifyFlags {
            live: true,
            config: false,
        }),
    };
    let err = api
        .detach_device(request(missing, &["*"]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    let by_type = pb::DetachDeviceRequest {
        domain: web.clone(),
        xml: "<interface type='bridge'/>".into(),
        flags: Some(pb::ModifyFlags {
            live: true,
            config: false,
        }),
    };
    // One bridge interface: found without a MAC.
    api.detach_device(request(by_type, &["domain:write"]))
        .await
        .unwrap();
    let detach = pb::DetachDeviceRequest {
        domain: web,
        xml: xml.into(),
        flags: Some(pb::ModifyFlags {
            live: true,
            config: false,
        }),
    };
    api.detach_device(request(detach, &["domain:write"]))
        .await
        .unwrap();
}
