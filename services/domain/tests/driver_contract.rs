//! The driver contract: what every domain driver does the same way, with libvirt's semantics
//! and messages, run against the test driver and against the qemu driver with real QEMU
//! (firmware only, no guest OS: enough for every state transition). Each case is one generic
//! function over a [`Harness`]; [`contract!`] makes a test of it per driver, in the modules
//! `test_driver` and `qemu_driver`.
//!
//! What depends on a guest OS (shutdown, lifecycle actions on a guest's poweroff) or is one
//! driver's own (the test driver's default world, QEMU's hotplug) is tested with that
//! driver: `test_driver_states.rs`, `qemu_driver.rs`.

#[path = "driver_contract/harness.rs"]
mod harness;
mod support;

use std::time::Duration;

use futures::StreamExt;
use harness::{HANG_GUARD, Harness, MEMORY_MIB, QemuHarness, TestHarness};
use virtplane_domain::driver::DomainDriver;
use virtplane_domain::error::DomainError;
use virtplane_domain::model::{
    DomainRef, EventBody, Impact, Lifecycle, MemoryFlags, PowerMode, Reason, State, VcpuFlags,
    XmlFlags,
};
use virtplane_domain::xml::{DomainDef, parse_domain};

/// Instantiates every case for each driver.
macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod test_driver {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case::<super::TestHarness>().await
                }
            )*
        }
        mod qemu_driver {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case::<super::QemuHarness>().await
                }
            )*
        }
    };
}

contract!(
    lifecycle_transitions_and_refusals,
    a_paused_domain_is_shut_down_as_its_driver_does_and_destroyed,
    undefine_of_a_running_domain_leaves_it_transient_until_it_stops,
    transient_domains_vanish_on_destroy_and_names_stay_unique,
    duplicate_names_and_uuids_are_refused,
    vcpu_config_follows_libvirt_flag_semantics,
    memory_config_follows_libvirt_flag_semantics,
    xml_flags_choose_live_or_inactive,
    events_report_each_change_in_order,
    running_and_defined_domains_survive_a_reopen,
    create_over_an_inactive_persistent_domain_runs_the_new_xml_and_keeps_the_config,
    unusable_configs_are_moved_aside_on_load,
    names_up_to_256_bytes_and_leading_dots_survive_a_reopen,
);

fn name(n: &str) -> DomainRef {
    DomainRef::Name(n.into())
}

fn def<H: Harness>(h: &H, n: &str) -> DomainDef {
    parse_domain(&h.domain_xml(n, None)).unwrap()
}

fn state(d: &dyn DomainDriver, n: &str) -> (State, Reason) {
    let summary = d.lookup(&name(n)).unwrap();
    (summary.state, summary.reason)
}

fn expect_invalid<T: std::fmt::Debug>(result: Result<T, DomainError>, words: &str) {
    match result {
        Err(DomainError::OperationInvalid(message)) => {
            assert!(
                message.contains(words),
                "message {message:?} lacks {words:?}"
            )
        }
        other => panic!("expected OperationInvalid({words}), got {other:?}"),
    }
}

fn expect_not_found<T: std::fmt::Debug>(result: Result<T, DomainError>) {
    assert!(
        matches!(result, Err(DomainError::NotFound(_))),
        "expected NotFound, got {result:?}"
    );
}

const LIVE: Impact = Impact {
    live: true,
    config: false,
};
const CONFIG: Impact = Impact {
    live: false,
    config: true,
};
const BOTH: Impact = Impact {
    live: true,
    config: true,
};

/// The hypervisor, where there is one, is in the state the driver reports.
async fn assert_hypervisor_agrees<H: Harness>(h: &H, d: &dyn DomainDriver, n: &str) {
    let (state, _) = state(d, n);
    let Some(process) = h.guest_process(n).await else {
        return;
    };
    // A QEMU started paused has not run yet: "prelaunch" (libvirt's starting paused too).
    let expected: &[&str] = match state {
        State::Running => &["running"],
        State::Paused => &["paused", "prelaunch"],
        other => panic!("{}: domain '{n}' is {other:?} with a QEMU", H::DRIVER),
    };
    assert!(
        expected.contains(&process.run_state.as_str()),
        "QEMU of '{n}' is {}, the driver says {state:?}",
        process.run_state
    );
}

