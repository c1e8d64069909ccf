//! Uploads and downloads through the dir driver, on real files: sparse data goes as holes,
//! the checksum guards the result, a cut-off upload leaves the volume marked incomplete
//! with the offset to resume from (also across a restart of the driver), and a download
//! gives back the same bytes.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use virtplane_storage::driver::core::UploadItem;
use virtplane_storage::driver::{self, DriverConfig, DriverKind, StorageDriver, UploadStream};
use virtplane_storage::error::StorageError;
use virtplane_storage::model::{BuildFlags, PoolRef, VolRef};
use virtplane_storage::transfer::Piece;
use virtplane_storage::transfer::download::Outgoing;
use virtplane_storage::xml::{parse_pool, parse_volume};

const MIB: u64 = 1024 * 1024;
const SIZE: u64 = 48 * MIB;

fn config(dir: &std::path::Path) -> DriverConfig {
    DriverConfig {
        state_dir: dir.join("state"),
        run_dir: dir.join("run"),
    }
}

async fn driver_with_volume(dir: &std::path::Path) -> Arc<dyn StorageDriver> {
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
        "<volume><name>disk.img</name><capacity>{SIZE}</capacity><allocation>0</allocation>\
         <target><format type='raw'/></target></volume>"
    );
    driver
        .create_volume(&images, parse_volume(&vol_xml).unwrap(), false)
        .await
        .unwrap();
    driver
}

fn disk() -> VolRef {
    VolRef::Name {
        pool: "images".into(),
        volume: "disk.img".into(),
    }
}

/// The image the tests upload: mostly holes, three data regions.
fn image() -> Vec<Piece> {
    let data = |offset: u64, byte: u8| Piece::Data {
        offset,
        bytes: vec![byte; MIB as usize].into(),
    };
    let hole = |offset: u64, end: u64| Piece::Hole {
        offset,
        len: end - offset,
    };
    vec![
        data(0, 1),
        hole(MIB, 20 * MIB),
        data(20 * MIB, 2),
        hole(21 * MIB, 40 * MIB),
        data(40 * MIB, 3),
        hole(41 * MIB, SIZE),
    ]
}

fn sha_of(pieces: &[Piece]) -> Vec<u8> {
    let mut hash = Sha256::new();
    for piece in pieces {
        virtplane_storage::transfer::hash_piece(&mut hash, piece);
    }
    hash.finalize().to_vec()
}

fn stream(pieces: Vec<Piece>, sha256: Option<Vec<u8>>) -> UploadStream {
    let mut items: Vec<_> = pieces
        .into_iter()
        .map(|p| Ok(UploadItem::Piece(p)))
        .collect();
    if let Some(sha256) = sha256 {
        items.push(Ok(UploadItem::Finish { sha256 }));
    }
    Box::pin(futures::stream::iter(items))
}

