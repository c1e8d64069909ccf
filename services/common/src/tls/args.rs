//! The TLS flags: [`ServerTlsArgs`] for a daemon's TCP listeners (flattened into every
//! daemon's arguments) and [`ClientTlsArgs`] for its connections to other daemons over TCP.

use std::path::PathBuf;

use super::{ClientTls, ServerTls, TlsError};

/// TLS on this daemon's TCP listeners. Unix sockets stay plain.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServerTlsArgs {
    /// PEM certificate (chain, leaf first) this daemon presents on its TCP listeners; with
    /// --tls-key. Unix sockets stay plain.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM bundle of CA certificates: TCP clients must present a certificate signed by one
    /// of them (mutual TLS); others are refused at the handshake.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
}

impl ServerTlsArgs {
    /// Whether TCP listeners serve TLS.
    pub fn enabled(&self) -> bool {
        self.tls_cert.is_some()
    }

    /// Whether TCP clients must present a certificate (mutual TLS).
    pub fn mutual(&self) -> bool {
        self.enabled() && self.tls_client_ca.is_some()
    }

    /// The loaded configuration, or `None` without `--tls-cert`.
    pub fn load(&self) -> Result<Option<ServerTls>, TlsError> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => {
                ServerTls::load(cert, key, self.tls_client_ca.as_deref()).map(Some)
            }
            _ => Ok(None),
        }
    }
}

/// TLS on this daemon's connections to other daemons' TCP addresses (unix sockets stay
/// plain).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClientTlsArgs {
    /// PEM bundle of the CA certificates that sign the services' certificates: connect to
    /// TCP addresses with TLS and verify the server against it.
    #[arg(long, value_name = "FILE")]
    pub client_tls_ca: Option<PathBuf>,
    /// PEM certificate (chain, leaf first) to present to the services (mutual TLS); with
    /// --client-tls-key and --client-tls-ca.
    #[arg(long, value_name = "FILE", requires_all = ["client_tls_key", "client_tls_ca"])]
    pub client_tls_cert: Option<PathBuf>,
    /// PEM private key of --client-tls-cert.
    #[arg(long, value_name = "FILE", requires = "client_tls_cert")]
    pub client_tls_key: Option<PathBuf>,
    /// The name the services' certificates must carry (DNS name or IP address). Default: the
    /// host name of the service's address (a DNS SAN of the certificate), or its IP address
    /// when it is given by IP (then an IP SAN).
    #[arg(long, value_name = "NAME", requires = "client_tls_ca")]
    pub client_tls_server_name: Option<String>,
}

impl ClientTlsArgs {
    /// The loaded configuration, or `None` without `--client-tls-ca` (plain TCP).
    pub fn load(&self) -> Result<Option<ClientTls>, TlsError> {
        let Some(ca) = &self.client_tls_ca else {
            return Ok(None);
        };
        let identity = match (&self.client_tls_cert, &self.client_tls_key) {
            (Some(cert), Some(key)) => Some((cert.as_path(), key.as_path())),
            _ => None,
        };
        ClientTls::load(ca, identity, self.client_tls_server_name.as_deref()).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        server: ServerTlsArgs,
        #[command(flatten)]
        client: ClientTlsArgs,
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("d").chain(args.iter().copied()))
    }

    #[test]
    fn flags_that_need_a_partner_say_so() {
        for lonely in [
            &["--tls-cert", "c.pem"][..],
            &["--tls-key", "k.pem"],
            &["--tls-client-ca", "ca.pem"],
            &["--client-tls-cert", "c.pem", "--client-tls-key", "k.pem"],
            &["--client-tls-key", "k.pem"],
            &["--client-tls-server-name", "node1"],
        ] {
            let error = parse(lonely).unwrap_err();
            assert_eq!(
                error.kind(),
                clap::error::ErrorKind::MissingRequiredArgument,
                "{lonely:?}: {error}"
            );
        }
        let cli = parse(&["--tls-cert", "c", "--tls-key", "k", "--tls-client-ca", "ca"]).unwrap();
        assert!(cli.server.enabled() && cli.server.mutual());
        let cli = parse(&["--tls-cert", "c", "--tls-key", "k"]).unwrap();
        assert!(cli.server.enabled() && !cli.server.mutual());
        let cli = parse(&[]).unwrap();
        assert!(!cli.server.enabled());
        assert!(cli.server.load().unwrap().is_none());
        assert!(cli.client.load().unwrap().is_none());
    }

    #[test]
    fn a_missing_file_is_named_with_its_flag() {
        let cli = parse(&[
            "--tls-cert",
            "/nonexistent/c.pem",
            "--tls-key",
            "/nonexistent/k.pem",
        ])
        .unwrap();
        let error = cli.server.load().unwrap_err().to_string();
        assert!(
            error.starts_with("cannot read --tls-cert file /nonexistent/c.pem: "),
            "{error}"
        );
        let cli = parse(&["--client-tls-ca", "/nonexistent/ca.pem"]).unwrap();
        let error = cli.client.load().unwrap_err().to_string();
        assert!(
            error.starts_with("cannot read --client-tls-ca file /nonexistent/ca.pem: "),
            "{error}"
        );
    }
}
