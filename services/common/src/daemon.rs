//! What every virtplane daemon's command line and `main` share: the listen, run-dir, socket
//! and logging options ([`DaemonArgs`], flattened into each daemon's own arguments), the
//! refusal of plain TCP unless asked for, absolute directories, and a `main` that builds the
//! runtime and reports a failure in one line.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::logging::{self, LogFormat};
use crate::server::ListenAddr;
use crate::tls::{ServerTls, ServerTlsArgs, TlsError};

/// The options every daemon takes besides its state dir and driver.
#[derive(Debug, Clone, clap::Args)]
pub struct DaemonArgs {
    /// Where to listen: unix:/path/to.sock, IP:port or host:port (a host name is resolved
    /// once, at start); repeatable. Default: a unix socket in the run dir.
    #[arg(long)]
    pub listen: Vec<ListenAddr>,
    /// Directory for runtime state (default: STATE_DIR/run).
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
    /// Accept a TCP listen address without mutual TLS (plain, or --tls-cert without
    /// --tls-client-ca). The service trusts its callers with everything, so then every peer
    /// that can reach the port gets full access: this must be asked for explicitly.
    #[arg(long)]
    pub insecure_tcp: bool,
    #[command(flatten)]
    pub tls: ServerTlsArgs,
    /// Unix socket permissions (octal).
    #[arg(long, default_value = "600", value_parser = parse_mode)]
    pub socket_mode: u32,
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    #[command(flatten)]
    pub metrics: crate::metrics::MetricsArgs,
    /// Also serve the standard health service alone, as plain gRPC, on this IP:port: for
    /// probes that cannot do TLS (Kubernetes' gRPC probes). Nothing else answers there.
    #[arg(long, value_name = "IP:PORT")]
    pub health_listen: Option<std::net::SocketAddr>,
    /// Tokio worker threads (default: half the cores, at least one).
    #[arg(long, value_name = "N")]
    pub worker_threads: Option<usize>,
}

fn parse_mode(text: &str) -> Result<u32, String> {
    u32::from_str_radix(text, 8).map_err(|_| format!("'{text}' is not an octal mode such as 600"))
}

/// `path` made absolute against the current directory.
pub fn absolute(path: &Path) -> std::io::Result<PathBuf> {
    if path.is_absolute() {
        Ok(path.to_path_buf())
    } else {
        Ok(std::env::current_dir()?.join(path))
    }
}

impl DaemonArgs {
    /// The state dir and run dir, absolute (run dir default: `STATE_DIR/run`).
    pub fn dirs(&self, state_dir: &Path) -> std::io::Result<(PathBuf, PathBuf)> {
        let state_dir = absolute(state_dir)?;
        let run_dir = match &self.run_dir {
            Some(dir) => absolute(dir)?,
            None => state_dir.join("run"),
        };
        Ok((state_dir, run_dir))
    }

    /// Where to listen: the `--listen` addresses, else `unix:RUN_DIR/SOCKET`. TCP without
    /// mutual TLS is refused unless `--insecure-tcp` was given.
    pub fn listen_addresses(
        &self,
        run_dir: &Path,
        socket: &str,
    ) -> Result<Vec<ListenAddr>, String> {
        let listen = if self.listen.is_empty() {
            vec![ListenAddr::Unix(run_dir.join(socket))]
        } else {
            self.listen.clone()
        };
        if let Some(tcp) = listen.iter().find(|a| a.is_tcp())
            && !self.insecure_tcp
            && !self.tls.mutual()
        {
            let why = if self.tls.enabled() {
                "TLS without --tls-client-ca lets every client that completes a handshake call \
                 the service with full access (it trusts its callers). Add --tls-client-ca FILE \
                 for mutual TLS"
            } else {
                "plain TCP gives every peer that reaches it full access (the service trusts its \
                 callers). Use mutual TLS (--tls-cert, --tls-key, --tls-client-ca), a unix socket"
            };
            return Err(format!(
                "refusing to listen on {tcp}: {why}, or pass --insecure-tcp if the port is private"
            ));
        }
        Ok(listen)
    }

    /// Starts the `--health-listen` port, if asked for, serving the health service of
    /// `routes` (the daemon's own, so the statuses are the same).
    pub async fn serve_health_port(
        &self,
        routes: &tonic::service::Routes,
    ) -> Result<(), crate::server::ServeError> {
        match self.health_listen {
            Some(addr) => crate::health_listen::spawn(addr, routes).await,
            None => Ok(()),
        }
    }

