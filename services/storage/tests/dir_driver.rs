//! The dir driver for real: pools are directories in a temp dir, volumes are files made and
//! inspected by the real qemu-img. Each test checks what the driver reports against what is
//! on disk, and that bad input is refused with a clear error and changes nothing.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use virtplane_storage::driver::{self, DriverConfig, DriverKind, StorageDriver};
use virtplane_storage::error::StorageError;
use virtplane_storage::model::{
    BuildFlags, PoolFilter, PoolRef, PoolState, ResizeSpec, VolRef, WipeAlgorithm,
};
use virtplane_storage::xml::{parse_pool, parse_volume};

const MIB: u64 = 1024 * 1024;

struct World {
    dir: tempfile::TempDir,
}

impl World {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn config(&self) -> DriverConfig {
        DriverConfig {
            state_dir: self.dir.path().join("state"),
            run_dir: self.dir.path().join("run"),
        }
    }

    async fn driver(&self) -> Arc<dyn StorageDriver> {
        driver::build(DriverKind::Dir, &self.config())
            .await
            .unwrap()
    }

    fn pool_dir(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join("pools").join(name)
    }

    fn pool_xml(&self, name: &str) -> String {
        format!(
            "<pool type='dir'><name>{name}</name><target><path>{}</path></target></pool>",
            self.pool_dir(name).display()
        )
    }
}

fn pool(name: &str) -> PoolRef {
    PoolRef::Name(name.into())
}

fn vol(pool: &str, name: &str) -> VolRef {
    VolRef::Name {
        pool: pool.into(),
        volume: name.into(),
    }
}

fn vol_xml(name: &str, format: &str, capacity: u64, allocation: Option<u64>) -> String {
    let allocation = allocation
        .map(|a| format!("<allocation>{a}</allocation>"))
        .unwrap_or_default();
    format!(
        "<volume><name>{name}</name><capacity>{capacity}</capacity>{allocation}\
         <target><format type='{format}'/></target></volume>"
    )
}

/// A started pool `images` with nothing in it.
async fn started(world: &World) -> Arc<dyn StorageDriver> {
    let driver = world.driver().await;
    driver
        .define_pool(parse_pool(&world.pool_xml("images")).unwrap())
        .await
        .unwrap();
    driver
        .build_pool(&pool("images"), BuildFlags::default())
        .await
        .unwrap();
    driver.start_pool(&pool("images"), None).await.unwrap();
    driver
}

