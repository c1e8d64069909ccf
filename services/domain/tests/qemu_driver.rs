//! The qemu driver against real QEMU: the test guest boots under TCG and goes through every
//! lifecycle call, with the events in order; a QEMU killed under the driver is a crash;
//! vCPU hotplug and the balloon are seen by QEMU and by the driver.
//!
//! Deadlines here only stop hangs; nothing asserts a duration.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use futures::StreamExt;
use virtplane_domain::driver::DomainDriver;
use virtplane_domain::driver::qemu::QemuDriver;
use virtplane_domain::model::{
    DomainRef, Event, EventBody, Impact, MemoryFlags, PowerMode, Reason, State, VcpuFlags,
};
use virtplane_domain::xml::parse_domain;

const BOOT_DEADLINE: Duration = Duration::from_secs(120);

fn name(n: &str) -> DomainRef {
    DomainRef::Name(n.into())
}

/// The lifecycle events of `domain` so far, as (type, detail), reboots as ("reboot", "").
async fn drain(
    events: &mut (
             impl futures::Stream<Item = Result<Event, virtplane_common::events::WatchError>> + Unpin
         ),
    until: impl Fn(&[(String, String)]) -> bool,
) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + BOOT_DEADLINE;
    while !until(&seen) {
        let event = tokio::time::timeout_at(deadline, events.next())
            .await
            .unwrap_or_else(|_| panic!("events so far: {seen:?} (hang guard)"))
            .expect("event stream ended")
            .expect("event stream error");
        match event.body {
            EventBody::Lifecycle(kind, detail) => {
                seen.push((format!("{kind:?}"), detail.to_owned()))
            }
            EventBody::Reboot => seen.push(("Reboot".into(), String::new())),
            EventBody::ConfigChanged(_)
            | EventBody::DeviceAdded(_)
            | EventBody::DeviceRemoved(_)
            | EventBody::AgentLifecycle(..) => {}
        }
    }
    seen
}