/// A hypervisor process that a stop returned for is gone (a zombie awaiting its reaper is).
fn assert_gone(process: Option<harness::GuestProcess>) {
    let Some(process) = process else { return };
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", process.pid)).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z"),
        "QEMU {} still runs after the domain stopped",
        process.pid
    );
}

async fn lifecycle_transitions_and_refusals<H: Harness>() {
    let h = H::new().await;
    let d = h.open().await;
    let (summary, updated) = d.define(def(&h, "web")).await.unwrap();
    assert!(!updated);
    assert_eq!((summary.state, summary.id), (State::Shutoff, -1));

    // Shut off: everything but start and undefine is refused.
    expect_invalid(d.suspend(&name("web")).await, "is not running");
    expect_invalid(d.resume(&name("web")).await, "is not paused");
    expect_invalid(
        d.shutdown(&name("web"), PowerMode::Default, None).await,
        "is not running",
    );
    expect_invalid(d.destroy(&name("web"), false).await, "is not running");
    expect_invalid(
        d.reboot(&name("web"), PowerMode::Default).await,
        "is not running",
    );
    expect_invalid(d.reset(&name("web")).await, "is not running");

    let started = d.start(&name("web"), false).await.unwrap();
    assert_eq!(
        (started.state, started.reason),
        (State::Running, Reason::RunningBooted)
    );
    assert!(started.id > 0);
    assert_hypervisor_agrees(&h, &*d, "web").await;
    expect_invalid(d.start(&name("web"), false).await, "already running");
    expect_invalid(d.resume(&name("web")).await, "is not paused");

    d.suspend(&name("web")).await.unwrap();
    assert_eq!(state(&*d, "web"), (State::Paused, Reason::PausedUser));
    assert_hypervisor_agrees(&h, &*d, "web").await;
    // A second suspend is refused by every virtplane driver (Core::require_unpaused), as by
    // libvirt's test driver ("domain 'web' not running"); libvirt's qemu driver lets it
    // pass as a no-op (qemuDomainSuspend stops the CPUs only of a domain not yet paused).
    expect_invalid(d.suspend(&name("web")).await, "already paused");
    d.resume(&name("web")).await.unwrap();
    assert_eq!(state(&*d, "web"), (State::Running, Reason::RunningUnpaused));
    assert_hypervisor_agrees(&h, &*d, "web").await;

    // Without a guest OS a reboot request changes nothing visible; a reset resets the
    // machine. Both leave the domain running.
    d.reboot(&name("web"), PowerMode::Default).await.unwrap();
    assert_eq!(state(&*d, "web").0, State::Running);
    d.reset(&name("web")).await.unwrap();
    assert_eq!(state(&*d, "web").0, State::Running);
    assert_hypervisor_agrees(&h, &*d, "web").await;

    let process = h.guest_process("web").await;
    d.destroy(&name("web"), false).await.unwrap();
    assert_eq!(
        state(&*d, "web"),
        (State::Shutoff, Reason::ShutoffDestroyed)
    );
    assert_eq!(d.lookup(&name("web")).unwrap().id, -1);
    assert_gone(process);

    // Started paused.
    let started = d.start(&name("web"), true).await.unwrap();
    assert_eq!(
        (started.state, started.reason),
        (State::Paused, Reason::PausedUser)
    );
    assert_hypervisor_agrees(&h, &*d, "web").await;
    let process = h.guest_process("web").await;
    d.destroy(&name("web"), false).await.unwrap();
    assert_eq!(
        state(&*d, "web"),
        (State::Shutoff, Reason::ShutoffDestroyed)
    );
    assert_gone(process);

    d.undefine(&name("web")).await.unwrap();
    expect_not_found(d.lookup(&name("web")));
    expect_not_found(d.start(&name("web"), false).await);
}

async fn a_paused_domain_is_shut_down_as_its_driver_does_and_destroyed<H: Harness>() {
    let h = H::new().await;
    let d = h.open().await;
    d.define(def(&h, "web")).await.unwrap();
    d.start(&name("web"), true).await.unwrap();
    let shutdown = d.shutdown(&name("web"), PowerMode::Default, None).await;
    if H::SHUTS_DOWN_PAUSED {
        shutdown.unwrap();
        assert_eq!(state(&*d, "web"), (State::Shutoff, Reason::ShutoffShutdown));
        d.start(&name("web"), true).await.unwrap();
    } else {
        expect_invalid(shutdown, "is not running (it is paused)");
        assert_eq!(state(&*d, "web"), (State::Paused, Reason::PausedUser));
        assert_hypervisor_agrees(&h, &*d, "web").await;
    }
    let process = h.guest_process("web").await;
    d.destroy(&name("web"), false).await.unwrap();
    assert_eq!(
        state(&*d, "web"),
        (State::Shutoff, Reason::ShutoffDestroyed)
    );
    assert_gone(process);
}

