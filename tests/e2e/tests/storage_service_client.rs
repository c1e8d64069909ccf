//! The domain service's gRPC client of the storage service (leases on the volumes of
//! `<disk type='volume'>`) against the real virtplane-storaged with its test driver: a lease
//! says where the volume is and keeps it from being deleted (in the storage service's words,
//! naming the domain); releasing twice is fine; leases outlive a restart of the storage
//! service; a storage service that is down or hangs gives a clear, bounded error.
//!
//! Then the same end to end with the test domain driver (no QEMU): a domain with a volume
//! disk holds the lease while it runs, `vol-delete` through the gateway is refused naming
//! it, and a missing volume fails the start with the storage service's words.

use std::time::{Duration, Instant};

use tonic::Code;
use virtplane_common::client::connect_channel;
use virtplane_common::server::ListenAddr;
use virtplane_domain::driver::volumes::{
    LeaseErrorKind, LeaseOwner, VolumeError, VolumeKind, VolumeLeases, VolumeName,
};
use virtplane_domain::storage_service::StorageService;
use virtplane_e2e::{ADMIN_TOKEN, Stack};
use virtplane_proto::v1 as pb;
use virtplane_proto::v1::storage_service_client::StorageServiceClient;

const OWNER: LeaseOwner<'static> = LeaseOwner {
    name: "web",
    uuid: "6695eb01-f6a4-8304-79aa-97f2502e193f",
};

fn kind(error: &VolumeError) -> LeaseErrorKind {
    match error {
        VolumeError::Lease { kind, .. } => *kind,
        other => panic!("not a lease error: {other:?}"),
    }
}

fn volume(pool: &str, name: &str) -> VolumeName {
    VolumeName {
        pool: pool.into(),
        volume: name.into(),
    }
}

fn vol_ref(pool: &str, name: &str) -> Option<pb::StorageVolRef> {
    Some(pb::StorageVolRef {
        id: Some(pb::storage_vol_ref::Id::Name(pb::PoolVolumeName {
            pool: pool.into(),
            volume: name.into(),
        })),
    })
}

/// A plain client of the storage service's own socket (the test's view, not the domain's).
fn storage_client(stack: &Stack) -> StorageServiceClient<tonic::transport::Channel> {
    StorageServiceClient::new(connect_channel(&ListenAddr::Unix(
        stack.storage_sock.clone(),
    )))
}

async fn create_volume(stack: &Stack, name: &str) {
    let xml = format!("<volume><name>{name}</name><capacity>1048576</capacity></volume>");
    storage_client(stack)
        .create_volume(pb::CreateVolumeRequest {
            pool: Some(pb::StoragePoolRef {
                id: Some(pb::storage_pool_ref::Id::Name("default".into())),
            }),
            xml,
            prealloc_metadata: false,
        })
        .await
        .expect("a volume in the test driver's default pool");
}

