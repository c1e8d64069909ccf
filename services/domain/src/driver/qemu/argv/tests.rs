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

#[test]
fn content_the_model_keeps_without_understanding_is_refused_anywhere() {
    // Outside <devices> and <os> too: NUMA tuning or hugepages silently dropped would give
    // a different guest than the one defined.
    for (extra, needle) in [
        (
            "<numatune><memory mode='strict' nodeset='0'/></numatune>",
            "<numatune>",
        ),
        (
            "<memoryBacking><hugepages/></memoryBacking>",
            "<memoryBacking>",
        ),
        ("<cputune><shares>1024</shares></cputune>", "<cputune>"),
    ] {
        let def = parse_domain(&format!(
            "<domain type='qemu'><name>t</name>\
             <uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>\
             <memory unit='MiB'>128</memory>{extra}\
             <os><type arch='x86_64' machine='pc'>hvm</type></os></domain>"
        ))
        .unwrap();
        let err = build(&def, &ctx(false)).unwrap_err();
        assert!(err.to_string().contains(needle), "{extra}: {err}");
        assert!(err.to_string().contains("not understood"), "{err}");
    }
}

fn q35(devices: &str) -> DomainDef {
    parse_domain(&format!(
        "<domain type='qemu'><name>t</name><uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>\
         <memory unit='MiB'>128</memory><os><type arch='x86_64' machine='q35'>hvm</type></os>\
         <devices>{devices}</devices></domain>"
    ))
    .expect("test XML parses")
}

/// What QEMU would refuse at start (or libvirt at define) is refused here, naming it.
#[test]
fn device_placement_refusals_name_what_they_refuse() {
    let file = |dev: &str, bus: &str, extra: &str| {
        format!(
            "<disk type='file' device='disk'><source file='/i/{dev}.img'/>\
             <target dev='{dev}' bus='{bus}'/>{extra}</disk>"
        )
    };
    let cases = [
        (
            file("sdh", "scsi", ""),
            "beyond the lsilogic controller's 0-6",
        ),
        (
            file(
                "hda",
                "ide",
                "<address type='drive' controller='0' bus='0' target='0' unit='2'/>",
            ),
            "buses 0-1 with units 0-1",
        ),
        (
            format!(
                "{}{}",
                file("sda", "sata", ""),
                file(
                    "sdb",
                    "sata",
                    "<address type='drive' controller='0' bus='0' target='0' unit='0'/>"
                )
            ),
            "disks 'sda' and 'sdb': they have the same address",
        ),
        (
            file(
                "vda",
                "virtio",
                "<address type='pci' domain='0' bus='3' slot='1' function='0'/>",
            ),
            "no <controller type='pci' index='3'>",
        ),
        (
            file("fda", "ide", "").replace("device='disk'", "device='floppy'"),
            "floppies go on bus='fdc'",
        ),
        (
            "<disk type='file' device='cdrom'><target dev='sda' bus='usb'/><readonly/></disk>"
                .to_string(),
            "usb-storage cannot be empty",
        ),
        (
            file("vda", "virtio", "<shareable/>")
                .replace("<source", "<driver name='qemu' type='qcow2'/><source"),
            "must be raw, not qcow2",
        ),
        (
            "<controller type='scsi' index='0'/><controller type='scsi' index='0'/>".to_string(),
            "<controller type='scsi' index='0'>: defined more than once",
        ),
        (
            "<controller type='pci' index='0' model='pcie-root'/>".to_string(),
            "machine type 'pc' has a pci-root",
        ),
        (
            "<serial type='udp'><source mode='bind' service='1'/></serial>".to_string(),
            "needs <source mode='connect' service=…>",
        ),
        (
            "<channel type='unix'><target type='virtio' name='a'/>\
             <address type='virtio-serial' controller='2' bus='0' port='1'/></channel>"
                .to_string(),
            "no <controller type='virtio-serial' index='2'>",
        ),
        (
            "<serial type='pty'><address type='pci' bus='0' slot='5'/></serial>".to_string(),
            "<address type='pci'> on <serial>",
        ),
        (
            "<video><model type='cirrus' vgamem='8192'/></video>".to_string(),
            "only qxl has them",
        ),
    ];
    for (devices, needle) in cases {
        let err = build(&domain("qemu", "", &devices), &ctx(true)).unwrap_err();
        assert!(err.to_string().contains(needle), "{devices}: {err}");
    }
    let err = build(
        &q35("<controller type='pci' index='0' model='pci-root'/>"),
        &ctx(true),
    )
    .unwrap_err();
    assert!(err.to_string().contains("has a pcie-root"), "{err}");
}

#[test]
fn controllers_without_index_are_numbered_like_libvirt() {
    // libvirt gives each the lowest index its type does not use, here 1 and 3.
    let def = q35("<controller type='pci' model='pcie-root'/>\
         <controller type='pci' model='pcie-root-port'/>\
         <controller type='pci' index='2' model='pcie-root-port'/>\
         <controller type='pci' model='pcie-root-port'/>");
    let args = build(&def, &ctx(true)).unwrap().args.join(" ");
    for id in ["\"pci.1\"", "\"pci.2\"", "\"pci.3\""] {
        assert!(args.contains(id), "{id}: {args}");
    }
}

