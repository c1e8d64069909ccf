//! The qemu driver's guest agent tracking against the real qemu-ga in the test guest: the
//! agent state in domain info and its lifecycle events (from QEMU's VSERPORT_CHANGE), a VM
//! without an agent channel, an agent frozen mid-way (UNAVAILABLE within the domain's timeout,
//! "not responding", other calls on the domain unaffected, then back), and reboot and
//! shutdown through the agent.
//!
//! Deadlines only stop hangs, except where the time to fail is the property under test.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use virtplane_domain::driver::DomainDriver;
use virtplane_domain::driver::qemu::QemuDriver;
use virtplane_domain::error::DomainError;
use virtplane_domain::model::{
    AgentReason, AgentState, DomainRef, Event, EventBody, PowerMode, State,
};
use virtplane_domain::xml::parse_domain;

const BOOT_DEADLINE: Duration = Duration::from_secs(180);

/// The next agent lifecycle event of `name`, skipping every other event.
async fn next_agent_event(
    events: &mut (impl Stream<Item = Result<Event, virtplane_common::events::WatchError>> + Unpin),
    name: &str,
    within: Duration,
) -> (AgentState, AgentReason) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let event = tokio::time::timeout_at(deadline, events.next())
            .await
            .unwrap_or_else(|_| panic!("no agent lifecycle event for '{name}' within {within:?}"))
            .expect("event stream ended")
            .expect("event stream lagged");
        if event.name == name
            && let EventBody::AgentLifecycle(state, reason) = event.body
        {
            return (state, reason);
        }
    }
}

async fn wait_state(driver: &QemuDriver, domain: &DomainRef, state: State, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let info = driver.info(domain).expect("info");
        if info.summary.state == state {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "domain never reached {state:?} (now {:?})",
            info.summary.state
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn serial_text(serial: &Path) -> String {
    std::fs::read_to_string(serial).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_state_events_hangs_and_power() {
    let guest = tokio::task::spawn_blocking(support::build_guest)
        .await
        .unwrap();
    let fx = support::QemuFixture::open("vp-qas-").await;
    let d = &fx.driver;
    let mut events = Box::pin(d.events().subscribe(0).expect("subscribe"));

    // A VM without an agent channel: refused at once, naming what to add.
    d.define(parse_domain(&support::bare_domain_xml("bare")).unwrap())
        .await
        .unwrap();
    let bare = DomainRef::Name("bare".into());
    d.start(&bare, false).await.unwrap();
    assert_eq!(d.info(&bare).unwrap().guest_agent, AgentState::None);
    let started = Instant::now();
    let error = d.guest_agent(&bare).await.unwrap_err();
    assert!(
        matches!(&error, DomainError::AgentUnavailable(m) if m.contains("no guest agent channel")),
        "{error}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    d.destroy(&bare, false).await.unwrap();

    // The guest's agent opens its port: CONNECTED, announced.
    let serial = fx.dir.path().join("serial.log");
    let xml = support::guest_domain_xml("ga", &guest, &serial, 1, 1);
    d.define(parse_domain(&xml).unwrap()).await.unwrap();
    let domain = DomainRef::Name("ga".into());
    d.start(&domain, false).await.unwrap();
    let early = d.info(&domain).unwrap().guest_agent;
    assert!(
        matches!(early, AgentState::Disconnected | AgentState::Connected),
        "{early:?}"
    );
    let (state, reason) = next_agent_event(&mut events, "ga", BOOT_DEADLINE).await;
    assert_eq!(
        (state, reason),
        (AgentState::Connected, AgentReason::Channel),
        "serial:\n{}",
        serial_text(&serial)
    );
    assert_eq!(d.info(&domain).unwrap().guest_agent, AgentState::Connected);
    let agent = d.guest_agent(&domain).await.unwrap();
    agent.run(qapi::qga::guest_ping {}).await.unwrap();

    // Freeze qemu-ga (its own child stops it, and wakes it 12 s later) with a 2 s timeout.
    d.set_guest_agent_timeout(&domain, Some(Duration::from_secs(2)))
        .unwrap();
    let agent = d.guest_agent(&domain).await.unwrap();
    assert_eq!(agent.timeout(), Duration::from_secs(2));
    agent
        .run(qapi::qga::guest_exec {
            path: "/bin/sh".into(),
            arg: Some(vec![
                "-c".into(),
                "sleep 1; kill -STOP $PPID; sleep 12; kill -CONT $PPID".into(),
            ]),
            env: None,
            input_data: None,
            capture_output: None,
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let hung = {
        let agent = agent.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let result = agent.run(qapi::qga::guest_get_host_name {}).await;
            (result, started.elapsed())
        })
    };
    // Meanwhile the domain's other calls answer at once.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    assert_eq!(d.info(&domain).unwrap().summary.state, State::Running);
    d.suspend(&domain).await.unwrap();
    d.resume(&domain).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "other calls waited {:?}",
        started.elapsed()
    );
    let (result, took) = hung.await.unwrap();
    let error = result.unwrap_err();
    assert!(
        matches!(&error, DomainError::AgentUnavailable(m) if m.contains("not responding") && m.contains("'ga'")),
        "{error}"
    );
    assert!(took < Duration::from_millis(2800), "took {took:?}");
    assert_eq!(
        next_agent_event(&mut events, "ga", Duration::from_secs(5)).await,
        (AgentState::NotResponding, AgentReason::Response)
    );
    assert_eq!(
        d.info(&domain).unwrap().guest_agent,
        AgentState::NotResponding
    );

    // Back to the default timeout: the call waits for the agent to wake, and it is
    // CONNECTED again.
    d.set_guest_agent_timeout(&domain, None).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match d
            .guest_agent(&domain)
            .await
            .unwrap()
            .run(qapi::qga::guest_get_host_name {})
            .await
        {
            Ok(host) => {
                assert!(!host.host_name.is_empty());
                break;
            }
            Err(error) => assert!(Instant::now() < deadline, "agent never came back: {error}"),
        }
    }
    assert_eq!(
        next_agent_event(&mut events, "ga", Duration::from_secs(5)).await,
        (AgentState::Connected, AgentReason::Response)
    );

    // Reboot through the agent: the agent goes away with the guest and comes back.
    let boots = support::boots(&serial);
    d.reboot(&domain, PowerMode::Agent).await.unwrap();
    assert_eq!(
        next_agent_event(&mut events, "ga", Duration::from_secs(30)).await,
        (AgentState::Disconnected, AgentReason::Channel)
    );
    assert_eq!(
        next_agent_event(&mut events, "ga", BOOT_DEADLINE).await,
        (AgentState::Connected, AgentReason::Channel),
        "serial:\n{}",
        serial_text(&serial)
    );
    assert!(
        support::boots(&serial) > boots,
        "the guest did not boot again"
    );

    // Shutdown through the agent, waiting for the end; then the VM's end is announced.
    d.shutdown(&domain, PowerMode::Agent, Some(Duration::from_secs(60)))
        .await
        .unwrap();
    wait_state(d, &domain, State::Shutoff, Duration::from_secs(10)).await;
    let (state, reason) = next_agent_event(&mut events, "ga", Duration::from_secs(10)).await;
    assert_eq!(state, AgentState::Disconnected);
    assert!(
        matches!(reason, AgentReason::Channel | AgentReason::DomainStopped),
        "{reason:?}"
    );
    assert_eq!(d.info(&domain).unwrap().guest_agent, AgentState::None);
    let error = d.guest_agent(&domain).await.unwrap_err();
    assert!(
        matches!(&error, DomainError::OperationInvalid(m) if m.contains("not running")),
        "{error}"
    );
}