async fn download(driver: &Arc<dyn StorageDriver>, sparse: bool) -> (Vec<Piece>, Vec<u8>) {
    let (length, mut rx) = driver
        .download_volume(&disk(), 0, None, sparse)
        .await
        .unwrap();
    assert_eq!(length, SIZE);
    let (mut pieces, mut sha) = (Vec::new(), Vec::new());
    while let Some(item) = rx.recv().await {
        match item.unwrap() {
            Outgoing::Piece(piece) => pieces.push(piece),
            Outgoing::Done { sha256 } => sha = sha256.to_vec(),
        }
    }
    (pieces, sha)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_then_download_gives_the_same_bytes_without_sending_the_holes() {
    let dir = tempfile::tempdir().unwrap();
    let driver = driver_with_volume(dir.path()).await;
    let pieces = image();
    let sha = sha_of(&pieces);
    let (written, after) = driver
        .upload_volume(&disk(), 0, Some(SIZE), stream(pieces, Some(sha.clone())))
        .await
        .unwrap();
    assert_eq!(written, SIZE);
    assert!(!after.upload_incomplete);
    assert!(after.allocation < 16 * MIB, "holes stay holes: {after:?}");
    let file = std::fs::read(dir.path().join("pool/disk.img")).unwrap();
    assert_eq!(Sha256::digest(&file).to_vec(), sha);

    let (pieces, downloaded_sha) = download(&driver, true).await;
    assert_eq!(downloaded_sha, sha);
    let data: u64 = pieces
        .iter()
        .filter(|p| matches!(p, Piece::Data { .. }))
        .map(Piece::len)
        .sum();
    assert!(data <= 8 * MIB, "only the data travels: {data} bytes");
    // Not sparse: every byte as data, the same checksum.
    let (pieces, dense_sha) = download(&driver, false).await;
    assert_eq!(dense_sha, sha);
    assert!(pieces.iter().all(|p| matches!(p, Piece::Data { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_upload_is_marked_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let driver = driver_with_volume(dir.path()).await;
    let pieces = image();
    // The client goes away after the second data region.
    let first_part: Vec<Piece> = pieces[..4].to_vec();
    let mut items: Vec<_> = first_part
        .into_iter()
        .map(|p| Ok(UploadItem::Piece(p)))
        .collect();
    items.push(Err(StorageError::InvalidArg("client gone".into())));
    let cut = driver
        .upload_volume(
            &disk(),
            0,
            Some(SIZE),
            Box::pin(futures::stream::iter(items)),
        )
        .await
        .unwrap_err();
    assert!(cut.to_string().contains("client gone"), "{cut}");
    let info = driver.lookup_volume(&disk()).unwrap();
    assert!(info.upload_incomplete);
    assert_eq!(info.upload_offset, 40 * MIB);

    // A restart of the service keeps the mark.
    drop(driver);
    let driver = driver::build(DriverKind::Dir, &config(dir.path()))
        .await
        .unwrap();
    let info = driver.lookup_volume(&disk()).unwrap();
    assert!(info.upload_incomplete, "{info:?}");
    assert_eq!(info.upload_offset, 40 * MIB);

    // Resume from there with the rest, checksummed over the rest only.
    let rest: Vec<Piece> = pieces[4..].to_vec();
    let sha = sha_of(&rest);
    let (written, after) = driver
        .upload_volume(&disk(), 40 * MIB, None, stream(rest, Some(sha)))
        .await
        .unwrap();
    assert_eq!(written, SIZE - 40 * MIB);
    assert!(!after.upload_incomplete);
    let file = std::fs::read(dir.path().join("pool/disk.img")).unwrap();
    assert_eq!(Sha256::digest(&file).to_vec(), sha_of(&image()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_checksum_or_a_gap_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let driver = driver_with_volume(dir.path()).await;
    let error = driver
        .upload_volume(&disk(), 0, Some(SIZE), stream(image(), Some(vec![0; 32])))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("checksum"), "{error}");
    let info = driver.lookup_volume(&disk()).unwrap();
    assert!(
        info.upload_incomplete && info.upload_offset == 0,
        "{info:?}"
    );

    let mut gappy = image();
    gappy.remove(1);
    let sha = sha_of(&gappy);
    let error = driver
        .upload_volume(&disk(), 0, Some(SIZE), stream(gappy, Some(sha)))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("without gaps"), "{error}");

    // Past the end of a raw volume.
    let error = driver
        .upload_volume(&disk(), SIZE, Some(1), stream(Vec::new(), None))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("past the end"), "{error}");

    // The test driver keeps no data, and says so.
    let test_dir = tempfile::tempdir().unwrap();
    let test = driver::build(DriverKind::Test, &config(test_dir.path()))
        .await
        .unwrap();
    test.create_volume(
        &PoolRef::Name("default".into()),
        parse_volume("<volume><name>t.img</name><capacity>1024</capacity></volume>").unwrap(),
        false,
    )
    .await
    .unwrap();
    let error = test
        .download_volume(
            &VolRef::Name {
                pool: "default".into(),
                volume: "t.img".into(),
            },
            0,
            None,
            true,
        )
        .await
        .unwrap_err();
    assert!(matches!(error, StorageError::Unsupported { .. }), "{error}");
}
