//! Wiping raw and qcow2 volumes on real files, with the real qemu-img.

mod host_wipe {
    use std::path::Path;

    use virtplane_storage::host::files::VolumeFile;
    use virtplane_storage::host::qemu_img::{
        BackingFile, CreateOptions, ImageFormat, Qcow2Compat, QemuImg,
    };
    use virtplane_storage::host::wipe::{WipeAlgorithm, WipeError, wipe};

    const MIB: u64 = 1024 * 1024;

    /// Bytes no wipe would produce by chance: a recognisable marker, repeated.
    fn marked(len: u64) -> Vec<u8> {
        b"VIRTPLANE-SECRET"
            .iter()
            .copied()
            .cycle()
            .take(len as usize)
            .collect()
    }

    fn contains_marker(path: &Path) -> bool {
        std::fs::read(path)
            .unwrap()
            .windows(16)
            .any(|w| w == b"VIRTPLANE-SECRET")
    }

    /// A 64 MiB sparse raw volume with 1 MiB of marked data at three places.
    fn sparse_raw_with_data(dir: &Path) -> std::path::PathBuf {
        let path = dir.join("v.raw");
        std::fs::File::create(&path).unwrap();
        let volume = VolumeFile::open_read_write(&path).unwrap();
        volume.set_len(64 * MIB).unwrap();
        for offset in [0, 20 * MIB, 63 * MIB] {
            volume.write_at(offset, &marked(MIB)).unwrap();
        }
        volume.sync_data().unwrap();
        path
    }

    #[tokio::test]
    async fn zero_wipe_of_raw_zeroes_the_data_and_keeps_size_and_holes() {
        let dir = tempfile::tempdir().unwrap();
        let path = sparse_raw_with_data(dir.path());
        let allocated_before = VolumeFile::open_read_write(&path)
            .unwrap()
            .allocation()
            .unwrap();

        let outcome = wipe(
            &QemuImg::new(),
            &path,
            ImageFormat::Raw,
            WipeAlgorithm::Zero,
        )
        .await
        .unwrap();

        assert_eq!(outcome.bytes_overwritten, 3 * MIB);
        assert!(!outcome.recreated);
        let content = std::fs::read(&path).unwrap();
        assert_eq!(content.len() as u64, 64 * MIB);
        assert!(content.iter().all(|b| *b == 0), "data left after zero wipe");
        let allocated_after = VolumeFile::open_read_write(&path)
            .unwrap()
            .allocation()
            .unwrap();
        assert!(
            allocated_after <= allocated_before,
            "zero wipe filled holes: {allocated_before} -> {allocated_after}"
        );
    }

    #[tokio::test]
    async fn random_wipe_of_raw_overwrites_everything_and_keeps_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = sparse_raw_with_data(dir.path());

        let outcome = wipe(
            &QemuImg::new(),
            &path,
            ImageFormat::Raw,
            WipeAlgorithm::Random,
        )
        .await
        .unwrap();

