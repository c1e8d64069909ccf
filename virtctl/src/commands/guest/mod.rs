//! The guest agent's commands (GuestAgentService): virsh's `domhostname`, `domfsinfo`,
//! `domfsfreeze`, `domfsthaw`, `domfstrim`, `domtime`, `set-user-password`, `guestinfo`,
//! `guestvcpus`, `get-user-sshkeys`, `set-user-sshkeys`, `qemu-agent-command` and
//! `guest-agent-timeout`, with virsh's options and output; and virtplane's additions, which
//! libvirt only offers as raw agent commands: `guest-exec`, `guest-file-read`,
//! `guest-file-write`, `guest-ping` and `guest-agent-info`.
//!
//! As everywhere in virtctl, the server decides: an absent or hung agent comes back as the
//! server's UNAVAILABLE message, printed unchanged.

pub mod exec;
pub mod file;
pub mod fs;
pub mod guestinfo;
pub mod info;
pub mod passthrough;
pub mod time;
pub mod users;
pub mod vcpus;

use std::io::Read;

use crate::error::Error;

/// The most bytes one request may carry to the agent: a gRPC message is 4 MiB at most, and
/// the proto says 3 MiB of data per call.
pub const MAX_INPUT_BYTES: usize = 3 << 20;

/// Reads a local file, or standard input for `-`, refusing more than `limit` bytes (`what`
/// names the use, for the message).
pub fn read_input(file: &str, limit: usize, what: &str) -> Result<Vec<u8>, Error> {
    let name = if file == "-" {
        "standard input".to_string()
    } else {
        file.to_string()
    };
    let read = |reader: &mut dyn Read| -> std::io::Result<Vec<u8>> {
        let mut data = Vec::new();
        // One byte more than allowed tells "exactly at the limit" from "over it".
        reader.take(limit as u64 + 1).read_to_end(&mut data)?;
        Ok(data)
    };
    let data = if file == "-" {
        read(&mut std::io::stdin().lock())
    } else {
        std::fs::File::open(file).and_then(|mut f| read(&mut f))
    }
    .map_err(|source| Error::ReadFile {
        path: name.clone(),
        source,
    })?;
    if data.len() > limit {
        return Err(Error::Other(format!(
            "{name} is larger than {limit} bytes, the most {what} takes"
        )));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_limit_is_exact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in");
        std::fs::write(&path, b"12345").unwrap();
        let p = path.to_str().unwrap();
        assert_eq!(read_input(p, 5, "x").unwrap(), b"12345");
        let err = read_input(p, 4, "guest-exec --stdin").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{p} is larger than 4 bytes, the most guest-exec --stdin takes")
        );
        let err = read_input("/nonexistent/in", 4, "x").unwrap_err();
        assert!(
            err.to_string().starts_with("cannot read /nonexistent/in: "),
            "{err}"
        );
    }
}
