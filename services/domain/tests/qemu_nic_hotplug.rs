//! Network interface hotplug against real QEMU with the test guest booted under TCG, in a
//! network namespace the test makes (never the host's interfaces): the test runs on a thread
//! that first moves into a new, empty network namespace (`unshare(CLONE_NEWNET)`), and the
//! driver, its QEMU, the bridge and the taps all live there; the kernel tears the namespace
//! down with everything in it when the thread ends, also when the test fails. Needs root
//! (without it the test says so on stderr and passes).
//!
//! The guest boots with no NIC. A virtio `bridge` interface is attached live: the service
//! makes a `vnetN` tap on the test's bridge, QEMU gets the card as `net0`, the guest sees
//! `eth0` with the interface's MAC (asked on its serial console) and answers a ping from the
//! namespace over it. A `user` interface is attached and detached: the guest sees it come
//! and go. A card QEMU refuses (an occupied PCI slot) and a missing bridge leave nothing
//! behind. The bridge interface is detached: the guest loses it, its tap is gone. Plugged
//! again, it survives a service restart (the restarted service knows its tap); a detach while
//! the guest is paused times out and leaves it, and the guest's late release, once resumed,
//! finishes the detach (tap deleted) without another call. A destroy takes the tap of a
//! plugged interface with it.
//!
//! Deadlines here only stop hangs; nothing asserts a duration.

mod support;

use std::future::Future;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::OwnedWriteHalf;
use virtplane_domain::driver::qemu::QemuDriver;
use virtplane_domain::driver::{DomainDriver, DriverConfig};
use virtplane_domain::error::DomainError;
use virtplane_domain::model::{DomainRef, EventBody, Impact, XmlFlags};
use virtplane_domain::xml::{DomainDef, Interface, parse_device, parse_domain};

const BOOT_DEADLINE: Duration = Duration::from_secs(120);
const HANG_GUARD: Duration = Duration::from_secs(60);
const NAME: &str = "nic-hotplug";
const BRIDGE: &str = "vpbr0";
/// Addresses inside the test's namespace only (TEST-NET-1).
const HOST_IP: &str = "192.0.2.1";
const GUEST_IP: &str = "192.0.2.2";

const LIVE: Impact = Impact {
    live: true,
    config: false,
};

