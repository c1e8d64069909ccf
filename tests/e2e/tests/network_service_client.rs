//! The domain service's gRPC client of the network service (ports for `<interface
//! type='network'>`, leases for `domifaddr`) against the real virtplane-networkd with its
//! test driver: ports are made and deleted, deleting twice is fine, refusals keep the
//! network service's words, and a network service that is down or hangs gives a clear,
//! bounded error instead of a hang.

use std::time::{Duration, Instant};

use virtplane_common::server::ListenAddr;
use virtplane_domain::driver::qemu::net::error::{NetError, PortErrorKind};
use virtplane_domain::driver::qemu::net::ports::{NetworkPorts, PortOwner};
use virtplane_domain::network_service::NetworkService;
use virtplane_e2e::Stack;

const OWNER: PortOwner<'static> = PortOwner {
    name: "web",
    uuid: "6695eb01-f6a4-8304-79aa-97f2502e193f",
};

fn kind(error: &NetError) -> PortErrorKind {
    match error {
        NetError::Port { kind, .. } => *kind,
        other => panic!("not a port error: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ports_and_leases_through_the_real_network_service() {
    let mut stack = Stack::start_with_network("test", "test");
    let service = NetworkService::new(ListenAddr::Unix(stack.network_sock.clone()));

    let port = service
        .create("default", OWNER, "52:54:00:aa:bb:01")
        .await
        .expect("a port on the test driver's running default network");
    assert_eq!(port.bridge, "virbr0");
    let listed = stack.ok(&["net-port-list", "default"]);
    assert!(listed.contains(&port.uuid), "{listed}");
    let port_xml = stack.ok(&["net-port-dumpxml", "default", &port.uuid]);
    assert!(port_xml.contains("<name>web</name>"), "{port_xml}");
    assert!(port_xml.contains("52:54:00:aa:bb:01"), "{port_xml}");

    // The test driver hands out no leases: an empty answer, not an error.
    let leases = service
        .leases("default", "52:54:00:aa:bb:01")
        .await
        .unwrap();
    assert!(leases.is_empty(), "{leases:?}");

    service.delete("default", &port.uuid).await.unwrap();
    assert!(!stack.ok(&["net-port-list", "default"]).contains(&port.uuid));
    // Gone already (e.g. deleted before a restart): the goal is reached, no error.
    service.delete("default", &port.uuid).await.unwrap();
    service.delete("nosuch", &port.uuid).await.unwrap();

    let refused = service
        .create("nosuch", OWNER, "52:54:00:aa:bb:02")
        .await
        .unwrap_err();
    assert_eq!(kind(&refused), PortErrorKind::Refused, "{refused}");
    assert!(refused.to_string().contains("'nosuch'"), "{refused}");
    stack.ok(&["net-destroy", "default"]);
    let inactive = service
        .create("default", OWNER, "52:54:00:aa:bb:03")
        .await
        .unwrap_err();
    assert_eq!(kind(&inactive), PortErrorKind::Refused, "{inactive}");
    assert!(inactive.to_string().contains("not active"), "{inactive}");

    stack.kill_networkd();
    let started = Instant::now();
    let down = service
        .create("default", OWNER, "52:54:00:aa:bb:04")
        .await
        .unwrap_err();
    assert_eq!(kind(&down), PortErrorKind::Unavailable, "{down}");
    assert!(
        down.to_string()
            .contains(&stack.network_sock.display().to_string()),
        "names the address: {down}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // Back up: the same client reconnects by itself.
    stack.start_networkd();
    stack.ok(&["net-start", "default"]);
    let again = service
        .create("default", OWNER, "52:54:00:aa:bb:05")
        .await
        .expect("reconnected after the restart");
    service.delete("default", &again.uuid).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_service_that_never_answers_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("silent.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    // Accepts connections and never says a word (a hung service).
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let service = NetworkService::with_timeout(ListenAddr::Unix(path), Duration::from_secs(1));
    let started = Instant::now();
    let error = service.leases("default", "").await.unwrap_err();
    assert_eq!(kind(&error), PortErrorKind::Timeout, "{error}");
    assert!(
        error.to_string().contains("did not answer within 1 s"),
        "{error}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    silent.abort();
}
