//! The qemu-img wrapper against the real qemu-img, on files in temporary directories, and
//! against scripts standing in for it (timeouts, a missing binary).

mod host_qemu_img {
    use std::path::{Path, PathBuf};
    use std::time::{Duration, Instant};

    use sha2::{Digest, Sha256};
    use virtplane_storage::host::files::{VolumeFile, allocation};
    use virtplane_storage::host::qemu_img::{
        BackingFile, CreateOptions, ImageFormat, Qcow2Compat, QemuImg, QemuImgError,
    };

    const MIB: u64 = 1024 * 1024;
    const GIB: u64 = 1024 * MIB;

    fn qemu_img() -> QemuImg {
        QemuImg::new()
    }

    /// Writes `len` bytes of a pattern that depends on `seed` at `offset`.
    fn write_pattern(path: &Path, offset: u64, len: usize, seed: u8) {
        let volume = VolumeFile::open_read_write(path).unwrap();
        let data: Vec<u8> = (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) | 1)
            .collect();
        volume.write_at(offset, &data).unwrap();
    }

    fn sha256_of(path: &Path) -> String {
        hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
    }

    #[tokio::test]
    async fn version_names_qemu_img() {
        let version = qemu_img().version().await.unwrap();
        assert!(version.starts_with("qemu-img version "), "{version}");
    }

    #[tokio::test]
    async fn raw_is_created_sparse_with_its_capacity() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk.raw");
        qemu_img()
            .create(&path, &CreateOptions::new(ImageFormat::Raw, GIB))
            .await
            .unwrap();
        let info = qemu_img()
            .info(&path, Some(ImageFormat::Raw))
            .await
            .unwrap();
        assert_eq!(info.image.format, "raw");
        assert_eq!(info.image.virtual_size, GIB);
        assert!(info.backing_chain.is_empty());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), GIB);
        let allocated = allocation(&path).unwrap();
        assert!(
            allocated < MIB,
            "a new raw volume allocated {allocated} bytes"
        );
    }

    #[tokio::test]
    async fn qcow2_is_created_with_compat_lazy_refcounts_and_metadata_preallocation() {
        let dir = tempfile::tempdir().unwrap();

        let v2 = dir.path().join("v2.qcow2");
        let options = CreateOptions {
            compat: Some(Qcow2Compat::V0_10),
            prealloc_metadata: true,
            ..CreateOptions::new(ImageFormat::Qcow2, 256 * MIB)
        };
        qemu_img().create(&v2, &options).await.unwrap();
        let info = qemu_img().info(&v2, None).await.unwrap().image;
        assert_eq!(info.format, "qcow2");
        assert_eq!(info.virtual_size, 256 * MIB);
        assert_eq!(info.compat.as_deref(), Some("0.10"));
        assert_eq!(info.corrupt, None, "qcow2 v2 has no corrupt bit");
        // Preallocated metadata makes the file much larger than a bare header.
        assert!(
            allocation(&v2).unwrap() > 256 * 1024,
            "metadata was not preallocated"
        );

        let v3 = dir.path().join("v3.qcow2");
        let options = CreateOptions {
            compat: Some(Qcow2Compat::V1_1),
            lazy_refcounts: true,
            ..CreateOptions::new(ImageFormat::Qcow2, 256 * MIB)
        };
        qemu_img().create(&v3, &options).await.unwrap();
        let info = qemu_img()
            .info(&v3, Some(ImageFormat::Qcow2))
            .await
            .unwrap()
            .image;
        assert_eq!(info.compat.as_deref(), Some("1.1"));
        assert_eq!(info.lazy_refcounts, Some(true));
        assert_eq!(info.corrupt, Some(false));
        assert_eq!(info.dirty, Some(false));
        assert!(allocation(&v3).unwrap() < MIB);
    }

    #[tokio::test]
    async fn invalid_create_options_are_refused_before_any_file_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.raw");
        let options = CreateOptions {
            backing: Some(BackingFile {
                path: dir.path().join("base.raw"),
                format: ImageFormat::Raw,
            }),
            ..CreateOptions::new(ImageFormat::Raw, MIB)
        };
        let err = qemu_img().create(&path, &options).await.unwrap_err();
        assert!(
            matches!(err, QemuImgError::InvalidOptions { .. }),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("bad.raw")
                && err.to_string().contains("backing storage is not supported"),
            "{err}"
        );
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn info_reports_the_whole_backing_chain() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base.raw");
        let mid = dir.path().join("mid.qcow2");
        let top = dir.path().join("top.qcow2");
        qemu_img()
            .create(&base, &CreateOptions::new(ImageFormat::Raw, 64 * MIB))
            .await
            .unwrap();
        for (image, backing, backing_format) in [
            (&mid, &base, ImageFormat::Raw),
            (&top, &mid, ImageFormat::Qcow2),
        ] {
            let options = CreateOptions {
                backing: Some(BackingFile {
                    path: backing.clone(),
                    format: backing_format,
                }),
                ..CreateOptions::new(ImageFormat::Qcow2, 128 * MIB)
            };
            qemu_img().create(image, &options).await.unwrap();
        }

        let info = qemu_img()
            .info(&top, Some(ImageFormat::Qcow2))
            .await
            .unwrap();
        assert_eq!(info.image.virtual_size, 128 * MIB);
        assert_eq!(
            info.image.backing_filename.as_deref(),
            Some(mid.to_str().unwrap())
        );
        assert_eq!(info.image.backing_format.as_deref(), Some("qcow2"));
        assert_eq!(info.backing_chain.len(), 2);
        assert_eq!(info.backing_chain[0].format, "qcow2");
        assert_eq!(info.backing_chain[0].backing_format.as_deref(), Some("raw"));
        assert_eq!(info.backing_chain[1].format, "raw");
        assert_eq!(info.backing_chain[1].virtual_size, 64 * MIB);
        assert_eq!(info.backing_chain[1].filename, base.to_str().unwrap());

        // With the base gone, the chain cannot be read, but the image alone still can.
        std::fs::remove_file(&base).unwrap();
        let err = qemu_img().info(&mid, None).await.unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, QemuImgError::Failed { .. }), "{err:?}");
        assert!(
            message.contains("mid.qcow2") && message.contains("base.raw"),
            "{message}"
        );
        let alone = qemu_img()
            .info_image(&mid, Some(ImageFormat::Qcow2))
            .await
            .unwrap();
        assert_eq!(
            alone.full_backing_filename.as_deref(),
            Some(base.to_str().unwrap())
        );
    }

    #[tokio::test]
    async fn info_on_a_missing_file_quotes_qemu_img() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nothing.qcow2");
        let err = qemu_img().info(&path, None).await.unwrap_err();
        let message = err.to_string();
        assert!(message.contains("info of '"), "{message}");
        assert!(message.contains("nothing.qcow2"), "{message}");
        assert!(
            message.contains("qemu-img: Could not open"),
            "stderr not quoted: {message}"
        );
    }

    #[tokio::test]
    async fn resize_grows_and_shrinks_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        for format in [ImageFormat::Raw, ImageFormat::Qcow2] {
            let path = dir.path().join(format!("r.{format}"));
            qemu_img()
                .create(&path, &CreateOptions::new(format, 64 * MIB))
                .await
                .unwrap();

            qemu_img()
                .resize(&path, format, 128 * MIB, false)
                .await
                .unwrap();
            let size = |info: virtplane_storage::host::ImageLayer| info.virtual_size;
            assert_eq!(
                size(qemu_img().info_image(&path, Some(format)).await.unwrap()),
                128 * MIB
            );

            let err = qemu_img()
                .resize(&path, format, 32 * MIB, false)
                .await
                .unwrap_err();
            assert!(
                matches!(
                    err,
                    QemuImgError::ShrinkNotAllowed {
                        current,
                        requested,
                        ..
                    } if current == 128 * MIB && requested == 32 * MIB
                ),
                "{err:?}"
            );
            assert!(err.to_string().contains("shrink flag"), "{err}");
            assert_eq!(
                size(qemu_img().info_image(&path, Some(format)).await.unwrap()),
                128 * MIB,
                "{format}: a refused shrink changed the size"
            );

            qemu_img()
                .resize(&path, format, 32 * MIB, true)
                .await
                .unwrap();
            assert_eq!(
                size(qemu_img().info_image(&path, Some(format)).await.unwrap()),
                32 * MIB
            );
        }
    }

    #[tokio::test]
    async fn convert_between_raw_and_qcow2_keeps_the_data() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("src.raw");
        qemu_img()
            .create(&raw, &CreateOptions::new(ImageFormat::Raw, 64 * MIB))
            .await
            .unwrap();
        for (offset, seed) in [(0, 1), (5 * MIB + 123, 2), (63 * MIB, 3)] {
            write_pattern(&raw, offset, MIB as usize, seed);
        }
        let qcow2 = dir.path().join("copy.qcow2");
        let back = dir.path().join("back.raw");
        let full = dir.path().join("full.raw");
        qemu_img()
            .convert(&raw, ImageFormat::Raw, &qcow2, ImageFormat::Qcow2, true)
            .await
            .unwrap();
        assert_eq!(
            qemu_img().info_image(&qcow2, None).await.unwrap().format,
            "qcow2"
        );
        qemu_img()
            .convert(&qcow2, ImageFormat::Qcow2, &back, ImageFormat::Raw, true)
            .await
            .unwrap();
        qemu_img()
            .convert(&qcow2, ImageFormat::Qcow2, &full, ImageFormat::Raw, false)
            .await
            .unwrap();

        assert_eq!(sha256_of(&back), sha256_of(&raw));
        assert_eq!(sha256_of(&full), sha256_of(&raw));
        let sparse_allocation = allocation(&back).unwrap();
        assert!(
            sparse_allocation < 8 * MIB,
            "sparse copy allocated {sparse_allocation}"
        );
        assert!(
            allocation(&full).unwrap() >= 64 * MIB,
            "non-sparse copy is not fully allocated"
        );
    }

    #[tokio::test]
    async fn info_reads_an_image_in_use_but_convert_refuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("busy.qcow2");
        qemu_img()
            .create(&path, &CreateOptions::new(ImageFormat::Qcow2, 16 * MIB))
            .await
            .unwrap();
        // qemu-io holds the image's write lock as a running VM would. It reports its write
        // once the image is open and locked (probing with qemu-img instead would race: the
        // probe's own lock can make qemu-io fail).
        // stdbuf: qemu-io's stdout is a pipe here, which stdio would buffer until exit.
        let mut holder = match std::process::Command::new("stdbuf")
            .args([
                "-oL",
                "qemu-io",
                "-f",
                "qcow2",
                "-c",
                "write 0 512",
                "-c",
                "sleep 30000",
            ])
            .arg(&path)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
        {
            Ok(child) => child,
            Err(e) => panic!(
                "this test needs stdbuf (coreutils) and qemu-io (qemu-utils) to hold an image lock: {e}"
            ),
        };
        let mut first_line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(holder.stdout.take().unwrap()),
            &mut first_line,
        )
        .unwrap();
        if !first_line.starts_with("wrote 512/512 bytes") {
            let mut stderr = String::new();
            std::io::Read::read_to_string(&mut holder.stderr.take().unwrap(), &mut stderr).unwrap();
            panic!("qemu-io did not open the image: {first_line:?} {stderr}");
        }

        let info = qemu_img().info(&path, Some(ImageFormat::Qcow2)).await;
        let copy = qemu_img()
            .convert(
                &path,
                ImageFormat::Qcow2,
                &dir.path().join("copy.raw"),
                ImageFormat::Raw,
                true,
            )
            .await;
        holder.kill().unwrap();
        holder.wait().unwrap();

        assert_eq!(info.unwrap().image.virtual_size, 16 * MIB);
        let err = copy.unwrap_err().to_string();
        assert!(err.contains("lock"), "{err}");
    }

    #[tokio::test]
    async fn a_missing_binary_says_what_to_install() {
        let qemu_img = QemuImg::with_binary("/nonexistent/bin/qemu-img");
        let err = qemu_img.version().await.unwrap_err();
        assert!(matches!(err, QemuImgError::NotInstalled { .. }), "{err:?}");
        assert!(err.to_string().contains("install qemu-utils"), "{err}");
    }

    /// Writes an executable script, retrying the first run on ETXTBSY (another test thread
    /// may fork while the script's write descriptor is still open).
    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    async fn version_with_retry(qemu_img: &QemuImg) -> Result<String, QemuImgError> {
        for _ in 0..20 {
            match qemu_img.version().await {
                Err(QemuImgError::Spawn { source, .. })
                    if source.kind() == std::io::ErrorKind::ExecutableFileBusy =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                other => return other,
            }
        }
        panic!("script stayed busy");
    }

    fn is_gone(pid: i32) -> bool {
        // Gone, or a zombie waiting for init to reap it: either way no longer running.
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        }
    }

    #[tokio::test]
    async fn a_run_past_its_timeout_is_killed_with_everything_it_started() {
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("pids");
        let binary = script(
            dir.path(),
            "slow-qemu-img",
            &format!(
                "sleep 30 &\necho $$ $! > '{}'\necho 'still working' >&2\nwait",
                pids.display()
            ),
        );
        let qemu_img = QemuImg::with_binary(&binary).timeout(Duration::from_millis(500));
        let started = Instant::now();
        let err = version_with_retry(&qemu_img).await.unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "took {:?}",
            started.elapsed()
        );
        assert!(matches!(err, QemuImgError::TimedOut { .. }), "{err:?}");
        assert!(err.to_string().contains("timed out after 0.5s"), "{err}");

        let pids = std::fs::read_to_string(&pids).unwrap();
        let pids: Vec<i32> = pids
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect();
        assert_eq!(pids.len(), 2);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !pids.iter().all(|pid| is_gone(*pid)) {
            assert!(
                Instant::now() < deadline,
                "processes {pids:?} outlived the timeout"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn a_failing_run_quotes_its_stderr_and_exit_status() {
        let dir = tempfile::tempdir().unwrap();
        let binary = script(
            dir.path(),
            "failing-qemu-img",
            "echo 'qemu-img: something broke' >&2\necho 'second line' >&2\nexit 3",
        );
        let err = version_with_retry(&QemuImg::with_binary(&binary))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "qemu-img --version failed (exit status: 3): qemu-img: something broke; second line"
        );
    }

    #[tokio::test]
    async fn output_that_is_not_json_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let binary = script(dir.path(), "chatty-qemu-img", "echo 'not json'");
        let qemu_img = QemuImg::with_binary(&binary);
        // Warm up past any ETXTBSY, then ask for info.
        version_with_retry(&qemu_img).await.unwrap();
        let err = qemu_img
            .info(&dir.path().join("x.qcow2"), None)
            .await
            .unwrap_err();
        assert!(matches!(err, QemuImgError::BadOutput { .. }), "{err:?}");
        assert!(err.to_string().contains("x.qcow2"), "{err}");
    }
}
