//! Many nodes behind one gateway (issue 7): two complete node service sets — domain (qemu
//! driver), network (bridge driver) and storage (dir driver) — each in a network namespace
//! and state directory of its own, and one gateway in front of both.
//!
//! Checked through virtctl, as an operator would: definitions land on the node named or
//! picked, lists show both nodes' objects with their node, calls follow the object to its
//! node, names stay unique across nodes, and a node that stops leaves the other fully usable
//! while its own objects show as unreachable — and come back when it does.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};
use virtplane_e2e::netns::NetNs;
use virtplane_e2e::{ADMIN_TOKEN, VIEWER_TOKEN, binary, kill_vms, qemu_pids_in};

/// One node: its three daemons in their own network namespace and directory.
struct NodeSet {
    name: &'static str,
    dir: tempfile::TempDir,
    netns: NetNs,
    daemons: Vec<Child>,
}

impl NodeSet {
    fn start(name: &'static str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(&format!("vp-{name}-"))
            .tempdir_in("/tmp")
            .expect("temp dir");
        let mut node = Self {
            name,
            dir,
            netns: NetNs::create(),
            daemons: Vec::new(),
        };
        node.start_daemons();
        node
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn sock(&self, service: &str) -> PathBuf {
        self.path(&format!("run/{service}.sock"))
    }

    fn start_daemons(&mut self) {
        let domain = self.sock("domain").display().to_string();
        let network = self.sock("network").display().to_string();
        let storage = self.sock("storage").display().to_string();
        let daemons: [(&str, Vec<String>); 3] = [
            (
                "virtplane-networkd",
                vec!["--driver".into(), "bridge".into()],
            ),
            ("virtplane-storaged", vec!["--driver".into(), "dir".into()]),
            (
                "virtplane-domaind",
                vec![
                    "--driver".into(),
                    "qemu".into(),
                    "--node-name".into(),
                    self.name.into(),
                    "--network-service".into(),
                    format!("unix:{network}"),
                    "--storage-service".into(),
                    format!("unix:{storage}"),
                ],
            ),
        ];
        for (binary_name, args) in daemons {
            let service = binary_name
                .trim_start_matches("virtplane-")
                .trim_end_matches('d');
            let sock = match service {
                "domain" => &domain,
                "network" => &network,
                _ => &storage,
            };
            let _ = std::fs::remove_file(sock);
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.path(&format!("{service}.log")))
                .expect("log file");
            let child = Command::new("ip")
                .args(["netns", "exec", self.netns.name()])
                .arg(binary(binary_name))
                .args(&args)
                .arg("--state-dir")
                .arg(self.path(service))
                .arg("--run-dir")
                .arg(self.path(&format!("run/{service}")))
                .arg("--listen")
                .arg(format!("unix:{sock}"))
                .stdout(Stdio::from(log.try_clone().expect("log")))
                .stderr(Stdio::from(log))
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {binary_name}: {e}"));
            self.daemons.push(child);
            wait_healthy(Path::new(sock), &format!("{} {binary_name}", self.name));
        }
    }

