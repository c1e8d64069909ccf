//! Names and files confined to their pool directory, on real directories and symlinks.

mod host_confine {
    use std::os::unix::fs::{PermissionsExt, symlink};
    use std::path::Path;

    use virtplane_storage::host::confine::{
        Access, ConfineError, SkipReason, check_in_pool, check_pool_target, create_in_pool,
        list_pool_files, open_in_pool, remove_in_pool, resolve_in_pool,
    };

    /// A pool directory and, beside it, a directory standing for the rest of the host.
    struct Setup {
        _root: tempfile::TempDir,
        pool: std::path::PathBuf,
        outside: std::path::PathBuf,
    }

    fn setup() -> Setup {
        let root = tempfile::tempdir().unwrap();
        let pool = root.path().join("pool");
        let outside = root.path().join("outside");
        std::fs::create_dir(&pool).unwrap();
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("secret"), b"host data").unwrap();
        Setup {
            _root: root,
            pool,
            outside,
        }
    }

    fn mkfifo(path: &Path) {
        let status = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success());
    }

    #[test]
    fn traversal_names_are_refused_everywhere() {
        let s = setup();
        for name in ["..", ".", "../outside/secret", "/etc/passwd", "", "a\0b"] {
            let resolved = resolve_in_pool(&s.pool, name);
            assert!(
                matches!(resolved, Err(ConfineError::InvalidName { .. })),
                "{name:?}: {resolved:?}"
            );
            assert!(matches!(
                open_in_pool(&s.pool, name, Access::ReadOnly),
                Err(ConfineError::InvalidName { .. })
            ));
            assert!(matches!(
                create_in_pool(&s.pool, name, 0o600),
                Err(ConfineError::InvalidName { .. })
            ));
            assert!(matches!(
                check_in_pool(&s.pool, name),
                Err(ConfineError::InvalidName { .. })
            ));
        }
        assert_eq!(
            resolve_in_pool(&s.pool, "disk.qcow2").unwrap(),
            s.pool.join("disk.qcow2")
        );
    }

    #[test]
    fn symlinks_leading_outside_the_pool_are_refused() {
        let s = setup();
        symlink(s.outside.join("secret"), s.pool.join("absolute")).unwrap();
        symlink("../outside/secret", s.pool.join("relative")).unwrap();
        for name in ["absolute", "relative"] {
            for access in [Access::ReadOnly, Access::ReadWrite] {
                let err = open_in_pool(&s.pool, name, access).unwrap_err();
                assert!(
                    matches!(err, ConfineError::EscapesPool { .. }),
                    "{name}: {err:?}"
                );
                let message = err.to_string();
                assert!(
                    message.contains(name) && message.contains("outside the pool directory"),
                    "{message}"
                );
            }
            assert!(matches!(
                check_in_pool(&s.pool, name),
                Err(ConfineError::EscapesPool { .. })
            ));
        }
        assert_eq!(
            std::fs::read(s.outside.join("secret")).unwrap(),
            b"host data"
        );
    }

    #[test]
    fn symlinks_within_the_pool_are_followed() {
        let s = setup();
        std::fs::write(s.pool.join("real.img"), b"volume").unwrap();
        symlink("real.img", s.pool.join("alias.img")).unwrap();
        let volume = open_in_pool(&s.pool, "alias.img", Access::ReadOnly).unwrap();
        let mut buf = [0; 6];
        volume.read_exact_at(0, &mut buf).unwrap();
        assert_eq!(&buf, b"volume");
        assert_eq!(volume.path(), s.pool.join("alias.img"));
        assert_eq!(
            check_in_pool(&s.pool, "alias.img").unwrap(),
            s.pool.join("alias.img")
        );
    }

    #[test]
    fn only_regular_files_open_as_volumes() {
        let s = setup();
        std::fs::create_dir(s.pool.join("subdir")).unwrap();
        mkfifo(&s.pool.join("fifo"));
        let err = open_in_pool(&s.pool, "subdir", Access::ReadOnly).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "'{}' is a directory, not a regular file",
                s.pool.join("subdir").display()
            )
        );
        // A FIFO must not hang the open.
        let err = open_in_pool(&s.pool, "fifo", Access::ReadOnly).unwrap_err();
        assert!(err.to_string().contains("a FIFO"), "{err}");
        let err = check_in_pool(&s.pool, "fifo").unwrap_err();
        assert!(err.to_string().contains("a FIFO"), "{err}");
        assert!(matches!(
            open_in_pool(&s.pool, "missing", Access::ReadOnly),
            Err(ConfineError::NotFound { .. })
        ));
    }

    #[test]
    fn opened_for_writing_the_volume_is_writable_and_blocking() {
        let s = setup();
        std::fs::write(s.pool.join("v.raw"), b"").unwrap();
        let volume = open_in_pool(&s.pool, "v.raw", Access::ReadWrite).unwrap();
        volume.write_at(0, b"abc").unwrap();
        let flags = rustix::fs::fcntl_getfl(volume.file()).unwrap();
        assert!(!flags.contains(rustix::fs::OFlags::NONBLOCK));
        assert_eq!(std::fs::read(s.pool.join("v.raw")).unwrap(), b"abc");
        let read_only = open_in_pool(&s.pool, "v.raw", Access::ReadOnly).unwrap();
        assert!(read_only.write_at(0, b"x").is_err());
    }

    #[test]
    fn create_reserves_a_new_name_with_the_exact_mode() {
        let s = setup();
        let volume = create_in_pool(&s.pool, "new.qcow2", 0o640).unwrap();
        volume.write_at(0, b"x").unwrap();
        let mode = std::fs::metadata(s.pool.join("new.qcow2"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o640);

        let err = create_in_pool(&s.pool, "new.qcow2", 0o600).unwrap_err();
        assert!(matches!(err, ConfineError::AlreadyExists { .. }), "{err:?}");
        assert!(err.to_string().contains("already exists"), "{err}");

        // A symlink in the way is neither followed nor replaced.
        symlink(s.outside.join("secret"), s.pool.join("trap")).unwrap();
        assert!(matches!(
            create_in_pool(&s.pool, "trap", 0o600),
            Err(ConfineError::AlreadyExists { .. })
        ));
        symlink(s.outside.join("not-yet"), s.pool.join("dangling")).unwrap();
        assert!(matches!(
            create_in_pool(&s.pool, "dangling", 0o600),
            Err(ConfineError::AlreadyExists { .. })
        ));
        assert!(!s.outside.join("not-yet").exists());
        assert_eq!(
            std::fs::read(s.outside.join("secret")).unwrap(),
            b"host data"
        );
    }

    #[test]
    fn remove_deletes_a_symlink_not_its_target() {
        let s = setup();
        symlink(s.outside.join("secret"), s.pool.join("link")).unwrap();
        remove_in_pool(&s.pool, "link").unwrap();
        assert!(s.outside.join("secret").exists());
        assert!(!s.pool.join("link").exists());
        assert!(matches!(
            remove_in_pool(&s.pool, "link"),
            Err(ConfineError::NotFound { .. })
        ));
        assert!(matches!(
            remove_in_pool(&s.pool, ".."),
            Err(ConfineError::InvalidName { .. })
        ));
    }

    #[test]
    fn listing_returns_volume_files_and_says_why_it_skipped_the_rest() {
        let s = setup();
        std::fs::write(s.pool.join("b.qcow2"), b"").unwrap();
        std::fs::write(s.pool.join("a.raw"), b"").unwrap();
        symlink("a.raw", s.pool.join("c-alias")).unwrap();
        symlink(s.outside.join("secret"), s.pool.join("escape")).unwrap();
        symlink("missing", s.pool.join("dangling")).unwrap();
        symlink("subdir", s.pool.join("dir-alias")).unwrap();
        std::fs::create_dir(s.pool.join("subdir")).unwrap();
        mkfifo(&s.pool.join("fifo"));
        std::fs::write(s.pool.join("bad\nname"), b"").unwrap();

        let listing = list_pool_files(&s.pool).unwrap();
        let files: Vec<_> = listing
            .files
            .iter()
            .map(|f| (f.name.as_str(), f.via_symlink))
            .collect();
        assert_eq!(
            files,
            vec![("a.raw", false), ("b.qcow2", false), ("c-alias", true)]
        );
        assert_eq!(listing.files[0].path, s.pool.join("a.raw"));

        let skipped: Vec<_> = listing
            .skipped
            .iter()
            .map(|e| (e.name.as_str(), e.reason.clone()))
            .collect();
        assert_eq!(
            skipped,
            vec![
                (
                    "bad\\nname",
                    SkipReason::InvalidName("it contains a control character".into())
                ),
                (
                    "dangling",
                    SkipReason::DanglingSymlink {
                        target: "missing".into()
                    }
                ),
                (
                    "dir-alias",
                    SkipReason::NotRegularFile {
                        kind: "a directory"
                    }
                ),
                (
                    "escape",
                    SkipReason::SymlinkOutsidePool {
                        target: s.outside.join("secret")
                    }
                ),
                ("fifo", SkipReason::NotRegularFile { kind: "a FIFO" }),
                (
                    "subdir",
                    SkipReason::NotRegularFile {
                        kind: "a directory"
                    }
                ),
            ]
        );
        let escape = &listing.skipped[3].reason.to_string();
        assert!(escape.contains("leads outside the pool"), "{escape}");
    }

    #[test]
    fn the_pool_target_must_be_an_absolute_directory() {
        let s = setup();
        check_pool_target(&s.pool).unwrap();
        let alias = s.outside.join("pool-alias");
        symlink(&s.pool, &alias).unwrap();
        check_pool_target(&alias).unwrap();

        let file = s.outside.join("secret");
        assert_eq!(
            check_pool_target(&file).unwrap_err().to_string(),
            format!(
                "pool target '{}' is a file, not a directory",
                file.display()
            )
        );
        assert_eq!(
            check_pool_target(Path::new("relative/pool"))
                .unwrap_err()
                .to_string(),
            "pool target 'relative/pool' is not an absolute path"
        );
        let missing = s.outside.join("nope");
        assert!(matches!(
            check_pool_target(&missing),
            Err(ConfineError::TargetMissing { .. })
        ));
        assert!(matches!(
            list_pool_files(&file),
            Err(ConfineError::TargetNotADirectory { .. })
        ));
    }
}
