//! Domain-level unit tests; per-concern tests live next to their code.

use super::*;

const SECURE: FormatOptions = FormatOptions {
    secure: true,
    live_id: None,
};

fn doc(body: &str) -> String {
    format!(
        "<domain type='kvm'><name>vm</name><uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>\
         <memory>1024</memory><os><type>hvm</type></os>{body}</domain>"
    )
}

/// Parses, checks the round trip and returns the formatted text.
fn round_trip(xml: &str) -> (DomainDef, String) {
    let def = parse_domain(xml).unwrap();
    let text = def.to_xml(&SECURE);
    let again = parse_domain(&text).unwrap();
    assert_eq!(again, def, "{text}");
    assert_eq!(again.to_xml(&SECURE), text);
    (def, text)
}

#[test]
fn formats_like_virsh_dumpxml() {
    let (_, text) = round_trip(&doc(
        "<devices><emulator>/usr/bin/qemu</emulator></devices>",
    ));
    assert_eq!(
        text,
        "<domain type='kvm'>\n  <name>vm</name>\n  \
         <uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>\n  \
         <memory unit='KiB'>1024</memory>\n  <vcpu>1</vcpu>\n  <os>\n    <type>hvm</type>\n  \
         </os>\n  <devices>\n    <emulator>/usr/bin/qemu</emulator>\n  </devices>\n</domain>\n"
    );
}

#[test]
fn stray_text_and_comments_in_modelled_elements_are_kept() {
    let (def, text) = round_trip(&doc(
        "<devices><!-- note --><disk><target dev='vda'/>stray</disk></devices>",
    ));
    assert!(text.contains("<!-- note -->"), "{text}");
    assert!(text.contains("stray"), "{text}");
    // Text and comments are content, not elements: nothing to report.
    assert!(def.unknown_elements().is_empty());
}

#[test]
fn unknown_paths_are_reported_once() {
    let (def, _) = round_trip(&doc(
        "<devices><hostdev mode='subsystem'/><hostdev mode='capabilities'/>\
         <disk x='1'><target dev='vda' y='2'/></disk></devices>",
    ));
    assert_eq!(
        def.unknown_elements(),
        [
            "domain/devices/disk/target/@y",
            "domain/devices/disk/@x",
            "domain/devices/hostdev"
        ]
    );
}

#[test]
fn qemu_prefix_bound_elsewhere_is_rebound_locally() {
    // As in libvirt's qemu-ns-domain-commandline-ns0 test.
    let xml = "<domain type='qemu' xmlns:qemu='urn:dummy'><name>vm</name><memory>1024</memory>\
        <os><type>hvm</type></os>\
        <ns0:commandline xmlns:ns0='http://libvirt.org/schemas/domain/qemu/1.0'>\
        <ns0:arg value='A'/></ns0:commandline></domain>";
    let (def, text) = round_trip(xml);
    assert_eq!(def.qemu_commandline.unwrap().args, ["A"]);
    assert!(
        text.starts_with("<domain type='qemu' xmlns:qemu='urn:dummy'>"),
        "{text}"
    );
    assert!(
        text.contains(&format!("<qemu:commandline xmlns:qemu='{QEMU_NS}'>")),
        "{text}"
    );
}

#[test]
fn qemu_namespace_is_declared_for_other_qemu_elements() {
    let xml = format!(
        "<domain type='kvm' xmlns:qemu='{QEMU_NS}'><name>vm</name><memory>1024</memory>\
         <os><type>hvm</type></os><qemu:capabilities><qemu:add capability='x'/>\
         </qemu:capabilities></domain>"
    );
    let (def, text) = round_trip(&xml);
    assert!(!def.has_qemu_commandline());
    assert!(text.starts_with(&format!("<domain type='kvm' xmlns:qemu='{QEMU_NS}'>")));
    assert_eq!(def.unknown_elements(), ["domain/qemu:capabilities"]);
    // An unused declaration is dropped, not carried along.
    let unused = format!(
        "<domain type='kvm' xmlns:qemu='{QEMU_NS}'><name>vm</name><memory>1024</memory>\
         <os><type>hvm</type></os></domain>"
    );
    let (_, text) = round_trip(&unused);
    assert!(!text.contains("xmlns"), "{text}");
}

#[test]
fn adding_a_commandline_declares_the_namespace() {
    let mut def = parse_domain(&doc("")).unwrap();
    def.qemu_commandline = Some(QemuCommandline {
        args: vec!["-no-hpet".into()],
        ..Default::default()
    });
    let text = def.to_xml(&FormatOptions {
        secure: false,
        live_id: Some(3),
    });
    assert!(
        text.starts_with(&format!(
            "<domain type='kvm' id='3' xmlns:qemu='{QEMU_NS}'>"
        )),
        "{text}"
    );
    assert_eq!(parse_domain(&text).unwrap(), def);
}

