//! Volume leases (the domain service's hold on a volume a VM uses), on the dir driver with
//! real qemu-img files and on the test driver: acquiring twice holds one lease; a leased
//! volume is not deleted, wiped, shrunk or uploaded into, with an error naming the domain;
//! released, it is; leases survive a restart of the service; an unfinished upload is not
//! leased out.

use std::sync::Arc;

use virtplane_storage::driver::core::UploadItem;
use virtplane_storage::driver::{self, DriverConfig, DriverKind, LeaseOwner, StorageDriver};
use virtplane_storage::error::StorageError;
use virtplane_storage::model::{BuildFlags, PoolRef, ResizeSpec, VolRef, VolType, WipeAlgorithm};
use virtplane_storage::transfer::Piece;
use virtplane_storage::xml::{parse_pool, parse_volume};

const MIB: u64 = 1024 * 1024;

fn config(dir: &std::path::Path) -> DriverConfig {
    DriverConfig {
        state_dir: dir.join("state"),
        run_dir: dir.join("run"),
    }
}

fn web() -> LeaseOwner {
    LeaseOwner {
        name: "web".into(),
        uuid: "6695eb01-f6a4-8304-79aa-97f2502e193f".into(),
    }
}

fn db() -> LeaseOwner {
    LeaseOwner {
        name: "db".into(),
        uuid: "0b6c1f3e-3c53-4a4e-9d0c-6d7f1f6d2a10".into(),
    }
}

fn vol(pool: &str, name: &str) -> VolRef {
    VolRef::Name {
        pool: pool.into(),
        volume: name.into(),
    }
}

/// The dir driver with a running pool `images` in `dir/pool` holding a qcow2 `web.qcow2`.
async fn dir_driver(dir: &std::path::Path) -> Arc<dyn StorageDriver> {
    let driver = driver::build(DriverKind::Dir, &config(dir)).await.unwrap();
    let pool_xml = format!(
        "<pool type='dir'><name>images</name><target><path>{}</path></target></pool>",
        dir.join("pool").display()
    );
    driver
        .define_pool(parse_pool(&pool_xml).unwrap())
        .await
        .unwrap();
    let images = PoolRef::Name("images".into());
    driver
        .build_pool(&images, BuildFlags::default())
        .await
        .unwrap();
    driver.start_pool(&images, None).await.unwrap();
    let vol_xml = format!(
        "<volume><name>web.qcow2</name><capacity>{}</capacity>\
         <target><format type='qcow2'/></target></volume>",
        64 * MIB
    );
    driver
        .create_volume(&images, parse_volume(&vol_xml).unwrap(), false)
        .await
        .unwrap();
    driver
}

