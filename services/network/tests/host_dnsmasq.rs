//! `host::dnsmasq` and `host::leases` against a real dnsmasq, each test in a network namespace
//! of its own (see `common`). A DHCP client (busybox `udhcpc`) runs in a second, fresh
//! namespace joined to the network's bridge by a veth pair, as a guest would be: it gets a
//! lease, which appears in the lease file; after a reload (SIGHUP) of new hosts files it gets
//! the address its host entry gives and resolves a name from them. The daemon is found again
//! from its pid file by a new value, as after a restart of the service, and stopped by pid.

mod common;

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::dhcp::dhcp_client;
use common::{in_own_netns, require};
use virtplane_network::host::bridge::{BridgeConfig, Netlink};
use virtplane_network::host::dnsmasq::{Dnsmasq, DnsmasqError, DnsmasqFiles};
use virtplane_network::host::leases::{Lease, read_leases};
use virtplane_network::host::process::cmdline;

const BRIDGE: &str = "vpbr0";
const GATEWAY: &str = "192.168.77.1";
const GUEST_MAC: &str = "52:54:00:12:34:56";

/// Guards waits against hangs; not a speed assertion.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// A network's run dir: searchable by dnsmasq once it runs as `nobody`.
struct RunDir {
    dir: tempfile::TempDir,
    files: DnsmasqFiles,
}