        assert_eq!(outcome.bytes_overwritten, 64 * MIB);
        let content = std::fs::read(&path).unwrap();
        assert_eq!(content.len() as u64, 64 * MIB);
        assert!(!contains_marker(&path), "marked data survived");
        // Holes are overwritten too: no 4 KiB block of the old holes is still zeros.
        let hole = &content[(2 * MIB) as usize..(3 * MIB) as usize];
        assert!(
            hole.chunks(4096).all(|block| block.iter().any(|b| *b != 0)),
            "a hole was left unwritten"
        );
        let zero_bytes = content.iter().filter(|b| **b == 0).count() as f64;
        let share = zero_bytes / content.len() as f64;
        assert!(share < 0.01, "{share} of the bytes are zero: not random");
    }

    async fn qcow2_with_data(dir: &Path, options: CreateOptions) -> std::path::PathBuf {
        // Data goes into a qcow2 image by converting a raw one, then the options are
        // applied by re-creating the image and copying into it.
        let raw = sparse_raw_with_data(dir);
        let path = dir.join("v.qcow2");
        QemuImg::new().create(&path, &options).await.unwrap();
        let status = std::process::Command::new("qemu-img")
            .args(["convert", "-n", "-f", "raw", "-O", "qcow2"])
            .arg(&raw)
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::remove_file(&raw).unwrap();
        assert!(contains_marker(&path));
        path
    }

    async fn guest_view_is_all_zeros(qcow2: &Path, dir: &Path) -> bool {
        let raw = dir.join("guest-view.raw");
        QemuImg::new()
            .convert(qcow2, ImageFormat::Qcow2, &raw, ImageFormat::Raw, true)
            .await
            .unwrap();
        let all_zero = std::fs::read(&raw).unwrap().iter().all(|b| *b == 0);
        std::fs::remove_file(&raw).unwrap();
        all_zero
    }

    #[tokio::test]
    async fn wiping_qcow2_leaves_an_empty_qcow2_of_the_same_capacity_and_compat() {
        for algorithm in [WipeAlgorithm::Zero, WipeAlgorithm::Random] {
            let dir = tempfile::tempdir().unwrap();
            let options = CreateOptions {
                compat: Some(Qcow2Compat::V0_10),
                ..CreateOptions::new(ImageFormat::Qcow2, 64 * MIB)
            };
            let path = qcow2_with_data(dir.path(), options).await;

            let outcome = wipe(&QemuImg::new(), &path, ImageFormat::Qcow2, algorithm)
                .await
                .unwrap();

            assert!(outcome.recreated);
            assert!(outcome.bytes_overwritten >= 3 * MIB, "{outcome:?}");
            let info = QemuImg::new()
                .info(&path, Some(ImageFormat::Qcow2))
                .await
                .unwrap()
                .image;
            assert_eq!(info.format, "qcow2");
            assert_eq!(info.virtual_size, 64 * MIB);
            assert_eq!(info.compat.as_deref(), Some("0.10"), "{algorithm}");
            assert!(!contains_marker(&path), "{algorithm}: marked data survived");
            assert!(guest_view_is_all_zeros(&path, dir.path()).await);
        }
    }

    #[tokio::test]
    async fn a_wiped_qcow2_overlay_drops_its_backing_file() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base.raw");
        std::fs::write(&base, marked(MIB)).unwrap();
        let overlay = dir.path().join("overlay.qcow2");
        let options = CreateOptions {
            backing: Some(BackingFile {
                path: base.clone(),
                format: ImageFormat::Raw,
            }),
            ..CreateOptions::new(ImageFormat::Qcow2, MIB)
        };
        QemuImg::new().create(&overlay, &options).await.unwrap();

        wipe(
            &QemuImg::new(),
            &overlay,
            ImageFormat::Qcow2,
            WipeAlgorithm::Zero,
        )
        .await
        .unwrap();

        let info = QemuImg::new().info(&overlay, None).await.unwrap();
        assert_eq!(info.image.backing_filename, None);
        assert!(info.backing_chain.is_empty());
        assert!(guest_view_is_all_zeros(&overlay, dir.path()).await);
        assert_eq!(
            std::fs::read(&base).unwrap(),
            marked(MIB),
            "base was touched"
        );
    }

    #[tokio::test]
    async fn a_file_that_is_not_qcow2_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = sparse_raw_with_data(dir.path());
        let err = wipe(
            &QemuImg::new(),
            &path,
            ImageFormat::Qcow2,
            WipeAlgorithm::Zero,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, WipeError::Inspect { .. }), "{err:?}");
        assert!(err.to_string().contains("before wiping it"), "{err}");
        assert!(contains_marker(&path));
    }

    #[tokio::test]
    async fn unsupported_algorithms_name_themselves() {
        let dir = tempfile::tempdir().unwrap();
        let path = sparse_raw_with_data(dir.path());
        let err = wipe(
            &QemuImg::new(),
            &path,
            ImageFormat::Raw,
            WipeAlgorithm::Gutmann,
        )
        .await
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "wipe algorithm 'gutmann' is not supported by the dir driver: use 'zero' or 'random'"
        );
        assert!(contains_marker(&path));
    }
}