    /// SIGKILLs the node's daemons, as a crashed or powered-off node would look; its VMs
    /// keep running, as they do across a service restart.
    fn stop_daemons(&mut self) {
        for mut child in self.daemons.drain(..) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The gateway's `--backend NODE/SERVICE=ADDR` flags for this node.
    fn backend_flags(&self) -> Vec<String> {
        ["domain", "network", "storage"]
            .iter()
            .flat_map(|service| {
                [
                    "--backend".to_owned(),
                    format!(
                        "{}/{service}=unix:{}",
                        self.name,
                        self.sock(service).display()
                    ),
                ]
            })
            .collect()
    }

    /// Domain names the node's own domain service has, asked directly (not through the
    /// gateway).
    fn domains_here(&self) -> Vec<String> {
        let out = virtctl(&self.sock("domain"), "", &["list", "--all", "--name"]);
        assert!(
            out.status.success(),
            "direct list on {}: {out:?}",
            self.name
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }

    fn direct_state(&self, domain: &str) -> String {
        let out = virtctl(&self.sock("domain"), "", &["domstate", domain]);
        assert!(
            out.status.success(),
            "direct domstate on {}: {out:?}",
            self.name
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for NodeSet {
    fn drop(&mut self) {
        self.stop_daemons();
        // The VMs outlive the daemons by design; the test's must not outlive the test.
        kill_vms(&qemu_pids_in(&self.path("run/domain")));
    }
}

/// The gateway in front of both nodes.
struct Gateway {
    dir: tempfile::TempDir,
    child: Child,
}

impl Gateway {
    fn start(nodes: &[&NodeSet]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("vp-gw-")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let tokens: String = [
            ("admin", "admin", ADMIN_TOKEN),
            ("viewer", "viewer", VIEWER_TOKEN),
        ]
        .iter()
        .map(|(user, role, token)| {
            format!(
                "{user} {role} sha256:{}\n",
                hex::encode(Sha256::digest(token))
            )
        })
        .collect();
        std::fs::write(dir.path().join("tokens"), tokens).expect("tokens");
        let log = std::fs::File::create(dir.path().join("gateway.log")).expect("log");
        let sock = dir.path().join("gateway.sock");
        let child = Command::new(binary("virtplane-gateway"))
            .arg("--listen")
            .arg(format!("unix:{}", sock.display()))
            .arg("--tokens")
            .arg(dir.path().join("tokens"))
            .arg("--audit-log")
            .arg(dir.path().join("audit.log"))
            .args(nodes.iter().flat_map(|n| n.backend_flags()))
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn virtplane-gateway");
        wait_healthy(&sock, "gateway");
        Self { dir, child }
    }

    fn sock(&self) -> PathBuf {
        self.dir.path().join("gateway.sock")
    }

    fn run(&self, args: &[&str]) -> Output {
        virtctl(&self.sock(), ADMIN_TOKEN, args)
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "virtctl {args:?} failed:\nstdout: {}\nstderr: {}\ngateway log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.path().join("gateway.log")).unwrap_or_default()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "virtctl {args:?} unexpectedly succeeded:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    fn file(&self, name: &str, contents: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).expect("write file");
        path.display().to_string()
    }

    /// `list --all -o json`: name → (node, state, node_unreachable).
    fn domains(&self) -> Vec<(String, String, String, bool)> {
        let json: Value =
            serde_json::from_str(&self.ok(&["list", "--all", "-o", "json"])).expect("list -o json");
        json.as_array()
            .expect("a list")
            .iter()
            .map(|d| {
                (
                    d["name"].as_str().unwrap_or_default().to_owned(),
                    d["node"].as_str().unwrap_or_default().to_owned(),
                    d["state"].as_str().unwrap_or_default().to_owned(),
                    d["node_unreachable"].as_bool().unwrap_or(false),
                )
            })
            .collect()
    }

    fn node_of(&self, domain: &str) -> String {
        self.domains()
            .into_iter()
            .find(|d| d.0 == domain)
            .unwrap_or_else(|| panic!("{domain} not listed"))
            .1
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `virtctl --server unix:SOCK --token TOKEN ARGS…`, every call bounded (30 s unless ARGS
/// say otherwise), so a hung server fails the test instead of hanging it.
fn virtctl(sock: &Path, token: &str, args: &[&str]) -> Output {
    let bounded = if args.contains(&"--timeout") {
        &[][..]
    } else {
        &["--timeout", "30"][..]
    };
    Command::new(binary("virtctl"))
        .env_remove("VIRTPLANE_SERVER")
        .env_remove("VIRTPLANE_TOKEN")
        .env_remove("VIRTPLANE_NODE")
        .env("VIRTCTL_CONFIG", "/nonexistent/virtctl.yaml")
        .arg("--server")
        .arg(format!("unix:{}", sock.display()))
        .args(["--token", token])
        .args(bounded)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run virtctl")
}

fn wait_healthy(sock: &Path, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !virtctl(sock, "", &["--timeout", "2", "health"])
        .status
        .success()
    {
        assert!(Instant::now() < deadline, "{what} did not become healthy");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn vm_xml(name: &str, memory_mib: u32) -> String {
    format!(
        "<domain type='qemu'><name>{name}</name><memory unit='MiB'>{memory_mib}</memory>\
         <vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os>\
         <devices><memballoon model='none'/></devices></domain>"
    )
}

const NETWORK_XML: &str = "<network><name>fleetnet</name><bridge name='vpfleet0'/>\
    <ip address='192.168.210.1' netmask='255.255.255.0'/></network>";

#[test]
fn two_nodes_behind_one_gateway() {
    let mut alpha = NodeSet::start("alpha");
    let mut beta = NodeSet::start("beta");
    let gateway = Gateway::start(&[&alpha, &beta]);

    // Define on a named node each.
    let a_xml = gateway.file("vm-a.xml", &vm_xml("vm-a", 64));
    let b_xml = gateway.file("vm-b.xml", &vm_xml("vm-b", 64));
    gateway.ok(&["--node", "alpha", "define", &a_xml]);
    gateway.ok(&["--node", "beta", "define", &b_xml]);
    assert_eq!(alpha.domains_here(), ["vm-a"]);
    assert_eq!(beta.domains_here(), ["vm-b"]);

    // The list shows both, each with its node (table and JSON).
    let table = gateway.ok(&["list", "--all"]);
    let header = table.lines().next().unwrap_or_default();
    assert!(header.contains("Node"), "no Node column:\n{table}");
    for (domain, node) in [("vm-a", "alpha"), ("vm-b", "beta")] {
        assert!(
            table
                .lines()
                .any(|l| l.contains(domain) && l.contains(node) && l.contains("shut off")),
            "{domain} on {node} missing:\n{table}"
        );
    }
    assert_eq!(gateway.node_of("vm-a"), "alpha");
    assert_eq!(gateway.node_of("vm-b"), "beta");

    // Calls follow the object to its node, without --node.
    gateway.ok(&["start", "vm-b"]);
    assert_eq!(beta.direct_state("vm-b"), "running");
    gateway.ok(&["start", "vm-a"]);
    assert_eq!(alpha.direct_state("vm-a"), "running");
    assert!(gateway.ok(&["dominfo", "vm-b"]).contains("running"));
    assert!(
        gateway
            .fails(&["dominfo", "vm-nowhere"])
            .contains("vm-nowhere"),
        "an unknown domain is NOT_FOUND in the service's words"
    );

    // A network on alpha, a pool and a volume on beta: routed by name too.
    let net = gateway.file("net.xml", NETWORK_XML);
    gateway.ok(&["--node", "alpha", "net-define", &net]);
    gateway.ok(&["net-start", "fleetnet"]);
    assert!(
        alpha.netns.link("vpfleet0").is_some(),
        "the bridge is in alpha's namespace"
    );
    assert!(beta.netns.link("vpfleet0").is_none());
    let images = beta.path("images").display().to_string();
    gateway.ok(&[
        "--node",
        "beta",
        "pool-define-as",
        "images",
        "dir",
        "--target",
        &images,
    ]);
    gateway.ok(&["pool-build", "images"]);
    gateway.ok(&["pool-start", "images"]);
    gateway.ok(&[
        "vol-create-as",
        "images",
        "disk.qcow2",
        "16M",
        "--format",
        "qcow2",
    ]);
    assert!(
        beta.path("images/disk.qcow2").exists(),
        "the volume was made on beta"
    );
    let nets = gateway.ok(&["net-list", "--all"]);
    assert!(
        nets.lines()
            .any(|l| l.contains("fleetnet") && l.contains("alpha")),
        "{nets}"
    );
    let pools = gateway.ok(&["pool-list", "--all"]);
    assert!(
        pools
            .lines()
            .any(|l| l.contains("images") && l.contains("beta")),
        "{pools}"
    );

    // Names are unique across nodes: beta's name cannot be defined on alpha.
    let refused = gateway.fails(&["--node", "alpha", "define", &b_xml]);
    assert!(
        refused.contains("vm-b") && refused.contains("beta"),
        "{refused}"
    );
    assert_eq!(alpha.domains_here(), ["vm-a"]);
    // Redefining an existing name (same UUID, as libvirt wants) without --node updates it
    // where it is.
    let info: Value =
        serde_json::from_str(&gateway.ok(&["dominfo", "vm-b", "-o", "json"])).expect("json");
    let uuid = info["uuid"].as_str().expect("a uuid").to_owned();
    let b_bigger = vm_xml("vm-b", 96).replace(
        "<name>vm-b</name>",
        &format!("<name>vm-b</name><uuid>{uuid}</uuid>"),
    );
    let b_bigger = gateway.file("vm-b2.xml", &b_bigger);
    gateway.ok(&["define", &b_bigger]);
    assert_eq!(alpha.domains_here(), ["vm-a"]);
    assert!(
        gateway
            .ok(&["dumpxml", "--inactive", "vm-b"])
            .contains("98304"),
        "the update reached beta's config"
    );

    // A new name without --node goes to the node with the most free memory: whichever it is,
    // the list names it and that node has it.
    let c_xml = gateway.file("vm-c.xml", &vm_xml("vm-c", 64));
    gateway.ok(&["define", &c_xml]);
    let placed = gateway.node_of("vm-c");
    let holder = if placed == "alpha" { &alpha } else { &beta };
    assert_eq!(placed, holder.name, "placed on a known node");
    assert!(holder.domains_here().contains(&"vm-c".to_owned()));
    gateway.ok(&["undefine", "vm-c"]);
    // Gone, the name is free again, on the other node too (no stale owner refuses it).
    let other = if placed == "alpha" { "beta" } else { "alpha" };
    gateway.ok(&["--node", other, "define", &c_xml]);
    assert_eq!(gateway.node_of("vm-c"), other);
    gateway.ok(&["undefine", "vm-c"]);

    // A name two nodes have (made behind the gateway's back): once the gateway sees it (a
    // list, or a lookup), calls must name the node.
    let out = virtctl(&alpha.sock("domain"), "", &["define", &b_xml]);
    assert!(out.status.success(), "direct define on alpha: {out:?}");
    let both: Vec<String> = gateway
        .domains()
        .into_iter()
        .filter(|d| d.0 == "vm-b")
        .map(|d| d.1)
        .collect();
    assert_eq!(both, ["alpha", "beta"], "listed on both nodes");
    let refused = gateway.fails(&["dominfo", "vm-b"]);
    assert!(
        refused.contains("alpha") && refused.contains("beta") && refused.contains("--node"),
        "{refused}"
    );
    let out = virtctl(&alpha.sock("domain"), "", &["undefine", "vm-b"]);
    assert!(out.status.success(), "direct undefine on alpha: {out:?}");
    assert!(gateway.ok(&["dominfo", "vm-b"]).contains("running"));

    // Permissions hold per call whatever the node: a viewer lists both, starts nothing.
    let viewed = virtctl(&gateway.sock(), VIEWER_TOKEN, &["list", "--all", "--name"]);
    let names = String::from_utf8_lossy(&viewed.stdout);
    assert!(names.contains("vm-a") && names.contains("vm-b"), "{names}");
    let denied = virtctl(&gateway.sock(), VIEWER_TOKEN, &["destroy", "vm-b"]);
    assert!(!denied.status.success());
    assert!(String::from_utf8_lossy(&denied.stderr).contains("domain:stop"));
    assert_eq!(beta.direct_state("vm-b"), "running");

    // Per-node calls need a node.
    let refused = gateway.fails(&["nodeinfo"]);
    assert!(refused.contains("--node"), "{refused}");
    assert!(gateway.ok(&["--node", "beta", "nodeinfo"]).contains("CPU"));
    let refused = gateway.fails(&["--node", "gamma", "nodeinfo"]);
    assert!(
        refused.contains("gamma") && refused.contains("alpha"),
        "{refused}"
    );

    // Beta goes down: its objects show as unreachable, alpha stays fully usable.
    beta.stop_daemons();
    let rows = gateway.domains();
    let b_row = rows
        .iter()
        .find(|d| d.0 == "vm-b")
        .expect("vm-b still listed");
    assert_eq!(b_row.1, "beta");
    assert!(b_row.3, "vm-b marked unreachable: {rows:?}");
    let a_row = rows.iter().find(|d| d.0 == "vm-a").expect("vm-a listed");
    assert!(!a_row.3 && a_row.2 == "running", "{rows:?}");
    let listed = gateway.run(&["list", "--all"]);
    let table = String::from_utf8_lossy(&listed.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.contains("vm-b") && l.contains("unreachable")),
        "{table}"
    );
    let warning = String::from_utf8_lossy(&listed.stderr);
    assert!(
        warning.contains("beta") && warning.contains("did not answer"),
        "virtctl warns of the silent node: {warning}"
    );
    let refused = gateway.fails(&["dominfo", "vm-b"]);
    assert!(refused.contains("beta"), "names the node: {refused}");
    gateway.ok(&["suspend", "vm-a"]);
    gateway.ok(&["resume", "vm-a"]);
    assert!(gateway.ok(&["dominfo", "vm-a"]).contains("running"));
    let d_xml = gateway.file("vm-d.xml", &vm_xml("vm-d", 64));
    gateway.ok(&["define", &d_xml]);
    assert_eq!(gateway.node_of("vm-d"), "alpha", "only alpha can take it");
    gateway.ok(&["undefine", "vm-d"]);
    let nets = gateway.ok(&["net-list", "--all"]);
    assert!(nets.contains("fleetnet"), "{nets}");
    let pools = gateway.ok(&["pool-list", "--all"]);
    assert!(
        pools
            .lines()
            .any(|l| l.contains("images") && l.contains("unreachable")),
        "{pools}"
    );

    // Beta comes back: its VM ran on, and is reachable again.
    beta.start_daemons();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = gateway.domains();
        if rows
            .iter()
            .any(|d| d.0 == "vm-b" && !d.3 && d.2 == "running")
        {
            break;
        }
        assert!(Instant::now() < deadline, "vm-b not back: {rows:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    gateway.ok(&["destroy", "vm-b"]);
    gateway.ok(&["destroy", "vm-a"]);
    gateway.ok(&["net-destroy", "fleetnet"]);
    gateway.ok(&["vol-delete", "--pool", "images", "disk.qcow2"]);
    gateway.ok(&["pool-destroy", "images"]);
    alpha.stop_daemons();
}

/// `/etc/netns/NAME/hosts`, which `ip netns exec NAME` mounts over /etc/hosts: the test's own
/// DNS for the gateway's namespace. Removed when dropped.
struct NetnsHosts(PathBuf);

impl NetnsHosts {
    fn write(netns: &NetNs, lines: &str) -> Self {
        let dir = PathBuf::from("/etc/netns").join(netns.name());
        std::fs::create_dir_all(&dir).expect("mkdir /etc/netns/NAME");
        std::fs::write(dir.join("hosts"), lines).expect("write hosts");
        Self(dir)
    }
}

impl Drop for NetnsHosts {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child killed (by pid) when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The domain service (test driver) of node `name` in `netns`, on TCP `ip:7101` (plain:
/// the port is private to the test's namespaces) and on a unix socket for the test's own
/// health wait.
fn domaind_on_tcp(netns: &NetNs, dir: &Path, name: &str, ip: &str) -> Running {
    let sock = dir.join(format!("{name}.sock"));
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).expect("log");
    let child = Command::new("ip")
        .args(["netns", "exec", netns.name()])
        .arg(binary("virtplane-domaind"))
        .args(["--driver", "test", "--node-name", name, "--insecure-tcp"])
        .arg("--state-dir")
        .arg(dir.join(name))
        .arg("--listen")
        .arg(format!("{ip}:7101"))
        .arg("--listen")
        .arg(format!("unix:{}", sock.display()))
        .stdout(Stdio::from(log.try_clone().expect("log")))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("spawn virtplane-domaind");
    let running = Running(child);
    wait_healthy(&sock, name);
    running
}

/// Nodes found through DNS, as in Kubernetes behind a headless Service: one name resolving to
/// each node's address. The gateway runs in a namespace of its own whose /etc/hosts gives
/// `vp-nodes` two addresses, one per node namespace (veth pairs), and names each node by what
/// its domain service reports (`--node-name`).
#[test]
fn nodes_found_through_dns() {
    let dir = tempfile::Builder::new()
        .prefix("vp-dns-")
        .tempdir_in("/tmp")
        .expect("temp dir");
    let (gw_ns, alpha_ns, beta_ns) = (NetNs::create(), NetNs::create(), NetNs::create());
    for (ns, gw_ip, node_ip, link) in [
        (&alpha_ns, "10.77.1.1/24", "10.77.1.2/24", "to-alpha"),
        (&beta_ns, "10.77.2.1/24", "10.77.2.2/24", "to-beta"),
    ] {
        gw_ns.ip(&[
            "link",
            "add",
            link,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            ns.name(),
        ]);
        gw_ns.ip(&["addr", "add", gw_ip, "dev", link]);
        gw_ns.ip(&["link", "set", link, "up"]);
        ns.ip(&["addr", "add", node_ip, "dev", "eth0"]);
        ns.ip(&["link", "set", "eth0", "up"]);
    }
    let _hosts = NetnsHosts::write(
        &gw_ns,
        "127.0.0.1 localhost\n10.77.1.2 vp-nodes\n10.77.2.2 vp-nodes\n",
    );
    let _alpha = domaind_on_tcp(&alpha_ns, dir.path(), "alpha", "10.77.1.2");
    let mut beta = Some(domaind_on_tcp(&beta_ns, dir.path(), "beta", "10.77.2.2"));

    let tokens = format!(
        "admin admin sha256:{}\n",
        hex::encode(Sha256::digest(ADMIN_TOKEN))
    );
    std::fs::write(dir.path().join("tokens"), tokens).expect("tokens");
    let sock = dir.path().join("gateway.sock");
    let log = std::fs::File::create(dir.path().join("gateway.log")).expect("log");
    let _gateway = Running(
        Command::new("ip")
            .args(["netns", "exec", gw_ns.name()])
            .arg(binary("virtplane-gateway"))
            .args(["--node-dns", "domain=vp-nodes:7101", "--tokens"])
            .arg(dir.path().join("tokens"))
            .arg("--listen")
            .arg(format!("unix:{}", sock.display()))
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn virtplane-gateway"),
    );
    wait_healthy(&sock, "gateway");
    let run = |args: &[&str]| virtctl(&sock, ADMIN_TOKEN, args);
    let ok = |args: &[&str]| {
        let out = run(args);
        assert!(
            out.status.success(),
            "virtctl {args:?}: {}\ngateway log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(dir.path().join("gateway.log")).unwrap_or_default()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };

    // Both nodes were found, under their own names.
    let xml = dir.path().join("d.xml");
    for (node, domain) in [("alpha", "on-alpha"), ("beta", "on-beta")] {
        std::fs::write(&xml, virtplane_e2e::domain_xml(domain)).expect("xml");
        ok(&["--node", node, "define", &xml.display().to_string()]);
    }
    let list = ok(&["list", "--all"]);
    for (node, domain) in [("alpha", "on-alpha"), ("beta", "on-beta")] {
        assert!(
            list.lines().any(|l| l.contains(domain) && l.contains(node)),
            "{domain} on {node}:\n{list}"
        );
    }
    ok(&["start", "on-beta"]);
    assert!(ok(&["--node", "beta", "nodeinfo"]).contains("CPU"));

    // Beta's service stops; DNS still names it, so its objects show as unreachable.
    beta.take();
    let out = run(&["list", "--all"]);
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(
        list.lines()
            .any(|l| l.contains("on-beta") && l.contains("unreachable")),
        "{list}"
    );
    assert!(
        list.lines()
            .any(|l| l.contains("on-alpha") && l.contains("shut off")),
        "{list}"
    );
    ok(&["start", "on-alpha"]);
}

/// The one-host gateway (its backends belong to the node `local`) takes `--node local` and
/// refuses any other node instead of running the call on the one it has.
#[test]
fn a_one_host_gateway_refuses_other_nodes() {
    let stack = virtplane_e2e::Stack::start();
    assert!(stack.ok(&["--node", "local", "nodeinfo"]).contains("CPU"));
    let refused = stack.fails(Some(ADMIN_TOKEN), &["--node", "beta", "destroy", "test"]);
    assert!(
        refused.contains("beta") && refused.contains("local"),
        "{refused}"
    );
    assert!(stack.ok(&["domstate", "test"]).contains("running"));
}
