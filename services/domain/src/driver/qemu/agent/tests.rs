//! The transport against a fake agent on a unix socket: stale output before the sync answer,
//! error replies, an agent that never answers, a missing socket. The real qemu-ga is tested
//! in `tests/qemu_agent.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use super::{AgentError, GuestAgent};

#[derive(Clone, Copy)]
enum Fake {
    /// Answers everything; before its sync answer, sends output of abandoned calls.
    StaleFirst,
    /// Reads commands and never answers.
    Silent,
}

/// Serves `listener` in the background; returns how many connections it accepted so far.
fn spawn_fake(listener: UnixListener, fake: Fake) -> Arc<AtomicUsize> {
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(stream, fake));
        }
    });
    accepted
}

async fn serve(stream: UnixStream, fake: Fake) -> std::io::Result<()> {
    let mut stream = BufReader::new(stream);
    loop {
        let mut line = Vec::new();
        if stream.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        line.retain(|b| *b != 0xFF);
        let request: Value = serde_json::from_slice(&line).expect("fake agent: a JSON command");
        let name = request["execute"].as_str().unwrap_or_default().to_owned();
        let reply = match (fake, name.as_str()) {
            (Fake::Silent, _) => continue,
            (Fake::StaleFirst, "guest-sync-delimited") => {
                let id = &request["arguments"]["id"];
                // A late reply, half a line, an older sync's answer, then ours.
                let mut bytes = b"{\"return\": {}, \"id\": 1}\n{\"return\": {\"da".to_vec();
                bytes.extend_from_slice(b"\xFF{\"return\": 7}\n\xFF");
                bytes.extend_from_slice(format!("{{\"return\": {id}}}\n").as_bytes());
                bytes
            }
            (_, "fail") => json!({
                "error": {"class": "CommandNotFound", "desc": "no fail"},
                "id": request["id"],
            })
            .to_string()
            .into_bytes(),
            (_, _) => json!({"return": {"name": name}, "id": request["id"]})
                .to_string()
                .into_bytes(),
        };
        stream.get_mut().write_all(&reply).await?;
        if !reply.ends_with(b"\n") {
            stream.get_mut().write_all(b"\n").await?;
        }
    }
}

fn socket_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("vp-qga-")
        .tempdir_in("/tmp")
        .expect("temp dir")
}

#[tokio::test]
async fn the_sync_skips_stale_output_and_error_replies_keep_the_connection() {
    let dir = socket_dir();
    let socket = dir.path().join("agent.sock");
    let accepted = spawn_fake(UnixListener::bind(&socket).unwrap(), Fake::StaleFirst);
    let agent = GuestAgent::new(socket);

    let reply = agent
        .execute_raw(json!({"execute": "guest-info"}))
        .await
        .unwrap();
    assert_eq!(reply, json!({"name": "guest-info"}));
    assert!(agent.discarded_bytes() > 20, "{}", agent.discarded_bytes());

    let Err(AgentError::Agent { class, desc }) =
        agent.execute_raw(json!({"execute": "fail"})).await
    else {
        panic!("not an agent error")
    };
    assert_eq!(
        (class.as_str(), desc.as_str()),
        ("CommandNotFound", "no fail")
    );
    // A reply that does not fit the command's type fails that call only.
    assert!(matches!(
        agent.execute(qapi::qga::guest_info {}).await,
        Err(AgentError::Protocol(_))
    ));
    // guest-ping's reply type is empty: any object fits.
    agent.execute(qapi::qga::guest_ping {}).await.unwrap();
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "reconnected needlessly");
}

#[tokio::test]
async fn a_silent_agent_times_out_and_the_next_call_reconnects() {
    let dir = socket_dir();
    let socket = dir.path().join("agent.sock");
    let accepted = spawn_fake(UnixListener::bind(&socket).unwrap(), Fake::Silent);
    let agent = GuestAgent::new(socket).with_timeout(Duration::from_millis(300));
    for attempt in 1..=2 {
        let started = Instant::now();
        let err = agent.execute(qapi::qga::guest_ping {}).await.unwrap_err();
        assert!(
            matches!(&err, AgentError::NotResponding { command, after }
                if command == "guest-ping" && *after == Duration::from_millis(300)),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(2), "hung");
        assert!(err.to_string().contains("not responding"), "{err}");
        assert_eq!(accepted.load(Ordering::SeqCst), attempt);
    }
}

#[tokio::test]
async fn a_call_waiting_behind_a_hung_one_is_bounded_too() {
    let dir = socket_dir();
    let socket = dir.path().join("agent.sock");
    spawn_fake(UnixListener::bind(&socket).unwrap(), Fake::Silent);
    let slow = GuestAgent::new(socket).with_timeout(Duration::from_secs(30));
    let quick = slow.with_timeout(Duration::from_millis(200));
    let hung = tokio::spawn(async move { slow.execute(qapi::qga::guest_ping {}).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    // Never sent: "busy", which says nothing of the agent's health (not "not responding").
    let waited = quick.execute(qapi::qga::guest_info {}).await;
    assert!(
        matches!(&waited, Err(AgentError::Busy { command, .. }) if command == "guest-info"),
        "{waited:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2), "hung");
    hung.abort();
}

#[tokio::test]
async fn a_missing_socket_is_not_connected() {
    let dir = socket_dir();
    let socket = dir.path().join("org.qemu.guest_agent.0");
    let err = GuestAgent::new(socket.clone())
        .execute(qapi::qga::guest_ping {})
        .await
        .unwrap_err();
    assert!(
        matches!(&err, AgentError::NotConnected { socket: s, .. } if *s == socket),
        "{err}"
    );
    assert!(err.to_string().contains("not connected"), "{err}");
}