async fn undefine_of_a_running_domain_leaves_it_transient_until_it_stops<H: Harness>() {
    let h = H::new().await;
    let d = h.open().await;
    d.define(def(&h, "web")).await.unwrap();
    d.start(&name("web"), false).await.unwrap();
    d.undefine(&name("web")).await.unwrap();
    let summary = d.lookup(&name("web")).unwrap();
    assert!(!summary.persistent);
    assert_eq!(summary.state, State::Running);
    assert_hypervisor_agrees(&h, &*d, "web").await;
    expect_invalid(d.undefine(&name("web")).await, "transient");
    expect_invalid(d.set_autostart(&name("web"), true).await, "transient");
    d.destroy(&name("web"), false).await.unwrap();
    expect_not_found(d.lookup(&name("web")));
}

async fn transient_domains_vanish_on_destroy_and_names_stay_unique<H: Harness>() {
    let h = H::new().await;
    let d = h.open().await;
    let created = d.create(def(&h, "tmp"), false).await.unwrap();
    assert!(!created.persistent);
    assert_eq!(
        (created.state, created.reason),
        (State::Running, Reason::RunningBooted)
    );
    assert_hypervisor_agrees(&h, &*d, "tmp").await;
    let again = d.create(def(&h, "tmp"), false).await;
    assert!(
        matches!(
            again,
            Err(DomainError::NameTaken { .. }) | Err(DomainError::AlreadyActive(_))
        ),
        "{again:?}"
    );
    let process = h.guest_process("tmp").await;
    d.destroy(&name("tmp"), false).await.unwrap();
    expect_not_found(d.lookup(&name("tmp")));
    assert_gone(process);
}

async fn duplicate_names_and_uuids_are_refused<H: Harness>() {
    let h = H::new().await;
    let d = h.open().await;
    let uuid = "11111111-2222-3333-4444-555555555555";
    let a = h.domain_xml("a", Some(uuid));
    d.define(parse_domain(&a).unwrap()).await.unwrap();
    // Same name, other UUID.
    let err = d.define(def(&h, "a")).await.unwrap_err();
    assert!(matches!(err, DomainError::NameTaken { .. }), "{err}");
    // Same UUID, other name.
    let b = h.domain_xml("b", Some(uuid));
    let err = d.define(parse_domain(&b).unwrap()).await.unwrap_err();
    assert!(matches!(err, DomainError::UuidTaken { .. }), "{err}");
    // Same name and UUID: an update.
    let (_, updated) = d.define(parse_domain(&a).unwrap()).await.unwrap();
    assert!(updated);
    // Lookup by UUID, any case, with or without dashes.
    let by_uuid = d
        .lookup(&DomainRef::Uuid("11111111222233334444555555555555".into()))
        .unwrap();
    assert_eq!(by_uuid.name, "a");
}