#[test]
fn devices_added_in_code_are_formatted() {
    let mut def = parse_domain(&doc("")).unwrap();
    def.devices.disks.push(Disk {
        disk_type: "file".into(),
        source: Some(DiskSource {
            file: Some("/img/a.qcow2".into()),
            ..Default::default()
        }),
        target: DiskTarget {
            dev: "vda".into(),
            bus: Some("virtio".into()),
            ..Default::default()
        },
        ..Default::default()
    });
    def.validate().unwrap();
    let text = def.to_xml(&SECURE);
    assert!(text.contains(
        "    <disk type='file' device='disk'>\n      <source file='/img/a.qcow2'/>\n      \
         <target dev='vda' bus='virtio'/>\n    </disk>\n"
    ));
    assert_eq!(parse_domain(&text).unwrap(), def);
}

#[test]
fn validate_catches_bad_edits() {
    let mut def = parse_domain(&doc("")).unwrap();
    def.vcpu.max = 0;
    assert!(def.validate().unwrap_err().to_string().contains("<vcpu>"));
    def.vcpu.max = 2;
    def.vcpu.current = Some(3);
    assert!(
        def.validate()
            .unwrap_err()
            .to_string()
            .contains("'current'")
    );
    def.vcpu.current = None;
    def.memory_kib = 0;
    assert!(def.validate().unwrap_err().to_string().contains("<memory>"));
    def.memory_kib = 10;
    def.uuid = "C7A5FDBD-EDAF-9455-926A-D65C16DB1809".into();
    assert!(def.validate().unwrap_err().to_string().contains("<uuid>"));
}

#[test]
fn error_messages_read_well() {
    let cases = [
        (
            XmlError::TooLarge {
                what: "domain",
                size: 5,
                limit: 4,
            },
            "domain XML is 5 bytes; at most 4 bytes are allowed",
        ),
        (
            XmlError::Malformed {
                line: 2,
                column: 7,
                message: "boom".into(),
            },
            "malformed XML at line 2, column 7: boom",
        ),
        (XmlError::missing("<name>"), "missing <name>"),
        (
            XmlError::value("<vcpu>", "abc", "a positive integer"),
            "invalid value 'abc' for <vcpu>: expected a positive integer",
        ),
    ];
    for (err, want) in cases {
        assert_eq!(err.to_string(), want);
    }
}

#[test]
fn effective_values() {
    let mut def = parse_domain(&doc("")).unwrap();
    assert_eq!(def.effective_current_memory_kib(), 1024);
    def.current_memory_kib = Some(512);
    assert_eq!(def.effective_current_memory_kib(), 512);
    assert_eq!(def.vcpu.effective_current(), 1);
}

#[test]
fn any_qemu_namespace_element_is_passthrough() {
    let base = |extra: &str, ns: &str| {
        format!(
            "<domain type='kvm' {ns}><name>vm</name><memory>1024</memory><vcpu>1</vcpu>\
             <os><type>hvm</type></os>{extra}</domain>"
        )
    };
    let qemu = "xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'";
    let caps = "<qemu:capabilities><qemu:add capability='blockdev'/></qemu:capabilities>";
    assert!(
        parse_domain(&base(caps, qemu))
            .unwrap()
            .has_qemu_passthrough()
    );
    let other_prefix = "<q:override><q:device alias='x'/></q:override>";
    let q = "xmlns:q='http://libvirt.org/schemas/domain/qemu/1.0'";
    assert!(
        parse_domain(&base(other_prefix, q))
            .unwrap()
            .has_qemu_passthrough()
    );
    let cmdline = "<qemu:commandline><qemu:arg value='-S'/></qemu:commandline>";
    assert!(
        parse_domain(&base(cmdline, qemu))
            .unwrap()
            .has_qemu_passthrough()
    );
    // Someone else's namespace is not passthrough, even with a qemu-looking name.
    let foreign = "<x:capabilities/>";
    let x = "xmlns:x='http://example.org/ns'";
    assert!(
        !parse_domain(&base(foreign, x))
            .unwrap()
            .has_qemu_passthrough()
    );
    assert!(!parse_domain(&base("", "")).unwrap().has_qemu_passthrough());
}

