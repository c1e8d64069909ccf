//! The conversions fed with qemu-ga 7.2.22's own replies: captured from the test guest
//! (Debian's qemu-guest-agent 1:7.2+dfsg-7+deb12u18 in tests/guest's image under TCG, a
//! virtio-blk disk mounted at /mnt/d, user networking, two vCPUs, a utmp with two logins).
//! Where a reply could not be produced there, the fixture says so.

use serde::de::DeserializeOwned;

use super::*;

/// The `return` member of a reply, as the qapi type the command answers with.
fn reply<T: DeserializeOwned>(json: &str) -> T {
    let value: serde_json::Value = serde_json::from_str(json).expect("fixture is JSON");
    serde_json::from_value(value["return"].clone()).expect("fixture matches the qapi type")
}

#[test]
fn agent_info_keeps_each_command_and_its_flags() {
    let info = agent_info(reply(
        r#"{"return": {"version": "7.2.22", "supported_commands": [{"enabled": false, "name": "guest-get-devices", "success-response": true}, {"enabled": true, "name": "guest-get-osinfo", "success-response": true}, {"enabled": true, "name": "guest-exec", "success-response": true}, {"enabled": true, "name": "guest-shutdown", "success-response": false}]}}"#,
    ));
    assert_eq!(info.version, "7.2.22");
    let names: Vec<_> = info.commands.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "guest-get-devices",
            "guest-get-osinfo",
            "guest-exec",
            "guest-shutdown"
        ]
    );
    assert!(!info.commands[0].enabled && info.commands[0].success_response);
    assert!(info.commands[3].enabled && !info.commands[3].success_response);
}

#[test]
fn os_info_fills_what_the_guest_said_and_leaves_the_rest_empty() {
    let os = os_info(reply(
        r##"{"return": {"name": "virtplane-guest", "kernel-release": "6.1.0-48-amd64", "pretty-name": "virtplane test guest (Debian kernel, busybox)", "version-id": "12", "kernel-version": "#1 SMP PREEMPT_DYNAMIC Debian 6.1.172-1 (2026-05-15)", "machine": "x86_64", "id": "virtplane-guest"}}"##,
    ));
    assert_eq!(
        os,
        pb::GuestOsInfo {
            kernel_release: "6.1.0-48-amd64".into(),
            kernel_version: "#1 SMP PREEMPT_DYNAMIC Debian 6.1.172-1 (2026-05-15)".into(),
            machine: "x86_64".into(),
            id: "virtplane-guest".into(),
            name: "virtplane-guest".into(),
            pretty_name: "virtplane test guest (Debian kernel, busybox)".into(),
            version: String::new(),
            version_id: "12".into(),
            variant: String::new(),
            variant_id: String::new(),
        }
    );
}

#[test]
fn users_carry_their_login_time_to_the_microsecond() {
    let users = users(reply(
        r#"{"return": [{"login-time": 1765120000.25, "user": "root"}, {"login-time": 1765123456.789, "user": "alice"}]}"#,
    ));
    assert_eq!(users.len(), 2);
    assert_eq!(users[0].name, "root");
    assert_eq!(users[0].domain, "");
    assert_eq!(
        users[0].login_time,
        Some(prost_types::Timestamp {
            seconds: 1_765_120_000,
            nanos: 250_000_000
        })
    );
    assert_eq!(users[1].name, "alice");
    assert_eq!(
        users[1].login_time,
        Some(prost_types::Timestamp {
            seconds: 1_765_123_456,
            nanos: 789_000_000
        })
    );
}

#[test]
fn a_windows_user_keeps_its_login_domain() {
    // Not from the Linux test guest: qemu-ga on Windows adds "domain" (its schema's shape).
    let users = users(reply(
        r#"{"return": [{"user": "Administrator", "domain": "WIN-7A2C", "login-time": 1765000000.9999996}]}"#,
    ));
    assert_eq!(users[0].domain, "WIN-7A2C");
    // .9999996 rounds up to the next whole second, not to 1_000_000_000 nanoseconds.
    assert_eq!(
        users[0].login_time,
        Some(prost_types::Timestamp {
            seconds: 1_765_000_001,
            nanos: 0
        })
    );
}

