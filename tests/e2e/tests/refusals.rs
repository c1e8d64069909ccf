//! Who may do what: unauthenticated and read-only callers are refused with clear messages
//! and a non-zero exit code, and nothing changes.

use virtplane_e2e::{OPERATOR_TOKEN, Stack, VIEWER_TOKEN};

#[test]
fn missing_and_wrong_tokens_are_unauthenticated() {
    let stack = Stack::start();
    let none = stack.fails(None, &["list", "--all"]);
    assert!(none.contains("token"), "{none}");
    let wrong = stack.fails(Some("not-a-real-token"), &["list", "--all"]);
    assert!(wrong.to_lowercase().contains("invalid token"), "{wrong}");
}

#[test]
fn viewer_reads_but_changes_nothing() {
    let stack = Stack::start();
    let list = stack.virtctl(Some(VIEWER_TOKEN), &["list", "--all"]);
    assert!(list.status.success());
    assert!(
        stack
            .virtctl(Some(VIEWER_TOKEN), &["dominfo", "test"])
            .status
            .success()
    );
    assert!(
        stack
            .virtctl(Some(VIEWER_TOKEN), &["dumpxml", "test"])
            .status
            .success()
    );
    for args in [
        &["destroy", "test"][..],
        &["suspend", "test"],
        &["undefine", "test"],
        &["setvcpus", "test", "1", "--live"],
        &["setmem", "test", "1G", "--live"],
        &["autostart", "test"],
    ] {
        let stderr = stack.fails(Some(VIEWER_TOKEN), args);
        assert!(stderr.contains("permission denied"), "{args:?}: {stderr}");
    }
    // The secure flag needs domain:read_secure, which the viewer lacks.
    let secure = stack.fails(Some(VIEWER_TOKEN), &["dumpxml", "test", "--security-info"]);
    assert!(secure.contains("domain:read_secure"), "{secure}");
    assert!(stack.ok(&["domstate", "test"]).contains("running"));
}

#[test]
fn operator_changes_but_no_passthrough() {
    let stack = Stack::start();
    assert!(
        stack
            .virtctl(Some(OPERATOR_TOKEN), &["suspend", "test"])
            .status
            .success()
    );
    assert!(
        stack
            .virtctl(Some(OPERATOR_TOKEN), &["resume", "test"])
            .status
            .success()
    );
    let xml = "<domain type='test' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>\
               <name>raw</name><memory>65536</memory><vcpu>1</vcpu><os><type>hvm</type></os>\
               <qemu:commandline><qemu:arg value='-S'/></qemu:commandline></domain>";
    let file = stack.file("raw.xml", xml);
    let stderr = stack.fails(Some(OPERATOR_TOKEN), &["define", &file]);
    assert!(stderr.contains("domain:passthrough"), "{stderr}");
    // The admin may, and the domain is marked tainted.
    stack.ok(&["define", &file]);
    let info = stack.ok(&["dominfo", "raw", "-o", "json"]);
    assert!(info.contains("custom-argv"), "{info}");
}
