//! Where a local file has data and where it has holes, found with `SEEK_DATA`/`SEEK_HOLE`
//! (what virsh's `virshStreamInData` asks), so `vol-upload --sparse` sends holes as holes.
//!
//! On a file system without hole reporting, `SEEK_DATA` says "data here" for every offset
//! (or fails with EINVAL on very old kernels): the file is then one data region, and the
//! upload is still correct, only not sparse.

use std::fs::File;
use std::io;

use nix::errno::Errno;
use nix::unistd::{Whence, lseek};

/// A run of a file: data to read and send, or zeros not stored on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    Data { offset: u64, len: u64 },
    Hole { offset: u64, len: u64 },
}

impl Region {
    pub fn len(&self) -> u64 {
        match *self {
            Region::Data { len, .. } | Region::Hole { len, .. } => len,
        }
    }
}

/// The regions of `[start, end)` of a file, in order. Without `sparse`, the whole range is
/// one data region (holes are then read, and sent, as zeros).
pub struct Regions<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
    sparse: bool,
}

impl<'a> Regions<'a> {
    pub fn new(file: &'a File, start: u64, end: u64, sparse: bool) -> Self {
        Regions {
            file,
            pos: start,
            end,
            sparse,
        }
    }

    /// Asks the file system where the next data at or after `pos` starts: `None` when the
    /// rest of the file is a hole.
    fn next_data(&mut self) -> io::Result<Option<u64>> {
        match lseek(self.file, to_off(self.pos)?, Whence::SeekData) {
            Ok(at) => Ok(Some(from_off(at))),
            Err(Errno::ENXIO) => Ok(None),
            // No hole reporting here: everything counts as data from now on.
            Err(Errno::EINVAL) | Err(Errno::EOPNOTSUPP) => {
                self.sparse = false;
                Ok(Some(self.pos))
            }
            Err(e) => Err(io::Error::from(e)),
        }
    }

    /// Where the data run starting at `pos` ends.
    fn next_hole(&mut self) -> io::Result<u64> {
        match lseek(self.file, to_off(self.pos)?, Whence::SeekHole) {
            Ok(at) => Ok(from_off(at)),
            Err(Errno::EINVAL) | Err(Errno::EOPNOTSUPP) => {
                self.sparse = false;
                Ok(self.end)
            }
            Err(e) => Err(io::Error::from(e)),
        }
    }
}

fn to_off(v: u64) -> io::Result<i64> {
    i64::try_from(v)
        .map_err(|_| io::Error::other(format!("offset {v} is past what the kernel can seek to")))
}

fn from_off(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl Iterator for Regions<'_> {
    type Item = io::Result<Region>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.end {
            return None;
        }
        let offset = self.pos;
        if !self.sparse {
            self.pos = self.end;
            return Some(Ok(Region::Data {
                offset,
                len: self.end - offset,
            }));
        }
        let region = (|| {
            let data = self.next_data()?;
            match data {
                Some(at) if at <= offset => {
                    let hole = self.next_hole()?.clamp(offset + 1, self.end);
                    Ok(Region::Data {
                        offset,
                        len: hole - offset,
                    })
                }
                Some(at) => Ok(Region::Hole {
                    offset,
                    len: at.min(self.end) - offset,
                }),
                None => Ok(Region::Hole {
                    offset,
                    len: self.end - offset,
                }),
            }
        })();
        match region {
            Ok(r) => {
                self.pos = offset + r.len();
                Some(Ok(r))
            }
            Err(e) => {
                self.pos = self.end;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    const MIB: u64 = 1 << 20;

    /// A 16 MiB file with data at [2, 3) MiB and [10 MiB, 10 MiB + 64 KiB).
    fn sparse_file() -> (tempfile::NamedTempFile, bool) {
        let f = tempfile::NamedTempFile::new().unwrap();
        f.as_file().set_len(16 * MIB).unwrap();
        f.as_file()
            .write_all_at(&vec![7u8; MIB as usize], 2 * MIB)
            .unwrap();
        f.as_file()
            .write_all_at(&vec![9u8; 65536], 10 * MIB)
            .unwrap();
        f.as_file().sync_all().unwrap();
        // Does this file system report holes at all?
        let holes = lseek(f.as_file(), 0, Whence::SeekData).map(from_off) == Ok(2 * MIB);
        (f, holes)
    }

    fn collect(file: &File, start: u64, end: u64, sparse: bool) -> Vec<Region> {
        Regions::new(file, start, end, sparse)
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn finds_data_and_holes() {
        let (f, holes) = sparse_file();
        if !holes {
            eprintln!("this file system does not report holes; skipping the layout check");
            return;
        }
        assert_eq!(
            collect(f.as_file(), 0, 16 * MIB, true),
            [
                Region::Hole {
                    offset: 0,
                    len: 2 * MIB
                },
                Region::Data {
                    offset: 2 * MIB,
                    len: MIB
                },
                Region::Hole {
                    offset: 3 * MIB,
                    len: 7 * MIB
                },
                Region::Data {
                    offset: 10 * MIB,
                    len: 65536
                },
                Region::Hole {
                    offset: 10 * MIB + 65536,
                    len: 6 * MIB - 65536
                },
            ]
        );
        // A range starting inside data, ending inside a hole.
        assert_eq!(
            collect(f.as_file(), 2 * MIB + 100, 5 * MIB, true),
            [
                Region::Data {
                    offset: 2 * MIB + 100,
                    len: MIB - 100
                },
                Region::Hole {
                    offset: 3 * MIB,
                    len: 2 * MIB
                },
            ]
        );
    }

    #[test]
    fn without_sparse_one_data_region() {
        let (f, _) = sparse_file();
        assert_eq!(
            collect(f.as_file(), MIB, 16 * MIB, false),
            [Region::Data {
                offset: MIB,
                len: 15 * MIB
            }]
        );
        assert!(collect(f.as_file(), 5, 5, true).is_empty());
    }

    #[test]
    fn regions_always_cover_the_range() {
        let (f, _) = sparse_file();
        for (start, end) in [(0, 16 * MIB), (3 * MIB - 1, 10 * MIB + 1), (7, 8)] {
            let rs = collect(f.as_file(), start, end, true);
            let total: u64 = rs.iter().map(Region::len).sum();
            assert_eq!(total, end - start, "{start}..{end}: {rs:?}");
        }
    }
}
