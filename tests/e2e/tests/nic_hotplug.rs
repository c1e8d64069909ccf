//! `virtctl attach-interface` and `detach-interface` through the gateway, on the test
//! driver (what a real guest sees is checked in services/domain/tests/qemu_nic_hotplug.rs):
//! virsh's options, in place or by name, and its messages; live, config, `--current` and
//! `--persistent`; detach by type and by MAC with virsh's refusals; the viewer may not
//! attach or detach, the operator may; every change is audited.

use virtplane_e2e::{ADMIN_TOKEN, OPERATOR_TOKEN, Stack, VIEWER_TOKEN, domain_xml};

const NAME: &str = "e2e-nic";

/// `domiflist` rows as (type, source, MAC).
fn nics(stack: &Stack, extra: &[&str]) -> Vec<(String, String, String)> {
    let mut args = vec!["domiflist", NAME];
    args.extend_from_slice(extra);
    stack
        .ok(&args)
        .lines()
        .skip(2)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            Some((
                cols.get(1)?.to_string(),
                cols.get(2)?.to_string(),
                cols.get(4)?.to_string(),
            ))
        })
        .collect()
}

fn types(stack: &Stack, extra: &[&str]) -> Vec<String> {
    nics(stack, extra).into_iter().map(|(t, _, _)| t).collect()
}

#[test]
fn interfaces_through_the_gateway() {
    let stack = Stack::start();
    let xml = stack.file("vm.xml", &domain_xml(NAME));
    stack.ok(&["define", &xml]);
    stack.ok(&["start", NAME]);

    // virsh's XML, without attaching anything.
    let printed = stack.ok(&[
        "attach-interface",
        NAME,
        "--type",
        "bridge",
        "--source",
        "br0",
        "--model",
        "virtio",
        "--print-xml",
    ]);
    assert_eq!(
        printed,
        "<interface type='bridge'>\n  <source bridge='br0'/>\n  <model type='virtio'/>\n</interface>\n"
    );
    assert!(nics(&stack, &[]).is_empty());

    // Live (the default on a running domain: --current), with a generated MAC.
    let out = stack.ok(&[
        "attach-interface",
        NAME,
        "--type",
        "bridge",
        "--source",
        "br0",
        "--model",
        "virtio",
    ]);
    assert_eq!(out.trim(), "Interface attached successfully");
    let live = nics(&stack, &[]);
    assert_eq!(live.len(), 1);
    assert_eq!((live[0].0.as_str(), live[0].1.as_str()), ("bridge", "br0"));
    assert!(live[0].2.starts_with("52:54:00:"), "{live:?}");
    assert!(nics(&stack, &["--inactive"]).is_empty());

    // --persistent on a running domain: live and config, in place like virsh's data options.
    let mac = "52:54:00:12:34:56";
    let out = stack.ok(&[
        "attach-interface",
        NAME,
        "network",
        "default",
        "--mac",
        mac,
        "--persistent",
    ]);
    assert_eq!(out.trim(), "Interface attached successfully");
    assert_eq!(types(&stack, &[]), ["bridge", "network"]);
    assert_eq!(
        nics(&stack, &["--inactive"]),
        [("network".to_owned(), "default".to_owned(), mac.to_owned())]
    );
    // The operator may change the config too.
    let out = stack.virtctl(
        Some(OPERATOR_TOKEN),
        &["attach-interface", NAME, "--type", "user", "--config"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(types(&stack, &["--inactive"]), ["network", "user"]);
    assert_eq!(types(&stack, &[]), ["bridge", "network"]);

    // The viewer may look but not attach or detach.
    let denied = stack.fails(
        Some(VIEWER_TOKEN),
        &["attach-interface", NAME, "--type", "user", "--live"],
    );
    assert!(
        denied.contains("permission denied") && denied.contains("domain:write"),
        "{denied}"
    );
    let denied = stack.fails(
        Some(VIEWER_TOKEN),
        &["detach-interface", NAME, "--type", "bridge", "--live"],
    );
    assert!(denied.contains("permission denied"), "{denied}");

    // The server's refusals come through.
    let err = stack.fails(
        Some(ADMIN_TOKEN),
        &["attach-interface", NAME, "user", "--mac", mac, "--live"],
    );
    assert!(err.contains(&format!("MAC address {mac}")), "{err}");
    let err = stack.fails(
        Some(ADMIN_TOKEN),
        &[
            "attach-interface",
            NAME,
            "user",
            "--mac",
            "52:54:zz",
            "--live",
        ],
    );
    assert!(err.contains("mac"), "{err}");
    // virsh's own.
    let err = stack.fails(
        Some(ADMIN_TOKEN),
        &[
            "attach-interface",
            NAME,
            "--type",
            "direct",
            "--source",
            "eth0",
        ],
    );
    assert!(
        err.contains("No support for direct in command 'attach-interface'"),
        "{err}"
    );
    let err = stack.fails(Some(ADMIN_TOKEN), &["detach-interface", NAME, "ethernet"]);
    assert!(
        err.contains("No interface found whose type is ethernet"),
        "{err}"
    );
    stack.ok(&[
        "attach-interface",
        NAME,
        "bridge",
        "br1",
        "--mac",
        "52:54:00:00:00:b1",
        "--live",
    ]);
    let err = stack.fails(Some(ADMIN_TOKEN), &["detach-interface", NAME, "bridge"]);
    assert!(
        err.contains("Domain has 2 interfaces. Please specify which one to detach using --mac"),
        "{err}"
    );
    let err = stack.fails(
        Some(ADMIN_TOKEN),
        &[
            "detach-interface",
            NAME,
            "bridge",
            "--mac",
            "52:54:00:00:00:99",
        ],
    );
    assert!(
        err.contains("No interface with MAC address 52:54:00:00:00:99 was found"),
        "{err}"
    );

    // Detach by MAC (any case), then the only one of its type.
    let out = stack.ok(&[
        "detach-interface",
        NAME,
        "bridge",
        "--mac",
        "52:54:00:00:00:B1",
    ]);
    assert_eq!(out.trim(), "Interface detached successfully");
    assert_eq!(types(&stack, &[]), ["bridge", "network"]);
    let out = stack.ok(&["detach-interface", NAME, "--type", "bridge", "--live"]);
    assert_eq!(out.trim(), "Interface detached successfully");
    assert_eq!(types(&stack, &[]), ["network"]);

    // --config alone leaves the running domain; --persistent takes both.
    let out = stack.ok(&["detach-interface", NAME, "user", "--config"]);
    assert_eq!(out.trim(), "Interface detached successfully");
    assert_eq!(types(&stack, &["--inactive"]), ["network"]);
    let out = stack.ok(&[
        "detach-interface",
        NAME,
        "network",
        "--mac",
        mac,
        "--persistent",
    ]);
    assert_eq!(out.trim(), "Interface detached successfully");
    assert!(nics(&stack, &[]).is_empty());
    assert!(nics(&stack, &["--inactive"]).is_empty());

    // Every change is audited with the domain it was about.
    let audit = stack.audit_lines();
    for method in ["AttachDevice", "DetachDevice"] {
        assert!(
            audit
                .iter()
                .any(|l| l.contains(method) && l.contains(NAME) && l.contains("\"OK\"")),
            "{method}: {audit:#?}"
        );
    }
    assert!(
        audit
            .iter()
            .any(|l| l.contains("AttachDevice") && l.contains("viewer")),
        "the refused attach is audited: {audit:#?}"
    );
}