/// A domain with `os` inside `<os>` (after `<type>`), `head` between `<os>` and `<devices>`.
fn full(machine: &str, os: &str, head: &str, devices: &str) -> DomainDef {
    parse_domain(&format!(
        "<domain type='qemu'><name>t</name><uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>\
         <memory unit='MiB'>128</memory>\
         <os><type arch='x86_64' machine='{machine}'>hvm</type>{os}</os>\
         {head}<devices>{devices}</devices></domain>"
    ))
    .expect("test XML parses")
}

/// Settings the model reads but this builder cannot honour, or that libvirt refuses, are
/// refused with a message naming them; none is dropped.
#[test]
fn modelled_settings_that_cannot_be_honoured_are_refused() {
    let cases: [(&str, &str, &str, &str, &str); 23] = [
        (
            "pc",
            "",
            "",
            "<audio id='1' type='pulseaudio'/>",
            "<audio type='pulseaudio'>",
        ),
        (
            "pc",
            "",
            "",
            "<audio id='1' type='none'/><audio id='1' type='none'/>",
            "the id is used more than once",
        ),
        (
            "pc",
            "",
            "",
            "<graphics type='vnc'><audio id='3'/></graphics><audio id='1' type='none'/>",
            "there is no <audio id='3'>",
        ),
        (
            "pc",
            "<bios rebootTimeout='70000'/>",
            "",
            "",
            "must be from -1 to 65535",
        ),
        (
            "q35",
            "<loader type='pflash'>/c.fd</loader><nvram template='/v.fd'/>",
            "<features><acpi/></features>",
            "",
            "made from a template",
        ),
        (
            "q35",
            "<loader type='pflash' stateless='yes'>/c.fd</loader><nvram>/v.fd</nvram>",
            "<features><acpi/></features>",
            "",
            "a stateless loader",
        ),
        (
            "q35",
            "<loader type='pflash'>/c.fd</loader>",
            "",
            "",
            "UEFI needs <features><acpi/></features>",
        ),
        (
            "pc",
            "<acpi><table type='raw'>/t</table></acpi>",
            "",
            "",
            "only slic",
        ),
        (
            "pc",
            "",
            "<features><ioapic driver='qemu'/></features>",
            "",
            "<ioapic/>",
        ),
        (
            "q35",
            "",
            "<features><smm state='off'><tseg unit='MiB'>48</tseg></smm></features>",
            "",
            "needs <smm state='on'> on a q35 machine",
        ),
        (
            "pc",
            "",
            "<cpu mode='maximum'><cache level='2' mode='emulate'/></cpu>",
            "",
            "only be used with level='3'",
        ),
        (
            "pc",
            "",
            "<cpu><model>qemu64</model><cache mode='passthrough'/></cpu>",
            "",
            "needs <cpu mode='host-passthrough'>",
        ),
        (
            "pc",
            "",
            "<cpu mode='maximum'><maxphysaddr mode='emulate'/></cpu>",
            "",
            "needs bits=",
        ),
        (
            "pc",
            "",
            "<clock offset='utc' adjustment='3600'/>",
            "",
            "a variable offset",
        ),
        (
            "pc",
            "",
            "<clock offset='utc'><timer name='rtc' track='boot'/></clock>",
            "",
            "track='boot'",
        ),
        (
            "pc",
            "",
            "",
            "<controller type='usb' model='piix3-uhci' ports='4'/>",
            "only the xHCI controllers have a port count",
        ),
        (
            "pc",
            "",
            "",
            "<controller type='usb' index='1' model='ich9-uhci1'/>",
            "no USB controller with index 1 to be companion to",
        ),
        (
            "pc",
            "",
            "",
            "<controller type='pci' index='1' model='pci-bridge'><model name='ioh3420'/></controller>",
            "implemented by pci-bridge",
        ),
        (
            "q35",
            "",
            "",
            "<controller type='pci' index='0' model='pcie-root'><target hotplug='off'/></controller>",
            "only on the PC (i440fx)",
        ),
        (
            "pc",
            "",
            "",
            "<interface type='bridge'><source bridge='br0'/><target dev='vnet0'/>\
             <model type='virtio'/><driver name='vhost'/></interface>",
            "(vhost-net)",
        ),
        (
            "pc",
            "",
            "",
            "<interface type='user'><model type='virtio'/><driver queues='4'/></interface>",
            "only tap-based interfaces have several queues",
        ),
        (
            "pc",
            "",
            "",
            "<disk type='file'><driver name='qemu' type='raw' iothread='1'/>\
             <source file='/a.img'/><target dev='vda' bus='virtio'/></disk>",
            "(I/O threads)",
        ),
        (
            "pc",
            "",
            "",
            "<serial type='tcp'><source mode='bind' host='127.0.0.1' service='9'/>\
             <protocol type='tls'/></serial>",
            "<protocol type='tls'>",
        ),
    ];
    for (machine, os, head, devices, needle) in cases {
        let def = full(machine, os, head, devices);
        let err = build(&def, &ctx(true)).unwrap_err().to_string();
        assert!(err.contains(needle), "{os}{head}{devices}: {err}");
    }
}

