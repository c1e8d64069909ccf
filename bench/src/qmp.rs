//! The smallest QMP client that drives a QEMU: blocking, one command at a time, events
//! skipped, a read timeout on every reply. It is the floor's client (`lvbench.QMP` in Rust), so
//! it does nothing a real client must do beyond that (no request ids, no event delivery).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

/// How long one reply (or the greeting) may take.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// A connected QMP socket.
#[derive(Debug)]
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    line: String,
}

impl Qmp {
    /// Tries once to connect to `path`; `None` if nobody listens there yet.
    pub fn try_connect(path: &Path) -> Result<Option<Qmp>, String> {
        let stream = match UnixStream::connect(path) {
            Ok(stream) => stream,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(format!("connecting to {}: {e}", path.display())),
        };
        let set = |s: &UnixStream| {
            s.set_read_timeout(Some(REPLY_TIMEOUT))?;
            s.set_write_timeout(Some(REPLY_TIMEOUT))
        };
        set(&stream).map_err(|e| format!("QMP socket: {e}"))?;
        let writer = stream.try_clone().map_err(|e| format!("QMP socket: {e}"))?;
        Ok(Some(Qmp {
            reader: BufReader::new(stream),
            writer,
            line: String::new(),
        }))
    }

    /// Reads the greeting (`{"QMP": ...}`).
    pub fn greeting(&mut self) -> Result<(), String> {
        let msg = self.read()?;
        if msg.get("QMP").is_none() {
            return Err(format!("not a QMP greeting: {msg}"));
        }
        Ok(())
    }

    /// Runs `execute` (no arguments) and returns its `return` value.
    pub fn cmd(&mut self, execute: &str) -> Result<Value, String> {
        let mut request = serde_json::to_vec(&serde_json::json!({ "execute": execute }))
            .map_err(|e| e.to_string())?;
        request.push(b'\n');
        self.writer
            .write_all(&request)
            .map_err(|e| format!("QMP {execute}: {e}"))?;
        loop {
            let msg = self.read()?;
            if msg.get("event").is_some() {
                continue;
            }
            if let Some(error) = msg.get("error") {
                return Err(format!("QMP {execute}: {error}"));
            }
            return Ok(msg.get("return").cloned().unwrap_or(Value::Null));
        }
    }

    fn read(&mut self) -> Result<Value, String> {
        self.line.clear();
        match self.reader.read_line(&mut self.line) {
            Ok(0) => Err("QMP socket closed".into()),
            Ok(_) => serde_json::from_str(&self.line)
                .map_err(|e| format!("QMP: {e}: {}", self.line.trim())),
            Err(e) => Err(format!("QMP read: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::net::UnixListener;

    /// A QMP peer that greets, answers `qmp_capabilities` after an event, and refuses `cont`.
    fn fake_qemu(listener: UnixListener) {
        let (stream, _) = listener.accept().unwrap();
        let mut out = stream.try_clone().unwrap();
        let mut lines = BufReader::new(stream).lines();
        out.write_all(b"{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n")
            .unwrap();
        let first = lines.next().unwrap().unwrap();
        assert!(first.contains("qmp_capabilities"), "{first}");
        out.write_all(b"{\"event\": \"RESUME\", \"timestamp\": {}}\r\n{\"return\": {}}\r\n")
            .unwrap();
        let second = lines.next().unwrap().unwrap();
        assert!(second.contains("cont"), "{second}");
        out.write_all(b"{\"error\": {\"class\": \"GenericError\", \"desc\": \"no\"}}\r\n")
            .unwrap();
    }

    /// Removes the test's directory also when an assertion fails.
    struct Dir(std::path::PathBuf);

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn greeting_commands_events_and_errors() {
        let dir = Dir(std::env::temp_dir().join(format!("vpb-qmp-test-{}", std::process::id())));
        std::fs::create_dir_all(&dir.0).unwrap();
        let path = dir.0.join("q.sock");
        let _ = std::fs::remove_file(&path);
        assert!(
            Qmp::try_connect(&path).unwrap().is_none(),
            "nobody listens yet"
        );
        let listener = UnixListener::bind(&path).unwrap();
        let peer = std::thread::spawn(move || fake_qemu(listener));
        let mut qmp = Qmp::try_connect(&path).unwrap().unwrap();
        qmp.greeting().unwrap();
        assert_eq!(qmp.cmd("qmp_capabilities").unwrap(), serde_json::json!({}));
        let err = qmp.cmd("cont").unwrap_err();
        assert!(err.contains("GenericError"), "{err}");
        peer.join().unwrap();
        // The peer is gone: the write fails (EPIPE) or the read sees the end.
        let err = qmp.cmd("stop").unwrap_err();
        assert!(
            err.contains("Broken pipe") || err == "QMP socket closed",
            "{err}"
        );
    }
}