/// The config side of virDomainSetVcpusFlags / GetVcpusFlags and every refusal; live
/// changes need hotplug (the test driver's simulated one is tested with it, QEMU's with a
/// booted guest in `qemu_driver.rs`).
async fn vcpu_config_follows_libvirt_flag_semantics<H: Harness>() {
    let h = H::new().await;
    let d = h.open().await;
    d.define(def(&h, "web")).await.unwrap();
    let config = VcpuFlags {
        impact: CONFIG,
        ..Default::default()
    };
    let maximum = VcpuFlags {
        maximum: true,
        ..config
    };
    let live = VcpuFlags {
        impact: LIVE,
        ..Default::default()
    };
    d.set_vcpus(&name("web"), 4, maximum).await.unwrap();
    d.set_vcpus(&name("web"), 2, config).await.unwrap();
    assert_eq!(d.vcpu_count(&name("web"), maximum).unwrap(), 4);
    assert_eq!(d.vcpu_count(&name("web"), config).unwrap(), 2);
    // Live on an inactive domain is refused.
    expect_invalid(d.vcpu_count(&name("web"), live), "not running");
    expect_invalid(d.set_vcpus(&name("web"), 1, live).await, "not running");
    // Over the maximum, in the config.
    assert!(matches!(
        d.set_vcpus(&name("web"), 5, config).await,
        Err(DomainError::InvalidArg(_))
    ));

    d.start(&name("web"), false).await.unwrap();
    assert_eq!(d.vcpu_count(&name("web"), live).unwrap(), 2);
    assert_eq!(
        d.vcpu_count(
            &name("web"),
            VcpuFlags {
                maximum: true,
                ..live
            }
        )
        .unwrap(),
        4
    );
    assert_eq!(d.info(&name("web")).unwrap().vcpus, 2);
    // The maximum of a live domain cannot change; maximum without config is refused outright.
    let live_max = VcpuFlags {
        maximum: true,
        impact: BOTH,
        ..Default::default()
    };
    expect_invalid(d.set_vcpus(&name("web"), 3, live_max).await, "live domain");
    let max_without_config = VcpuFlags {
        maximum: true,
        ..live
    };
    assert!(matches!(
        d.set_vcpus(&name("web"), 3, max_without_config).await,
        Err(DomainError::InvalidArg(_))
    ));
    // Over the maximum of the live domain.
    assert!(matches!(
        d.set_vcpus(&name("web"), 5, live).await,
        Err(DomainError::InvalidArg(_))
    ));
    // A config change of a running domain waits for its next start.
    d.set_vcpus(&name("web"), 3, config).await.unwrap();
    assert_eq!(d.vcpu_count(&name("web"), config).unwrap(), 3);
    assert_eq!(d.vcpu_count(&name("web"), live).unwrap(), 2);
    // Both live and config together is refused for reads.
    let both = VcpuFlags {
        impact: BOTH,
        ..Default::default()
    };
    assert!(matches!(
        d.vcpu_count(&name("web"), both),
        Err(DomainError::InvalidArg(_))
    ));
    // The guest's own view needs the guest agent: the test driver has none, and this
    // domain has no agent channel (the qemu driver's agent calls are in qemu_agent_state.rs).
    let guest = VcpuFlags {
        guest: true,
        ..live
    };
    let refused = d.set_vcpus(&name("web"), 1, guest).await;
    match d.versions().driver {
        "test" => assert!(
            matches!(refused, Err(DomainError::Unsupported { .. })),
            "{refused:?}"
        ),
        _ => assert!(
            matches!(&refused, Err(DomainError::AgentUnavailable(m)) if m.contains("no guest agent channel")),
            "{refused:?}"
        ),
    }
    d.destroy(&name("web"), false).await.unwrap();
    assert_eq!(d.vcpu_count(&name("web"), config).unwrap(), 3);
}

/// The config side of virDomainSetMemoryFlags and its refusals (live changes go through the
/// balloon, tested with a booted guest in `qemu_driver.rs`).
async fn memory_config_follows_libvirt_flag_semantics<H: Harness>() {
    let h = H::new().await;
    let d = h.open().await;
    let full = MEMORY_MIB * 1024;
    d.define(def(&h, "web")).await.unwrap();
    let current = MemoryFlags::default();
    let live = MemoryFlags {
        impact: LIVE,
        ..current
    };
    expect_invalid(
        d.set_memory(&name("web"), full / 2, live).await,
        "not running",
    );
    d.set_memory(&name("web"), full / 2, current).await.unwrap();
    let info = d.info(&name("web")).unwrap();
    assert_eq!((info.max_memory_kib, info.memory_kib), (full, full / 2));
    assert!(matches!(
        d.set_memory(&name("web"), full * 2, current).await,
        Err(DomainError::InvalidArg(_))
    ));
    let maximum = MemoryFlags {
        maximum: true,
        ..current
    };
    d.set_memory(&name("web"), full * 2, maximum).await.unwrap();
    assert_eq!(d.info(&name("web")).unwrap().max_memory_kib, full * 2);
    d.start(&name("web"), false).await.unwrap();
    expect_invalid(
        d.set_memory(&name("web"), full * 4, maximum).await,
        "active domain",
    );
    assert_eq!(d.info(&name("web")).unwrap().max_memory_kib, full * 2);
    d.destroy(&name("web"), false).await.unwrap();
}