/// What libvirt fills in for settings left out, so the guest sees the same hardware.
#[test]
fn defaults_follow_libvirt() {
    // ICH9's UHCI companions find their master and first port without <master>.
    let def = full(
        "pc",
        "",
        "",
        "<controller type='usb' index='0' model='ich9-uhci3'/>\
         <controller type='usb' index='0' model='ich9-ehci1'/>",
    );
    let args = build(&def, &ctx(true)).unwrap().args;
    let ehci = args
        .iter()
        .position(|a| a.contains("ich9-usb-ehci1"))
        .unwrap();
    let uhci = args
        .iter()
        .position(|a| a.contains("ich9-usb-uhci3"))
        .unwrap();
    assert!(ehci < uhci, "the master comes first: {args:?}");
    assert!(
        args[uhci].contains(r#""masterbus":"usb.0","firstport":4"#),
        "{}",
        args[uhci]
    );
    // A boot menu's timeout counts only when the menu is on; a disabled menu is passed on.
    let def = full("pc", "<bootmenu enable='no'/>", "", "");
    let args = build(&def, &ctx(true)).unwrap().args;
    assert!(args.contains(&"menu=off,strict=on".to_string()), "{args:?}");
    // An RNG rate without a period is per second.
    let def = full(
        "pc",
        "",
        "",
        "<rng model='virtio'><rate bytes='100'/><backend model='builtin'/></rng>",
    );
    let args = build(&def, &ctx(true)).unwrap().args.join(" ");
    assert!(args.contains(r#""max-bytes":100,"period":1000"#), "{args}");
    // An empty <genid/> gets a generation ID at define, which the command line carries.
    let def = parse_domain(
        "<domain type='qemu'><name>t</name><genid/><memory>131072</memory>\
         <os><type>hvm</type></os></domain>",
    )
    .unwrap();
    let genid = def.genid.clone().expect("generated");
    let args = build(&def, &ctx(true)).unwrap().args.join(" ");
    assert!(args.contains(&format!(r#""guid":"{genid}""#)), "{args}");
}

#[test]
fn acpi_indexes_are_for_distinct_pci_devices() {
    let virtio = |dev: &str, index: u32| {
        format!(
            "<disk type='file'><source file='/{dev}.img'/><target dev='{dev}' bus='virtio'/>\
             <acpi index='{index}'/></disk>"
        )
    };
    let def = domain("qemu", "", &virtio("vda", 7));
    let args = build(&def, &ctx(true)).unwrap().args.join(" ");
    assert!(args.contains(r#""acpi-index":7"#), "{args}");
    let def = domain(
        "qemu",
        "",
        "<disk type='file'><source file='/a.img'/><target dev='hda' bus='ide'/>\
         <acpi index='3'/></disk>",
    );
    let err = build(&def, &ctx(true)).unwrap_err().to_string();
    assert!(err.contains("<acpi index='3'>: only PCI devices"), "{err}");
    let def = domain(
        "qemu",
        "",
        &format!("{}{}", virtio("vda", 5), virtio("vdb", 5)),
    );
    let err = build(&def, &ctx(true)).unwrap_err().to_string();
    assert!(err.contains("used by more than one device"), "{err}");
}

#[test]
fn start_time_host_work_is_refused() {
    let def = domain(
        "qemu",
        "",
        "<disk type='file'><driver name='qemu' type='qcow2'/><source file='/a.qcow2'/>\
         <target dev='vda' bus='virtio'/><transient/></disk>",
    );
    let err = build(&def, &ctx(true)).unwrap_err().to_string();
    assert!(err.contains("<transient/> on disk 'vda'"), "{err}");
    let def = domain("qemu", "", "<watchdog model='ib700' action='dump'/>");
    let err = build(&def, &ctx(true)).unwrap_err().to_string();
    assert!(err.contains("<watchdog action='dump'>"), "{err}");
}

#[test]
fn directories_are_read_only_fat_images() {
    let dir = |extra: &str| {
        domain(
            "qemu",
            "",
            &format!(
                "<disk type='dir' device='disk'>{extra}<source dir='/srv/files'/>\
                 <target dev='vda' bus='virtio'/></disk>"
            ),
        )
    };
    let err = build(&dir(""), &ctx(true)).unwrap_err().to_string();
    assert!(err.contains("must be <readonly/>"), "{err}");
    let err = build(
        &dir("<driver name='qemu' type='qcow2'/><readonly/>"),
        &ctx(true),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("FAT image"), "{err}");
    let args = build(&dir("<readonly/>"), &ctx(true))
        .unwrap()
        .args
        .join(" ");
    assert!(
        args.contains(r#"{"driver":"vvfat","dir":"/srv/files","floppy":false,"rw":false,"#),
        "{args}"
    );
}
