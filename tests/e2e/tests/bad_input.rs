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
