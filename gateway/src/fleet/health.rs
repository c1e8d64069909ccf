//! The gateway's health per proto service, over every node: a service is SERVING while at
//! least one node's daemon serving it answers its health check (calls for objects on other
//! nodes fail on their own, naming the node). Each node's changes are logged.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use tonic_health::ServingStatus;
use tonic_health::pb::health_check_response::ServingStatus as WireStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::server::HealthReporter;
use virtplane_proto::acl::MethodTable;

use super::Fleet;
use crate::backends::{Backend, PROBE_INTERVAL, PROBE_TIMEOUT};

/// Probes every node's daemons every [`PROBE_INTERVAL`] and keeps the gateway's health status
/// of each proto service up to date. Services whose daemon no node has are NOT_SERVING.
pub fn spawn(fleet: Arc<Fleet>, table: &MethodTable, reporter: HealthReporter) {
    let mut services: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for method in table.iter() {
        services
            .entry(method.backend.clone())
            .or_default()
            .insert(method.service.clone());
    }
    tokio::spawn(async move {
        let mut last_node: HashMap<(String, String), bool> = HashMap::new();
        let mut last_service: HashMap<String, bool> = HashMap::new();
        let mut ticker = tokio::time::interval(PROBE_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let mut probes = tokio::task::JoinSet::new();
            for node in fleet.nodes() {
                for daemon in services.keys() {
                    if let Some(backend) = node.backends.get(daemon).cloned() {
                        let node = node.name.clone();
                        probes.spawn(async move {
                            let (serving, why) = probe(&backend).await;
                            (node, backend, serving, why)
                        });
                    }
                }
            }
            let mut serving_daemons: BTreeSet<String> = BTreeSet::new();
            while let Some(Ok((node, backend, serving, why))) = probes.join_next().await {
                if serving {
                    serving_daemons.insert(backend.name.clone());
                }
                let key = (node.clone(), backend.name.clone());
                if last_node.insert(key, serving) != Some(serving) {
                    if serving {
                        tracing::info!(%node, backend = %backend.name, addr = %backend.addr, "backend is serving");
                    } else {
                        tracing::warn!(%node, backend = %backend.name, addr = %backend.addr, "backend is not serving: {why}");
                    }
                }
            }
            for (daemon, names) in &services {
                let serving = serving_daemons.contains(daemon);
                if last_service.insert(daemon.clone(), serving) != Some(serving) {
                    let status = if serving {
                        ServingStatus::Serving
                    } else {
                        ServingStatus::NotServing
                    };
                    for service in names {
                        reporter.set_service_status(service, status).await;
                    }
                }
            }
        }
    });
}

async fn probe(backend: &Backend) -> (bool, String) {
    let mut client = HealthClient::new(backend.channel.clone());
    let mut request = tonic::Request::new(tonic_health::pb::HealthCheckRequest::default());
    request.set_timeout(PROBE_TIMEOUT);
    match tokio::time::timeout(PROBE_TIMEOUT, client.check(request)).await {
        Ok(Ok(response)) => {
            let status = response.into_inner().status;
            (
                status == WireStatus::Serving as i32,
                format!("health status {status}"),
            )
        }
        Ok(Err(status)) => (false, status.message().to_owned()),
        Err(_) => (false, format!("no health answer within {PROBE_TIMEOUT:?}")),
    }
}