/// Runs `test` in a network namespace of its own (see the module doc); false when skipped.
fn in_own_netns<F, Fut>(test: F) -> bool
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let thread = std::thread::spawn(move || {
        if let Err(error) = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET) {
            eprintln!("SKIPPED: cannot make a network namespace (needs root): {error}");
            return false;
        }
        // A runtime on this thread: its sockets and the processes it spawns are in the
        // namespace too.
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(test());
        true
    });
    match thread.join() {
        Ok(ran) => ran,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// `ip ARGS…` in the test's namespace; panics when it fails.
fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every tap in the namespace, with its bridge.
fn taps() -> Vec<(String, Option<String>)> {
    let links: Vec<Value> =
        serde_json::from_str(&ip(&["-j", "-d", "link", "show"])).expect("ip -j output");
    links
        .iter()
        .filter(|l| l["linkinfo"]["info_kind"] == "tun")
        .map(|l| {
            (
                l["ifname"].as_str().unwrap().to_owned(),
                l["master"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn tap_names() -> Vec<String> {
    taps().into_iter().map(|(name, _)| name).collect()
}

/// The driver with its state in a short temp dir; every QEMU it still runs is killed (by
/// pid) and its VM cgroups removed when dropped, also when a test fails.
struct Fixture {
    driver: Option<Arc<QemuDriver>>,
    dir: tempfile::TempDir,
}

impl Fixture {
    async fn open() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("vp-nh-")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let driver = Some(Self::driver(dir.path()).await);
        Self { driver, dir }
    }

    async fn driver(dir: &Path) -> Arc<QemuDriver> {
        QemuDriver::open(&DriverConfig {
            state_dir: dir.join("state"),
            run_dir: dir.join("run"),
            emulator: None,
            vm_cgroup_root: Some(None),
            network_service: None,
            storage_service: None,
            guest_agent_timeout: None,
        })
        .await
        .expect("open the qemu driver")
    }

    fn d(&self) -> &QemuDriver {
        self.driver.as_ref().expect("a driver")
    }

    /// A service restart: the driver goes (its VMs keep running) and a new one reattaches.
    async fn restart(&mut self) {
        drop(self.driver.take());
        self.driver = Some(Self::driver(self.dir.path()).await);
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let pids: Vec<i32> = self
            .driver
            .iter()
            .flat_map(|d| d.running_vms())
            .map(|vm| vm.pid())
            .collect();
        support::kill_vms(&pids);
    }
}

fn name() -> DomainRef {
    DomainRef::Name(NAME.into())
}

/// The test guest with no NIC and its serial port as an interactive console.
fn domain_xml(guest: &Path) -> String {
    format!(
        r#"<domain type='qemu'>
  <name>{NAME}</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{kernel}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>console=ttyS0</cmdline>
  </os>
  <features><acpi/></features>
  <devices>
    <serial type='pty'><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <memballoon model='none'/>
  </devices>
</domain>"#,
        kernel = support::kernel(guest).display(),
        initrd = guest.join("initrd.img").display(),
    )
}

/// The guest's shell on its serial console: what it printed since we connected, and a way
/// to type.
struct Shell {
    output: Arc<Mutex<Vec<u8>>>,
    input: OwnedWriteHalf,
    asked: u32,
}

impl Shell {
    async fn open(driver: &QemuDriver) -> Self {
        let endpoint = driver.console_endpoint(&name(), None).expect("console");
        let log = endpoint.log.clone().expect("the console has a log");
        let deadline = tokio::time::Instant::now() + BOOT_DEADLINE;
        // The boot happened before anyone listened: QEMU's log of the console has it.
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("virtplane-guest: ready")
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the guest did not boot (hang guard):\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let stream = UnixStream::connect(&endpoint.socket)
            .await
            .expect("connect to the console");
        let (mut read, input) = stream.into_split();
        let output = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&output);
        // Drained all the time, so QEMU never waits for us.
        tokio::spawn(async move {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = read.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        });
        Self {
            output,
            input,
            asked: 0,
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }

    /// Types a command line.
    async fn run(&mut self, line: &str) {
        self.input
            .write_all(format!("\r{line}\r").as_bytes())
            .await
            .expect("type into the console");
    }

    /// What the shell expansion `expr` gives in the guest.
    async fn eval(&mut self, expr: &str) -> String {
        self.asked += 1;
        let tag = format!("Q{}Q", self.asked);
        self.run(&format!("echo {tag}:{expr}:{tag}")).await;
        let deadline = tokio::time::Instant::now() + HANG_GUARD;
        loop {
            // The echo of what was typed holds the unexpanded `$(`; the answer does not.
            let text = self.text();
            let answer = text.split(&format!("{tag}:")).skip(1).find_map(|rest| {
                let (value, _) = rest.split_once(&format!(":{tag}"))?;
                (!value.contains('$') && !value.contains('\n')).then(|| value.trim().to_owned())
            });
            if let Some(answer) = answer {
                return answer;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no answer to {expr:?} (hang guard); console:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The guest's interface with MAC `mac`, or "" when it has none.
    async fn iface_with(&mut self, mac: &str) -> String {
        self.eval(&format!(
            "$(grep -l {mac} /sys/class/net/*/address 2>/dev/null | cut -d/ -f5)"
        ))
        .await
    }

    async fn wait_iface(&mut self, mac: &str, present: bool) -> String {
        let deadline = tokio::time::Instant::now() + HANG_GUARD;
        loop {
            let iface = self.iface_with(mac).await;
            if iface.is_empty() != present {
                return iface;
            }
            if tokio::time::Instant::now() >= deadline {
                let dmesg = self.eval("$(dmesg | tail -15 | tr '\\n' '|')").await;
                panic!(
                    "the guest's interface with MAC {mac} is {}; its kernel log ends: {dmesg}",
                    if present { "not there" } else { "still there" }
                );
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

fn definition(driver: &QemuDriver, inactive: bool) -> DomainDef {
    let xml = driver
        .xml(
            &name(),
            XmlFlags {
                inactive,
                secure: false,
            },
        )
        .expect("dumpxml");
    parse_domain(&xml).expect("own XML parses")
}

fn nics(driver: &QemuDriver) -> Vec<Interface> {
    definition(driver, false).devices.interfaces
}

/// QEMU's user-created devices.
async fn peripherals(driver: &QemuDriver) -> Vec<String> {
    let (_, vm) = driver.running_vm(&name()).expect("running vm");
    let reply = vm
        .monitor
        .execute_raw(json!({"execute": "qom-list", "arguments": {"path": "/machine/peripheral"}}))
        .await
        .expect("qom-list");
    reply
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["type"].as_str().is_some_and(|t| t.starts_with("child<")))
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect()
}

fn iface(xml: &str) -> virtplane_domain::xml::DeviceDef {
    parse_device(xml).unwrap()
}

fn bridge_nic() -> virtplane_domain::xml::DeviceDef {
    iface(&format!(
        "<interface type='bridge'><source bridge='{BRIDGE}'/><model type='virtio'/></interface>"
    ))
}

/// Pings the guest from the namespace until it answers.
async fn ping_guest(shell: &Shell) {
    let deadline = tokio::time::Instant::now() + HANG_GUARD;
    loop {
        let ping = Command::new("ping")
            .args(["-c1", "-W2", GUEST_IP])
            .output()
            .expect("run ping");
        if ping.status.success() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the guest never answered a ping: {}\nconsole:\n{}",
            String::from_utf8_lossy(&ping.stdout),
            shell.text()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[test]
fn nics_come_and_go_in_a_running_guest() {
    let guest = support::build_guest();
    in_own_netns(move || async move {
        ip(&["link", "add", BRIDGE, "type", "bridge"]);
        ip(&["addr", "add", &format!("{HOST_IP}/24"), "dev", BRIDGE]);
        ip(&["link", "set", BRIDGE, "up"]);
        let mut fx = Fixture::open().await;
        let d = fx.d();
        d.define(parse_domain(&domain_xml(&guest)).unwrap())
            .await
            .expect("define");
        d.start(&name(), false).await.expect("start");
        let (_, events) = d.events().subscribe_from(0).unwrap();
        let mut events = Box::pin(events);
        let mut shell = Shell::open(d).await;
        assert_eq!(shell.eval("$(ls /sys/class/net | grep -c eth)").await, "0");
        assert!(taps().is_empty());

        // A bridge interface, live: a tap on the bridge, a card in QEMU, eth0 in the guest.
        d.attach_device(&name(), bridge_nic(), LIVE)
            .await
            .expect("attach the bridge interface");
        let live = nics(d);
        assert_eq!(live.len(), 1);
        let bridged = live[0].clone();
        let mac = bridged.mac.clone().expect("a generated MAC");
        let tap = bridged.target_dev.clone().expect("the tap is named");
        assert_eq!(bridged.info.alias.as_deref(), Some("net0"));
        assert_eq!(
            bridged.info.address.as_ref().map(|a| a.addr_type.as_str()),
            Some("pci")
        );
        assert!(tap.starts_with("vnet"), "{tap}");
        assert_eq!(taps(), [(tap.clone(), Some(BRIDGE.to_owned()))]);
        assert!(definition(d, true).devices.interfaces.is_empty());
        assert!(peripherals(d).await.contains(&"net0".to_owned()));
        let eth = shell.wait_iface(&mac, true).await;
        assert_eq!(eth, "eth0");
        shell
            .run(&format!(
                "ip addr add {GUEST_IP}/24 dev eth0; ip link set eth0 up"
            ))
            .await;
        ping_guest(&shell).await;

        // A user interface comes and goes.
        let user_mac = "52:54:00:5e:00:07";
        let user = iface(&format!(
            "<interface type='user'><mac address='{user_mac}'/><model type='virtio'/></interface>"
        ));
        d.attach_device(&name(), user.clone(), LIVE)
            .await
            .expect("attach the user interface");
        let live = nics(d);
        assert_eq!(live.len(), 2);
        assert_eq!(live[1].info.alias.as_deref(), Some("net1"));
        assert_eq!(live[1].target_dev, None);
        assert_eq!(shell.wait_iface(user_mac, true).await, "eth1");
        assert_eq!(taps().len(), 1, "user networking has no tap");
        // The same MAC again is refused.
        let err = d
            .attach_device(&name(), user.clone(), LIVE)
            .await
            .unwrap_err();
        assert!(err.to_string().contains(user_mac), "{err}");
        d.detach_device(&name(), user.clone(), LIVE)
            .await
            .expect("detach the user interface");
        shell.wait_iface(user_mac, false).await;
        assert_eq!(nics(d).len(), 1);
        assert!(!peripherals(d).await.contains(&"net1".to_owned()));

        // Refused attaches leave nothing: a slot QEMU has taken (the card is refused after
        // its tap and backend exist), and a bridge that does not exist.
        let err = d
            .attach_device(
                &name(),
                iface(&format!(
                    "<interface type='bridge'><source bridge='{BRIDGE}'/><model type='virtio'/>\
                     <address type='pci' domain='0x0000' bus='0x00' slot='0x01' function='0x0'/>\
                     </interface>"
                )),
                LIVE,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, DomainError::OperationFailed(_)), "{err:?}");
        let err = d
            .attach_device(
                &name(),
                iface("<interface type='bridge'><source bridge='nobr0'/></interface>"),
                LIVE,
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("bridge 'nobr0'"), "{err}");
        assert_eq!(tap_names(), std::slice::from_ref(&tap));
        assert_eq!(nics(d).len(), 1);
        // The refused card's backend is gone too: its id can be used again.
        d.attach_device(&name(), user.clone(), LIVE)
            .await
            .expect("attach the user interface again");
        assert_eq!(nics(d)[1].info.alias.as_deref(), Some("net1"));
        shell.wait_iface(user_mac, true).await;
        d.detach_device(&name(), user, LIVE)
            .await
            .expect("detach the user interface again");
        shell.wait_iface(user_mac, false).await;

        // The bridge interface goes: from the guest, from QEMU, and its tap from the host.
        let by_mac = iface(&format!(
            "<interface type='bridge'><mac address='{mac}'/></interface>"
        ));
        d.detach_device(&name(), by_mac, LIVE)
            .await
            .expect("detach the bridge interface");
        shell.wait_iface(&mac, false).await;
        assert!(nics(d).is_empty());
        assert!(taps().is_empty(), "{:?}", taps());
        assert!(!peripherals(d).await.iter().any(|p| p.starts_with("net")));

        let mut added = Vec::new();
        let mut removed = Vec::new();
        while removed.len() < 3 {
            let event = tokio::time::timeout(HANG_GUARD, events.next())
                .await
                .expect("event (hang guard)")
                .unwrap()
                .unwrap();
            match event.body {
                EventBody::DeviceAdded(alias) => added.push(alias),
                EventBody::DeviceRemoved(alias) => removed.push(alias),
                _ => {}
            }
        }
        assert_eq!(added, ["net0", "net1", "net1"]);
        assert_eq!(removed, ["net1", "net1", "net0"]);

        // Plugged again, it survives a service restart: the restarted service finds the
        // interface and its tap in the live definition and unplugs both.
        d.attach_device(&name(), bridge_nic(), LIVE)
            .await
            .expect("attach the bridge interface again");
        let again = nics(d)[0].clone();
        assert_eq!(again.info.alias.as_deref(), Some("net0"));
        let second_tap = again.target_dev.clone().unwrap();
        assert_ne!(second_tap, tap, "libvirt's counter moves on");
        shell.wait_iface(again.mac.as_deref().unwrap(), true).await;
        fx.restart().await;
        let d = fx.d();
        assert_eq!(nics(d), std::slice::from_ref(&again));
        assert_eq!(tap_names(), std::slice::from_ref(&second_tap));
        // A guest that cannot answer (paused): the detach times out and the interface stays,
        // tap and all; once running again, the guest lets the card go and the watcher
        // finishes the detach without another call.
        d.suspend(&name()).await.expect("suspend");
        let err = d
            .detach_device(&name(), bridge_nic(), LIVE)
            .await
            .unwrap_err();
        assert!(matches!(err, DomainError::Timeout(_)), "{err:?}");
        assert!(
            err.to_string().contains("did not release interface 'net0'"),
            "{err}"
        );
        assert_eq!(nics(d).len(), 1);
        assert_eq!(tap_names(), std::slice::from_ref(&second_tap));
        d.resume(&name()).await.expect("resume");
        shell.wait_iface(again.mac.as_deref().unwrap(), false).await;
        let deadline = tokio::time::Instant::now() + HANG_GUARD;
        while !nics(d).is_empty() || !taps().is_empty() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the late release was not recorded: {:?}, taps {:?}",
                nics(d),
                taps()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(!peripherals(d).await.iter().any(|p| p.starts_with("net")));
        let err = d
            .detach_device(&name(), bridge_nic(), LIVE)
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "no matching network device was found");

        // A plugged interface's tap goes with the VM.
        d.attach_device(&name(), bridge_nic(), LIVE)
            .await
            .expect("attach once more");
        assert_eq!(taps().len(), 1);
        d.destroy(&name(), false).await.expect("destroy");
        assert!(taps().is_empty(), "{:?}", taps());
        assert!(definition(d, false).devices.interfaces.is_empty());
    });
}