async fn xml_flags_choose_live_or_inactive<H: Harness>() {
    let h = H::new().await;
    let d = h.open().await;
    d.define(def(&h, "web")).await.unwrap();
    d.start(&name("web"), false).await.unwrap();
    let config_max = VcpuFlags {
        impact: CONFIG,
        maximum: true,
        ..Default::default()
    };
    d.set_vcpus(&name("web"), 4, config_max).await.unwrap();
    let live = d.xml(&name("web"), XmlFlags::default()).unwrap();
    let inactive = d
        .xml(
            &name("web"),
            XmlFlags {
                inactive: true,
                secure: false,
            },
        )
        .unwrap();
    assert!(live.contains(" id='"), "live XML carries the id: {live}");
    assert!(!inactive.contains(" id='"), "{inactive}");
    assert_eq!(parse_domain(&live).unwrap().vcpu.max, 1);
    assert_eq!(parse_domain(&inactive).unwrap().vcpu.max, 4);
    d.destroy(&name("web"), false).await.unwrap();
    // Shut off, both give the config.
    let shut_off = d.xml(&name("web"), XmlFlags::default()).unwrap();
    assert!(!shut_off.contains(" id='"), "{shut_off}");
    assert_eq!(parse_domain(&shut_off).unwrap().vcpu.max, 4);
}

async fn events_report_each_change_in_order<H: Harness>() {
    let h = H::new().await;
    let d = h.open().await;
    let start = d.events().last_sequence();
    d.define(def(&h, "web")).await.unwrap();
    d.start(&name("web"), false).await.unwrap();
    d.suspend(&name("web")).await.unwrap();
    d.resume(&name("web")).await.unwrap();
    d.destroy(&name("web"), false).await.unwrap();
    d.undefine(&name("web")).await.unwrap();
    let mut stream = Box::pin(d.events().subscribe(start).unwrap());
    let mut events = Vec::new();
    while events.len() < 6 {
        let event = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .unwrap_or_else(|_| panic!("only these events came: {events:?}"))
            .expect("event stream ended")
            .expect("event stream error");
        assert_eq!(event.name, "web", "{event:?}");
        events.push(event);
    }
    let kinds: Vec<_> = events
        .iter()
        .map(|e| match &e.body {
            EventBody::Lifecycle(kind, detail) => (*kind, *detail),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            (Lifecycle::Defined, "added"),
            (Lifecycle::Started, "booted"),
            (Lifecycle::Suspended, "paused"),
            (Lifecycle::Resumed, "unpaused"),
            (Lifecycle::Stopped, "destroyed"),
            (Lifecycle::Undefined, "removed"),
        ]
    );
    assert!(events.windows(2).all(|w| w[0].sequence < w[1].sequence));
    // Nothing follows (a late event from QEMU would be a second report of a change).
    let late = tokio::time::timeout(Duration::from_millis(500), stream.next()).await;
    assert!(late.is_err(), "unexpected event {late:?}");
}

/// A service restart: the driver is dropped and opened again on the same dirs. A running
/// domain still runs — for QEMU that is the reattach path: the same process, answering —
/// paused stays paused, a defined domain stays defined, transient ones stay transient, the
/// event epoch and domain ids keep rising.
async fn running_and_defined_domains_survive_a_reopen<H: Harness>() {
    let h = H::new().await;
    let d = h.open().await;
    d.define(def(&h, "web")).await.unwrap();
    d.start(&name("web"), false).await.unwrap();
    d.suspend(&name("web")).await.unwrap();
    d.set_autostart(&name("web"), true).await.unwrap();
    d.define(def(&h, "idle")).await.unwrap();
    d.create(def(&h, "tmp"), false).await.unwrap();
    let web_process = h.guest_process("web").await;
    let tmp_process = h.guest_process("tmp").await;
    let (web_id, tmp_id) = (
        d.lookup(&name("web")).unwrap().id,
        d.lookup(&name("tmp")).unwrap().id,
    );
    let before_epoch = d.events().last_sequence() >> 32;
    drop(d);

    let d = tokio::time::timeout(HANG_GUARD, h.open())
        .await
        .expect("re-open hangs");
    let web = d.lookup(&name("web")).unwrap();
    assert_eq!(
        (web.state, web.reason, web.persistent, web.autostart, web.id),
        (State::Paused, Reason::PausedUser, true, true, web_id)
    );
    let tmp = d.lookup(&name("tmp")).unwrap();
    assert_eq!(
        (tmp.state, tmp.persistent, tmp.id),
        (State::Running, false, tmp_id)
    );
    let idle = d.lookup(&name("idle")).unwrap();
    assert_eq!((idle.state, idle.persistent), (State::Shutoff, true));
    assert_eq!(h.guest_process("web").await, web_process, "web's QEMU");
    assert_eq!(h.guest_process("tmp").await, tmp_process, "tmp's QEMU");
    assert!(d.events().last_sequence() >> 32 > before_epoch);

    // The reattached domains obey as before.
    d.resume(&name("web")).await.unwrap();
    assert_hypervisor_agrees(&h, &*d, "web").await;
    d.destroy(&name("tmp"), false).await.unwrap();
    expect_not_found(d.lookup(&name("tmp")));
    assert_gone(tmp_process);
    // Ids keep rising: a new start does not reuse one from before the restart.
    let new = d.create(def(&h, "new"), false).await.unwrap();
    assert!(new.id > tmp_id && new.id > web_id, "id {}", new.id);
    d.destroy(&name("new"), false).await.unwrap();
    d.destroy(&name("web"), false).await.unwrap();
    assert_gone(web_process);
}

