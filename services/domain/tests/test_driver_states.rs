//! What only the test driver does: its default world (a running domain `test`, seeded once
//! per state dir), and the guest it simulates, which powers off the moment it is asked and
//! honours its lifecycle actions at once, with no OS. Everything every driver does the same
//! way (transitions, refusals, flags, events, persistence) is the driver contract,
//! `driver_contract.rs`, run against this driver and the qemu driver alike.

use virtplane_domain::driver::test::TestDriver;
use virtplane_domain::driver::{DomainDriver, DriverConfig};
use virtplane_domain::error::DomainError;
use virtplane_domain::model::{DomainRef, Impact, ListFilter, PowerMode, Reason, State, VcpuFlags};
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
        network_service: None,
        storage_service: None,
        guest_agent_timeout: None,
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
async fn the_default_world_is_seeded_only_once() {
    let w = world().await;
    w.driver.destroy(&name("test"), false).await.unwrap();
    w.driver.undefine(&name("test")).await.unwrap();
    let again = TestDriver::open(&w.config).await.unwrap();
    assert!(
        matches!(again.lookup(&name("test")), Err(DomainError::NotFound(_))),
        "default world is seeded only once"
    );
    assert!(again.list(&ListFilter::default()).is_empty());
}

/// The simulated guest powers off as soon as it is asked (a real one needs an OS that
/// handles ACPI, see `qemu_driver.rs`); like libvirt's test driver, this one takes no
/// shutdown mode (virCheckFlags(0)).
#[tokio::test]
async fn shutdown_powers_the_simulated_guest_off_at_once_and_takes_no_mode() {
    let w = world().await;
    let d = &w.driver;
    d.define(parse_domain(&web_xml("web")).unwrap())
        .await
        .unwrap();
    d.start(&name("web"), false).await.unwrap();
    assert!(matches!(
        d.shutdown(&name("web"), PowerMode::Acpi, None).await,
        Err(DomainError::Unsupported { .. })
    ));
    assert_eq!(state(d, "web"), (State::Running, Reason::RunningBooted));
    d.shutdown(&name("web"), PowerMode::Default, None)
        .await
        .unwrap();
    assert_eq!(state(d, "web"), (State::Shutoff, Reason::ShutoffShutdown));

    // A domain undefined while running is transient: gone once its guest powers off.
    d.start(&name("web"), false).await.unwrap();
    d.undefine(&name("web")).await.unwrap();
    d.shutdown(&name("web"), PowerMode::Default, None)
        .await
        .unwrap();
    assert!(matches!(
        d.lookup(&name("web")),
        Err(DomainError::NotFound(_))
    ));
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

/// The simulated guest takes any vCPU count up to its maximum at once; the qemu driver's
/// hotplug needs a booted guest and is tested with one in `qemu_driver.rs`.
#[tokio::test]
async fn live_vcpu_changes_leave_the_config_alone() {
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
    let live = VcpuFlags {
        impact: Impact {
            live: true,
            config: false,
        },
        ..Default::default()
    };
    d.set_vcpus(
        &name("web"),
        4,
        VcpuFlags {
            maximum: true,
            ..config
        },
    )
    .await
    .unwrap();
    d.set_vcpus(&name("web"), 2, config).await.unwrap();
    d.start(&name("web"), false).await.unwrap();
    d.set_vcpus(&name("web"), 3, live).await.unwrap();
    assert_eq!(d.vcpu_count(&name("web"), live).unwrap(), 3);
    assert_eq!(d.info(&name("web")).unwrap().vcpus, 3);
    assert_eq!(d.vcpu_count(&name("web"), config).unwrap(), 2);
    d.destroy(&name("web"), false).await.unwrap();
    assert_eq!(d.vcpu_count(&name("web"), config).unwrap(), 2);
}
