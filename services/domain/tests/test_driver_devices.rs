//! Attaching and detaching disks on the test driver, and through the gRPC handlers: libvirt's
//! live/config/current flag semantics, its refusals (live on a shut-off domain, a target in
//! use, a disk that is not there), events, persistence across a service restart, and the
//! `domain:save` permission the config-touching flags need.

use std::sync::Arc;

use futures::StreamExt;
use tonic::Request;
use virtplane_common::identity::Caller;
use virtplane_domain::api::DomainApi;
use virtplane_domain::driver::test::TestDriver;
use virtplane_domain::driver::{DomainDriver, DriverConfig};
use virtplane_domain::error::DomainError;
use virtplane_domain::model::{DomainRef, EventBody, Impact, XmlFlags};
use virtplane_domain::xml::{DeviceDef, parse_device, parse_domain};
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

fn disk(target: &str, file: &str) -> DeviceDef {
    parse_device(&format!(
        "<disk type='file' device='disk'><driver name='qemu' type='raw'/>\
         <source file='{file}'/><target dev='{target}' bus='virtio'/></disk>"
    ))
    .unwrap()
}

struct World {
    _dir: tempfile::TempDir,
    config: DriverConfig,
    driver: TestDriver,
}

/// A state dir with a running persistent domain `web` (disk vda) and a shut-off one `off`.
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
             <disk type='file' device='disk'><source file='/img/{n}.img'/>\
             <target dev='vda' bus='virtio'/></disk></devices></domain>"
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

/// The disk targets of the live (or, with `inactive`, the persistent) definition.
fn targets(driver: &impl DomainDriver, n: &str, inactive: bool) -> Vec<String> {
    let xml = driver
        .xml(
            &name(n),
            XmlFlags {
                inactive,
                secure: false,
            },
        )
        .unwrap();
    parse_domain(&xml)
        .unwrap()
        .devices
        .disks
        .iter()
        .map(|d| d.target.dev.clone())
        .collect()
}

#[tokio::test]
async fn live_config_and_current_touch_what_libvirt_touches() {
    let w = world().await;
    let d = &w.driver;
    // Current on a running domain = live only.
    d.attach_device(&name("web"), disk("vdb", "/img/b"), CURRENT)
        .await
        .unwrap();
    assert_eq!(targets(d, "web", false), ["vda", "vdb"]);
    assert_eq!(targets(d, "web", true), ["vda"]);
    // Config only: the next start's definition, not the running one.
    d.attach_device(&name("web"), disk("vdc", "/img/c"), CONFIG)
        .await
        .unwrap();
    assert_eq!(targets(d, "web", false), ["vda", "vdb"]);
    assert_eq!(targets(d, "web", true), ["vda", "vdc"]);
    // Both.
    d.attach_device(&name("web"), disk("vdd", "/img/d"), BOTH)
        .await
        .unwrap();
    assert_eq!(targets(d, "web", false), ["vda", "vdb", "vdd"]);
    assert_eq!(targets(d, "web", true), ["vda", "vdc", "vdd"]);
    // Current on a shut-off domain = config.
    d.attach_device(&name("off"), disk("vdb", "/img/ob"), CURRENT)
        .await
        .unwrap();
    assert_eq!(targets(d, "off", true), ["vda", "vdb"]);

    // Detach mirrors it.
    d.detach_device(&name("web"), disk("vdb", "/img/b"), CURRENT)
        .await
        .unwrap();
    assert_eq!(targets(d, "web", false), ["vda", "vdd"]);
    d.detach_device(&name("web"), disk("vdc", "/img/c"), CONFIG)
        .await
        .unwrap();
    assert_eq!(targets(d, "web", true), ["vda", "vdd"]);
    d.detach_device(&name("web"), disk("vdd", "/img/d"), BOTH)
        .await
        .unwrap();
    assert_eq!(targets(d, "web", false), ["vda"]);
    assert_eq!(targets(d, "web", true), ["vda"]);

    // The disk's bus is filled in from its name, as libvirt's parser does.
    let bare = parse_device("<disk><source file='/img/e'/><target dev='vde'/></disk>").unwrap();
    d.attach_device(&name("web"), bare, LIVE).await.unwrap();
    let live = d.xml(&name("web"), XmlFlags::default()).unwrap();
    assert!(live.contains("<target dev='vde' bus='virtio'/>"), "{live}");
}

