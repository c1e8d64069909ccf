//! The handlers over the test driver, which has no guest agent: request checks and the
//! passthrough permission come before the agent is asked (so they answer even there), and
//! the driver's lack of an agent is UNIMPLEMENTED.

use std::sync::Arc;

use tonic::Code;
use virtplane_common::identity::PERMISSIONS_HEADER;

use super::*;
use crate::driver::DriverConfig;
use crate::driver::test::TestDriver;

async fn api(dir: &tempfile::TempDir) -> DomainApi {
    let config = DriverConfig {
        state_dir: dir.path().join("state"),
        run_dir: dir.path().join("run"),
        emulator: None,
        vm_cgroup_root: None,
        network_service: None,
        storage_service: None,
        guest_agent_timeout: None,
    };
    DomainApi::new(Arc::new(
        TestDriver::open(&config).await.expect("test driver"),
    ))
}

/// The default world's running domain.
fn test_domain() -> Option<pb::DomainRef> {
    Some(pb::DomainRef {
        id: Some(pb::domain_ref::Id::Name("test".into())),
    })
}

/// `message` as the gateway forwards it for a caller holding `permissions`.
fn request<T>(message: T, permissions: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        PERMISSIONS_HEADER,
        permissions.parse().expect("header value"),
    );
    request
}

#[tokio::test]
async fn bad_requests_are_refused_before_the_agent_is_asked() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(&dir).await;
    let e = api
        .set_vcpus(Request::new(pb::SetGuestVcpusRequest {
            domain: test_domain(),
            logical_ids: vec![],
            online: true,
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("logical_ids"), "{e:?}");

    let e = api
        .write_file(Request::new(pb::WriteGuestFileRequest {
            domain: test_domain(),
            path: "/tmp/x".into(),
            data: vec![0; files::MAX_WRITE + 1],
            append: false,
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");

    let e = api
        .exec(Request::new(pb::GuestExecRequest {
            domain: test_domain(),
            path: String::new(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("path"), "{e:?}");

    let e = api
        .shutdown(Request::new(pb::GuestShutdownRequest {
            domain: test_domain(),
            mode: 9,
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");

    let e = api
        .ping(Request::new(pb::PingGuestAgentRequest { domain: None }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
}

#[tokio::test]
async fn a_driver_without_an_agent_is_unimplemented() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(&dir).await;
    let e = api
        .ping(Request::new(pb::PingGuestAgentRequest {
            domain: test_domain(),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented, "{e:?}");
    let e = api
        .set_timeout(Request::new(pb::SetGuestAgentTimeoutRequest {
            domain: test_domain(),
            timeout_seconds: 5,
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented, "{e:?}");
}

#[tokio::test]
async fn passthrough_needs_its_permission_even_behind_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(&dir).await;
    let command = || pb::GuestAgentCommandRequest {
        domain: test_domain(),
        command: "{not json".into(),
        timeout_seconds: 0,
    };
    let e = api
        .command(request(command(), "domain:write"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("domain:passthrough"), "{e:?}");
    // With it, the command itself is checked next.
    let e = api
        .command(request(command(), "domain:write,domain:passthrough"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("not valid JSON"), "{e:?}");
}