    /// The TLS configuration of the TCP listeners (`--tls-cert` …), loaded and checked;
    /// `None` without `--tls-cert`.
    pub fn server_tls(&self) -> Result<Option<ServerTls>, TlsError> {
        self.tls.load()
    }

    /// Runs a daemon's `serve` future on a runtime built from these options, with logging
    /// set up; a failure is printed as `NAME: error` and gives a failing exit code.
    pub fn main<F>(&self, name: &str, serve: F) -> ExitCode
    where
        F: Future<Output = Result<(), Box<dyn std::error::Error>>>,
    {
        logging::init(self.log_format);
        let runtime = match crate::runtime::build(self.worker_threads) {
            Ok(runtime) => runtime,
            Err(error) => {
                eprintln!("{name}: cannot start the runtime: {error}");
                return ExitCode::FAILURE;
            }
        };
        let serve = async {
            crate::metrics::serve_endpoint(&self.metrics).await?;
            serve.await
        };
        match runtime.block_on(serve) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("{name}: {error}");
                ExitCode::FAILURE
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        daemon: DaemonArgs,
    }

    #[test]
    fn tcp_needs_to_be_asked_for() {
        let cli = Cli::parse_from(["d", "--listen", "127.0.0.1:7000"]);
        let error = cli
            .daemon
            .listen_addresses(Path::new("/run/x"), "s.sock")
            .unwrap_err();
        assert!(error.contains("--insecure-tcp"), "{error}");
        let cli = Cli::parse_from(["d", "--listen", "127.0.0.1:7000", "--insecure-tcp"]);
        assert!(
            cli.daemon
                .listen_addresses(Path::new("/run/x"), "s.sock")
                .is_ok()
        );
    }

    #[test]
    fn tcp_with_tls_needs_client_certificates_or_the_opt_in() {
        let tls = ["--tls-cert", "c.pem", "--tls-key", "k.pem"];
        let listen = ["d", "--listen", "127.0.0.1:7000"];
        let run = Path::new("/run/x");
        let cli = Cli::parse_from(listen.iter().chain(&tls));
        let error = cli.daemon.listen_addresses(run, "s.sock").unwrap_err();
        assert!(error.contains("without --tls-client-ca"), "{error}");
        assert!(error.contains("--insecure-tcp"), "{error}");
        let cli = Cli::parse_from(listen.iter().chain(&tls).chain(&["--insecure-tcp"]));
        assert!(cli.daemon.listen_addresses(run, "s.sock").is_ok());
        let cli = Cli::parse_from(
            listen
                .iter()
                .chain(&tls)
                .chain(&["--tls-client-ca", "ca.pem"]),
        );
        assert_eq!(cli.daemon.listen_addresses(run, "s.sock").unwrap().len(), 1);
        // The files are read when the daemon starts, and a missing one is named.
        let error = cli.daemon.server_tls().unwrap_err().to_string();
        assert!(error.contains("--tls-cert file c.pem"), "{error}");
    }

    #[test]
    fn a_host_name_listener_is_tcp_too() {
        let cli = Cli::parse_from(["d", "--listen", "localhost:7000"]);
        let error = cli
            .daemon
            .listen_addresses(Path::new("/run/x"), "s.sock")
            .unwrap_err();
        assert!(
            error.starts_with("refusing to listen on localhost:7000: plain TCP"),
            "{error}"
        );
    }

    #[test]
    fn the_default_socket_is_in_the_run_dir() {
        let cli = Cli::parse_from(["d"]);
        let (state, run) = cli.daemon.dirs(Path::new("/var/lib/x")).unwrap();
        assert_eq!(state, Path::new("/var/lib/x"));
        assert_eq!(run, Path::new("/var/lib/x/run"));
        let listen = cli.daemon.listen_addresses(&run, "storage.sock").unwrap();
        assert_eq!(listen.len(), 1);
        assert!(
            matches!(&listen[0], ListenAddr::Unix(p) if p == Path::new("/var/lib/x/run/storage.sock"))
        );
        let bad = Cli::try_parse_from(["d", "--socket-mode", "9x"]).unwrap_err();
        assert!(bad.to_string().contains("octal"), "{bad}");
    }
}
