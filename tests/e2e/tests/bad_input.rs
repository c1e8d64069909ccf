//! Bad input: each answered with a clear error naming what is wrong, and no change of state.

use virtplane_e2e::{ADMIN_TOKEN, Stack, domain_xml};

fn world(stack: &Stack) -> String {
    stack.ok(&["list", "--all", "--uuid"])
}

fn refused(stack: &Stack, xml: &str, words: &[&str]) {
    let before = world(stack);
    let file = stack.file("bad.xml", xml);
    let stderr = stack.fails(Some(ADMIN_TOKEN), &["define", &file]);
    for word in words {
        assert!(
            stderr.contains(word),
            "error {stderr:?} does not mention {word:?}"
        );
    }
    assert_eq!(
        world(stack),
        before,
        "a refused define changed the domain list"
    );
}

#[test]
fn bad_documents_are_refused_with_reasons() {
    let stack = Stack::start();
    refused(&stack, "<domain type='test'><name>x</name>", &["XML"]);
    let huge = format!(
        "<domain type='test'><name>big</name><description>{}</description><memory>1024</memory>\
         <vcpu>1</vcpu><os><type>hvm</type></os></domain>",
        "x".repeat(2 * 1024 * 1024)
    );
    refused(&stack, &huge, &["at most 1048576 bytes"]);
    let laughs = "<?xml version='1.0'?><!DOCTYPE d [<!ENTITY a 'aaaaaaaaaa'>\
                  <!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;'>]>\
                  <domain type='test'><name>&b;</name><memory>1024</memory><vcpu>1</vcpu>\
                  <os><type>hvm</type></os></domain>";
    refused(&stack, laughs, &["DOCTYPE"]);
    let external = "<?xml version='1.0'?><!DOCTYPE d [<!ENTITY e SYSTEM 'file:///etc/passwd'>]>\
                    <domain type='test'><name>&e;</name><memory>1024</memory><vcpu>1</vcpu>\
                    <os><type>hvm</type></os></domain>";
    refused(&stack, external, &["DOCTYPE"]);
    refused(&stack, &domain_xml("a/b"), &["name", "/"]);
    refused(&stack, &domain_xml(".."), &["name", ".."]);
    refused(&stack, &domain_xml("tab\tname"), &["name", "control"]);
    refused(&stack, &domain_xml(&"n".repeat(257)), &["name", "257"]);
    // XML 1.0 forbids most C0 controls outright; DEL is legal XML but not in a name.
    refused(
        &stack,
        &domain_xml("bell&#7;name"),
        &["&#7;", "not an XML character"],
    );
    refused(&stack, &domain_xml("del&#127;name"), &["name", "control"]);
    // XML 1.0 cannot carry NUL at all: refused as malformed, not as a name.
    refused(&stack, &domain_xml("nul&#0;name"), &["XML"]);
    refused(
        &stack,
        &domain_xml("u").replace("<name>u</name>", "<name>u</name><uuid>not-a-uuid</uuid>"),
        &["uuid", "not-a-uuid"],
    );
    refused(
        &stack,
        &domain_xml("v").replace(">1</vcpu>", ">zero</vcpu>"),
        &["vcpu", "zero"],
    );
    refused(
        &stack,
        &domain_xml("m").replace("unit='MiB'", "unit='XB'"),
        &["memory", "XB"],
    );
}

#[test]
fn duplicates_and_unknown_domains_are_refused() {
    let stack = Stack::start();
    let with_uuid = |name: &str| {
        domain_xml(name).replace(
            "</name>",
            "</name><uuid>0a1b2c3d-0000-4000-8000-000000000001</uuid>",
        )
    };
    let first = stack.file("first.xml", &with_uuid("first"));
    stack.ok(&["define", &first]);
    // Same UUID, other name.
    refused(
        &stack,
        &with_uuid("second"),
        &["first", "0a1b2c3d-0000-4000-8000-000000000001"],
    );
    // Same name, other UUID ("test" is the default domain).
    refused(
        &stack,
        &domain_xml("test").replace(
            "</name>",
            "</name><uuid>0a1b2c3d-0000-4000-8000-000000000002</uuid>",
        ),
        &["test", "already exists"],
    );
    let before = world(&stack);
    let stderr = stack.fails(Some(ADMIN_TOKEN), &["start", "nosuch"]);
    assert!(
        stderr.contains("nosuch") && stderr.contains("not found"),
        "{stderr}"
    );
    let stderr = stack.fails(Some(ADMIN_TOKEN), &["undefine", "nosuch"]);
    assert!(stderr.contains("not found"), "{stderr}");
    assert_eq!(world(&stack), before);
}

#[test]
fn the_longest_allowed_name_works_end_to_end() {
    let stack = Stack::start();
    let name = "n".repeat(256);
    let file = stack.file("long.xml", &domain_xml(&name));
    stack.ok(&["define", &file]);
    stack.ok(&["start", &name]);
    assert!(stack.ok(&["domstate", &name]).contains("running"));
    stack.ok(&["destroy", &name]);
    stack.ok(&["undefine", &name]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_with_nul_or_path_tricks_in_requests_are_clean_errors() {
    use virtplane_common::client::connect_channel;
    use virtplane_common::server::ListenAddr;
    use virtplane_proto::v1 as pb;
    let stack = Stack::start();
    let mut client = pb::domain_service_client::DomainServiceClient::new(connect_channel(
        &ListenAddr::Unix(stack.domain_sock.clone()),
    ));
    for bad in ["a\0b", "../test", "test/..", ""] {
        let status = client
            .start(pb::StartDomainRequest {
                domain: Some(pb::DomainRef {
                    id: Some(pb::domain_ref::Id::Name(bad.into())),
                }),
                paused: false,
            })
            .await
            .unwrap_err();
        assert!(
            matches!(
                status.code(),
                tonic::Code::NotFound | tonic::Code::InvalidArgument
            ),
            "{bad:?}: {status:?}"
        );
    }
    let status = client
        .get_info(pb::GetDomainInfoRequest {
            domain: Some(pb::DomainRef {
                id: Some(pb::domain_ref::Id::Uuid("not-a-uuid".into())),
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("not-a-uuid"), "{status:?}");
}
