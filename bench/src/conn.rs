//! Connections: one channel (one HTTP/2 connection) per client, with the bearer token
//! attached to every call.

use std::str::FromStr;

use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use virtplane_common::client::connect_channel;
use virtplane_common::server::ListenAddr;
use virtplane_proto::v1::domain_service_client::DomainServiceClient;

/// A domain-service client whose calls carry the bearer token, if any.
pub type Client = DomainServiceClient<InterceptedService<Channel, Auth>>;

/// Adds `authorization: Bearer <token>` to each request.
#[derive(Debug, Clone)]
pub struct Auth(Option<AsciiMetadataValue>);

impl Interceptor for Auth {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            req.metadata_mut().insert("authorization", value.clone());
        }
        Ok(req)
    }
}

/// Where the clients connect and how they authenticate.
#[derive(Debug, Clone)]
pub struct Target {
    addr: ListenAddr,
    auth: Auth,
}

impl Target {
    /// Parses `server` (`unix:/path` or `host:port`) and prepares the token header.
    pub fn new(server: &str, token: Option<&str>) -> Result<Self, String> {
        if server.is_empty() {
            return Err("no server: pass --server unix:/path/to.sock".into());
        }
        let addr = ListenAddr::from_str(server).map_err(|e| e.to_string())?;
        let header = match token.filter(|t| !t.is_empty()) {
            Some(t) => Some(
                MetadataValue::try_from(format!("Bearer {t}"))
                    .map_err(|_| "the token must be printable ASCII".to_owned())?,
            ),
            None => None,
        };
        Ok(Self {
            addr,
            auth: Auth(header),
        })
    }

    /// A new client on a new connection (connected lazily, on its first call).
    pub fn client(&self) -> Client {
        DomainServiceClient::with_interceptor(connect_channel(&self.addr), self.auth.clone())
            .max_decoding_message_size(64 * 1024 * 1024)
    }
}
