//! The handlers' own permission checks: libvirt's flag-conditional `network:save` on
//! `net-update`, enforced from the identity the gateway forwards (the gateway itself only
//! checks `network:write`).

use std::sync::Arc;

use tonic::Request;
use virtplane_common::identity::Caller;
use virtplane_network::api::NetworkApi;
use virtplane_network::driver::{DriverConfig, test};
use virtplane_proto::v1 as pb;
use virtplane_proto::v1::network_service_server::NetworkService;

async fn api(dir: &std::path::Path) -> NetworkApi {
    let config = DriverConfig {
        state_dir: dir.join("state"),
        run_dir: dir.join("run"),
    };
    NetworkApi::new(Arc::new(test::open(&config).await.unwrap()))
}

fn update(caller: &Caller, live: bool, config: bool, ip: u8) -> Request<pb::UpdateNetworkRequest> {
    let mut request = Request::new(pb::UpdateNetworkRequest {
        network: Some(pb::NetworkRef {
            id: Some(pb::network_ref::Id::Name("default".into())),
        }),
        command: pb::NetworkUpdateCommand::AddLast.into(),
        section: pb::NetworkUpdateSection::IpDhcpHost.into(),
        parent_index: None,
        xml: format!("<host mac='52:54:00:00:00:{ip:02x}' ip='192.168.122.{ip}'/>"),
        flags: Some(pb::ModifyFlags { live, config }),
    });
    caller.to_metadata(request.metadata_mut());
    request
}

#[tokio::test]
async fn config_and_current_updates_need_network_save() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(dir.path()).await;
    let writer = Caller::with_permissions("ann", "custom", ["network:write"]);
    let live = api.update(update(&writer, true, false, 10)).await.unwrap();
    assert!(live.get_ref().live && !live.get_ref().config);
    for (live, config) in [(false, true), (false, false), (true, true)] {
        let denied = api
            .update(update(&writer, live, config, 11))
            .await
            .unwrap_err();
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
        assert!(
            denied.message().contains("network:save"),
            "{}",
            denied.message()
        );
    }
    let saver = Caller::with_permissions("bob", "custom", ["network:write", "network:save"]);
    let both = api.update(update(&saver, true, true, 12)).await.unwrap();
    assert!(both.get_ref().live && both.get_ref().config);
}

#[tokio::test]
async fn define_names_its_network_for_the_audit_line() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(dir.path()).await;
    let response = api
        .define(Request::new(pb::DefineNetworkRequest {
            xml: "<network><name>audited</name></network>".into(),
        }))
        .await
        .unwrap();
    assert_eq!(
        response
            .metadata()
            .get(virtplane_proto::headers::OBJECT)
            .unwrap(),
        "audited"
    );
    let bad = api
        .define(Request::new(pb::DefineNetworkRequest {
            xml: "<network/>".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        virtplane_common::status::reason(&bad).as_deref(),
        Some("INVALID_XML")
    );
}
