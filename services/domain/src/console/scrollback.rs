//! The scrollback: the last bytes a console printed, replayed to every client that attaches,
//! and seeded from QEMU's log of the console when a hub starts (after a service restart, the
//! output of the guest's whole life is in that log, not in memory).

use std::collections::VecDeque;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// How far into a cut scrollback a line start is looked for (see [`Scrollback::snapshot`]).
const LINE_START_SEARCH: usize = 4096;

/// A byte ring of bounded size.
#[derive(Debug)]
pub struct Scrollback {
    bytes: VecDeque<u8>,
    capacity: usize,
    /// Older output was dropped, so the first bytes are the middle of a line.
    cut: bool,
}

impl Scrollback {
    pub fn new(capacity: usize) -> Self {
        Self {
            bytes: VecDeque::with_capacity(capacity),
            capacity,
            cut: false,
        }
    }

    /// Starts from `seed` (a log's tail); `cut` says the log had more before it.
    pub fn seed(&mut self, seed: &[u8], cut: bool) {
        self.bytes.clear();
        self.cut = cut;
        self.push(seed);
    }

    /// Appends output, dropping the oldest bytes beyond the capacity.
    pub fn push(&mut self, data: &[u8]) {
        let data = if data.len() > self.capacity {
            self.bytes.clear();
            self.cut = true;
            &data[data.len() - self.capacity..]
        } else {
            data
        };
        let excess = (self.bytes.len() + data.len()).saturating_sub(self.capacity);
        if excess > 0 {
            self.bytes.drain(..excess);
            self.cut = true;
        }
        self.bytes.extend(data);
    }

    /// What an attaching client is shown. When older output was dropped, the replay starts
    /// at the next line (if one starts soon), not in the middle of a line or escape sequence.
    pub fn snapshot(&self) -> Vec<u8> {
        let mut skip = 0;
        if self.cut {
            let search = self.bytes.len().min(LINE_START_SEARCH);
            if let Some(newline) = self.bytes.range(..search).position(|b| *b == b'\n') {
                skip = newline + 1;
            }
        }
        self.bytes.range(skip..).copied().collect()
    }

    /// Every byte held, without the line-start trimming of [`Scrollback::snapshot`].
    pub fn contents(&self) -> Vec<u8> {
        self.bytes.iter().copied().collect()
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Frees the memory (a closed hub keeps no output).
    pub fn clear(&mut self) {
        self.bytes = VecDeque::new();
        self.cut = false;
    }
}

/// The last `limit` bytes of a log file, and whether the file held more. A missing file is
/// empty (the console has printed nothing yet, or has no log).
pub fn read_log_tail(path: &Path, limit: usize) -> std::io::Result<(Vec<u8>, bool)> {
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), false)),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    let start = len.saturating_sub(limit as u64);
    file.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::with_capacity((len - start) as usize);
    file.take(limit as u64).read_to_end(&mut tail)?;
    Ok((tail, start > 0))
}

/// The length of the longest prefix of `newer` that `older` ends with.
///
/// A hub that starts reads QEMU's log after connecting to the console socket, so output
/// written in between is both at the end of the log and at the start of what the socket
/// delivers; this finds how much of the socket's first bytes to skip. Knuth–Morris–Pratt over
/// `newer`'s prefix, linear in the lengths.
pub fn overlap(older: &[u8], newer: &[u8]) -> usize {
    let m = newer.len().min(older.len());
    if m == 0 {
        return 0;
    }
    let pattern = &newer[..m];
    // failure[i]: length of the longest proper border of pattern[..=i].
    let mut failure = vec![0usize; m];
    let mut k = 0;
    for i in 1..m {
        while k > 0 && pattern[i] != pattern[k] {
            k = failure[k - 1];
        }
        if pattern[i] == pattern[k] {
            k += 1;
        }
        failure[i] = k;
    }
    // Match the pattern against older's last m bytes; the state at the end is the answer.
    let mut matched = 0;
    for &b in &older[older.len() - m..] {
        while matched > 0 && (matched == m || pattern[matched] != b) {
            matched = failure[matched - 1];
        }
        if pattern[matched] == b {
            matched += 1;
        }
    }
    matched
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_bytes() {
        let mut s = Scrollback::new(8);
        s.push(b"abc");
        s.push(b"defg");
        assert_eq!(s.snapshot(), b"abcdefg");
        s.push(b"hij");
        assert_eq!(s.len(), 8);
        // Cut, and no newline to start from: everything kept is shown.
        assert_eq!(s.snapshot(), b"cdefghij");
        s.push(b"0123456789");
        assert_eq!(s.snapshot(), b"23456789");
    }

    #[test]
    fn a_cut_replay_starts_at_a_line() {
        let mut s = Scrollback::new(10);
        s.push(b"first line\nsecond\n");
        assert_eq!(s.snapshot(), b"second\n");
        let mut whole = Scrollback::new(100);
        whole.push(b"a\nb\n");
        assert_eq!(whole.snapshot(), b"a\nb\n", "nothing cut: nothing skipped");
        let mut seeded = Scrollback::new(100);
        seeded.seed(b"tail of a line\nnext\n", true);
        assert_eq!(seeded.snapshot(), b"next\n");
        seeded.clear();
        assert!(seeded.is_empty());
    }

    #[test]
    fn log_tails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serial0.log");
        assert_eq!(read_log_tail(&path, 4).unwrap(), (Vec::new(), false));
        std::fs::write(&path, b"0123456789").unwrap();
        assert_eq!(read_log_tail(&path, 4).unwrap(), (b"6789".to_vec(), true));
        assert_eq!(
            read_log_tail(&path, 10).unwrap(),
            (b"0123456789".to_vec(), false)
        );
    }

    #[test]
    fn overlaps() {
        assert_eq!(overlap(b"boot line\n", b"login: root"), 0);
        assert_eq!(overlap(b"abc\nlogin: ", b"login: "), 7);
        assert_eq!(overlap(b"xxabcab", b"abcabzz"), 5);
        assert_eq!(overlap(b"aaaa", b"aaaaaa"), 4);
        assert_eq!(overlap(b"abab", b"abab"), 4);
        assert_eq!(overlap(b"", b"abc"), 0);
        assert_eq!(overlap(b"abc", b""), 0);
        // Brute force agrees on a periodic text, where KMP's fallbacks matter.
        let older = b"abaababaabaababaababa";
        for cut in 0..older.len() {
            let newer = &older[cut..];
            let mut expected = 0;
            for k in (0..=newer.len().min(older.len())).rev() {
                if older.ends_with(&newer[..k]) {
                    expected = k;
                    break;
                }
            }
            let mut fresh = newer.to_vec();
            fresh.extend_from_slice(b"zzz");
            assert_eq!(overlap(older, &fresh), expected, "cut {cut}");
        }
    }
}