/// The settings libvirt writes for firmware, power management, CPU and platform devices,
/// controllers and virtio tuning are modelled: nothing is left unknown, and they survive a
/// round trip.
#[test]
fn platform_and_tuning_settings_are_modelled() {
    let xml = "<domain type='kvm'><name>vm</name>\
        <uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>\
        <genid>E9392370-2917-565E-692B-D057F46512D6</genid><memory>1024</memory>\
        <os><type>hvm</type><loader type='pflash' stateless='no'>/c.fd</loader>\
        <nvram template='/t.fd'>/v.fd</nvram><acpi><table type='slic'>/s.dat</table></acpi>\
        <bootmenu enable='yes' timeout='500'/><bios useserial='yes' rebootTimeout='-1'/></os>\
        <features><apic eoi='on'/><ioapic driver='qemu'/>\
        <smm state='on'><tseg unit='MiB'>48</tseg></smm></features>\
        <cpu mode='maximum'><cache level='3' mode='emulate'/>\
        <maxphysaddr mode='emulate' bits='42'/></cpu>\
        <clock offset='utc'><timer name='tsc' frequency='1000000'/>\
        <timer name='rtc' track='guest'/></clock>\
        <pm><suspend-to-mem enabled='no'/><suspend-to-disk enabled='yes'/></pm>\
        <devices>\
        <disk type='file'><driver name='qemu' type='raw' error_policy='stop' \
        rerror_policy='report' ioeventfd='on' event_idx='off' copy_on_read='on' \
        detect_zeroes='unmap' queues='2' queue_size='256' iommu='on'/>\
        <source file='/a.img'/><target dev='sda' bus='scsi' tray='closed'/>\
        <wwn>5000c50015ea71ad</wwn><vendor>V</vendor><product>P</product></disk>\
        <controller type='pci' index='1' model='pcie-root-port'><model name='ioh3420'/>\
        <target chassis='1' port='0x10' hotplug='off'/></controller>\
        <controller type='pci' index='2' model='pcie-expander-bus'>\
        <target busNr='254'><node>0</node></target></controller>\
        <controller type='pci' index='0' model='pcie-root'><pcihole64 unit='KiB'>1048576</pcihole64></controller>\
        <controller type='usb' index='0' model='ich9-uhci1'><master startport='0'/>\
        <address type='pci' slot='4'/></controller>\
        <controller type='virtio-serial' ports='4' vectors='2'><driver ats='on'/></controller>\
        <controller type='scsi' model='virtio-scsi'><driver queues='2' cmd_per_lun='8' \
        max_sectors='16' ioeventfd='off' iothread='1'/></controller>\
        <interface type='user'><model type='virtio'/><driver name='vhost' txmode='timer' \
        queues='1' rx_queue_size='256' tx_queue_size='256' rss='on' rss_hash_report='on'/>\
        <rom bar='on' file='/r.rom'/><address type='pci' slot='5'/></interface>\
        <serial type='tcp'><source host='h' service='1'/><protocol type='telnet'/></serial>\
        <parallel type='null'/>\
        <input type='mouse' bus='virtio'><driver packed='on'/></input>\
        <graphics type='vnc'><audio id='1'/></graphics><audio id='1' type='none' timerPeriod='5'/>\
        <video><driver name='qemu' ats='on'/><model type='qxl' vram64='1024'/></video>\
        <memballoon model='virtio' freePageReporting='on'><stats period='5'/>\
        <driver page_per_vq='on'/></memballoon>\
        <rng model='virtio'><rate bytes='10' period='100'/><backend model='builtin'/>\
        <driver iommu='off'/></rng><panic model='isa'/></devices></domain>";
    let (def, text) = round_trip(xml);
    assert_eq!(def.unknown_elements(), Vec::<String>::new(), "{text}");
    assert_eq!(
        def.genid.as_deref(),
        Some("e9392370-2917-565e-692b-d057f46512d6")
    );
    assert_eq!(def.os.bootmenu.as_ref().unwrap().timeout, Some(500));
    assert_eq!(def.os.bios.as_ref().unwrap().reboot_timeout, Some(-1));
    assert_eq!(
        def.pm.as_ref().unwrap().suspend_to_mem.as_deref(),
        Some("no")
    );
    let smm = def
        .features
        .as_ref()
        .unwrap()
        .items
        .iter()
        .find(|f| f.name == "smm");
    assert_eq!(smm.unwrap().tseg_kib, Some(48 * 1024));
    let d = &def.devices;
    assert_eq!(d.controllers[1].target.as_ref().unwrap().node, Some(0));
    assert_eq!(d.controllers[3].master_startport, Some(0));
    assert_eq!(d.memballoon.as_ref().unwrap().stats_period, Some(5));
    assert_eq!(d.disks[0].wwn.as_deref(), Some("5000c50015ea71ad"));
    // libvirt's order inside a device: <master> and <rom> before <address>.
    assert!(
        text.contains("<master startport='0'/>\n      <address"),
        "{text}"
    );
    assert!(
        text.contains("<rom bar='on' file='/r.rom'/>\n      <address"),
        "{text}"
    );
    assert!(
        text.contains("<target chassis='1' port='0x10' hotplug='off'/>"),
        "{text}"
    );
}

/// Values libvirt refuses when it reads them are refused at define too.
#[test]
fn libvirt_parse_errors_are_define_errors() {
    for (body, needle) in [
        (
            "<os><type>hvm</type><bootmenu enable='yes' timeout='65536'/></os>",
            "milliseconds from 0 to 65535",
        ),
        (
            "<os><type>hvm</type></os><devices><interface type='user'>\
             <driver queues='-5'/></interface></devices>",
            "'queues'",
        ),
        (
            "<os><type>hvm</type></os><devices><audio id='0' type='none'/></devices>",
            "'id'",
        ),
        (
            "<genid>not-a-guid</genid><os><type>hvm</type></os>",
            "<genid>",
        ),
    ] {
        let xml = format!("<domain type='kvm'><name>vm</name><memory>1024</memory>{body}</domain>");
        let err = parse_domain(&xml).unwrap_err().to_string();
        assert!(err.contains(needle), "{body}: {err}");
    }
}