async fn wait_boots(serial: &Path, count: usize) {
    let deadline = Instant::now() + BOOT_DEADLINE;
    while support::boots(serial) < count {
        assert!(
            Instant::now() < deadline,
            "guest did not reach boot #{count} (hang guard); serial:\n{}",
            std::fs::read_to_string(serial).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn state_of(driver: &QemuDriver, n: &str) -> (State, Reason) {
    let s = driver.lookup(&name(n)).expect("lookup");
    (s.state, s.reason)
}

async fn qmp_status(driver: &QemuDriver, n: &str) -> String {
    let (_, vm) = driver.running_vm(&name(n)).expect("running vm");
    let status = vm
        .monitor
        .execute(qapi::qmp::query_status {})
        .await
        .expect("query-status");
    serde_json::to_value(status.status)
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_booting_guest_through_its_whole_lifecycle() {
    let guest = tokio::task::spawn_blocking(support::build_guest)
        .await
        .unwrap();
    let fx = support::QemuFixture::open("vp-qd-").await;
    let d = &fx.driver;
    let serial = fx.dir.path().join("serial.log");
    let xml = support::guest_domain_xml("life", &guest, &serial, 1, 1);
    d.define(parse_domain(&xml).unwrap()).await.unwrap();
    let mut events = Box::pin(d.events().subscribe(0).unwrap());

    d.start(&name("life"), false).await.unwrap();
    assert_eq!(
        state_of(d, "life").await,
        (State::Running, Reason::RunningBooted)
    );
    assert_eq!(qmp_status(d, "life").await, "running");
    wait_boots(&serial, 1).await;

    d.suspend(&name("life")).await.unwrap();
    assert_eq!(
        state_of(d, "life").await,
        (State::Paused, Reason::PausedUser)
    );
    assert_eq!(qmp_status(d, "life").await, "paused");
    let err = d.suspend(&name("life")).await.unwrap_err();
    assert!(err.to_string().contains("already paused"), "{err}");
    d.resume(&name("life")).await.unwrap();
    assert_eq!(
        state_of(d, "life").await,
        (State::Running, Reason::RunningUnpaused)
    );
    assert_eq!(qmp_status(d, "life").await, "running");

    // ACPI reboot: the guest powers off, the driver resets it instead of ending it.
    d.reboot(&name("life"), PowerMode::Default).await.unwrap();
    wait_boots(&serial, 2).await;
    assert_eq!(state_of(d, "life").await.0, State::Running);

    d.reset(&name("life")).await.unwrap();
    wait_boots(&serial, 3).await;

    d.shutdown(&name("life"), PowerMode::Acpi, Some(BOOT_DEADLINE))
        .await
        .unwrap();
    assert_eq!(
        state_of(d, "life").await,
        (State::Shutoff, Reason::ShutoffShutdown)
    );
    // The state is committed first; the VM is forgotten (taps, leases, run dir) right after.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !d.running_vms().is_empty() {
        assert!(
            Instant::now() < deadline,
            "QEMU still tracked 10 s after shutdown"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    d.start(&name("life"), true).await.unwrap();
    assert_eq!(
        state_of(d, "life").await,
        (State::Paused, Reason::PausedUser)
    );
    let (_, vm) = d.running_vm(&name("life")).unwrap();
    let pid = vm.pid();
    drop(vm);
    d.destroy(&name("life"), false).await.unwrap();
    assert_eq!(
        state_of(d, "life").await,
        (State::Shutoff, Reason::ShutoffDestroyed)
    );
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z"),
        "QEMU {pid} still runs after destroy returned"
    );

    let seen = drain(&mut events, |s| s.len() >= 10).await;
    let expected: Vec<(String, String)> = [
        ("Started", "booted"),
        ("Suspended", "paused"),
        ("Resumed", "unpaused"),
        ("Reboot", ""),
        ("Reboot", ""),
        ("Shutdown", "finished"),
        ("Stopped", "shutdown"),
        ("Started", "booted"),
        ("Suspended", "paused"),
        ("Stopped", "destroyed"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(seen, expected, "events in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_qemu_is_a_crash() {
    let fx = support::QemuFixture::open("vp-qd-").await;
    let d = &fx.driver;
    d.define(parse_domain(&support::bare_domain_xml("victim")).unwrap())
        .await
        .unwrap();
    d.start(&name("victim"), false).await.unwrap();
    let (_, vm) = d.running_vm(&name("victim")).unwrap();
    let pid = vm.pid();
    drop(vm);
    let mut events = Box::pin(d.events().subscribe(0).unwrap());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let seen = drain(&mut events, |s| !s.is_empty()).await;
    assert_eq!(seen, vec![("Stopped".to_string(), "failed".to_string())]);
    assert_eq!(
        state_of(d, "victim").await,
        (State::Shutoff, Reason::ShutoffCrashed)
    );
    // And it starts again.
    d.start(&name("victim"), false).await.unwrap();
    d.destroy(&name("victim"), false).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vcpu_hotplug_and_balloon() {
    let guest = tokio::task::spawn_blocking(support::build_guest)
        .await
        .unwrap();
    let fx = support::QemuFixture::open("vp-qd-").await;
    let d = &fx.driver;
    let serial = fx.dir.path().join("serial.log");
    // q35: its ICH9 ACPI has QEMU's modern CPU hotplug interface, which can also unplug.
    let xml = support::guest_domain_xml("plug", &guest, &serial, 1, 3)
        .replace("machine='pc'", "machine='q35'");
    d.define(parse_domain(&xml).unwrap()).await.unwrap();
    d.start(&name("plug"), false).await.unwrap();
    wait_boots(&serial, 1).await;
    let live = VcpuFlags {
        impact: Impact {
            live: true,
            config: false,
        },
        ..Default::default()
    };
    let qmp_vcpus = || async {
        let (_, vm) = d.running_vm(&name("plug")).unwrap();
        let cpus = vm
            .monitor
            .execute_raw(serde_json::json!({"execute": "query-cpus-fast"}))
            .await
            .unwrap();
        cpus.as_array().unwrap().len() as u32
    };
    assert_eq!(qmp_vcpus().await, 1);
    d.set_vcpus(&name("plug"), 3, live).await.unwrap();
    assert_eq!(qmp_vcpus().await, 3);
    assert_eq!(d.vcpu_count(&name("plug"), live).unwrap(), 3);
    assert_eq!(d.info(&name("plug")).unwrap().vcpus, 3);
    d.set_vcpus(&name("plug"), 1, live).await.unwrap();
    assert_eq!(qmp_vcpus().await, 1);
    assert_eq!(d.info(&name("plug")).unwrap().vcpus, 1);
    let err = d.set_vcpus(&name("plug"), 4, live).await.unwrap_err();
    assert!(err.to_string().contains("greater than max"), "{err}");

    let memory = MemoryFlags {
        impact: Impact {
            live: true,
            config: false,
        },
        ..Default::default()
    };
    d.set_memory(&name("plug"), 96 * 1024, memory)
        .await
        .unwrap();
    assert_eq!(d.info(&name("plug")).unwrap().memory_kib, 96 * 1024);
    let (_, vm) = d.running_vm(&name("plug")).unwrap();
    let deadline = Instant::now() + BOOT_DEADLINE;
    loop {
        let balloon = vm
            .monitor
            .execute(qapi::qmp::query_balloon {})
            .await
            .unwrap();
        if balloon.actual == 96 * 1024 * 1024 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "balloon stuck at {} (hang guard)",
            balloon.actual
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(vm);
    d.destroy(&name("plug"), false).await.unwrap();
}
