//! The per-domain QEMU log: QEMU's stdout and stderr go to a file, never to a pipe into the
//! service, so the service can die without QEMU getting SIGPIPE or blocking on a full pipe.
//! Each start appends a header (as libvirt's `/var/log/libvirt/qemu/NAME.log` does), and a
//! failed start is explained by QEMU's own lines after that header.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::driver::qemu::argv::QemuCommand;

/// At most this much of the log goes into an error message.
const TAIL_LINES: usize = 20;
const TAIL_BYTES: u64 = 8 * 1024;

/// Opens `path` for appending and writes the start header; returns the file (for QEMU's
/// stdout and stderr) and the offset where QEMU's output for this start begins.
pub(super) fn open(path: &Path, cmd: &QemuCommand, domain_name: &str) -> io::Result<(File, u64)> {
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let mut header =
        format!("--- virtplane: starting QEMU for domain {domain_name:?} at unix time {now}\n");
    for (k, v) in &cmd.env {
        header.push_str(&format!("{k}={} ", quote(v)));
    }
    header.push_str(&quote(&cmd.program.to_string_lossy()));
    for a in &cmd.args {
        header.push(' ');
        header.push_str(&quote(a));
    }
    header.push('\n');
    file.write_all(header.as_bytes())?;
    let offset = file.seek(SeekFrom::End(0))?;
    Ok((file, offset))
}

/// The last lines written to `path` after `offset`, trimmed; empty if unreadable.
pub(super) fn tail(path: &Path, offset: u64) -> String {
    let read = || -> io::Result<String> {
        let mut file = File::open(path)?;
        let end = file.seek(SeekFrom::End(0))?;
        let start = offset.max(end.saturating_sub(TAIL_BYTES));
        file.seek(SeekFrom::Start(start))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    let text = read().unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
}

/// Shell-style quoting, so the logged command line can be pasted into a shell.
fn quote(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_=,./:@+%".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_then_tail_of_this_start_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("qemu.log");
        std::fs::write(&path, "old run: error\n").unwrap();
        let cmd = QemuCommand {
            program: "/usr/bin/qemu-system-x86_64".into(),
            args: vec!["-name".into(), "guest=a b".into()],
            env: vec![("X".into(), "1".into())],
            qmp_socket: dir.path().join("qmp.sock"),
        };
        let (mut file, offset) = open(&path, &cmd, "a b").unwrap();
        file.write_all(b"qemu: -foo: invalid option\n\n").unwrap();
        assert_eq!(tail(&path, offset), "qemu: -foo: invalid option");
        let all = std::fs::read_to_string(&path).unwrap();
        assert!(all.starts_with("old run: error\n--- virtplane"), "{all}");
        assert!(
            all.contains("X=1 /usr/bin/qemu-system-x86_64 -name 'guest=a b'\n"),
            "{all}"
        );
    }
}
