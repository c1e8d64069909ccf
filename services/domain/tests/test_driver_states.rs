//! The test driver's state machine: every transition and every refusal, with libvirt's
//! semantics and messages, plus persistence across a re-open of the same directories.

use virtplane_domain::driver::test::TestDriver;
use virtplane_domain::driver::{DomainDriver, DriverConfig};
use virtplane_domain::error::DomainError;
use virtplane_domain::model::{
    DomainRef, EventBody, Impact, Lifecycle, ListFilter, MemoryFlags, PowerMode, Reason, State,
    VcpuFlags, XmlFlags,
};
use virtplane_domain::xml::parse_domain;

fn web_xml(name: &str) -> String {
    format!(
        "<domain type='test'><name>{name}</name><memory unit='MiB'>512</memory>\
         <vcpu>1</vcpu><os><type>hvm</type></os></domain>"
    )
}

fn name(n: &str) -> DomainRef {
    DomainRef::Name(n.into())
}

struct World {
    _dir: tempfile::TempDir,
    config: DriverConfig,
    driver: TestDriver,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let config = DriverConfig {
        state_dir: dir.path().join("state"),
        run_dir: dir.path().join("run"),
        emulator: None,
        vm_cgroup_root: None,
    };
    let driver = TestDriver::open(&config).await.unwrap();
    World {
        _dir: dir,
        config,
        driver,
    }
}

fn state(driver: &TestDriver, n: &str) -> (State, Reason) {
    let summary = driver.lookup(&name(n)).unwrap();
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

#[tokio::test]
async fn default_world_has_a_running_test_domain() {
    let w = world().await;
    let all = w.driver.list(&ListFilter::default());
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].name, "test");
    assert_eq!(all[0].state, State::Running);
    assert!(all[0].persistent);
    assert_eq!(all[0].id, 1);
}

#[tokio::test]
async fn lifecycle_transitions_and_refusals() {
    let w = world().await;
    let d = &w.driver;
    let (summary, updated) = d
        .define(parse_domain(&web_xml("web")).unwrap())
        .await
        .unwrap();
    assert!(!updated);
    assert_eq!((summary.state, summary.id), (State::Shutoff, -1));

    // shut off: everything but start/undefine is refused
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
    expect_invalid(d.start(&name("web"), false).await, "already running");
    expect_invalid(d.resume(&name("web")).await, "is not paused");

    d.suspend(&name("web")).await.unwrap();
    assert_eq!(state(d, "web"), (State::Paused, Reason::PausedUser));
    expect_invalid(d.suspend(&name("web")).await, "already paused");
    d.resume(&name("web")).await.unwrap();
    assert_eq!(state(d, "web"), (State::Running, Reason::RunningUnpaused));

    d.reboot(&name("web"), PowerMode::Default).await.unwrap();
    assert_eq!(state(d, "web").0, State::Running);
    d.reset(&name("web")).await.unwrap();
    assert_eq!(state(d, "web").0, State::Running);

    // The test driver takes no shutdown modes, as libvirt's (virCheckFlags(0)).
    assert!(matches!(
        d.shutdown(&name("web"), PowerMode::Acpi, None).await,
        Err(DomainError::Unsupported { .. })
    ));
    d.shutdown(&name("web"), PowerMode::Default, None)
        .await
        .unwrap();
    assert_eq!(state(d, "web"), (State::Shutoff, Reason::ShutoffShutdown));
    d.start(&name("web"), true).await.unwrap();
    assert_eq!(state(d, "web"), (State::Paused, Reason::PausedUser));
    d.destroy(&name("web"), false).await.unwrap();
    assert_eq!(state(d, "web"), (State::Shutoff, Reason::ShutoffDestroyed));

    d.undefine(&name("web")).await.unwrap();
    assert!(matches!(
        d.lookup(&name("web")),
        Err(DomainError::NotFound(_))
    ));
    assert!(matches!(
        d.start(&name("web"), false).await,
        Err(DomainError::NotFound(_))
    ));
}

#[tokio::test]
async fn undefine_of_a_running_domain_leaves_it_transient_until_it_stops() {
    let w = world().await;
    let d = &w.driver;
    d.define(parse_domain(&web_xml("web")).unwrap())
        .await
        .unwrap();
    d.start(&name("web"), false).await.unwrap();
    d.undefine(&name("web")).await.unwrap();
    let summary = d.lookup(&name("web")).unwrap();
    assert!(!summary.persistent);
    assert_eq!(summary.state, State::Running);
    expect_invalid(d.undefine(&name("web")).await, "transient");
    expect_invalid(d.set_autostart(&name("web"), true).await, "transient");
    d.shutdown(&name("web"), PowerMode::Default, None)
        .await
        .unwrap();
    assert!(matches!(
        d.lookup(&name("web")),
        Err(DomainError::NotFound(_))
    ));
}