#[tokio::test]
async fn refusals_name_what_is_wrong() {
    let w = world().await;
    let d = &w.driver;
    let err = d
        .attach_device(&name("off"), disk("vdb", "/img/b"), LIVE)
        .await
        .unwrap_err();
    assert!(matches!(err, DomainError::OperationInvalid(_)), "{err:?}");
    assert_eq!(err.to_string(), "domain is not running");

    let err = d
        .attach_device(&name("web"), disk("vda", "/img/other"), LIVE)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "target 'vda' duplicated for disk sources '/img/web.img' and '/img/other'"
    );
    let err = d
        .attach_device(&name("web"), disk("vda", "/img/other"), CONFIG)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "target vda already exists");
    // With both flags, a refused config half leaves the live domain untouched too.
    d.attach_device(&name("web"), disk("vdb", "/img/b"), CONFIG)
        .await
        .unwrap();
    let err = d
        .attach_device(&name("web"), disk("vdb", "/img/b"), BOTH)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "target vdb already exists");
    assert_eq!(targets(d, "web", false), ["vda"]);

    let err = d
        .detach_device(&name("web"), disk("vdz", "/x"), LIVE)
        .await
        .unwrap_err();
    assert!(matches!(err, DomainError::DeviceMissing(_)), "{err:?}");
    assert_eq!(err.to_string(), "disk vdz not found");
    let err = d
        .detach_device(&name("off"), disk("vdz", "/x"), CURRENT)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "no target device vdz");

    let hostdev = parse_device("<hostdev mode='subsystem' type='pci'/>").unwrap();
    let err = d
        .attach_device(&name("web"), hostdev, LIVE)
        .await
        .unwrap_err();
    assert!(matches!(err, DomainError::Unsupported { .. }), "{err:?}");
    assert!(err.to_string().contains("<hostdev>"), "{err}");

    // A transient domain has no config to change.
    let transient = parse_domain(
        "<domain type='test'><name>tr</name><memory>65536</memory><os><type>hvm</type></os></domain>",
    )
    .unwrap();
    d.create(transient, false).await.unwrap();
    let err = d
        .attach_device(&name("tr"), disk("vdb", "/img/b"), CONFIG)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("transient"), "{err}");
    d.attach_device(&name("tr"), disk("vdb", "/img/b"), CURRENT)
        .await
        .unwrap();
}

#[tokio::test]
async fn changes_are_announced_and_survive_a_restart() {
    let w = world().await;
    let (_, events) = w.driver.events().subscribe_from(0).unwrap();
    let mut events = Box::pin(events);
    w.driver
        .attach_device(&name("web"), disk("vdb", "/img/b"), BOTH)
        .await
        .unwrap();
    w.driver
        .detach_device(&name("web"), disk("vda", "/img/web.img"), LIVE)
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
    assert_eq!(targets(&again, "web", false), ["vdb"]);
    assert_eq!(targets(&again, "web", true), ["vda", "vdb"]);
}

fn request<T>(message: T, permissions: &[&str]) -> Request<T> {
    let mut request = Request::new(message);
    Caller::with_permissions("ann", "custom", permissions.iter().copied())
        .to_metadata(request.metadata_mut());
    request
}

#[tokio::test]
async fn the_api_parses_the_element_and_checks_domain_save() {
    let w = world().await;
    let api = DomainApi::new(Arc::new(w.driver));
    let web = Some(pb::DomainRef {
        id: Some(pb::domain_ref::Id::Name("web".into())),
    });
    let xml = "<disk type='file'><source file='/img/b'/><target dev='vdb'/></disk>".to_string();
    let attach = |flags: pb::ModifyFlags| pb::AttachDeviceRequest {
        domain: web.clone(),
        xml: xml.clone(),
        flags: Some(flags),
    };
    let live = pb::ModifyFlags {
        live: true,
        config: false,
    };
    // domain:write alone may change the running domain, not the config (--config or
    // --current, which may mean the config).
    for flags in [
        pb::ModifyFlags::default(),
        pb::ModifyFlags {
            live: false,
            config: true,
        },
    ] {
        let err = api
            .attach_device(request(attach(flags), &["domain:write"]))
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err:?}");
        assert!(err.message().contains("domain:save"), "{}", err.message());
    }
    api.attach_device(request(attach(live), &["domain:write"]))
        .await
        .unwrap();

    let bad = pb::AttachDeviceRequest {
        domain: web.clone(),
        xml: "<disk><source file='/x'/></disk>".into(),
        flags: Some(live),
    };
    let err = api.attach_device(request(bad, &["*"])).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message().contains("<devices>/<disk>/<target>"),
        "{}",
        err.message()
    );

    let missing = pb::DetachDeviceRequest {
        domain: web.clone(),
        xml: "<disk><source file='/x'/><target dev='vdq'/></disk>".into(),
        flags: Some(live),
    };
    let err = api
        .detach_device(request(missing, &["*"]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    assert_eq!(err.message(), "disk vdq not found");

    let detach = pb::DetachDeviceRequest {
        domain: web,
        xml,
        flags: Some(live),
    };
    api.detach_device(request(detach, &["domain:write"]))
        .await
        .unwrap();
}
