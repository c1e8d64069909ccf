//! virtplane's gateway: the only door for users.
//!
//! - [`tokens`]: the tokens file (hashes only), reloaded on SIGHUP.
//! - [`roles`]: role → permission set.
//! - [`authz`]: the per-call decision from the proto's declared permissions.
//! - [`proxy`]: the tower service that authenticates, decides, rewrites identity headers and
//!   forwards to the owning service.
//! - [`audit`]: one JSON line per call that changes something.
//! - [`backends`]: the connections to one node's services.
//! - [`fleet`]: many nodes: routing by object owner, merged lists, placement, discovery.

pub mod audit;
pub mod authz;
pub mod backends;
pub mod config;
pub mod error;
pub mod fleet;
pub mod proxy;
pub mod roles;
pub mod tokens;

use std::sync::Arc;

use tonic::service::Routes;
use virtplane_common::server::standard_routes;
use virtplane_proto::acl::MethodTable;

use crate::audit::AuditSink;
use crate::config::Cli;
use crate::error::Error;
use crate::fleet::Fleet;
use crate::proxy::{Proxy, Shared};
use crate::tokens::TokenStore;

/// Builds everything from the command line and serves until SIGTERM/SIGINT.
pub async fn run(cli: Cli) -> Result<(), Error> {
    virtplane_common::metrics::serve_endpoint(&cli.metrics).await?;
    let table = Arc::new(MethodTable::load()?);
    let tokens_path = cli.tokens.clone().unwrap_or_default();
    let tokens = Arc::new(TokenStore::open(&tokens_path, table.clone())?);
    tokens::reload_on_sighup(tokens.clone());
    let audit = Arc::new(AuditSink::open(cli.audit_log.as_deref())?);
    let server_tls = cli.tls.load()?;
    let backend_tls = cli.backend_tls.load()?;
    let fleet = Arc::new(Fleet::new(
        &cli.backends,
        cli.node_dns.clone(),
        backend_tls.as_ref(),
    ));
    fleet::discovery::spawn(fleet.clone()).await;
    let (routes, reporter) = standard_routes(&[]).await?;
    fleet::health::spawn(fleet.clone(), &table, reporter);
    if let Some(addr) = cli.health_listen {
        // Before the proxy joins the routes: the health port answers health only.
        virtplane_common::health_listen::spawn(addr, &routes).await?;
    }
    let proxy = Proxy::new(Shared {
        table,
        tokens,
        fleet,
        audit,
    });
    let routes = Routes::from(routes.into_axum_router().fallback_service(proxy)).prepare();
    for addr in &cli.listen {
        if addr.is_tcp() && server_tls.is_none() {
            tracing::warn!(
                address = %addr,
                "listening on plain TCP: bearer tokens cross the network unencrypted; \
                 keep it on loopback or a private network, or give --tls-cert and --tls-key"
            );
        }
    }
    virtplane_common::server::serve_with_tls(
        &cli.listen,
        server_tls.as_ref(),
        routes,
        cli.socket_mode,
        virtplane_common::server::shutdown_signal(),
    )
    .await?;
    Ok(())
}

/// `virtplane-gateway hash-token`: the hash of the token on standard input.
pub fn hash_token_from(mut input: impl std::io::Read) -> Result<String, Error> {
    let mut text = String::new();
    input.read_to_string(&mut text).map_err(Error::Stdin)?;
    let token = text.trim();
    if token.is_empty() {
        return Err(Error::EmptyToken);
    }
    Ok(tokens::hash_token(token))
}
