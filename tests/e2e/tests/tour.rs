//! The README's five-minute tour, over the real binaries, driven by virtctl.

use std::time::Duration;

use virtplane_e2e::{ADMIN_TOKEN, Stack, VIEWER_TOKEN, domain_xml, watch_events};

#[test]
fn the_tour() {
    let stack = Stack::start();

    // Watch events from the start, as `virtctl event --loop` in another terminal.
    let (watcher, lines) = watch_events(&stack);

    let list = stack.ok(&["list", "--all"]);
    assert!(list.contains("test") && list.contains("running"), "{list}");

    let file = stack.file("web.xml", &domain_xml("web"));
    let defined = stack.ok(&["define", &file]);
    assert!(defined.contains("Domain 'web' defined"), "{defined}");

    stack.ok(&["start", "web"]);
    stack.ok(&["suspend", "web"]);
    assert!(stack.ok(&["domstate", "web"]).contains("paused"));
    stack.ok(&["resume", "web"]);
    assert!(
        stack
            .ok(&["domstate", "web", "--reason"])
            .contains("running (unpaused)")
    );
    stack.ok(&["shutdown", "web"]);
    assert!(stack.ok(&["domstate", "web"]).contains("shut off"));

    stack.ok(&["setvcpus", "web", "4", "--config", "--maximum"]);
    stack.ok(&["setvcpus", "web", "2", "--config"]);
    let count = stack.ok(&["vcpucount", "web"]);
    let rows: Vec<Vec<&str>> = count
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(
        rows.iter().any(|r| r == &["maximum", "config", "4"]),
        "{count}"
    );
    assert!(
        rows.iter().any(|r| r == &["current", "config", "2"]),
        "{count}"
    );
    assert!(
        !count.contains("live"),
        "a shut-off domain has no live counts: {count}"
    );

    let xml = stack.ok(&["dumpxml", "web"]);
    assert!(xml.contains("<name>web</name>"), "{xml}");
    assert!(
        xml.contains("current='2'") && xml.contains(">4</vcpu>"),
        "{xml}"
    );

    let info: serde_json::Value =
        serde_json::from_str(&stack.ok(&["dominfo", "web", "-o", "json"])).expect("dominfo JSON");
    let text = info.to_string();
    assert!(text.contains("\"web\""), "{text}");
    // -o before the command works too.
    serde_json::from_str::<serde_json::Value>(&stack.ok(&["-o", "json", "dominfo", "web"]))
        .expect("dominfo JSON with -o first");

    let denied = stack.virtctl(Some(VIEWER_TOKEN), &["start", "web"]);
    assert!(!denied.status.success());
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert!(
        stderr.contains("permission denied") && stderr.contains("domain:start"),
        "{stderr}"
    );
    assert!(
        stack.ok(&["domstate", "web"]).contains("shut off"),
        "denied start changed nothing"
    );

    // The watcher saw the lifecycle in order.
    let mut seen = Vec::new();
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(5)) {
        seen.push(line);
        if seen.iter().any(|l| l.contains("Stopped")) && seen.len() >= 5 {
            break;
        }
    }
    drop(watcher);
    let expected = ["Defined", "Started", "Suspended", "Resumed", "Stopped"];
    let mut position = 0;
    for line in &seen {
        if position < expected.len() && line.contains("'web'") && line.contains(expected[position])
        {
            position += 1;
        }
    }
    assert_eq!(position, expected.len(), "events seen: {seen:#?}");

    // Every change was audited with who, what, which object and the result.
    let audit = stack.audit_lines();
    let start_lines: Vec<_> = audit
        .iter()
        .filter(|l| l.contains("DomainService/Start"))
        .collect();
    assert!(
        start_lines
            .iter()
            .any(|l| l.contains("\"admin\"") && l.contains("web") && l.contains("OK")),
        "{audit:#?}"
    );
    assert!(
        start_lines
            .iter()
            .any(|l| l.contains("viewer") && l.contains("PERMISSION_DENIED")),
        "{audit:#?}"
    );
}

#[test]
fn define_reads_standard_input() {
    let stack = Stack::start();
    let out = stack.virtctl_with_stdin(
        Some(ADMIN_TOKEN),
        &["define", "-"],
        Some(&domain_xml("piped")),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stack
            .ok(&["list", "--all", "--name"])
            .lines()
            .any(|l| l.trim() == "piped")
    );
}
