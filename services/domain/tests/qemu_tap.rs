//! The taps of `bridge` and `ethernet` interfaces (`driver::qemu::net`) against the real
//! kernel and a real QEMU, never on the host's own interfaces: each test runs on a thread of
//! its own that first moves into a new, empty network namespace (`unshare(CLONE_NEWNET)`).
//! Everything the test makes — bridge, taps, the QEMU it spawns from that thread — lives in
//! that namespace, which the kernel tears down with everything in it when the thread ends,
//! also when the test fails. The tests need root (CAP_SYS_ADMIN, CAP_NET_ADMIN); without it
//! they say so on stderr and pass.

use std::future::Future;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use virtplane_domain::driver::qemu::argv::{ArgvContext, build};
use virtplane_domain::driver::qemu::net::{HostNet, NetError};
use virtplane_domain::xml::{DomainDef, parse_domain};

const QEMU: &str = "/usr/bin/qemu-system-x86_64";

/// Guards waits against hangs; not a speed assertion.
const HANG_GUARD: Duration = Duration::from_secs(30);

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

/// `ip ARGS…` in the test's namespace; its stdout. Panics when it fails.
fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `ip -j -d link show dev NAME`, or `None` when there is no such device.
fn link(name: &str) -> Option<Value> {
    let out = Command::new("ip")
        .args(["-j", "-d", "link", "show", "dev", name])
        .output()
        .expect("run ip");
    if !out.status.success() {
        return None;
    }
    let mut links: Vec<Value> = serde_json::from_slice(&out.stdout).expect("ip -j output");
    links.pop()
}

/// The names of every tap in the namespace.
fn taps() -> Vec<String> {
    let links: Vec<Value> =
        serde_json::from_str(&ip(&["-j", "-d", "link", "show"])).expect("ip -j output");
    links
        .iter()
        .filter(|l| l["linkinfo"]["info_kind"] == "tun")
        .map(|l| l["ifname"].as_str().unwrap().to_owned())
        .collect()
}

fn has_flag(link: &Value, flag: &str) -> bool {
    link["flags"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == flag))
}

fn domain(interfaces: &str) -> Arc<DomainDef> {
    Arc::new(
        parse_domain(&format!(
            "<domain type='qemu'><name>tap-test</name><memory unit='MiB'>64</memory>\
             <os><type arch='x86_64' machine='pc'>hvm</type></os>\
             <devices>{interfaces}<memballoon model='none'/></devices></domain>"
        ))
        .unwrap(),
    )
}

