//! virtplane-networkd: the network service daemon.

use std::path::PathBuf;

use clap::Parser;
use virtplane_common::logging::{self, LogFormat};
use virtplane_common::server::{self, ListenAddr};
use virtplane_network::api::NetworkApi;
use virtplane_network::driver::{self, DriverConfig, DriverKind};
use virtplane_proto::v1::network_service_server::NetworkServiceServer;

/// mimalloc: the HTTP/2 path allocates per frame and per header; measured in bench/ it takes
/// a tenth off the CPU per call compared with the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Serves virtplane's NetworkService over a driver.
#[derive(Debug, Parser)]
#[command(name = "virtplane-networkd", version)]
struct Args {
    /// Where to listen: unix:/path/to.sock or host:port; repeatable.
    /// Default: unix:RUN_DIR/network.sock.
    #[arg(long)]
    listen: Vec<ListenAddr>,
    /// Directory for persistent configs (created if missing).
    #[arg(long, default_value = ".virtplane/network")]
    state_dir: PathBuf,
    /// Directory for runtime state (default: STATE_DIR/run).
    #[arg(long)]
    run_dir: Option<PathBuf>,
    /// Which driver runs the networks: `test` (simulated, nothing on the host changes) or
    /// `bridge` (Linux bridges, dnsmasq and nftables).
    #[arg(long, value_enum, default_value = "test")]
    driver: DriverKind,
    /// Accept a plain TCP listen address. Without mTLS (not built yet) every peer that can
    /// reach the port gets full access, so this must be asked for explicitly.
    #[arg(long)]
    insecure_tcp: bool,
    /// Unix socket permissions (octal).
    #[arg(long, default_value = "600", value_parser = parse_mode)]
    socket_mode: u32,
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Tokio worker threads (default: half the cores, at least one).
    #[arg(long, value_name = "N")]
    worker_threads: Option<usize>,
}

fn parse_mode(text: &str) -> Result<u32, String> {
    u32::from_str_radix(text, 8).map_err(|_| format!("'{text}' is not an octal mode such as 600"))
}

fn absolute(path: PathBuf) -> std::io::Result<PathBuf> {
    if path.is_absolute() {
        Ok(path)
    } else {
        Ok(std::env::current_dir()?.join(path))
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    logging::init(args.log_format);
    let runtime = match virtplane_common::runtime::build(args.worker_threads) {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("virtplane-networkd: cannot start the runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("virtplane-networkd: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let state_dir = absolute(args.state_dir)?;
    let run_dir = absolute(args.run_dir.unwrap_or_else(|| state_dir.join("run")))?;
    let listen = if args.listen.is_empty() {
        vec![ListenAddr::Unix(run_dir.join("network.sock"))]
    } else {
        args.listen
    };
    if let Some(tcp) = listen.iter().find(|a| matches!(a, ListenAddr::Tcp(_)))
        && !args.insecure_tcp
    {
        return Err(format!(
            "refusing to listen on {tcp}: plain TCP gives every peer that reaches it full access \
             (the service trusts its callers; mTLS is not built yet). Use a unix socket, or pass \
             --insecure-tcp if the port is private"
        )
        .into());
    }
    let config = DriverConfig {
        state_dir: state_dir.clone(),
        run_dir,
    };
    let driver = driver::build(args.driver, &config).await?;
    tracing::info!(driver = driver.name(), state_dir = %state_dir.display(), "network service starting");
    let (routes, _health) = server::standard_routes(&["virtplane.v1.NetworkService"]).await?;
    let routes = routes.add_service(NetworkServiceServer::new(NetworkApi::new(driver)));
    server::serve(&listen, routes, args.socket_mode, server::shutdown_signal()).await?;
    Ok(())
}
