//! `--health-listen HOST:PORT`: the standard health service alone, as plain gRPC on a TCP
//! port of its own, for probes that cannot do TLS or present a client certificate —
//! Kubernetes' native gRPC probes. The node services take TCP only with mutual TLS, so the
//! kubelet could not probe their service port. Only `grpc.health.v1.Health` answers here
//! (with the same statuses as on the service's own listeners); every other path is
//! UNIMPLEMENTED, so the port gives no access to the service itself.

use std::net::SocketAddr;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::Routes;
use tonic::transport::Server;

use crate::server::ServeError;

/// The one path prefix served on the health port.
const HEALTH_PREFIX: &str = "/grpc.health.v1.Health/";

/// Binds `addr` now (so a taken port fails the daemon's start) and serves the health service
/// of `routes` there, in a task of its own, for as long as the process runs.
pub async fn spawn(addr: SocketAddr, routes: &Routes) -> Result<(), ServeError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Listen {
            addr: addr.to_string(),
            source,
        })?;
    let only_health = routes
        .clone()
        .into_axum_router()
        .layer(axum::middleware::from_fn(health_only));
    let routes = Routes::from(only_health).prepare();
    tracing::info!(address = %addr, "serving health checks (plain gRPC, health only)");
    tokio::spawn(async move {
        let served = Server::builder()
            .add_routes(routes)
            .serve_with_incoming(TcpListenerStream::new(listener))
            .await;
        if let Err(error) = served {
            tracing::error!(address = %addr, %error, "the health port stopped");
        }
    });
    Ok(())
}

async fn health_only(request: Request, next: Next) -> Response {
    if request.uri().path().starts_with(HEALTH_PREFIX) {
        return next.run(request).await;
    }
    tonic::Status::unimplemented(format!(
        "only {} is served on the health port",
        HEALTH_PREFIX.trim_matches('/')
    ))
    .into_http::<axum::body::Body>()
    .into_response()
}

#[cfg(test)]
mod tests {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;

    use super::*;
    use crate::client::connect_channel;
    use crate::server::{ListenAddr, standard_routes};

    #[tokio::test]
    async fn health_answers_and_nothing_else_does() {
        let (routes, reporter) = standard_routes(&["virtplane.v1.StorageService"])
            .await
            .unwrap();
        // A free port: bind, note it, release it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        spawn(addr, &routes).await.unwrap();
        let channel = connect_channel(&ListenAddr::Tcp(addr));
        let mut health = HealthClient::new(channel.clone());
        let status = health
            .check(HealthCheckRequest {
                service: "virtplane.v1.StorageService".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32);
        // The reporter's changes show here too.
        reporter
            .set_service_status(
                "virtplane.v1.StorageService",
                tonic_health::ServingStatus::NotServing,
            )
            .await;
        let status = health
            .check(HealthCheckRequest {
                service: "virtplane.v1.StorageService".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::NotServing as i32);
        // Reflection (served on the service's own listeners) is not served here.
        let mut reflection =
            tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(
                channel,
            );
        let request = tonic_reflection::pb::v1::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(
                tonic_reflection::pb::v1::server_reflection_request::MessageRequest::ListServices(
                    String::new(),
                ),
            ),
        };
        let refused = reflection
            .server_reflection_info(tokio_stream::iter(vec![request]))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unimplemented);
        // A taken port fails at once, naming it.
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let err = spawn(taken.local_addr().unwrap(), &routes)
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains(&taken.local_addr().unwrap().to_string()),
            "{err}"
        );
    }
}
