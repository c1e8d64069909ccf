//! Command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
pub use virtplane_common::logging::LogFormat;
use virtplane_common::server::ListenAddr;
use virtplane_common::tls::{ClientTlsArgs, ServerTlsArgs};

use crate::error::Error;
use crate::fleet::spec::{NodeBackendSpec, NodeDnsSpec};

/// virtplane's gateway: authenticates users by bearer token, checks every call against the
/// permissions its proto method declares, audits changes, and forwards calls to the services.
#[derive(Debug, Parser)]
#[command(name = "virtplane-gateway", version, subcommand_negates_reqs = true)]
pub struct Cli {
    /// Where to listen: `unix:/path/to.sock` or `host:port`. Repeatable.
    #[arg(
        long = "listen",
        value_name = "ADDR",
        default_value = "unix:run/gateway.sock"
    )]
    pub listen: Vec<ListenAddr>,

    /// A service's address, `[NODE/]SERVICE=ADDR` (e.g.
    /// `domain=unix:/run/virtplane/domain.sock`, or `node-a/domain=10.0.0.5:7101` for one of
    /// many nodes). Repeatable; SERVICE is the `backend` option of the service's proto;
    /// without NODE/ the service belongs to the node `local`.
    #[arg(long = "backend", value_name = "[NODE/]SERVICE=ADDR")]
    pub backends: Vec<NodeBackendSpec>,

    /// Nodes from DNS, `SERVICE=HOST:PORT` (e.g.
    /// `domain=virtplane-node.virtplane.svc.cluster.local:7101`): every address HOST
    /// resolves to is one node, whose SERVICE listens on PORT. One per service; resolved again
    /// every 15 s. Nodes are named by the host name their domain service reports.
    #[arg(long = "node-dns", value_name = "SERVICE=HOST:PORT")]
    pub node_dns: Vec<NodeDnsSpec>,

    // TLS on the TCP listeners: callers authenticate by token, so --tls-client-ca
    // (requiring client certificates as well) is optional here.
    #[command(flatten)]
    pub tls: ServerTlsArgs,

    // TLS to the services at TCP addresses (mutual TLS with --client-tls-cert).
    #[command(flatten)]
    pub backend_tls: ClientTlsArgs,

    /// The tokens file: one `<user> <role> sha256:<hex>` per line. Reloaded on SIGHUP.
    #[arg(long, value_name = "FILE", required = true)]
    pub tokens: Option<PathBuf>,

    /// Append audit lines (JSON) to this file instead of logging them (target `audit`).
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,

    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(flatten)]
    pub metrics: virtplane_common::metrics::MetricsArgs,

    /// Also serve the standard health service alone, as plain gRPC, on this IP:port: for
    /// probes that cannot do TLS (Kubernetes' gRPC probes). Nothing else answers there.
    #[arg(long, value_name = "IP:PORT")]
    pub health_listen: Option<std::net::SocketAddr>,

    /// Mode of the unix sockets the gateway listens on (octal).
    #[arg(long, value_name = "OCTAL", default_value = "0660", value_parser = parse_mode)]
    pub socket_mode: u32,

    #[command(subcommand)]
    pub command: Option<Command>,
    /// Tokio worker threads (default: half the cores, at least one; see
    /// virtplane_common::runtime)
    #[arg(long, value_name = "N")]
    pub worker_threads: Option<usize>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read a token from standard input and print its `sha256:<hex>` hash for the tokens
    /// file, e.g. `echo "alice admin $(virtplane-gateway hash-token < alice.token)"`.
    HashToken,
}

fn parse_mode(text: &str) -> Result<u32, Error> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    u32::from_str_radix(digits, 8)
        .ok()
        .filter(|mode| *mode <= 0o777)
        .ok_or_else(|| Error::SocketMode(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_command_line() {
        let cli = Cli::try_parse_from([
            "virtplane-gateway",
            "--listen",
            "unix:/run/gw.sock",
            "--listen",
            "127.0.0.1:7443",
            "--backend",
            "domain=unix:/run/domain.sock",
            "--tokens",
            "/etc/virtplane/tokens",
            "--socket-mode",
            "0600",
            "--log-format",
            "json",
        ])
        .unwrap();
        assert_eq!(cli.listen.len(), 2);
        assert_eq!(cli.backends[0].backend.name, "domain");
        assert_eq!(cli.backends[0].node, "local");
        assert_eq!(cli.socket_mode, 0o600);
        assert_eq!(cli.log_format, LogFormat::Json);
        assert!(cli.command.is_none());
    }

    #[test]
    fn tokens_are_required_except_for_hash_token() {
        assert!(Cli::try_parse_from(["virtplane-gateway"]).is_err());
        let cli = Cli::try_parse_from(["virtplane-gateway", "hash-token"]).unwrap();
        assert!(matches!(cli.command, Some(Command::HashToken)));
        let cli = Cli::try_parse_from(["virtplane-gateway", "--tokens", "t"]).unwrap();
        assert_eq!(cli.listen, vec!["unix:run/gateway.sock".parse().unwrap()]);
        assert_eq!(cli.socket_mode, 0o660);
    }

    #[test]
    fn bad_values_are_rejected() {
        for args in [
            &["--tokens", "t", "--socket-mode", "999"][..],
            &["--tokens", "t", "--backend", "domain"][..],
            &["--tokens", "t", "--listen", "nowhere"][..],
        ] {
            let argv = std::iter::once("virtplane-gateway").chain(args.iter().copied());
            assert!(Cli::try_parse_from(argv).is_err(), "{args:?}");
        }
    }
}