fn sha256(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

#[tokio::test]
async fn pools_and_volumes_on_disk() {
    let world = World::new();
    let driver = started(&world).await;
    let info = driver.lookup_pool(&pool("images")).unwrap();
    assert_eq!(info.state, PoolState::Running);
    assert!(
        info.sizes.capacity > 0 && info.sizes.available > 0,
        "{info:?}"
    );
    assert!(driver.list_volumes(&pool("images")).unwrap().is_empty());

    // qcow2: a real image of the capacity asked, mode 0600 as libvirt.
    let qcow2 = driver
        .create_volume(
            &pool("images"),
            parse_volume(&vol_xml("web.qcow2", "qcow2", 64 * MIB, None)).unwrap(),
            false,
        )
        .await
        .unwrap();
    let path = world.pool_dir("images").join("web.qcow2");
    assert_eq!(qcow2.path, path.display().to_string());
    assert_eq!(qcow2.key, qcow2.path);
    assert_eq!((qcow2.format.as_str(), qcow2.capacity), ("qcow2", 64 * MIB));
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let xml = driver.volume_xml(&vol("images", "web.qcow2")).unwrap();
    assert!(xml.contains("<format type='qcow2'/>"), "{xml}");
    assert!(
        xml.contains(&format!("<capacity unit='bytes'>{}</capacity>", 64 * MIB)),
        "{xml}"
    );

    // raw with <allocation>0</allocation> stays sparse; without it, all is allocated.
    let sparse = driver
        .create_volume(
            &pool("images"),
            parse_volume(&vol_xml("sparse.img", "raw", 32 * MIB, Some(0))).unwrap(),
            false,
        )
        .await
        .unwrap();
    assert!(sparse.allocation < MIB, "{sparse:?}");
    let full = driver
        .create_volume(
            &pool("images"),
            parse_volume(&vol_xml("full.img", "raw", 8 * MIB, None)).unwrap(),
            false,
        )
        .await
        .unwrap();
    assert!(full.allocation >= 8 * MIB, "{full:?}");

    // Lookups by key and path find the same volume.
    let by_path = driver
        .lookup_volume(&VolRef::Path(qcow2.path.clone()))
        .unwrap();
    assert_eq!(by_path.name, "web.qcow2");
    assert_eq!(by_path.pool, "images");
    let names: Vec<String> = driver
        .list_volumes(&pool("images"))
        .unwrap()
        .into_iter()
        .map(|v| v.name)
        .collect();
    assert_eq!(names, ["full.img", "sparse.img", "web.qcow2"]);

    // Delete removes the file.
    driver
        .delete_volume(&vol("images", "full.img"))
        .await
        .unwrap();
    assert!(!world.pool_dir("images").join("full.img").exists());
}

#[tokio::test]
async fn clone_convert_backing_and_resize_keep_the_data() {
    let world = World::new();
    let driver = started(&world).await;
    let dir = world.pool_dir("images");
    driver
        .create_volume(
            &pool("images"),
            parse_volume(&vol_xml("base.img", "raw", 16 * MIB, Some(0))).unwrap(),
            false,
        )
        .await
        .unwrap();
    // Some data at two places, holes elsewhere.
    {
        use std::os::unix::fs::FileExt;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join("base.img"))
            .unwrap();
        file.write_all_at(&[0xab; 4096], 0).unwrap();
        file.write_all_at(&[0xcd; 4096], 9 * MIB).unwrap();
    }
    let original = sha256(&dir.join("base.img"));

    // raw → qcow2 → raw: the same bytes, and the copies stay sparse.
    driver
        .create_volume_from(
            &pool("images"),
            parse_volume(&vol_xml("copy.qcow2", "qcow2", 16 * MIB, None)).unwrap(),
            &vol("images", "base.img"),
            false,
        )
        .await
        .unwrap();
    let back = driver
        .create_volume_from(
            &pool("images"),
            parse_volume(&vol_xml("back.img", "raw", 16 * MIB, None)).unwrap(),
            &vol("images", "copy.qcow2"),
            false,
        )
        .await
        .unwrap();
    assert_eq!(sha256(&dir.join("back.img")), original);
    assert!(back.allocation < 2 * MIB, "sparse copy: {back:?}");

    // A qcow2 overlay on a volume of the pool.
    let overlay = format!(
        "<volume><name>overlay.qcow2</name><capacity>{}</capacity>\
         <target><format type='qcow2'/></target>\
         <backingStore><path>{}</path><format type='raw'/></backingStore></volume>",
        16 * MIB,
        dir.join("base.img").display()
    );
    driver
        .create_volume(&pool("images"), parse_volume(&overlay).unwrap(), false)
        .await
        .unwrap();
    let xml = driver.volume_xml(&vol("images", "overlay.qcow2")).unwrap();
    assert!(xml.contains("<backingStore>"), "{xml}");
    assert!(xml.contains("base.img"), "{xml}");

    // …but never on a host file that is no volume.
    let sneaky = overlay
        .replace("overlay.qcow2", "sneaky.qcow2")
        .replace(&dir.join("base.img").display().to_string(), "/etc/passwd");
    let error = driver
        .create_volume(&pool("images"), parse_volume(&sneaky).unwrap(), false)
        .await
        .unwrap_err();
    assert!(matches!(error, StorageError::InvalidArg(_)), "{error}");
    assert!(!dir.join("sneaky.qcow2").exists());

    // Resize: grow; shrink needs the flag.
    let grown = driver
        .resize_volume(
            &vol("images", "copy.qcow2"),
            ResizeSpec {
                capacity: 32 * MIB,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(grown.capacity, 32 * MIB);
    let refused = driver
        .resize_volume(
            &vol("images", "copy.qcow2"),
            ResizeSpec {
                capacity: 8 * MIB,
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("--shrink"), "{refused}");
    let shrunk = driver
        .resize_volume(
            &vol("images", "copy.qcow2"),
            ResizeSpec {
                capacity: 8 * MIB,
                shrink: true,
                delta: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(shrunk.capacity, 24 * MIB);

    // Wipe: zero works; the multi-pass patterns say they are not built.
    driver
        .wipe_volume(&vol("images", "base.img"), WipeAlgorithm::Zero)
        .await
        .unwrap();
    let bytes = std::fs::read(dir.join("base.img")).unwrap();
    assert_eq!(bytes.len() as u64, 16 * MIB);
    assert!(bytes.iter().all(|b| *b == 0));
    let error = driver
        .wipe_volume(&vol("images", "base.img"), WipeAlgorithm::Gutmann)
        .await
        .unwrap_err();
    assert!(matches!(error, StorageError::Unsupported { .. }), "{error}");
}

#[tokio::test]
async fn refresh_finds_files_but_not_escapes() {
    let world = World::new();
    let driver = started(&world).await;
    let dir = world.pool_dir("images");
    std::fs::write(dir.join("by-hand.iso"), vec![7u8; 8192]).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.join("escape.img")).unwrap();
    driver.refresh_pool(&pool("images")).await.unwrap();
    let names: Vec<String> = driver
        .list_volumes(&pool("images"))
        .unwrap()
        .into_iter()
        .map(|v| v.name)
        .collect();
    assert_eq!(names, ["by-hand.iso"]);
    let found = driver.lookup_volume(&vol("images", "by-hand.iso")).unwrap();
    assert_eq!((found.format.as_str(), found.capacity), ("raw", 8192));
}

#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    let world = World::new();
    let driver = started(&world).await;
    let dir = world.pool_dir("images");
    for name in ["../up.img", "a/b.img"] {
        let xml = vol_xml(name, "raw", MIB, None);
        // The XML layer or the driver refuses it; either way nothing is made.
        if let Ok(def) = parse_volume(&xml) {
            let error = driver
                .create_volume(&pool("images"), def, false)
                .await
                .unwrap_err();
            assert!(
                matches!(error, StorageError::InvalidArg(_)),
                "{name}: {error}"
            );
        }
    }
    assert!(!world.dir.path().join("pools/up.img").exists());
    let error = driver
        .create_volume(
            &pool("images"),
            parse_volume(&vol_xml("odd.vmdk", "vmdk", MIB, None)).unwrap(),
            false,
        )
        .await
        .unwrap_err();
    assert!(error.to_string().contains("vmdk"), "{error}");
    assert!(!dir.join("odd.vmdk").exists());
    let error = driver
        .create_volume(
            &pool("images"),
            parse_volume(&vol_xml("huge.img", "raw", u64::MAX / 2, Some(0))).unwrap(),
            false,
        )
        .await
        .unwrap_err();
    assert!(!dir.join("huge.img").exists(), "{error}");

    // A second pool on the same directory, and a pool whose target is a file.
    let same = world
        .pool_xml("images")
        .replace("<name>images<", "<name>again<");
    let error = driver
        .define_pool(parse_pool(&same).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(error, StorageError::TargetTaken { .. }), "{error}");
    let file = world.dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let on_file = format!(
        "<pool type='dir'><name>onfile</name><target><path>{}</path></target></pool>",
        file.display()
    );
    driver
        .define_pool(parse_pool(&on_file).unwrap())
        .await
        .unwrap();
    let error = driver.start_pool(&pool("onfile"), None).await.unwrap_err();
    assert!(error.to_string().contains("not a directory"), "{error}");
    assert_eq!(
        driver.lookup_pool(&pool("onfile")).unwrap().state,
        PoolState::Inactive
    );
}

#[tokio::test]
async fn a_restart_keeps_pools_and_volumes() {
    let world = World::new();
    {
        let driver = started(&world).await;
        driver
            .set_pool_autostart(&pool("images"), true)
            .await
            .unwrap();
        driver
            .create_volume(
                &pool("images"),
                parse_volume(&vol_xml("keep.qcow2", "qcow2", 8 * MIB, None)).unwrap(),
                false,
            )
            .await
            .unwrap();
        let transient = world.pool_xml("scratch");
        std::fs::create_dir_all(world.pool_dir("scratch")).unwrap();
        driver
            .create_pool(parse_pool(&transient).unwrap(), None)
            .await
            .unwrap();
    }
    let driver = world.driver().await;
    let pools = driver.list_pools(&PoolFilter::default());
    let names: Vec<(&str, PoolState, bool)> = pools
        .iter()
        .map(|p| (p.name.as_str(), p.state, p.persistent))
        .collect();
    assert_eq!(
        names,
        [
            ("images", PoolState::Running, true),
            ("scratch", PoolState::Running, false)
        ]
    );
    assert!(driver.lookup_pool(&pool("images")).unwrap().autostart);
    let kept = driver.lookup_volume(&vol("images", "keep.qcow2")).unwrap();
    assert_eq!(kept.capacity, 8 * MIB);

    // Stop, delete and undefine in libvirt's order.
    let error = driver.delete_pool(&pool("images")).await.unwrap_err();
    assert!(error.to_string().contains("still active"), "{error}");
    driver.destroy_pool(&pool("images")).await.unwrap();
    let error = driver.delete_pool(&pool("images")).await.unwrap_err();
    assert!(
        error.to_string().contains("cannot remove"),
        "not empty: {error}"
    );
    std::fs::remove_file(world.pool_dir("images").join("keep.qcow2")).unwrap();
    driver.delete_pool(&pool("images")).await.unwrap();
    assert!(!world.pool_dir("images").exists());
    driver.undefine_pool(&pool("images")).await.unwrap();
    driver.destroy_pool(&pool("scratch")).await.unwrap();
    assert!(driver.list_pools(&PoolFilter::default()).is_empty());
    // The files a pool needs are gone with it.
    let state = world.dir.path().join("state/pools");
    let left: Vec<_> = std::fs::read_dir(&state)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
