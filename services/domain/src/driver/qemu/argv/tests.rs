//! Unit tests for the refusals; the translations are covered by the golden files in
//! `tests/qemu_argv.rs`.

use std::path::PathBuf;

use super::*;
use crate::xml::parse_domain;

fn ctx(kvm_usable: bool) -> ArgvContext {
    ArgvContext {
        emulator: PathBuf::from("/usr/bin/qemu-system-x86_64"),
        run_dir: PathBuf::from("/run/virtplane/domain/t"),
        kvm_usable,
    }
}

fn domain(kind: &str, cpu: &str, devices: &str) -> DomainDef {
    parse_domain(&format!(
        "<domain type='{kind}'><name>t</name><uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>\
         <memory unit='MiB'>128</memory><os><type arch='x86_64' machine='pc'>hvm</type></os>\
         {cpu}<devices>{devices}</devices></domain>"
    ))
    .expect("test XML parses")
}

#[test]
fn kvm_needs_a_usable_kvm() {
    let def = domain("kvm", "", "");
    assert_eq!(build(&def, &ctx(false)), Err(ArgvError::KvmUnavailable));
    assert!(
        ArgvError::KvmUnavailable
            .to_string()
            .contains("type='qemu'")
    );
    assert!(build(&def, &ctx(true)).is_ok());
}

#[test]
fn network_interfaces_need_the_network_service() {
    let def = domain(
        "qemu",
        "",
        "<interface type='network'><source network='default'/></interface>",
    );
    let err = build(&def, &ctx(true)).unwrap_err();
    assert!(matches!(&err, ArgvError::Unsupported { what } if what.contains("network service")));
}

#[test]
fn unknown_devices_are_refused_by_name() {
    let def = domain(
        "qemu",
        "",
        "<hostdev mode='subsystem' type='pci'><source><address bus='1' slot='0'/></source></hostdev>",
    );
    let err = build(&def, &ctx(true)).unwrap_err();
    assert!(matches!(&err, ArgvError::Unsupported { what } if what.contains("<hostdev> devices")));
    let def = domain(
        "qemu",
        "",
        "<disk type='file' device='disk' bogus='1'><source file='/a'/><target dev='vda'/></disk>",
    );
    let err = build(&def, &ctx(true)).unwrap_err();
    assert!(
        err.to_string().contains("attribute 'bogus' of <disk>"),
        "{err}"
    );
}

#[test]
fn no_cpu_element_never_means_host() {
    for kind in ["kvm", "qemu"] {
        let def = domain(kind, "", "");
        let cmd = build(&def, &ctx(true)).unwrap();
        assert!(!cmd.args.iter().any(|a| a == "-cpu"), "{:?}", cmd.args);
        assert!(!cmd.args.iter().any(|a| a.contains("host")));
    }
}

#[test]
fn host_passthrough_needs_kvm() {
    let cpu = "<cpu mode='host-passthrough'/>";
    let err = build(&domain("qemu", cpu, ""), &ctx(true)).unwrap_err();
    assert!(matches!(err, ArgvError::Invalid { .. }));
    let cmd = build(&domain("kvm", cpu, ""), &ctx(true)).unwrap();
    let at = cmd.args.iter().position(|a| a == "-cpu").unwrap();
    assert_eq!(cmd.args[at + 1], "host");
}

#[test]
fn other_refusals_name_what_they_refuse() {
    let cases = [
        (
            "<interface type='bridge'><source bridge='br0'/></interface>",
            "target dev",
        ),
        ("<graphics type='spice'/>", "spice"),
        (
            "<disk type='network' device='disk'><source protocol='nbd' name='x'><host name='h'/></source><target dev='vda'/></disk>",
            "type='network'",
        ),
        (
            "<channel type='unix'><target type='guestfwd'/></channel>",
            "guestfwd",
        ),
    ];
    for (devices, needle) in cases {
        let err = build(&domain("qemu", "", devices), &ctx(true)).unwrap_err();
        assert!(err.to_string().contains(needle), "{devices}: {err}");
    }
}

#[test]
fn describe_paths() {
    assert_eq!(describe_path("domain/devices/sound"), "<sound> devices");
    assert_eq!(describe_path("domain/os/nvram"), "<nvram> in <os>");
    assert_eq!(
        describe_path("domain/devices/disk/@foo"),
        "attribute 'foo' of <disk>"
    );
}