#[tokio::test]
async fn transient_domains_vanish_on_destroy_and_names_stay_unique() {
    let w = world().await;
    let d = &w.driver;
    let created = d
        .create(parse_domain(&web_xml("tmp")).unwrap(), false)
        .await
        .unwrap();
    assert!(!created.persistent);
    assert_eq!(created.state, State::Running);
    assert!(matches!(
        d.create(parse_domain(&web_xml("tmp")).unwrap(), false)
            .await,
        Err(DomainError::NameTaken { .. }) | Err(DomainError::AlreadyActive(_))
    ));
    d.destroy(&name("tmp"), false).await.unwrap();
    assert!(matches!(
        d.lookup(&name("tmp")),
        Err(DomainError::NotFound(_))
    ));
}

#[tokio::test]
async fn duplicate_names_and_uuids_are_refused() {
    let w = world().await;
    let d = &w.driver;
    let a = "<domain type='test'><name>a</name><uuid>11111111-2222-3333-4444-555555555555</uuid>\
             <memory>1024</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>";
    d.define(parse_domain(a).unwrap()).await.unwrap();
    // Same name, other UUID.
    let err = d
        .define(parse_domain(&web_xml("a")).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, DomainError::NameTaken { .. }), "{err}");
    // Same UUID, other name.
    let b = a.replace("<name>a</name>", "<name>b</name>");
    let err = d.define(parse_domain(&b).unwrap()).await.unwrap_err();
    assert!(matches!(err, DomainError::UuidTaken { .. }), "{err}");
    // Same name and UUID: an update.
    let (_, updated) = d.define(parse_domain(a).unwrap()).await.unwrap();
    assert!(updated);
    // Lookup by UUID, any case, with or without dashes.
    let by_uuid = d
        .lookup(&DomainRef::Uuid("11111111222233334444555555555555".into()))
        .unwrap();
    assert_eq!(by_uuid.name, "a");
}

