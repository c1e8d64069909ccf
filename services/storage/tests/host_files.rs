//! Sparse-aware file handling on real files in temporary directories.

mod host_files {
    use std::fs::OpenOptions;
    use std::path::Path;

    use virtplane_storage::host::files::{
        Extent, VolumeFile, allocation, capacity_of_fs, sync_dir,
    };

    const MIB: u64 = 1024 * 1024;
    const GIB: u64 = 1024 * MIB;

    fn new_volume(dir: &Path, name: &str) -> VolumeFile {
        let path = dir.join(name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        VolumeFile::new(file, path)
    }

    fn extents(volume: &VolumeFile, start: u64, end: u64) -> Vec<Extent> {
        volume
            .data_extents(start, end)
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn data(offset: u64, len: u64) -> Extent {
        Extent {
            offset,
            len,
            is_hole: false,
        }
    }

    fn hole(offset: u64, len: u64) -> Extent {
        Extent {
            offset,
            len,
            is_hole: true,
        }
    }

    fn ones(len: u64) -> Vec<u8> {
        vec![0xA5; len as usize]
    }

    #[test]
    fn a_sparse_gigabyte_reports_exactly_its_data_runs() {
        let dir = tempfile::tempdir().unwrap();
        let volume = new_volume(dir.path(), "sparse.raw");
        volume.set_len(GIB).unwrap();
        assert!(
            volume.allocation().unwrap() < MIB,
            "set_len allocated space"
        );
        assert!(volume.is_sparse().unwrap());

        for offset in [0, 300 * MIB, GIB - MIB] {
            volume.write_at(offset, &ones(MIB)).unwrap();
        }
        volume.sync_data().unwrap();

        assert_eq!(
            extents(&volume, 0, GIB),
            vec![
                data(0, MIB),
                hole(MIB, 299 * MIB),
                data(300 * MIB, MIB),
                hole(301 * MIB, GIB - MIB - 301 * MIB),
                data(GIB - MIB, MIB),
            ]
        );
        let allocated = allocation(volume.path()).unwrap();
        assert!(
            (3 * MIB..4 * MIB).contains(&allocated),
            "allocated {allocated} bytes for 3 MiB of data"
        );
        assert_eq!(volume.size().unwrap(), GIB);
    }

    #[test]
    fn a_sub_range_is_cut_at_its_ends() {
        let dir = tempfile::tempdir().unwrap();
        let volume = new_volume(dir.path(), "cut.raw");
        volume.set_len(16 * MIB).unwrap();
        volume.write_at(4 * MIB, &ones(2 * MIB)).unwrap();
        assert_eq!(
            extents(&volume, 5 * MIB, 10 * MIB),
            vec![data(5 * MIB, MIB), hole(6 * MIB, 4 * MIB)]
        );
        assert_eq!(
            extents(&volume, MIB, 5 * MIB),
            vec![hole(MIB, 3 * MIB), data(4 * MIB, MIB)]
        );
        // Past the end of the file reads as a hole.
        assert_eq!(
            extents(&volume, 15 * MIB, 20 * MIB),
            vec![hole(15 * MIB, 5 * MIB)]
        );
    }

    #[test]
    fn a_hole_chunk_past_the_end_grows_the_file_without_allocating() {
        let dir = tempfile::tempdir().unwrap();
        let volume = new_volume(dir.path(), "upload.raw");
        // An upload: data, a 1 GiB hole, data, and a trailing hole.
        volume.write_at(0, &ones(MIB)).unwrap();
        volume.write_hole(MIB, GIB).unwrap();
        volume.write_at(GIB + MIB, &ones(MIB)).unwrap();
        volume.write_hole(GIB + 2 * MIB, 8 * MIB).unwrap();
        volume.sync_data().unwrap();

        assert_eq!(volume.size().unwrap(), GIB + 10 * MIB);
        let allocated = volume.allocation().unwrap();
        assert!(
            allocated < 3 * MIB,
            "hole chunks allocated space: {allocated}"
        );
        assert_eq!(
            extents(&volume, 0, volume.size().unwrap()),
            vec![
                data(0, MIB),
                hole(MIB, GIB),
                data(GIB + MIB, MIB),
                hole(GIB + 2 * MIB, 8 * MIB),
            ]
        );
    }

    #[test]
    fn a_hole_chunk_over_data_punches_it_out() {
        let dir = tempfile::tempdir().unwrap();
        let volume = new_volume(dir.path(), "overwrite.raw");
        volume.write_at(0, &ones(4 * MIB)).unwrap();
        volume.sync_data().unwrap();
        let before = volume.allocation().unwrap();

        // Overlaps the end: 3..5 MiB, of which 3..4 is data.
        volume.write_hole(MIB, 2 * MIB).unwrap();
        volume.write_hole(3 * MIB, 2 * MIB).unwrap();
        volume.sync_data().unwrap();

        assert_eq!(volume.size().unwrap(), 5 * MIB);
        let mut buf = vec![0xFF; (4 * MIB) as usize];
        volume.read_exact_at(MIB, &mut buf).unwrap();
        assert!(buf.iter().all(|b| *b == 0), "punched range is not zeros");
        let mut first = vec![0; MIB as usize];
        volume.read_exact_at(0, &mut first).unwrap();
        assert_eq!(first, ones(MIB));
        let after = volume.allocation().unwrap();
        assert!(
            after + 3 * MIB <= before + 64 * 1024,
            "punching freed too little: {before} -> {after}"
        );
        assert_eq!(
            extents(&volume, 0, 5 * MIB),
            vec![data(0, MIB), hole(MIB, 4 * MIB)]
        );
    }

    #[test]
    fn written_zeros_and_allocated_ranges_take_space() {
        let dir = tempfile::tempdir().unwrap();
        let zeros = new_volume(dir.path(), "zeros.raw");
        zeros.write_zeros(MIB, 3 * MIB).unwrap();
        zeros.sync_data().unwrap();
        assert_eq!(zeros.size().unwrap(), 4 * MIB);
        assert!(zeros.allocation().unwrap() >= 3 * MIB);

        let allocated = new_volume(dir.path(), "allocated.raw");
        allocated.allocate(0, 8 * MIB).unwrap();
        assert_eq!(allocated.size().unwrap(), 8 * MIB);
        assert!(allocated.allocation().unwrap() >= 8 * MIB);
        assert!(!allocated.is_sparse().unwrap());
    }

    #[test]
    fn the_pool_filesystem_numbers_add_up_like_libvirts() {
        let dir = tempfile::tempdir().unwrap();
        let usage = capacity_of_fs(dir.path()).unwrap();
        assert!(usage.capacity > 0);
        assert_eq!(usage.allocation + usage.available, usage.capacity);
        assert!(usage.available_unprivileged <= usage.available);

        // df's size column is f_frsize * f_blocks too.
        let df = std::process::Command::new("df")
            .args(["--output=size", "-B1"])
            .arg(dir.path())
            .output()
            .unwrap();
        let df = String::from_utf8(df.stdout).unwrap();
        let df_size: u64 = df.lines().nth(1).unwrap().trim().parse().unwrap();
        assert_eq!(usage.capacity, df_size);

        let err = capacity_of_fs(Path::new("/nonexistent/pool")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot statvfs '/nonexistent/pool': "),
            "{err}"
        );
    }

    #[test]
    fn sync_helpers_work_and_name_what_failed() {
        let dir = tempfile::tempdir().unwrap();
        let volume = new_volume(dir.path(), "synced.raw");
        volume.write_at(0, b"data").unwrap();
        volume.sync_all().unwrap();
        sync_dir(dir.path()).unwrap();
        let missing = dir.path().join("gone");
        let err = sync_dir(&missing).unwrap_err();
        assert!(err.to_string().contains("gone"), "{err}");
    }
}