#[test]
fn timezone_keeps_zone_and_offset() {
    let tz = timezone(reply(r#"{"return": {"zone": "UTC", "offset": 0}}"#));
    assert_eq!(tz.zone, "UTC");
    assert_eq!(tz.offset_seconds, 0);
    // A guest that cannot name its zone gives only the offset (qemu-ga's schema).
    let tz = timezone(reply(r#"{"return": {"offset": 3600}}"#));
    assert_eq!(
        tz,
        pb::GuestTimezone {
            zone: String::new(),
            offset_seconds: 3600
        }
    );
}

const FSINFO: &str = r#"{"return": [{"name": "vda", "total-bytes": 81520640, "mountpoint": "/mnt/d", "disk": [{"bus-type": "virtio", "bus": 0, "unit": 0, "pci-controller": {"bus": 0, "slot": 2, "domain": 0, "function": 0}, "dev": "/dev/vda", "target": 0}], "used-bytes": 11296768, "type": "ext4"}]}"#;

#[test]
fn filesystems_with_sizes_and_disk_addresses() {
    let fs = filesystems(reply(FSINFO));
    assert_eq!(
        fs,
        vec![pb::GuestFilesystem {
            mountpoint: "/mnt/d".into(),
            name: "vda".into(),
            r#type: "ext4".into(),
            total_bytes: Some(81_520_640),
            used_bytes: Some(11_296_768),
            disks: vec![pb::GuestDiskAddress {
                pci_controller: "0000:00:02.0".into(),
                bus_type: "virtio".into(),
                bus: 0,
                target: 0,
                unit: 0,
                serial: String::new(),
                dev: "/dev/vda".into(),
            }],
        }]
    );
}

#[test]
fn disk_address_formats_the_pci_address_in_hex_and_keeps_the_serial() {
    // The shape of a SCSI disk behind a controller in slot 0x1f, function 2, with a serial
    // (qemu-ga reads serials through udev, which the test guest lacks).
    let fs = filesystems(reply(
        r#"{"return": [{"name": "sda1", "mountpoint": "/", "type": "xfs", "disk": [{"bus-type": "scsi", "bus": 0, "unit": 3, "pci-controller": {"bus": 1, "slot": 31, "domain": 0, "function": 2}, "serial": "QM00003", "dev": "/dev/sda", "target": 1}]}]}"#,
    ));
    assert_eq!(fs[0].total_bytes, None);
    assert_eq!(fs[0].used_bytes, None);
    let disk = &fs[0].disks[0];
    assert_eq!(disk.pci_controller, "0000:01:1f.2");
    assert_eq!(disk.bus_type, "scsi");
    assert_eq!((disk.bus, disk.target, disk.unit), (0, 1, 3));
    assert_eq!(disk.serial, "QM00003");
}

#[test]
fn disks_with_address_and_dependencies() {
    let d = disks(reply(
        r#"{"return": [{"name": "/dev/vda", "dependencies": [], "partition": false, "address": {"bus-type": "virtio", "bus": 0, "unit": 0, "pci-controller": {"bus": 0, "slot": 2, "domain": 0, "function": 0}, "dev": "/dev/vda", "target": 0}}]}"#,
    ));
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].name, "/dev/vda");
    assert!(!d[0].partition);
    assert!(d[0].dependencies.is_empty());
    let address = d[0].address.as_ref().expect("address");
    assert_eq!(address.pci_controller, "0000:00:02.0");
    assert_eq!(address.dev, "/dev/vda");

    // A partition on it and an LVM volume (qemu-ga's shape for them; the test guest has none).
    let d = disks(reply(
        r#"{"return": [{"name": "/dev/vda1", "dependencies": ["/dev/vda"], "partition": true}, {"name": "/dev/dm-0", "dependencies": ["/dev/vda2"], "partition": false, "alias": "vg0-root"}]}"#,
    ));
    assert!(d[0].partition);
    assert_eq!(d[0].dependencies, ["/dev/vda"]);
    assert_eq!(d[0].address, None);
    assert_eq!(d[1].alias, "vg0-root");
}

const INTERFACES: &str = r#"{"return": [{"name": "lo", "ip-addresses": [{"ip-address-type": "ipv4", "ip-address": "127.0.0.1", "prefix": 8}, {"ip-address-type": "ipv6", "ip-address": "::1", "prefix": 128}], "statistics": {"tx-packets": 0, "tx-errs": 0, "rx-bytes": 0, "rx-dropped": 0, "rx-packets": 0, "rx-errs": 0, "tx-bytes": 0, "tx-dropped": 0}, "hardware-address": "00:00:00:00:00:00"}, {"name": "eth0", "ip-addresses": [{"ip-address-type": "ipv4", "ip-address": "10.0.2.15", "prefix": 24}, {"ip-address-type": "ipv6", "ip-address": "fec0::5054:ff:fe12:3456", "prefix": 64}, {"ip-address-type": "ipv6", "ip-address": "fe80::5054:ff:fe12:3456", "prefix": 64}], "statistics": {"tx-packets": 9, "tx-errs": 0, "rx-bytes": 1290, "rx-dropped": 0, "rx-packets": 3, "rx-errs": 0, "tx-bytes": 1286, "tx-dropped": 0}, "hardware-address": "52:54:00:12:34:56"}]}"#;

#[test]
fn interfaces_with_addresses_and_statistics() {
    let ifaces = interfaces(reply(INTERFACES));
    assert_eq!(ifaces.len(), 2);
    let eth0 = &ifaces[1];
    assert_eq!(eth0.name, "eth0");
    assert_eq!(eth0.hardware_address, "52:54:00:12:34:56");
    assert_eq!(
        eth0.addresses[0],
        pb::GuestIpAddress {
            r#type: pb::IpAddrType::Ipv4.into(),
            address: "10.0.2.15".into(),
            prefix: 24,
        }
    );
    assert_eq!(eth0.addresses[2].r#type, i32::from(pb::IpAddrType::Ipv6));
    assert_eq!(eth0.addresses[2].address, "fe80::5054:ff:fe12:3456");
    assert_eq!(
        eth0.stats,
        Some(pb::GuestInterfaceStats {
            rx_bytes: 1290,
            rx_packets: 3,
            rx_errors: 0,
            rx_dropped: 0,
            tx_bytes: 1286,
            tx_packets: 9,
            tx_errors: 0,
            tx_dropped: 0,
        })
    );
    assert_eq!(ifaces[0].addresses[1].prefix, 128);
}

#[test]
fn an_interface_without_address_or_statistics_converts_to_empty_fields() {
    let ifaces = interfaces(reply(r#"{"return": [{"name": "sit0"}]}"#));
    assert_eq!(
        ifaces,
        vec![pb::GuestInterface {
            name: "sit0".into(),
            hardware_address: String::new(),
            addresses: vec![],
            stats: None,
        }]
    );
}

#[test]
fn agent_addresses_for_domifaddr() {
    let found = agent_addresses(reply(INTERFACES));
    assert_eq!(found.len(), 2);
    assert_eq!(found[1].name, "eth0");
    assert_eq!(found[1].mac, "52:54:00:12:34:56");
    assert_eq!(found[1].addresses.len(), 3);
    assert!(
        found
            .iter()
            .flat_map(|f| &f.addresses)
            .all(|a| a.source == AddressSource::Agent)
    );
    assert_eq!(
        found[1].addresses[0],
        IpAddress {
            ipv6: false,
            address: "10.0.2.15".into(),
            prefix: 24,
            source: AddressSource::Agent
        }
    );
    assert!(found[1].addresses[1].ipv6);
}

#[test]
fn agent_addresses_fold_aliases_and_drop_interfaces_without_addresses() {
    let found = agent_addresses(reply(
        r#"{"return": [{"name": "eth0", "hardware-address": "52:54:00:aa:bb:cc", "ip-addresses": [{"ip-address-type": "ipv4", "ip-address": "192.0.2.10", "prefix": 24}]}, {"name": "eth1", "hardware-address": "52:54:00:aa:bb:cd"}, {"name": "eth0:1", "hardware-address": "52:54:00:aa:bb:cc", "ip-addresses": [{"ip-address-type": "ipv4", "ip-address": "192.0.2.11", "prefix": 32}]}]}"#,
    ));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].name, "eth0");
    let addresses: Vec<_> = found[0]
        .addresses
        .iter()
        .map(|a| a.address.as_str())
        .collect();
    assert_eq!(addresses, ["192.0.2.10", "192.0.2.11"]);
}

#[test]
fn vcpus_keep_id_state_and_offline_ability() {
    let v = vcpus(reply(
        r#"{"return": [{"online": false, "can-offline": true, "logical-id": 1}, {"online": true, "can-offline": false, "logical-id": 0}]}"#,
    ));
    assert_eq!(
        v,
        vec![
            pb::GuestVcpu {
                logical_id: 1,
                online: false,
                can_offline: true
            },
            pb::GuestVcpu {
                logical_id: 0,
                online: true,
                can_offline: false
            },
        ]
    );
}

#[test]
fn set_vcpus_names_the_first_vcpu_the_guest_did_not_change() {
    // qemu-ga answered 1 to [{1, offline}, {0, offline}]: vCPU 0 cannot go offline.
    let processed: i64 = reply(r#"{"return": 1}"#);
    let e = vcpus_processed("web", &[1, 0], false, processed).unwrap_err();
    assert!(
        matches!(&e, DomainError::AgentRefused(m)
            if m.contains("domain 'web'") && m.contains("1 of 2") && m.contains("vCPU 0 offline")),
        "{e}"
    );
    assert_eq!(vcpus_processed("web", &[1], true, processed).unwrap(), 1);
    assert_eq!(vcpus_processed("web", &[2, 3], true, 2).unwrap(), 2);
    let e = vcpus_processed("web", &[2, 3], true, 0).unwrap_err();
    assert!(e.to_string().contains("vCPU 2 online"), "{e}");
}

#[test]
fn memory_blocks_with_their_size() {
    let m = memory_blocks(
        reply(r#"{"return": {"size": 134217728}}"#),
        reply(
            r#"{"return": [{"online": true, "can-offline": true, "phys-index": 1}, {"online": true, "can-offline": true, "phys-index": 0}]}"#,
        ),
    );
    assert_eq!(m.block_size_bytes, 134_217_728);
    assert_eq!(
        m.blocks[0],
        pb::GuestMemoryBlock {
            phys_index: 1,
            online: true,
            can_offline: true
        }
    );
    assert_eq!(m.blocks[1].phys_index, 0);
}

#[test]
fn memory_block_results_map_each_outcome_and_errno() {
    let r = memory_block_results(reply(
        r#"{"return": [{"response": "operation-failed", "error-code": 22, "phys-index": 1}, {"response": "not-found", "error-code": 2, "phys-index": 77}]}"#,
    ));
    assert_eq!(
        r,
        vec![
            pb::GuestMemoryBlockResponse {
                phys_index: 1,
                result: pb::GuestMemoryBlockResult::OperationFailed.into(),
                error_code: 22
            },
            pb::GuestMemoryBlockResponse {
                phys_index: 77,
                result: pb::GuestMemoryBlockResult::NotFound.into(),
                error_code: 2
            },
        ]
    );
    let r = memory_block_results(reply(
        r#"{"return": [{"response": "success", "phys-index": 1}]}"#,
    ));
    assert_eq!(r[0].result, i32::from(pb::GuestMemoryBlockResult::Success));
    assert_eq!(r[0].error_code, 0);
}

#[test]
fn freeze_status_both_ways() {
    assert_eq!(
        freeze_status(reply(r#"{"return": "thawed"}"#)),
        pb::GuestFreezeStatus::Thawed
    );
    assert_eq!(
        freeze_status(reply(r#"{"return": "frozen"}"#)),
        pb::GuestFreezeStatus::Frozen
    );
}

#[test]
fn trim_results_with_counts_and_with_an_error() {
    let r = trim_results(reply(
        r#"{"return": {"paths": [{"minimum": 0, "path": "/mnt/d", "trimmed": 77270016}]}}"#,
    ));
    assert_eq!(
        r,
        vec![pb::GuestTrimResult {
            path: "/mnt/d".into(),
            trimmed_bytes: Some(77_270_016),
            minimum_bytes: Some(0),
            error: String::new(),
        }]
    );
    // A file system that refuses FITRIM: qemu-ga puts strerror in "error" and no counts (its
    // shape; the test guest's only disk file system accepts FITRIM).
    let r = trim_results(reply(
        r#"{"return": {"paths": [{"path": "/boot", "error": "Operation not supported"}]}}"#,
    ));
    assert_eq!(r[0].error, "Operation not supported");
    assert_eq!((r[0].trimmed_bytes, r[0].minimum_bytes), (None, None));
}

#[test]
fn exec_status_with_output_and_an_exit_code() {
    let (output, exited) = exec_finished(reply(
        r#"{"return": {"exitcode": 3, "err-data": "ZXJyCg==", "out-data": "b2sK", "err-truncated": false, "out-truncated": false, "exited": true}}"#,
    ));
    assert_eq!(
        output,
        Some(pb::GuestExecOutput {
            stdout: b"ok\n".to_vec(),
            stderr: b"err\n".to_vec()
        })
    );
    assert_eq!(
        exited,
        pb::GuestExecExited {
            status: Some(pb::guest_exec_exited::Status::ExitCode(3)),
            stdout_truncated: false,
            stderr_truncated: false,
        }
    );
}

#[test]
fn exec_status_of_a_killed_program() {
    let (output, exited) = exec_finished(reply(r#"{"return": {"signal": 9, "exited": true}}"#));
    assert_eq!(output, None);
    assert_eq!(
        exited.status,
        Some(pb::guest_exec_exited::Status::Signal(9))
    );
}

#[test]
fn exec_status_without_captured_output_has_no_output_event() {
    // Output not captured, or captured but empty: qemu-ga 7.2 sends no out-data either way.
    let (output, exited) = exec_finished(reply(r#"{"return": {"exitcode": 0, "exited": true}}"#));
    assert_eq!(output, None);
    assert_eq!(
        exited.status,
        Some(pb::guest_exec_exited::Status::ExitCode(0))
    );
    // stdout only (stdin "input\n" piped through `cat`, then `echo $FOO`).
    let (output, _) = exec_finished(reply(
        r#"{"return": {"exitcode": 0, "out-data": "aW5wdXQKYmFyCg==", "out-truncated": false, "exited": true}}"#,
    ));
    let output = output.expect("output");
    assert_eq!(output.stdout, b"input\nbar\n");
    assert!(output.stderr.is_empty());
}

#[test]
fn exec_status_reports_truncation() {
    // The shape qemu-ga gives past its 16 MiB per stream, the data cut short here.
    let (output, exited) = exec_finished(reply(
        r#"{"return": {"exitcode": 0, "out-data": "eHh4", "out-truncated": true, "err-data": "eQ==", "err-truncated": true, "exited": true}}"#,
    ));
    assert_eq!(output.expect("output").stdout, b"xxx");
    assert!(exited.stdout_truncated);
    assert!(exited.stderr_truncated);
}

#[test]
fn guest_time_in_nanoseconds_to_a_timestamp_and_back() {
    let nanos: i64 = reply(r#"{"return": 1796666650494554000}"#);
    let t = nanos_to_timestamp(nanos);
    assert_eq!(
        t,
        prost_types::Timestamp {
            seconds: 1_796_666_650,
            nanos: 494_554_000
        }
    );
    assert_eq!(timestamp_to_nanos(&t).unwrap(), nanos);
    // Before 1970: the nanoseconds stay positive, the seconds round down.
    let t = nanos_to_timestamp(-1);
    assert_eq!((t.seconds, t.nanos), (-1, 999_999_999));
    assert_eq!(timestamp_to_nanos(&t).unwrap(), -1);
}

#[test]
fn a_time_the_agent_cannot_take_is_refused_by_name() {
    let e = timestamp_to_nanos(&prost_types::Timestamp {
        seconds: 10_000_000_000,
        nanos: 0,
    })
    .unwrap_err();
    assert!(
        matches!(&e, DomainError::InvalidArg(m) if m.contains("10000000000")),
        "{e}"
    );
    let e = timestamp_to_nanos(&prost_types::Timestamp {
        seconds: 1,
        nanos: 1_000_000_000,
    })
    .unwrap_err();
    assert!(
        matches!(&e, DomainError::InvalidArg(m) if m.contains("nanos")),
        "{e}"
    );
}

#[test]
fn agent_numbers_outside_u32_are_clamped() {
    assert_eq!(clamp_u32(7), 7);
    assert_eq!(clamp_u32(-1), 0);
    assert_eq!(clamp_u32(i64::from(u32::MAX) + 1), u32::MAX);
}
