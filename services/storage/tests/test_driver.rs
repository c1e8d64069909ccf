//! The test driver: libvirt's test:///default world (a running, autostarted `default` pool),
//! the same rules as the dir driver, nothing on the host, and nothing lost across a restart.

use std::sync::Arc;

use virtplane_storage::driver::{self, DriverConfig, DriverKind, StorageDriver};
use virtplane_storage::error::StorageError;
use virtplane_storage::model::{Lifecycle, PoolFilter, PoolRef, PoolState, ResizeSpec, VolRef};
use virtplane_storage::xml::{parse_pool, parse_volume};

fn config(dir: &std::path::Path) -> DriverConfig {
    DriverConfig {
        state_dir: dir.join("state"),
        run_dir: dir.join("run"),
    }
}

async fn open(dir: &std::path::Path) -> Arc<dyn StorageDriver> {
    driver::build(DriverKind::Test, &config(dir)).await.unwrap()
}

fn default_pool() -> PoolRef {
    PoolRef::Name("default".into())
}

fn vol(name: &str) -> VolRef {
    VolRef::Name {
        pool: "default".into(),
        volume: name.into(),
    }
}

#[tokio::test]
async fn the_default_world_and_its_rules() {
    let dir = tempfile::tempdir().unwrap();
    let driver = open(dir.path()).await;
    let pools = driver.list_pools(&PoolFilter::default());
    assert_eq!(pools.len(), 1);
    assert_eq!(pools[0].name, "default");
    assert_eq!(pools[0].state, PoolState::Running);
    assert!(pools[0].autostart && pools[0].persistent);
    assert_eq!(pools[0].sizes.capacity, 100 * 1024 * 1024 * 1024);

    let mut events = Box::pin(driver.events().subscribe_from(0).unwrap().1);
    let made = driver
        .create_volume(
            &default_pool(),
            parse_volume(
                "<volume><name>web.qcow2</name><capacity unit='G'>10</capacity>\
                 <allocation unit='M'>1</allocation><target><format type='qcow2'/></target>\
                 </volume>",
            )
            .unwrap(),
            false,
        )
        .await
        .unwrap();
    assert_eq!(made.path, "/default-pool/web.qcow2");
    assert_eq!(made.capacity, 10 * 1024 * 1024 * 1024);
    use futures::StreamExt;
    let event = events.next().await.unwrap().unwrap();
    assert_eq!(event.lifecycle, Lifecycle::Created);
    assert_eq!(event.volume.as_deref(), Some("web.qcow2"));

    let again = driver
        .create_volume(
            &default_pool(),
            parse_volume("<volume><name>web.qcow2</name><capacity>1</capacity></volume>").unwrap(),
            false,
        )
        .await
        .unwrap_err();
    assert!(matches!(again, StorageError::VolExists(_)), "{again}");
    let no_capacity = driver
        .create_volume(
            &default_pool(),
            parse_volume("<volume><name>x</name></volume>").unwrap(),
            false,
        )
        .await
        .unwrap_err();
    assert!(
        no_capacity.to_string().contains("capacity"),
        "{no_capacity}"
    );
    let clone = driver
        .create_volume_from(
            &default_pool(),
            parse_volume("<volume><name>clone.qcow2</name></volume>").unwrap(),
            &vol("web.qcow2"),
            false,
        )
        .await
        .unwrap();
    assert_eq!(clone.capacity, made.capacity);
    driver
        .resize_volume(
            &vol("clone.qcow2"),
            ResizeSpec {
                capacity: 1024,
                delta: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();

    // A pool with volumes stays active until destroyed; undefine wants it inactive.
    let error = driver.undefine_pool(&default_pool()).await.unwrap_err();
    assert!(error.to_string().contains("still active"), "{error}");
    let logical = parse_pool(
        "<pool type='logical'><name>vg</name><target><path>/dev/vg</path></target></pool>",
    )
    .unwrap();
    let error = driver.define_pool(logical).await.unwrap_err();
    assert!(matches!(error, StorageError::Unsupported { .. }), "{error}");

    // A restart keeps everything; the volumes too.
    drop(events);
    drop(driver);
    let driver = open(dir.path()).await;
    let names: Vec<String> = driver
        .list_volumes(&default_pool())
        .unwrap()
        .into_iter()
        .map(|v| v.name)
        .collect();
    assert_eq!(names, ["clone.qcow2", "web.qcow2"]);
    assert_eq!(
        driver.lookup_volume(&vol("clone.qcow2")).unwrap().capacity,
        made.capacity + 1024
    );
    // Deleting the seeded pool is remembered: it is not seeded again.
    driver.destroy_pool(&default_pool()).await.unwrap();
    driver.undefine_pool(&default_pool()).await.unwrap();
    drop(driver);
    let driver = open(dir.path()).await;
    assert!(driver.list_pools(&PoolFilter::default()).is_empty());
}