/// A process killed (by pid) and reaped when dropped.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn bridge_and_ethernet_taps_are_made_used_by_qemu_and_deleted() {
    in_own_netns(|| async {
        ip(&["link", "add", "br0", "type", "bridge"]);
        ip(&["link", "set", "br0", "mtu", "1400", "up"]);
        let def = domain(
            "<interface type='bridge'><source bridge='br0'/><model type='virtio'/></interface>\
             <interface type='bridge'><mac address='52:54:00:aa:bb:cc'/><source bridge='br0'/>\
               <target dev='mytap0'/><model type='e1000'/></interface>\
             <interface type='ethernet'><model type='virtio'/></interface>\
             <interface type='user'/>",
        );
        let net = HostNet::default();
        let live = net.plug(def.clone(), 1).await.expect("plug");

        // The live definition names every tap and has every MAC QEMU will use.
        let nics = &live.devices.interfaces;
        assert_eq!(nics[0].target_dev.as_deref(), Some("vnet0"));
        assert_eq!(nics[1].target_dev.as_deref(), Some("mytap0"));
        assert_eq!(nics[2].target_dev.as_deref(), Some("vnet1"));
        assert_eq!(nics[3].target_dev, None);
        let guest_mac = nics[0].mac.clone().expect("a generated MAC");
        assert!(guest_mac.starts_with("52:54:00:"), "{guest_mac}");
        assert_eq!(
            def.devices.interfaces[0].mac, None,
            "the input is left alone"
        );

        // Each tap: a persistent tap, the guest's MAC with 0xFE first, up, on its bridge with
        // the bridge's MTU.
        let vnet0 = link("vnet0").expect("vnet0 exists");
        assert_eq!(vnet0["linkinfo"]["info_kind"], "tun", "{vnet0}");
        let data = &vnet0["linkinfo"]["info_data"];
        assert_eq!(data["type"], "tap", "{vnet0}");
        assert_eq!(data["pi"], false, "{vnet0}");
        assert_eq!(data["vnet_hdr"], true, "{vnet0}");
        assert_eq!(data["persist"], true, "{vnet0}");
        assert_eq!(vnet0["master"], "br0", "{vnet0}");
        assert_eq!(vnet0["mtu"], 1400, "{vnet0}");
        assert_eq!(
            vnet0["address"].as_str().unwrap(),
            format!("fe{}", &guest_mac[2..])
        );
        assert!(has_flag(&vnet0, "UP"), "{vnet0}");
        assert!(
            has_flag(&vnet0, "NO-CARRIER"),
            "nobody has it open yet: {vnet0}"
        );
        let mytap = link("mytap0").expect("mytap0 exists");
        assert_eq!(mytap["address"], "fe:54:00:aa:bb:cc", "{mytap}");
        assert_eq!(mytap["mtu"], 1400, "{mytap}");
        assert_eq!(mytap["master"], "br0", "{mytap}");
        assert_eq!(mytap["linkinfo"]["info_data"]["vnet_hdr"], false, "{mytap}");
        let vnet1 = link("vnet1").expect("vnet1 exists");
        assert!(
            vnet1.get("master").is_none(),
            "ethernet joins no bridge: {vnet1}"
        );
        assert_eq!(vnet1["mtu"], 1500, "{vnet1}");
        assert!(has_flag(&vnet1, "UP"), "{vnet1}");

        // QEMU, run with the driver's own command line, opens all three by name: each gets
        // a carrier once a queue is attached.
        let run = tempfile::Builder::new()
            .prefix("vp-tap-")
            .tempdir_in("/tmp")
            .unwrap();
        let ctx = ArgvContext {
            emulator: PathBuf::from(QEMU),
            run_dir: run.path().to_path_buf(),
            kvm_usable: false,
        };
        let cmd = build(&live, &ctx).expect("command line");
        let line = cmd.args.join(" ");
        assert!(
            line.contains("tap,id=hostnet0,ifname=vnet0,script=no,downscript=no"),
            "{line}"
        );
        let log = std::fs::File::create(run.path().join("qemu.log")).unwrap();
        let qemu = KillOnDrop(
            Command::new(&cmd.program)
                .args(&cmd.args)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("spawn QEMU"),
        );
        let deadline = Instant::now() + HANG_GUARD;
        for tap in ["vnet0", "mytap0", "vnet1"] {
            loop {
                let state = link(tap).expect("the tap stays");
                if has_flag(&state, "LOWER_UP") {
                    break;
                }
                let log = std::fs::read_to_string(run.path().join("qemu.log")).unwrap();
                assert!(
                    Instant::now() < deadline,
                    "QEMU never opened {tap}: {state}\nQEMU log:\n{log}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        drop(qemu);
        assert!(link("vnet0").is_some(), "persistent: QEMU's exit keeps it");

        // The VM is gone: its taps go, the bridge and user networking stay as they were.
        net.release(&live.uuid, 1, &live.name).await;
        assert_eq!(taps(), Vec::<String>::new());
        assert!(link("br0").is_some());
    });
}

#[test]
fn refused_starts_say_why_and_leave_no_tap() {
    in_own_netns(|| async {
        ip(&["link", "add", "br0", "type", "bridge"]);
        ip(&["tuntap", "add", "dev", "old0", "mode", "tap"]);
        let net = HostNet::default();
        let refused = |xml: &'static str| {
            let net = &net;
            async move {
                let error = net.plug(domain(xml), 7).await.unwrap_err();
                let left: Vec<String> = taps().into_iter().filter(|t| t != "old0").collect();
                assert!(left.is_empty(), "{xml}: left {left:?}");
                error
            }
        };

        let error = refused(
            "<interface type='bridge'><source bridge='br0'/><model type='virtio'/></interface>\
             <interface type='bridge'><source bridge='nobr0'/></interface>",
        )
        .await;
        assert!(
            matches!(&error, NetError::NoBridge(b) if b == "nobr0"),
            "{error:?}"
        );
        assert!(
            error
                .to_string()
                .starts_with("bridge 'nobr0' does not exist"),
            "{error}"
        );

        let error = refused("<interface type='bridge'><source bridge='lo'/></interface>").await;
        assert_eq!(
            error.to_string(),
            "'lo' is not a bridge but a network device"
        );

        let error = refused(
            "<interface type='bridge'><source bridge='br0'/><target dev='br0'/></interface>",
        )
        .await;
        assert_eq!(
            error.to_string(),
            "the name 'br0' is taken by a bridge device, not a tap; choose another <target dev>"
        );

        let error = refused(
            "<interface type='bridge'><source bridge='br0'/><target dev='old0'/></interface>",
        )
        .await;
        assert!(
            matches!(&error, NetError::TapExists(t) if t == "old0"),
            "{error:?}"
        );

        // An existing tap is refused for ethernet too: the service would delete it at stop.
        let error = refused("<interface type='ethernet'><target dev='old0'/></interface>").await;
        assert_eq!(
            error.to_string(),
            "a tap named 'old0' already exists (another VM's, or left behind); choose another \
             <target dev> or remove it"
        );
        assert!(link("old0").is_some(), "someone else's tap is left alone");
    });
}

#[test]
fn a_restarted_service_adopts_running_vms_taps_and_removes_dead_ones() {
    in_own_netns(|| async {
        ip(&["link", "add", "br0", "type", "bridge"]);
        let bridge_nic = "<interface type='bridge'><source bridge='br0'/></interface>";
        let before = HostNet::default();
        let dead = before.plug(domain(bridge_nic), 1).await.unwrap();
        let running = before.plug(domain(bridge_nic), 2).await.unwrap();
        assert_eq!(taps(), vec!["vnet0".to_string(), "vnet1".into()]);

        // The service restarts: a fresh HostNet. The VM that still runs is adopted; the one
        // that ended meanwhile has its taps removed from its live definition.
        let after = HostNet::default();
        after.adopt(&running, 2).await;
        after.remove_leftovers(&dead).await;
        assert_eq!(taps(), vec!["vnet1".to_string()]);
        // New names continue past the adopted ones (not the freed vnet0), as libvirt's do.
        let next = after.plug(domain(bridge_nic), 3).await.unwrap();
        assert_eq!(
            next.devices.interfaces[0].target_dev.as_deref(),
            Some("vnet2")
        );
        after.release(&running.uuid, 2, &running.name).await;
        after.release(&next.uuid, 3, &next.name).await;
        assert_eq!(taps(), Vec::<String>::new());
    });
}