impl RunDir {
    fn new() -> Self {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new()
            .prefix("vp-dnsmasq-")
            .tempdir_in("/tmp")
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let files = DnsmasqFiles::in_dir(dir.path(), "vpnet");
        Self { dir, files }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A configuration in libvirt's style for the bridge's subnet.
    fn conf(&self) -> String {
        let hosts = self.path("vpnet.hostsfile");
        let addn = self.path("vpnet.addnhosts");
        std::fs::write(&hosts, "").unwrap();
        std::fs::write(&addn, "").unwrap();
        format!(
            "## test network\nstrict-order\nno-resolv\nexcept-interface=lo\nbind-dynamic\n\
             interface={BRIDGE}\ndhcp-range=192.168.77.2,192.168.77.254,255.255.255.0\n\
             dhcp-no-override\ndhcp-authoritative\ndhcp-lease-max=253\n\
             dhcp-hostsfile={}\naddn-hosts={}\n",
            hosts.display(),
            addn.display()
        )
    }
}

/// The network's bridge with its gateway address, up.
async fn make_bridge() {
    let netlink = Netlink::open().unwrap();
    let bridge = netlink
        .create_bridge(&BridgeConfig {
            name: BRIDGE.into(),
            mac: Some([0x52, 0x54, 0x00, 0x77, 0x77, 0x01]),
            mtu: None,
            stp: false,
            forward_delay_secs: 0,
        })
        .await
        .unwrap();
    netlink
        .add_address(&bridge, GATEWAY.parse().unwrap(), 24)
        .await
        .unwrap();
    netlink.set_up(&bridge).await.unwrap();
}

/// The lease of `mac` at `ip` in the lease file, once dnsmasq has written it.
async fn wait_for_lease(files: &DnsmasqFiles, mac: &str, ip: &str) -> Lease {
    let ip: IpAddr = ip.parse().unwrap();
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        let leases = read_leases(&files.leases).await.unwrap();
        assert!(leases.malformed.is_empty(), "{:?}", leases.malformed);
        if let Some(lease) = leases
            .leases
            .iter()
            .find(|l| l.mac.as_deref() == Some(mac) && l.ip == ip)
        {
            return lease.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no lease of {mac} at {ip} in {:?}",
            std::fs::read_to_string(&files.leases)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The UDP sockets dnsmasq listens on, as `ss -H -lunp` shows them.
fn dnsmasq_sockets() -> String {
    let out = std::process::Command::new("ss")
        .args(["-H", "-lunp"])
        .output()
        .expect("run ss (install iproute2)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|line| line.contains("\"dnsmasq\""))
        .collect::<Vec<_>>()
        .join("\n")
}

fn pid_file(files: &DnsmasqFiles) -> Option<i32> {
    std::fs::read_to_string(&files.pid)
        .ok()
        .and_then(|t| t.trim().parse().ok())
}

#[test]
fn dnsmasq_serves_dhcp_and_dns_and_is_reattached_reloaded_and_stopped() {
    in_own_netns(|| async {
        require("dnsmasq", "dnsmasq-base");
        require("busybox", "busybox");
        make_bridge().await;
        let run_dir = RunDir::new();
        let files = run_dir.files.clone();
        let conf = run_dir.conf();

        let dnsmasq = Dnsmasq::start("vpnet", &files, &conf).await.unwrap();
        let pid = dnsmasq.pid();
        // Serving as soon as the start returns: pid file written, DHCP and DNS bound.
        assert_eq!(pid_file(&files), Some(pid));
        let sockets = dnsmasq_sockets();
        assert!(sockets.contains(":67 "), "DHCP: {sockets}");
        assert!(
            sockets.contains(&format!("{GATEWAY}:53 ")),
            "DNS: {sockets}"
        );
        let args = cmdline(pid).unwrap();
        assert!(args.contains(&"--no-hosts".to_owned()), "{args:?}");
        assert!(
            args.contains(&format!("--conf-file={}", files.conf.display())),
            "{args:?}"
        );
        assert_eq!(std::fs::read_to_string(&files.conf).unwrap(), conf);

        let again = Dnsmasq::start("vpnet", &files, &conf).await.unwrap_err();
        assert!(
            matches!(again, DnsmasqError::AlreadyRunning { pid: p, .. } if p == pid),
            "{again:?}"
        );

        // A guest gets a lease from the range, recorded in the lease file.
        let first = dhcp_client(run_dir.dir.path(), BRIDGE, GATEWAY, GUEST_MAC, None).await;
        let leased = first.lease.clone().unwrap_or_else(|| panic!("{first:?}"));
        assert!(leased.starts_with("192.168.77."), "{first:?}");
        let lease = wait_for_lease(&files, GUEST_MAC, &leased).await;
        assert!(lease.expiry.is_some(), "{lease:?}");
        assert_eq!(lease.client_id.as_deref(), Some("01:52:54:00:12:34:56"));

        // The service restarts: a new value finds the same daemon from its pid file.
        drop(dnsmasq);
        let dnsmasq = Dnsmasq::reattach("vpnet", &files)
            .await
            .unwrap()
            .expect("reattached");
        assert_eq!(dnsmasq.pid(), pid);
        assert!(dnsmasq.is_running());

        // New host entries take effect on SIGHUP, without a restart.
        std::fs::write(
            run_dir.path("vpnet.hostsfile"),
            format!("{GUEST_MAC},192.168.77.50,fixedhost\n"),
        )
        .unwrap();
        std::fs::write(
            run_dir.path("vpnet.addnhosts"),
            "192.168.77.9 static.test\n",
        )
        .unwrap();
        let reads = |log: &str| log.matches("vpnet.addnhosts").count();
        let before = reads(&std::fs::read_to_string(&files.log).unwrap());
        dnsmasq.reload().unwrap();
        // dnsmasq reads the files when its event loop handles the signal, and logs it.
        let deadline = Instant::now() + HANG_GUARD;
        while reads(&std::fs::read_to_string(&files.log).unwrap()) == before {
            assert!(
                Instant::now() < deadline,
                "dnsmasq never re-read its hosts files"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let second = dhcp_client(
            run_dir.dir.path(),
            BRIDGE,
            GATEWAY,
            GUEST_MAC,
            Some("static.test"),
        )
        .await;
        assert_eq!(second.lease.as_deref(), Some("192.168.77.50"), "{second:?}");
        assert!(
            second.output.contains("192.168.77.9"),
            "the name from addn-hosts resolves: {second:?}"
        );
        let lease = wait_for_lease(&files, GUEST_MAC, "192.168.77.50").await;
        assert_eq!(lease.hostname.as_deref(), Some("fixedhost"));
        assert_eq!(dnsmasq.pid(), pid, "reloaded, not restarted");
        assert_eq!(pid_file(&files), Some(pid));

        let log = std::fs::read_to_string(&files.log).unwrap();
        assert!(log.contains("started, version"), "{log}");
        assert!(log.contains("DHCPACK(vpbr0) 192.168.77.50"), "{log}");

        // Stop: the daemon is gone, and its pid file with it; the leases stay.
        dnsmasq.stop().await.unwrap();
        assert!(
            cmdline(pid).is_none_or(|args| !args.iter().any(|a| a.contains("vpnet.conf"))),
            "dnsmasq {pid} is gone"
        );
        assert!(!files.pid.exists());
        assert!(dnsmasq_sockets().is_empty());
        assert!(Dnsmasq::reattach("vpnet", &files).await.unwrap().is_none());
        assert!(files.leases.exists());
    });
}

#[test]
fn a_bad_configuration_fails_in_dnsmasqs_own_words() {
    in_own_netns(|| async {
        require("dnsmasq", "dnsmasq-base");
        let run_dir = RunDir::new();
        let files = &run_dir.files;
        let error = Dnsmasq::start("vpnet", files, "port=0\nno-such-option=1\n")
            .await
            .unwrap_err();
        assert!(matches!(error, DnsmasqError::Start { .. }), "{error:?}");
        assert_eq!(
            error.to_string(),
            format!(
                "dnsmasq failed to start for network 'vpnet' (exit status: 1): bad option at \
                 line 2 of {}",
                files.conf.display()
            )
        );
        assert!(Dnsmasq::reattach("vpnet", files).await.unwrap().is_none());
        let log = std::fs::read_to_string(&files.log).unwrap();
        assert!(
            log.contains("bad option at line 2"),
            "kept in the log: {log}"
        );

        // A port that is taken: dnsmasq's words again.
        let holder = std::net::UdpSocket::bind("127.0.0.1:5353").unwrap();
        let error = Dnsmasq::start(
            "vpnet",
            files,
            "port=5353\nlisten-address=127.0.0.1\nbind-interfaces\nno-resolv\n",
        )
        .await
        .unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains(
                "failed to create listening socket for 127.0.0.1: Address already in use"
            ),
            "{text}"
        );
        drop(holder);

        // Files the service manages cannot be redirected by the configuration.
        let error = Dnsmasq::start("vpnet", files, "pid-file=/tmp/elsewhere.pid\n")
            .await
            .unwrap_err();
        assert!(matches!(error, DnsmasqError::Conf { .. }), "{error:?}");
    });
}

#[test]
fn a_pid_file_naming_another_process_is_not_trusted() {
    in_own_netns(|| async {
        require("dnsmasq", "dnsmasq-base");
        let run_dir = RunDir::new();
        let files = &run_dir.files;

        // A stranger that inherited the pid: not ours, and left alone.
        let mut stranger = tokio::process::Command::new("sleep")
            .arg("60")
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        std::fs::write(&files.pid, format!("{}\n", stranger.id().unwrap())).unwrap();
        assert!(Dnsmasq::reattach("vpnet", files).await.unwrap().is_none());

        // A dead pid: nothing to reattach to either.
        let mut dead = tokio::process::Command::new("true").spawn().unwrap();
        let dead_pid = dead.id().unwrap();
        dead.wait().await.unwrap();
        std::fs::write(&files.pid, format!("{dead_pid}\n")).unwrap();
        assert!(Dnsmasq::reattach("vpnet", files).await.unwrap().is_none());

        // Starting over the stale pid file works and leaves the stranger alone. DNS only
        // (no DHCP), on an address of the namespace's loopback.
        std::fs::write(&files.pid, format!("{}\n", stranger.id().unwrap())).unwrap();
        let conf = "port=5353\nlisten-address=127.0.0.1\nbind-interfaces\nno-resolv\n";
        let dnsmasq = Dnsmasq::start("vpnet", files, conf).await.unwrap();
        assert_ne!(Some(dnsmasq.pid()), stranger.id().map(|p| p as i32));
        dnsmasq.stop().await.unwrap();
        assert!(
            stranger.try_wait().unwrap().is_none(),
            "the stranger still runs"
        );

        // Another network's dnsmasq is not this network's.
        let other = DnsmasqFiles::in_dir(run_dir.dir.path(), "other");
        let running = Dnsmasq::start("other", &other, conf).await.unwrap();
        std::fs::write(&files.pid, format!("{}\n", running.pid())).unwrap();
        assert!(Dnsmasq::reattach("vpnet", files).await.unwrap().is_none());
        running.stop().await.unwrap();
        let _ = stranger.kill().await;
    });
}

#[test]
fn a_dnsmasq_that_ignores_sigterm_is_killed() {
    in_own_netns(|| async {
        let run_dir = RunDir::new();
        let files = &run_dir.files;
        std::fs::write(&files.conf, "").unwrap();
        // An impostor with dnsmasq's name and our --conf-file that ignores SIGTERM: the
        // identity check takes it for ours, so the stop must fall back to SIGKILL.
        let conf_arg = format!("--conf-file={}", files.conf.display());
        let mut impostor = tokio::process::Command::new("bash")
            .args([
                "-c",
                &format!(
                    "exec -a dnsmasq bash -c 'trap \"\" TERM; echo ready; \
                     while :; do sleep 0.2; done' {conf_arg}"
                ),
            ])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let pid = impostor.id().unwrap() as i32;
        {
            use tokio::io::AsyncBufReadExt;
            let mut lines = tokio::io::BufReader::new(impostor.stdout.take().unwrap()).lines();
            let ready = tokio::time::timeout(HANG_GUARD, lines.next_line()).await;
            assert_eq!(ready.unwrap().unwrap().as_deref(), Some("ready"));
        }
        std::fs::write(&files.pid, format!("{pid}\n")).unwrap();
        let dnsmasq = Dnsmasq::reattach("vpnet", files)
            .await
            .unwrap()
            .expect("taken for ours");
        let started = Instant::now();
        dnsmasq
            .stop_within(Duration::from_millis(300))
            .await
            .unwrap();
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "it waited first"
        );
        let status = tokio::time::timeout(HANG_GUARD, impostor.wait())
            .await
            .unwrap()
            .unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
        assert!(!files.pid.exists());
    });
}