async fn create_over_an_inactive_persistent_domain_runs_the_new_xml_and_keeps_the_config<
    H: Harness,
>() {
    let h = H::new().await;
    let d = h.open().await;
    let (defined, _) = d.define(def(&h, "web")).await.unwrap();
    let mut bigger = def(&h, "web");
    bigger.uuid = defined.uuid.clone();
    bigger.vcpu.max = 2;
    let created = d.create(bigger, false).await.unwrap();
    assert!(created.persistent, "it stays persistent");
    assert_eq!(created.state, State::Running);
    let live = VcpuFlags {
        impact: LIVE,
        ..Default::default()
    };
    let config = VcpuFlags {
        impact: CONFIG,
        ..Default::default()
    };
    assert_eq!(d.vcpu_count(&name("web"), live).unwrap(), 2);
    assert_eq!(d.vcpu_count(&name("web"), config).unwrap(), 1);
    let again = d.create(def(&h, "web"), false).await;
    assert!(
        matches!(
            again,
            Err(DomainError::NameTaken { .. }) | Err(DomainError::AlreadyActive(_))
        ),
        "{again:?}"
    );
    d.destroy(&name("web"), false).await.unwrap();
    assert_eq!(d.lookup(&name("web")).unwrap().state, State::Shutoff);
    assert_eq!(d.vcpu_count(&name("web"), config).unwrap(), 1);
}

async fn unusable_configs_are_moved_aside_on_load<H: Harness>() {
    let h = H::new().await;
    let d = h.open().await;
    d.define(def(&h, "good")).await.unwrap();
    drop(d);
    let domains = h.config().state_dir.join("domains");
    std::fs::write(
        domains.join("broken.xml"),
        h.domain_xml("broken", None)
            .split("</name>")
            .next()
            .unwrap(),
    )
    .unwrap();
    std::fs::write(domains.join("liar.xml"), h.domain_xml("someone-else", None)).unwrap();
    let d = h.open().await;
    assert!(d.lookup(&name("good")).is_ok());
    expect_not_found(d.lookup(&name("broken")));
    expect_not_found(d.lookup(&name("someone-else")));
    let kept: Vec<_> = std::fs::read_dir(domains.join("broken"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        kept.len(),
        2,
        "both unusable files are kept for repair: {kept:?}"
    );
    // Defining the name again does not overwrite what was set aside.
    d.define(def(&h, "broken")).await.unwrap();
    assert_eq!(
        std::fs::read_dir(domains.join("broken")).unwrap().count(),
        2
    );
}

async fn names_up_to_256_bytes_and_leading_dots_survive_a_reopen<H: Harness>() {
    let h = H::new().await;
    let d = h.open().await;
    let long = "n".repeat(256);
    for n in [long.as_str(), ".dotted"] {
        d.define(def(&h, n)).await.unwrap();
    }
    drop(d);
    let d = h.open().await;
    assert_eq!(d.lookup(&name(&long)).unwrap().name, long);
    assert_eq!(d.lookup(&name(".dotted")).unwrap().name, ".dotted");
}
