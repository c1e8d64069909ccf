//! The event stream: resuming without a gap, and carrying on across a restart of the
//! domain service (new epoch → the client is told to resync and continues with new events).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use virtplane_common::client::connect_channel;
use virtplane_common::server::ListenAddr;
use virtplane_e2e::{ADMIN_TOKEN, Stack, binary, domain_xml};
use virtplane_proto::v1 as pb;
use virtplane_proto::v1::domain_service_client::DomainServiceClient;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_then_watch_from_its_sequence_misses_nothing() {
    let stack = Stack::start();
    let addr = ListenAddr::Unix(stack.domain_sock.clone());
    let mut client = DomainServiceClient::new(connect_channel(&addr));
    let list = client
        .list(pb::ListDomainsRequest::default())
        .await
        .expect("list")
        .into_inner();
    // Changes between the list and the watch...
    for name in ["a1", "a2"] {
        client
            .define(pb::DefineDomainRequest {
                xml: domain_xml(name),
            })
            .await
            .expect("define");
    }
    // ...are delivered by a watch that starts at the list's sequence.
    let mut stream = client
        .watch_events(pb::WatchRequest {
            after_sequence: list.event_sequence,
        })
        .await
        .expect("watch")
        .into_inner();
    for expected in ["a1", "a2"] {
        let event = tokio::time::timeout(Duration::from_secs(5), stream.message())
            .await
            .expect("event in time")
            .expect("stream")
            .expect("event");
        assert_eq!(event.domain_name, expected);
        assert!(event.sequence > list.event_sequence);
    }
}

#[test]
fn virtctl_event_loop_survives_a_service_restart() {
    let mut stack = Stack::start();
    let mut watcher = Command::new(binary("virtctl"))
        .env("VIRTCTL_CONFIG", stack.dir.path().join("none.yaml"))
        .arg("--server")
        .arg(format!("unix:{}", stack.gateway_sock.display()))
        .args(["--token", ADMIN_TOKEN, "event", "--loop"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("virtctl event --loop");
    let (tx, lines) = mpsc::channel();
    for pipe in [
        Box::new(watcher.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
        Box::new(watcher.stderr.take().expect("stderr")),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    let wait_for = |what: &str| -> Vec<String> {
        let mut seen = Vec::new();
        while let Ok(line) = lines.recv_timeout(Duration::from_secs(20)) {
            let done = line.contains(what);
            seen.push(line);
            if done {
                return seen;
            }
        }
        panic!("never saw {what:?}; saw {seen:#?}");
    };
    std::thread::sleep(Duration::from_millis(300));
    stack.ok(&["define", &stack.file("one.xml", &domain_xml("one"))]);
    wait_for("'one'");

    stack.kill_domaind();
    stack.start_domaind();
    // The stream was lost; virtctl reconnects, is told its position is from before the
    // restart (events of the outage are gone with the old process), says so, and carries
    // on with new events.
    let mut seen = wait_for("reconnected");
    stack.ok(&["start", "one"]);
    seen.extend(wait_for("Started"));
    let _ = watcher.kill();
    let _ = watcher.wait();
    assert!(
        seen.iter().any(|l| l.contains("missed")),
        "the resync was reported: {seen:#?}"
    );
}