#[tokio::test]
async fn vcpus_follow_libvirt_flag_semantics() {
    let w = world().await;
    let d = &w.driver;
    d.define(parse_domain(&web_xml("web")).unwrap())
        .await
        .unwrap();
    let config = VcpuFlags {
        impact: Impact {
            live: false,
            config: true,
        },
        ..Default::default()
    };
    let maximum = VcpuFlags {
        maximum: true,
        ..config
    };
    d.set_vcpus(&name("web"), 4, maximum).await.unwrap();
    d.set_vcpus(&name("web"), 2, config).await.unwrap();
    assert_eq!(d.vcpu_count(&name("web"), maximum).unwrap(), 4);
    assert_eq!(d.vcpu_count(&name("web"), config).unwrap(), 2);
    // Live on an inactive domain is refused.
    let live = VcpuFlags {
        impact: Impact {
            live: true,
            config: false,
        },
        ..Default::default()
    };
    expect_invalid(d.vcpu_count(&name("web"), live), "not running");
    expect_invalid(d.set_vcpus(&name("web"), 1, live).await, "not running");
    d.start(&name("web"), false).await.unwrap();
    assert_eq!(d.vcpu_count(&name("web"), live).unwrap(), 2);
    // The maximum of a live domain cannot change; maximum without config is refused outright.
    let live_max = VcpuFlags {
        maximum: true,
        impact: Impact {
            live: true,
            config: true,
        },
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
    // Over the maximum is an invalid argument.
    assert!(matches!(
        d.set_vcpus(&name("web"), 5, live).await,
        Err(DomainError::InvalidArg(_))
    ));
    // Live change leaves the config alone.
    d.set_vcpus(&name("web"), 3, live).await.unwrap();
    assert_eq!(d.vcpu_count(&name("web"), live).unwrap(), 3);
    assert_eq!(d.vcpu_count(&name("web"), config).unwrap(), 2);
    // Both live and config together is refused for reads.
    let both = VcpuFlags {
        impact: Impact {
            live: true,
            config: true,
        },
        ..Default::default()
    };
    assert!(matches!(
        d.vcpu_count(&name("web"), both),
        Err(DomainError::InvalidArg(_))
    ));
    // The guest agent is not part of the test driver.
    let guest = VcpuFlags {
        guest: true,
        ..live
    };
    assert!(matches!(
        d.set_vcpus(&name("web"), 1, guest).await,
        Err(DomainError::Unsupported { .. })
    ));
}

#[tokio::test]
async fn memory_follows_libvirt_flag_semantics() {
    let w = world().await;
    let d = &w.driver;
    d.define(parse_domain(&web_xml("web")).unwrap())
        .await
        .unwrap();
    let current = MemoryFlags::default();
    d.set_memory(&name("web"), 256 * 1024, current)
        .await
        .unwrap();
    let info = d.info(&name("web")).unwrap();
    assert_eq!(
        (info.max_memory_kib, info.memory_kib),
        (512 * 1024, 256 * 1024)
    );
    assert!(matches!(
        d.set_memory(&name("web"), 1024 * 1024, current).await,
        Err(DomainError::InvalidArg(_))
    ));
    let maximum = MemoryFlags {
        maximum: true,
        ..current
    };
    d.set_memory(&name("web"), 1024 * 1024, maximum)
        .await
        .unwrap();
    assert_eq!(d.info(&name("web")).unwrap().max_memory_kib, 1024 * 1024);
    d.start(&name("web"), false).await.unwrap();
    expect_invalid(
        d.set_memory(&name("web"), 2048 * 1024, maximum).await,
        "active domain",
    );
}

#[tokio::test]
async fn xml_flags_choose_live_or_inactive() {
    let w = world().await;
    let d = &w.driver;
    d.define(parse_domain(&web_xml("web")).unwrap())
        .await
        .unwrap();
    d.start(&name("web"), false).await.unwrap();
    let config = VcpuFlags {
        impact: Impact {
            live: false,
            config: true,
        },
        maximum: true,
        ..Default::default()
    };
    assert!(d.set_vcpus(&name("web"), 4, config).await.is_ok());
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
}

#[tokio::test]
async fn events_report_each_change_in_order() {
    let w = world().await;
    let d = &w.driver;
    let start = d.events().last_sequence();
    d.define(parse_domain(&web_xml("web")).unwrap())
        .await
        .unwrap();
    d.start(&name("web"), false).await.unwrap();
    d.suspend(&name("web")).await.unwrap();
    d.resume(&name("web")).await.unwrap();
    d.destroy(&name("web"), false).await.unwrap();
    d.undefine(&name("web")).await.unwrap();
    let stream = d.events().subscribe(start).unwrap();
    use futures::StreamExt;
    let events: Vec<_> = stream.take(6).map(|e| e.unwrap()).collect().await;
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
}

#[tokio::test]
async fn state_survives_a_reopen_and_the_default_world_is_not_reseeded() {
    let w = world().await;
    let d = &w.driver;
    d.define(parse_domain(&web_xml("web")).unwrap())
        .await
        .unwrap();
    d.start(&name("web"), false).await.unwrap();
    d.suspend(&name("web")).await.unwrap();
    d.set_autostart(&name("web"), true).await.unwrap();
    d.create(parse_domain(&web_xml("tmp")).unwrap(), false)
        .await
        .unwrap();
    d.destroy(&name("test"), false).await.unwrap();
    d.undefine(&name("test")).await.unwrap();
    let before_epoch = d.events().last_sequence() >> 32;

    let again = TestDriver::open(&w.config).await.unwrap();
    let web = again.lookup(&name("web")).unwrap();
    assert_eq!(
        (web.state, web.persistent, web.autostart),
        (State::Paused, true, true)
    );
    let tmp = again.lookup(&name("tmp")).unwrap();
    assert_eq!((tmp.state, tmp.persistent), (State::Running, false));
    assert!(
        again.lookup(&name("test")).is_err(),
        "default world is seeded only once"
    );
    assert!(again.events().last_sequence() >> 32 > before_epoch);
    // ids keep rising: a new start does not reuse a running domain's id
    again
        .create(parse_domain(&web_xml("new")).unwrap(), false)
        .await
        .unwrap();
    let new = again.lookup(&name("new")).unwrap();
    assert!(new.id > tmp.id && new.id > web.id);
}

fn with_actions(name: &str, actions: &str) -> String {
    web_xml(name).replace("</os>", &format!("</os>{actions}"))
}

#[tokio::test]
async fn lifecycle_actions_are_honoured() {
    let w = world().await;
    let d = &w.driver;
    let restart = with_actions("phoenix", "<on_poweroff>restart</on_poweroff>");
    d.define(parse_domain(&restart).unwrap()).await.unwrap();
    d.start(&name("phoenix"), false).await.unwrap();
    d.shutdown(&name("phoenix"), PowerMode::Default, None)
        .await
        .unwrap();
    assert_eq!(state(d, "phoenix"), (State::Running, Reason::RunningBooted));

    let stop_on_reboot = with_actions("once", "<on_reboot>destroy</on_reboot>");
    d.define(parse_domain(&stop_on_reboot).unwrap())
        .await
        .unwrap();
    d.start(&name("once"), false).await.unwrap();
    d.reboot(&name("once"), PowerMode::Default).await.unwrap();
    assert_eq!(state(d, "once"), (State::Shutoff, Reason::ShutoffShutdown));
}

#[tokio::test]
async fn a_paused_domain_can_be_shut_down_and_destroyed() {
    let w = world().await;
    let d = &w.driver;
    d.define(parse_domain(&web_xml("web")).unwrap())
        .await
        .unwrap();
    d.start(&name("web"), true).await.unwrap();
    d.shutdown(&name("web"), PowerMode::Default, None)
        .await
        .unwrap();
    assert_eq!(state(d, "web").0, State::Shutoff);
    d.start(&name("web"), true).await.unwrap();
    d.destroy(&name("web"), false).await.unwrap();
    assert_eq!(state(d, "web"), (State::Shutoff, Reason::ShutoffDestroyed));
}

#[tokio::test]
async fn create_over_an_inactive_persistent_domain_runs_the_new_xml_and_keeps_the_config() {
    let w = world().await;
    let d = &w.driver;
    let (defined, _) = d
        .define(parse_domain(&web_xml("web")).unwrap())
        .await
        .unwrap();
    let mut bigger = parse_domain(&web_xml("web")).unwrap();
    bigger.uuid = defined.uuid.clone();
    bigger.vcpu.max = 2;
    let created = d.create(bigger, false).await.unwrap();
    assert!(created.persistent, "it stays persistent");
    let live = VcpuFlags {
        impact: Impact {
            live: true,
            config: false,
        },
        ..Default::default()
    };
    let config = VcpuFlags {
        impact: Impact {
            live: false,
            config: true,
        },
        ..Default::default()
    };
    assert_eq!(d.vcpu_count(&name("web"), live).unwrap(), 2);
    assert_eq!(d.vcpu_count(&name("web"), config).unwrap(), 1);
    assert!(matches!(
        d.create(parse_domain(&web_xml("web")).unwrap(), false)
            .await,
        Err(DomainError::NameTaken { .. }) | Err(DomainError::AlreadyActive(_))
    ));
    d.destroy(&name("web"), false).await.unwrap();
    assert_eq!(d.vcpu_count(&name("web"), config).unwrap(), 1);
}

#[tokio::test]
async fn unusable_configs_are_moved_aside_on_load() {
    let w = world().await;
    w.driver
        .define(parse_domain(&web_xml("good")).unwrap())
        .await
        .unwrap();
    let domains = w.config.state_dir.join("domains");
    std::fs::write(
        domains.join("broken.xml"),
        "<domain type='test'><name>broken",
    )
    .unwrap();
    std::fs::write(domains.join("liar.xml"), web_xml("someone-else")).unwrap();
    let again = TestDriver::open(&w.config).await.unwrap();
    assert!(again.lookup(&name("good")).is_ok());
    assert!(again.lookup(&name("broken")).is_err());
    assert!(again.lookup(&name("someone-else")).is_err());
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
    again
        .define(parse_domain(&web_xml("broken")).unwrap())
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_dir(domains.join("broken")).unwrap().count(),
        2
    );
}

#[tokio::test]
async fn names_up_to_256_bytes_and_leading_dots_survive_a_reopen() {
    let w = world().await;
    let long = "n".repeat(256);
    for n in [long.as_str(), ".dotted"] {
        w.driver
            .define(parse_domain(&web_xml(n)).unwrap())
            .await
            .unwrap();
    }
    let again = TestDriver::open(&w.config).await.unwrap();
    assert!(again.lookup(&name(&long)).is_ok());
    assert!(again.lookup(&name(".dotted")).is_ok());
}
