//! Restart: define 200 domains, kill -9 the domain service, restart it: all 200 are there,
//! intact, and the running ones are still running.

use virtplane_common::client::connect_channel;
use virtplane_common::server::ListenAddr;
use virtplane_e2e::{Stack, domain_xml};
use virtplane_proto::v1 as pb;
use virtplane_proto::v1::domain_service_client::DomainServiceClient;

async fn all_xml(
    client: &mut DomainServiceClient<tonic::transport::Channel>,
) -> Vec<(String, String, i32)> {
    let list = client
        .list(pb::ListDomainsRequest::default())
        .await
        .expect("list")
        .into_inner();
    let mut out = Vec::new();
    for domain in list.domains {
        let xml = client
            .get_xml(pb::GetDomainXmlRequest {
                domain: Some(pb::DomainRef {
                    id: Some(pb::domain_ref::Id::Name(domain.name.clone())),
                }),
                inactive: true,
                secure: true,
            })
            .await
            .expect("dumpxml")
            .into_inner()
            .xml;
        out.push((domain.name, xml, domain.state));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_domains_survive_kill_dash_nine() {
    let mut stack = Stack::start();
    let addr = ListenAddr::Unix(stack.domain_sock.clone());
    let mut client = DomainServiceClient::new(connect_channel(&addr));
    for i in 0..200 {
        let name = format!("vm{i:03}");
        client
            .define(pb::DefineDomainRequest {
                xml: domain_xml(&name),
            })
            .await
            .unwrap_or_else(|e| panic!("define {name}: {e}"));
        if i % 50 == 0 {
            client
                .start(pb::StartDomainRequest {
                    domain: Some(pb::DomainRef {
                        id: Some(pb::domain_ref::Id::Name(name)),
                    }),
                    paused: false,
                })
                .await
                .expect("start");
        }
    }
    let before = all_xml(&mut client).await;
    assert_eq!(before.len(), 201, "200 defined + the default 'test'");

    stack.kill_domaind();
    stack.start_domaind();

    let mut client = DomainServiceClient::new(connect_channel(&addr));
    let after = all_xml(&mut client).await;
    assert_eq!(after.len(), before.len());
    assert_eq!(
        after, before,
        "every domain, its config and its state came back intact"
    );
    let running = after
        .iter()
        .filter(|(_, _, state)| *state == pb::DomainState::Running as i32)
        .count();
    assert_eq!(running, 5, "vm000, vm050, vm100, vm150 and test still run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_during_defines_loses_nothing_acknowledged() {
    let mut stack = Stack::start();
    let addr = ListenAddr::Unix(stack.domain_sock.clone());
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut writers = Vec::new();
    for writer in 0..8 {
        let acknowledged = acknowledged.clone();
        let mut client = DomainServiceClient::new(connect_channel(&addr));
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let name = format!("w{writer}-{i}");
                let reply = client
                    .define(pb::DefineDomainRequest {
                        xml: domain_xml(&name),
                    })
                    .await;
                match reply {
                    Ok(_) => acknowledged.lock().expect("lock").push(name),
                    Err(_) => break,
                }
            }
        }));
    }
    // Let the writers get going, then crash the service under them.
    while acknowledged.lock().expect("lock").len() < 100 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    stack.kill_domaind();
    for writer in writers {
        writer.await.expect("writer task");
    }
    stack.start_domaind();
    let mut client = DomainServiceClient::new(connect_channel(&addr));
    let listed: std::collections::HashSet<String> = client
        .list(pb::ListDomainsRequest::default())
        .await
        .expect("list")
        .into_inner()
        .domains
        .into_iter()
        .map(|d| d.name)
        .collect();
    let acknowledged = acknowledged.lock().expect("lock").clone();
    assert!(acknowledged.len() >= 100);
    let lost: Vec<_> = acknowledged
        .iter()
        .filter(|n| !listed.contains(*n))
        .collect();
    assert!(
        lost.is_empty(),
        "acknowledged defines lost by kill -9: {lost:?}"
    );
    // Nothing half-written: every domain's XML reads back.
    for name in acknowledged.iter().take(20) {
        let xml = client
            .get_xml(pb::GetDomainXmlRequest {
                domain: Some(pb::DomainRef {
                    id: Some(pb::domain_ref::Id::Name(name.clone())),
                }),
                inactive: true,
                secure: false,
            })
            .await
            .expect("dumpxml")
            .into_inner()
            .xml;
        assert!(xml.contains(&format!("<name>{name}</name>")), "{xml}");
    }
}
