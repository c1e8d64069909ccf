//! virtplane-domaind: the domain service daemon.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// mimalloc: the HTTP/2 path allocates per frame and per header; measured in bench/ it takes
/// a tenth off the CPU per call compared with the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use virtplane_common::daemon::DaemonArgs;
use virtplane_common::server::{self, ListenAddr};
use virtplane_common::tls::ClientTlsArgs;
use virtplane_domain::api::DomainApi;
use virtplane_domain::api::console::ConsoleApi;
use virtplane_domain::driver::{self, DriverConfig, DriverKind};
use virtplane_domain::network_service::NetworkService;
use virtplane_domain::storage_service::StorageService;
use virtplane_proto::v1::console_service_server::ConsoleServiceServer;
use virtplane_proto::v1::domain_service_server::DomainServiceServer;
use virtplane_proto::v1::domain_stats_service_server::DomainStatsServiceServer;
use virtplane_proto::v1::guest_agent_service_server::GuestAgentServiceServer;
use virtplane_proto::v1::host_service_server::HostServiceServer;
use virtplane_proto::v1::qemu_service_server::QemuServiceServer;

/// Serves virtplane's DomainService and HostService over a driver.
#[derive(Debug, Parser)]
#[command(name = "virtplane-domaind", version)]
struct Args {
    /// Directory for persistent configs (created if missing).
    #[arg(long, default_value = ".virtplane/domain")]
    state_dir: PathBuf,
    /// Which driver runs the domains.
    #[arg(long, value_enum, default_value = "test")]
    driver: DriverKind,
    /// The qemu driver's default emulator (for domains without <emulator>); default: the
    /// first qemu-system-x86_64 on PATH.
    #[arg(long, value_name = "PATH")]
    emulator: Option<PathBuf>,
    /// The qemu driver moves each QEMU into a cgroup of its own below this root (in every
    /// cgroup hierarchy the service is in), so that stopping the service's cgroup (systemd,
    /// a container restart) leaves VMs running. Default: virtplane.vms.
    #[arg(long, value_name = "PATH")]
    vm_cgroup_root: Option<PathBuf>,
    /// Leave QEMU in the service's cgroup (VMs then die when that cgroup is killed).
    #[arg(long, conflicts_with = "vm_cgroup_root")]
    no_vm_cgroups: bool,
    /// The network service (unix:/path/to.sock or host:port) that gives `<interface
    /// type='network'>` its ports and answers `domifaddr` from its DHCP leases. Without it
    /// such interfaces are refused with a message saying so.
    #[arg(long, value_name = "ADDR")]
    network_service: Option<ListenAddr>,
    /// The storage service (unix:/path/to.sock or host:port) that resolves `<disk
    /// type='volume'>` to its volume and keeps a lease on it while the domain runs. Without
    /// it the qemu driver refuses such disks with a message saying so.
    #[arg(long, value_name = "ADDR")]
    storage_service: Option<ListenAddr>,
    /// How long a guest agent call may take before it fails with UNAVAILABLE (libvirt's
    /// guest agent response timeout); a domain's own `guest-agent-timeout` overrides it.
    #[arg(long, value_name = "SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    guest_agent_timeout: u64,
    /// The name this node goes by behind a gateway serving many nodes (`GetNodeInfo`'s
    /// node_name; in Kubernetes, the node's name from the downward API). Default: the host
    /// name.
    #[arg(long, value_name = "NAME", value_parser = parse_node_name)]
    node_name: Option<String>,
    // TLS to the network and storage services when their addresses are TCP.
    #[command(flatten)]
    sibling_tls: ClientTlsArgs,
    #[command(flatten)]
    daemon: DaemonArgs,
}

/// Node names appear in list columns and the gateway's `virtplane-node` header.
fn parse_node_name(text: &str) -> Result<String, String> {
    if virtplane_proto::headers::is_node_name(text) {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "'{text}' is not a node name: use letters, digits, '-', '_' and '.' (at most 253, as a Kubernetes node name)"
        ))
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let daemon = args.daemon.clone();
    daemon.main("virtplane-domaind", run(args))
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let (state_dir, run_dir) = args.daemon.dirs(&args.state_dir)?;
    let listen = args.daemon.listen_addresses(&run_dir, "domain.sock")?;
    let tls = args.daemon.server_tls()?;
    let sibling_tls = args.sibling_tls.load()?;
    let config = DriverConfig {
        state_dir: state_dir.clone(),
        run_dir,
        emulator: args.emulator,
        vm_cgroup_root: (!args.no_vm_cgroups).then_some(args.vm_cgroup_root),
        network_service: (args.network_service)
            .map(|addr| NetworkService::with_tls(addr, sibling_tls.as_ref())),
        storage_service: (args.storage_service)
            .map(|addr| StorageService::with_tls(addr, sibling_tls.as_ref())),
        guest_agent_timeout: Some(std::time::Duration::from_secs(args.guest_agent_timeout)),
    };
    let driver = driver::build(args.driver, &config).await?;
    let versions = driver.versions();
    tracing::info!(driver = versions.driver, state_dir = %state_dir.display(), "domain service starting");
    virtplane_domain::metrics::count_domains_on_scrape(driver.clone());
    let consoles = ConsoleApi::new(driver.clone());
    let mut api = DomainApi::new(driver).with_node_name(args.node_name);
    if let Some(networks) = &config.network_service {
        api = api.with_network_service(networks.clone());
    }
    let (routes, _health) = server::standard_routes(&[
        "virtplane.v1.DomainService",
        "virtplane.v1.HostService",
        "virtplane.v1.ConsoleService",
        "virtplane.v1.DomainStatsService",
        "virtplane.v1.QemuService",
        "virtplane.v1.GuestAgentService",
    ])
    .await?;
    let routes = routes
        .add_service(DomainServiceServer::new(api.clone()))
        .add_service(DomainStatsServiceServer::new(api.clone()))
        .add_service(QemuServiceServer::new(api.clone()))
        .add_service(GuestAgentServiceServer::new(api.clone()))
        .add_service(HostServiceServer::new(api))
        .add_service(ConsoleServiceServer::new(consoles.clone()));
    args.daemon.serve_health_port(&routes).await?;
    // Console streams never end by themselves: end them, or a graceful shutdown waits forever.
    let shutdown = async move {
        server::shutdown_signal().await;
        consoles.shutdown().await;
    };
    server::serve_with_tls(
        &listen,
        tls.as_ref(),
        routes,
        args.daemon.socket_mode,
        shutdown,
    )
    .await?;
    Ok(())
}