fn assert_in_use(error: StorageError, expected: &str) {
    assert!(matches!(error, StorageError::InUse(_)), "{error:?}");
    assert_eq!(error.to_string(), expected);
    let status = tonic::Status::from(error);
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leased_volume_is_kept_until_released() {
    let dir = tempfile::tempdir().unwrap();
    let driver = dir_driver(dir.path()).await;
    let web_disk = vol("images", "web.qcow2");
    let path = dir.path().join("pool/web.qcow2");

    let leased = driver.acquire_volume(&web_disk, &web()).await.unwrap();
    assert_eq!(leased.path, path.display().to_string());
    assert_eq!(leased.format, "qcow2");
    assert_eq!(leased.vol_type, VolType::File);
    assert_eq!(leased.capacity, 64 * MIB);
    // Twice is one lease: one release ends it.
    driver.acquire_volume(&web_disk, &web()).await.unwrap();

    let expected = "volume 'web.qcow2' in pool 'images' is in use by domain 'web'";
    assert_in_use(driver.delete_volume(&web_disk).await.unwrap_err(), expected);
    assert_in_use(
        driver
            .wipe_volume(&web_disk, WipeAlgorithm::Zero)
            .await
            .unwrap_err(),
        expected,
    );
    let shrink = ResizeSpec {
        capacity: 32 * MIB,
        delta: false,
        shrink: true,
        allocate: false,
    };
    assert_in_use(
        driver.resize_volume(&web_disk, shrink).await.unwrap_err(),
        expected,
    );
    let upload = Box::pin(futures::stream::iter(vec![Ok(UploadItem::Piece(
        Piece::Hole {
            offset: 0,
            len: MIB,
        },
    ))]));
    assert_in_use(
        driver
            .upload_volume(&web_disk, 0, Some(MIB), upload)
            .await
            .unwrap_err(),
        expected,
    );
    assert!(path.exists(), "nothing was changed");
    // Growing is fine: the guest only sees more once told.
    let grow = ResizeSpec {
        capacity: 128 * MIB,
        delta: false,
        shrink: false,
        allocate: false,
    };
    assert_eq!(
        driver
            .resize_volume(&web_disk, grow)
            .await
            .unwrap()
            .capacity,
        128 * MIB
    );

    // Two domains (a shareable disk): both are named; both must let go.
    driver.acquire_volume(&web_disk, &db()).await.unwrap();
    assert_in_use(
        driver.delete_volume(&web_disk).await.unwrap_err(),
        "volume 'web.qcow2' in pool 'images' is in use by domains 'web', 'db'",
    );
    driver.release_volume(&web_disk, &web().uuid).await.unwrap();
    assert_in_use(
        driver.delete_volume(&web_disk).await.unwrap_err(),
        "volume 'web.qcow2' in pool 'images' is in use by domain 'db'",
    );
    // Released by path, as a client that only knows the path would.
    let by_path = VolRef::Path(path.display().to_string());
    driver.release_volume(&by_path, &db().uuid).await.unwrap();
    // Releasing what is not held is no error: the goal is reached.
    driver.release_volume(&web_disk, &db().uuid).await.unwrap();
    driver
        .release_volume(&vol("images", "nosuch.qcow2"), &web().uuid)
        .await
        .unwrap();
    driver
        .release_volume(&vol("nosuch", "web.qcow2"), &web().uuid)
        .await
        .unwrap();

    driver.delete_volume(&web_disk).await.unwrap();
    assert!(!path.exists());
    // A volume that is not there cannot be leased.
    let missing = driver.acquire_volume(&web_disk, &web()).await.unwrap_err();
    assert!(
        matches!(missing, StorageError::VolNotFound(_)),
        "{missing:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_survive_a_restart_of_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let driver = dir_driver(dir.path()).await;
    let web_disk = vol("images", "web.qcow2");
    driver.acquire_volume(&web_disk, &web()).await.unwrap();
    drop(driver);

    let driver = driver::build(DriverKind::Dir, &config(dir.path()))
        .await
        .unwrap();
    assert_in_use(
        driver.delete_volume(&web_disk).await.unwrap_err(),
        "volume 'web.qcow2' in pool 'images' is in use by domain 'web'",
    );
    driver.release_volume(&web_disk, &web().uuid).await.unwrap();
    drop(driver);

    // The release is remembered as well.
    let driver = driver::build(DriverKind::Dir, &config(dir.path()))
        .await
        .unwrap();
    driver.delete_volume(&web_disk).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfinished_upload_is_not_leased_out() {
    let dir = tempfile::tempdir().unwrap();
    let driver = dir_driver(dir.path()).await;
    let images = PoolRef::Name("images".into());
    let raw = format!(
        "<volume><name>half.img</name><capacity>{}</capacity><allocation>0</allocation>\
         <target><format type='raw'/></target></volume>",
        4 * MIB
    );
    driver
        .create_volume(&images, parse_volume(&raw).unwrap(), false)
        .await
        .unwrap();
    let half = vol("images", "half.img");
    let items = vec![
        Ok(UploadItem::Piece(Piece::Data {
            offset: 0,
            bytes: vec![7; MIB as usize].into(),
        })),
        Err(StorageError::InvalidArg("client gone".into())),
    ];
    driver
        .upload_volume(
            &half,
            0,
            Some(4 * MIB),
            Box::pin(futures::stream::iter(items)),
        )
        .await
        .unwrap_err();
    let refused = driver.acquire_volume(&half, &web()).await.unwrap_err();
    assert!(
        matches!(refused, StorageError::OperationInvalid(_)),
        "{refused:?}"
    );
    assert!(
        refused
            .to_string()
            .contains("volume 'half.img' in pool 'images' has an unfinished upload"),
        "{refused}"
    );
    // Nothing was leased: the volume can go.
    driver.delete_volume(&half).await.unwrap();
}

#[tokio::test]
async fn the_test_driver_leases_too() {
    let dir = tempfile::tempdir().unwrap();
    let driver = driver::build(DriverKind::Test, &config(dir.path()))
        .await
        .unwrap();
    let pool = PoolRef::Name("default".into());
    let xml = "<volume><name>web.img</name><capacity>1048576</capacity></volume>";
    driver
        .create_volume(&pool, parse_volume(xml).unwrap(), false)
        .await
        .unwrap();
    let web_disk = vol("default", "web.img");
    let leased = driver.acquire_volume(&web_disk, &web()).await.unwrap();
    assert_eq!(leased.path, "/default-pool/web.img");
    assert_eq!(leased.format, "raw");
    assert_in_use(
        driver.delete_volume(&web_disk).await.unwrap_err(),
        "volume 'web.img' in pool 'default' is in use by domain 'web'",
    );
    drop(driver);
    let driver = driver::build(DriverKind::Test, &config(dir.path()))
        .await
        .unwrap();
    assert!(driver.delete_volume(&web_disk).await.is_err());
    driver.release_volume(&web_disk, &web().uuid).await.unwrap();
    driver.delete_volume(&web_disk).await.unwrap();
}