async fn delete_volume(stack: &Stack, name: &str) -> Result<(), tonic::Status> {
    storage_client(stack)
        .delete_volume(pb::DeleteVolumeRequest {
            volume: vol_ref("default", name),
        })
        .await
        .map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_through_the_real_storage_service() {
    let mut stack = Stack::start_with_storage("test", "test");
    create_volume(&stack, "web.img").await;
    let service = StorageService::new(ListenAddr::Unix(stack.storage_sock.clone()));
    let web = volume("default", "web.img");

    let resolved = service
        .acquire(&web, OWNER)
        .await
        .expect("a lease on a volume of the running default pool");
    assert_eq!(resolved.path, "/default-pool/web.img");
    assert_eq!(resolved.format, "raw");
    assert_eq!(resolved.kind, VolumeKind::File);
    assert_eq!(resolved.capacity, 1048576);
    // Asked again (a restarted domain service re-adopting): still one lease.
    service.acquire(&web, OWNER).await.unwrap();

    let refused = delete_volume(&stack, "web.img").await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert_eq!(
        refused.message(),
        "volume 'web.img' in pool 'default' is in use by domain 'web'"
    );

    // The lease outlives a crash of the storage service.
    stack.kill_storaged();
    stack.start_storaged();
    let refused = delete_volume(&stack, "web.img").await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");

    // Refusals keep the storage service's words.
    let missing = service
        .acquire(&volume("default", "nosuch.img"), OWNER)
        .await
        .unwrap_err();
    assert_eq!(kind(&missing), LeaseErrorKind::Refused, "{missing}");
    assert!(missing.to_string().contains("'nosuch.img'"), "{missing}");
    let no_pool = service
        .acquire(&volume("nosuch", "web.img"), OWNER)
        .await
        .unwrap_err();
    assert_eq!(kind(&no_pool), LeaseErrorKind::Refused, "{no_pool}");
    assert!(no_pool.to_string().contains("'nosuch'"), "{no_pool}");

    // Released once, the volume can go; releasing again (or what never existed) is fine.
    service.release(&web, OWNER.uuid).await.unwrap();
    service.release(&web, OWNER.uuid).await.unwrap();
    service
        .release(&volume("nosuch", "web.img"), OWNER.uuid)
        .await
        .unwrap();
    delete_volume(&stack, "web.img").await.unwrap();

    // Down: a clear error naming the address, quickly.
    stack.kill_storaged();
    let started = Instant::now();
    let down = service.acquire(&web, OWNER).await.unwrap_err();
    assert_eq!(kind(&down), LeaseErrorKind::Unavailable, "{down}");
    assert!(
        down.to_string()
            .contains(&stack.storage_sock.display().to_string()),
        "names the address: {down}"
    );
    let down = service.release(&web, OWNER.uuid).await.unwrap_err();
    assert_eq!(kind(&down), LeaseErrorKind::Unavailable, "{down}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // Back up: the same client reconnects by itself.
    stack.start_storaged();
    create_volume(&stack, "again.img").await;
    service
        .acquire(&volume("default", "again.img"), OWNER)
        .await
        .expect("reconnected after the restart");
    service
        .release(&volume("default", "again.img"), OWNER.uuid)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_service_that_never_answers_times_out() {
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
    let service = StorageService::with_timeout(ListenAddr::Unix(path), Duration::from_secs(1));
    let started = Instant::now();
    let error = service
        .acquire(&volume("default", "web.img"), OWNER)
        .await
        .unwrap_err();
    assert_eq!(kind(&error), LeaseErrorKind::Timeout, "{error}");
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

fn test_domain(name: &str, volume: &str) -> String {
    format!(
        "<domain type='test'><name>{name}</name><memory unit='MiB'>128</memory>\
         <os><type arch='x86_64'>hvm</type></os><devices>\
         <disk type='volume' device='disk'><source pool='default' volume='{volume}'/>\
         <target dev='vda' bus='virtio'/></disk></devices></domain>"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_domains_hold_leases_on_their_volumes() {
    let stack = Stack::start_with_storage("test", "test");
    create_volume(&stack, "data.img").await;
    let xml = stack.file("vm.xml", &test_domain("e2e-vol", "data.img"));
    stack.ok(&["define", &xml]);
    stack.ok(&["start", "e2e-vol"]);
    // The live XML still names the volume, with its format.
    let live = stack.ok(&["dumpxml", "e2e-vol"]);
    assert!(
        live.contains("<source pool='default' volume='data.img'/>"),
        "{live}"
    );
    assert!(live.contains("type='raw'"), "{live}");

    let refused = stack.fails(
        Some(ADMIN_TOKEN),
        &["vol-delete", "--pool", "default", "data.img"],
    );
    assert!(
        refused.contains("volume 'data.img' in pool 'default' is in use by domain 'e2e-vol'"),
        "{refused}"
    );
    stack.ok(&["destroy", "e2e-vol"]);
    stack.ok(&["vol-delete", "--pool", "default", "data.img"]);

    // The volume is gone now: the domain cannot start, in the storage service's words.
    let refused = stack.fails(Some(ADMIN_TOKEN), &["start", "e2e-vol"]);
    assert!(
        refused.contains("cannot start domain 'e2e-vol'") && refused.contains("'data.img'"),
        "{refused}"
    );
    assert!(stack.ok(&["domstate", "e2e-vol"]).contains("shut off"));
}
