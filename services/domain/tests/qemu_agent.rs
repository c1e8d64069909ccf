//! The guest agent transport against the real qemu-guest-agent in the test guest, booted under
//! TCG by the qemu driver: typed calls, raw passthrough, an agent error, a missing channel, and
//! an agent frozen mid-way (SIGSTOP) whose late replies must not be taken for new answers.
//!
//! One boot for every check. Deadlines only stop hangs, except where a bound on the time to
//! fail is the property under test (a hung agent is an error within the timeout).

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use virtplane_domain::driver::DomainDriver;
use virtplane_domain::driver::qemu::agent::{self, AgentError, GuestAgent};
use virtplane_domain::model::DomainRef;
use virtplane_domain::xml::parse_domain;

const BOOT_DEADLINE: Duration = Duration::from_secs(120);

async fn wait_ready(serial: &Path) {
    let deadline = Instant::now() + BOOT_DEADLINE;
    while support::boots(serial) < 1 {
        assert!(
            Instant::now() < deadline,
            "guest did not boot (hang guard); serial:\n{}",
            std::fs::read_to_string(serial).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Pings until qemu-ga answers (it starts just before the guest says it is ready).
async fn wait_agent(agent: &GuestAgent) {
    let deadline = Instant::now() + BOOT_DEADLINE;
    let quick = agent.with_timeout(Duration::from_secs(2));
    loop {
        match quick.execute(qapi::qga::guest_ping {}).await {
            Ok(_) => return,
            Err(e) if Instant::now() > deadline => panic!("agent never answered: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_guest_agent() {
    let guest = tokio::task::spawn_blocking(support::build_guest)
        .await
        .unwrap();
    let fx = support::QemuFixture::open("vp-qa-").await;
    let d = &fx.driver;
    let serial = fx.dir.path().join("serial.log");
    let xml = support::guest_domain_xml("agent", &guest, &serial, 1, 1);
    d.define(parse_domain(&xml).unwrap()).await.unwrap();
    let domain = DomainRef::Name("agent".into());
    d.start(&domain, false).await.unwrap();
    let (_, vm) = d.running_vm(&domain).expect("running vm");
    let agent = GuestAgent::new(agent::socket_path(&vm.dir));
    assert!(agent.socket().exists(), "{}", agent.socket().display());
    wait_ready(&serial).await;
    wait_agent(&agent).await;

    // Typed calls.
    agent.execute(qapi::qga::guest_ping {}).await.unwrap();
    let info = agent.execute(qapi::qga::guest_info {}).await.unwrap();
    assert!(!info.version.is_empty());
    assert!(
        info.supported_commands
            .iter()
            .any(|c| c.name == "guest-get-osinfo" && c.enabled),
        "{info:?}"
    );
    let osinfo = agent.execute(qapi::qga::guest_get_osinfo {}).await.unwrap();
    assert_eq!(osinfo.machine.as_deref(), Some("x86_64"), "{osinfo:?}");
    assert!(
        osinfo
            .kernel_release
            .as_ref()
            .is_some_and(|r| !r.is_empty())
    );
    let host = agent
        .execute(qapi::qga::guest_get_host_name {})
        .await
        .unwrap();
    assert!(!host.host_name.is_empty());

    // Raw passthrough: the agent's JSON as it sent it.
    let raw = agent
        .execute_raw(json!({"execute": "guest-info"}))
        .await
        .unwrap();
    assert_eq!(raw["version"], json!(info.version));
    assert!(
        raw["supported_commands"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
    );

    // The agent's own error, typed; the connection stays usable.
    let err = agent
        .execute_raw(json!({"execute": "guest-no-such-command"}))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, AgentError::Agent { class, .. } if class == "CommandNotFound"),
        "{err}"
    );
    agent.execute(qapi::qga::guest_ping {}).await.unwrap();

    // No agent channel at all: not connected, at once.
    let started = Instant::now();
    let missing = GuestAgent::new(vm.dir.join("no-such-channel"));
    assert!(matches!(
        missing.execute(qapi::qga::guest_ping {}).await,
        Err(AgentError::NotConnected { .. })
    ));
    assert!(started.elapsed() < Duration::from_secs(1));

    // Freeze the agent (its own child stops it, then wakes it 6 s later). Calls meanwhile
    // fail within their timeout; the agent then answers them late, on whatever connection is
    // open: the next call's sync must skip those answers and get its own.
    let script = "sleep 1; kill -STOP $PPID; sleep 6; kill -CONT $PPID";
    agent
        .execute(qapi::qga::guest_exec {
            path: "/bin/sh".into(),
            arg: Some(vec!["-c".into(), script.into()]),
            env: None,
            input_data: None,
            capture_output: None,
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let hung = agent.with_timeout(Duration::from_secs(1));
    for _ in 0..2 {
        let started = Instant::now();
        let err = hung
            .execute(qapi::qga::guest_get_host_name {})
            .await
            .unwrap_err();
        assert!(
            matches!(&err, AgentError::NotResponding { after, .. } if *after == Duration::from_secs(1)),
            "{err}"
        );
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "took {:?}",
            started.elapsed()
        );
    }
    let before = agent.discarded_bytes();
    // Waits (default timeout, 10 s) for the agent to wake up.
    let osinfo_again = agent.execute(qapi::qga::guest_get_osinfo {}).await.unwrap();
    assert_eq!(osinfo_again.kernel_release, osinfo.kernel_release);
    assert!(
        agent.discarded_bytes() > before,
        "the late replies were not seen (discarded {} bytes)",
        agent.discarded_bytes()
    );
    agent.execute(qapi::qga::guest_ping {}).await.unwrap();

    // The VM gone: not connected, not a hang.
    d.destroy(&domain, false).await.unwrap();
    let started = Instant::now();
    assert!(matches!(
        agent.execute(qapi::qga::guest_ping {}).await,
        Err(AgentError::NotConnected { .. })
    ));
    assert!(started.elapsed() < Duration::from_secs(2));
}
