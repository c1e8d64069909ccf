//! Unit tests of the network model: defaults, validation messages, lossless unknown content,
//! the define-time defaults, `net-update` and ports. The libvirt corpus runs in
//! tests/xml_corpus.rs.

use super::*;

const UUID: &str = "81ff0d90-c91e-6742-64da-4a736edb9a9b";

fn net(body: &str) -> String {
    format!("<network><name>n</name><uuid>{UUID}</uuid>{body}</network>")
}

/// Parses, checks the round trip and returns the model and formatted text.
fn round_trip(xml: &str) -> (NetworkDef, String) {
    let def = parse_network(xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    let text = format_network(&def);
    let again = parse_network(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(again, def, "{text}");
    assert_eq!(format_network(&again), text);
    (def, text)
}

fn err(xml: &str) -> String {
    parse_network(xml).unwrap_err().to_string()
}

const DEFAULT_NET: &str = "<network><name>default</name>\
    <forward mode='nat'/><bridge name='virbr0' stp='on' delay='0'/>\
    <ip address='192.168.122.1' netmask='255.255.255.0'><dhcp>\
    <range start='192.168.122.2' end='192.168.122.254'/></dhcp></ip></network>";

#[test]
fn default_network_is_modelled_and_formatted_like_libvirt() {
    let (def, text) = round_trip(DEFAULT_NET);
    assert_eq!(def.forward_mode(), "nat");
    assert_eq!(def.bridge_name(), Some("virbr0"));
    assert_eq!(def.ips[0].prefix_len(), 24);
    assert_eq!(def.ips[0].ranges().len(), 1);
    assert!(def.dns_enabled());
    assert_eq!(
        uuid::Uuid::parse_str(&def.uuid).unwrap().get_version_num(),
        4
    );
    let expected = format!(
        "<network>\n  <name>default</name>\n  <uuid>{}</uuid>\n  <forward mode='nat'/>\n  \
         <bridge name='virbr0' stp='on' delay='0'/>\n  \
         <ip address='192.168.122.1' netmask='255.255.255.0'>\n    <dhcp>\n      \
         <range start='192.168.122.2' end='192.168.122.254'/>\n    </dhcp>\n  </ip>\n\
         </network>\n",
        def.uuid
    );
    assert_eq!(text, expected);
}

#[test]
fn isolated_network_gets_bridge_defaults() {
    let (def, text) = round_trip(&net("<ip address='10.0.0.1' prefix='24'/>"));
    assert_eq!(def.forward_mode(), "none");
    assert!(def.forward.is_none());
    assert_eq!(def.bridge_name(), None);
    assert!(text.contains("<bridge stp='on' delay='0'/>"), "{text}");
    // A bridge-mode network has no bridge of its own: no defaults.
    let (def, text) = round_trip(&net("<forward mode='bridge'/><bridge name='br0'/>"));
    assert_eq!(def.forward_mode(), "bridge");
    assert!(text.contains("<bridge name='br0'/>"), "{text}");
}

#[test]
fn forward_dev_is_mirrored_as_interface() {
    let (def, text) = round_trip(&net(
        "<forward mode='route' dev='eth1'/><ip address='10.0.0.1' prefix='24'/>",
    ));
    assert_eq!(def.forward.as_ref().unwrap().dev(), Some("eth1"));
    assert!(
        text.contains("<forward dev='eth1' mode='route'>\n    <interface dev='eth1'/>"),
        "{text}"
    );
    let e = err(&net(
        "<forward mode='nat' dev='eth1'><interface dev='eth2'/></forward>\
         <ip address='10.0.0.1' prefix='24'/>",
    ));
    assert!(
        e.contains("must match the first <interface dev='eth2'/>"),
        "{e}"
    );
}

#[test]
fn nat_ranges_and_ports() {
    let (def, text) = round_trip(&net(
        "<forward mode='nat'><nat ipv6='yes'><address start='1.2.3.4' end='1.2.3.10'/>\
         <port start='500' end='1000'/></nat></forward><ip address='10.0.0.1' prefix='24'/>",
    ));
    let nat = def.forward.unwrap().nat.unwrap();
    assert_eq!(nat.port, Some((500, 1000)));
    assert_eq!(nat.ipv6, Some(true));
    assert!(
        text.contains("<address start='1.2.3.4' end='1.2.3.10'/>"),
        "{text}"
    );
    let e = err(&net(
        "<forward mode='nat'><nat><port start='1000' end='500'/></nat></forward>\
         <ip address='10.0.0.1' prefix='24'/>",
    ));
    assert!(e.contains("<forward>/<nat>/<port> attribute 'end'"), "{e}");
    let e = err(&net(
        "<forward mode='route'><nat/></forward><ip address='10.0.0.1' prefix='24'/>",
    ));
    assert!(
        e.contains("can only be used when <forward> 'mode' is 'nat'"),
        "{e}"
    );
    let e = err(&net(
        "<forward mode='nat'><nat><address start='1.2.3.4'/></nat></forward>\
         <ip address='10.0.0.1' prefix='24'/>",
    ));
    assert!(
        e.contains("missing <forward>/<nat>/<address> attribute 'end'"),
        "{e}"
    );
    // An empty <nat/> is dropped, as libvirt does.
    let (def, _) = round_trip(&net(
        "<forward mode='nat'><nat/></forward><ip address='10.0.0.1' prefix='24'/>",
    ));
    assert!(def.forward.unwrap().nat.is_none());
}

#[test]
fn forward_mode_rules() {
    let e = err(&net("<forward mode='nat'/>"));
    assert!(
        e.contains("nat forwarding requested, but no <ip> address"),
        "{e}"
    );
    let e = err(&net("<forward mode='tunnel'/>"));
    assert!(e.contains("<forward> attribute 'mode'"), "{e}");
    let e = err(&net(
        "<forward mode='open' dev='eth0'/><ip address='10.0.0.1' prefix='24'/>",
    ));
    assert!(e.contains("not allowed with forward mode='open'"), "{e}");
    let e = err(&net(
        "<forward mode='bridge'/><bridge name='br0' stp='on'/>",
    ));
    assert!(e.contains("delay/stp/zone options are only allowed"), "{e}");
    let e = err(&net(
        "<forward mode='bridge'/><bridge name='br0'/><ip address='10.0.0.1' prefix='24'/>",
    ));
    assert!(
        e.contains("<ip>: not supported in a network with forward mode='bridge'"),
        "{e}"
    );
    let e = err(&net("<forward mode='vepa'/><bridge name='br0'/>"));
    assert!(
        e.contains("a bridge name is not allowed in vepa mode"),
        "{e}"
    );
    let e = err(&net(
        "<forward mode='bridge' dev='eth0'/><bridge name='br0'/>",
    ));
    assert!(
        e.contains("a bridge name or a forward dev, but not both"),
        "{e}"
    );
    let e = err(&net(
        "<forward mode='bridge'/><bridge name='br0'/><mtu size='9000'/>",
    ));
    assert!(e.contains("<mtu>: an mtu is only allowed"), "{e}");
}

#[test]
fn ip_rules() {
    let e = err(&net(
        "<ip address='10.0.0.1' netmask='255.255.255.0' prefix='24'/>",
    ));
    assert!(
        e.contains("<ip> attribute 'prefix': an IP address cannot have both"),
        "{e}"
    );
    let e = err(&net("<ip address='10.0.0.1' prefix='33'/>"));
    assert!(e.contains("'33' for <ip> attribute 'prefix'"), "{e}");
    let e = err(&net("<ip family='ipv6' address='10.0.0.1'/>"));
    assert!(
        e.contains("family 'ipv6' specified for non-IPv6 address"),
        "{e}"
    );
    let e = err(&net("<ip address='2001:db8::1' prefix='64'/>"));
    assert!(
        e.contains("no family specified for non-IPv4 address"),
        "{e}"
    );
    let e = err(&net(
        "<ip family='ipv6' address='2001:db8::1' netmask='255.0.0.0'/>",
    ));
    assert!(e.contains("netmask not allowed for IPv6"), "{e}");
    let e = err(&net("<ip address='10.0.0.1' netmask='255.0.255.0'/>"));
    assert!(e.contains("contiguous"), "{e}");
    let e = err(&net("<ip address='nonsense'/>"));
    assert!(
        e.contains("invalid value 'nonsense' for <ip> attribute 'address'"),
        "{e}"
    );
    let e = err(&net(
        "<ip family='ipv6' address='2001:db8::1' prefix='64'><tftp root='/x'/></ip>",
    ));
    assert!(
        e.contains("<ip>/<tftp>: <tftp> is only supported in an IPv4"),
        "{e}"
    );
    let e = err(&net("<ip/>"));
    assert_eq!(e, "missing <ip> attribute 'address'");
    // The natural (class) prefix, as libvirt.
    let (def, text) = round_trip(&net("<ip address='10.24.10.1'/>"));
    assert_eq!(def.ips[0].prefix_len(), 8);
    assert!(text.contains("<ip address='10.24.10.1'/>"), "{text}");
}

#[test]
fn dhcp_rules() {
    let ip = |dhcp: &str| {
        net(&format!(
            "<ip address='192.168.1.1' prefix='24'><dhcp>{dhcp}</dhcp></ip>"
        ))
    };
    let e = err(&ip("<range start='192.168.2.2' end='192.168.2.9'/>"));
    assert!(
        e.contains("<ip>/<dhcp>/<range>: range 192.168.2.2 - 192.168.2.9 is not entirely within network 192.168.1.1/24"),
        "{e}"
    );
    let e = err(&ip("<range start='192.168.1.2' end='192.168.1.255'/>"));
    assert!(e.contains("is the broadcast address"), "{e}");
    let e = err(&ip("<range start='192.168.1.20' end='192.168.1.2'/>"));
    assert!(e.contains("is reversed"), "{e}");
    let e = err(&ip("<range start='192.168.1.2'/>"));
    assert!(
        e.contains("missing <ip>/<dhcp>/<range> attribute 'end'"),
        "{e}"
    );
    let e = err(&ip("<host mac='52:54:00:00:00:01'/>"));
    assert_eq!(e, "missing <ip>/<dhcp>/<host> attribute 'ip'");
    let e = err(&ip("<host ip='192.168.1.5'/>"));
    assert!(e.contains("must have a mac or name attribute"), "{e}");
    let e = err(&ip("<host mac='01:00:5e:00:00:01' ip='192.168.1.5'/>"));
    assert!(
        e.contains("<ip>/<dhcp>/<host> attribute 'mac'") && e.contains("unicast"),
        "{e}"
    );
    let e = err(&ip("<host name='-x' ip='192.168.1.5'/>"));
    assert!(e.contains("<ip>/<dhcp>/<host> attribute 'name'"), "{e}");
    let e = err(&ip("<host name='x' ip='2001:db8::5'/>"));
    assert!(
        e.contains("must match that of the <ip address='192.168.1.1'>"),
        "{e}"
    );
    let e = err(&ip(
        "<range start='192.168.1.2' end='192.168.1.9'><lease expiry='1'/></range>",
    ));
    assert!(e.contains("minimum lease time is 2 minutes"), "{e}");
    let e = err(&net(
        "<ip family='ipv6' address='2001:db8::1' prefix='64'><dhcp>\
         <host mac='52:54:00:00:00:01' name='a' ip='2001:db8::5'/></dhcp></ip>",
    ));
    assert!(e.contains("IPv6 static host definition"), "{e}");
    // Two IPv4 DHCP services.
    let e = err(&net(
        "<ip address='192.168.1.1' prefix='24'><dhcp><range start='192.168.1.2' end='192.168.1.9'/></dhcp></ip>\
         <ip address='192.168.2.1' prefix='24'><dhcp><range start='192.168.2.2' end='192.168.2.9'/></dhcp></ip>",
    ));
    assert!(
        e.contains("<ip address='192.168.2.1'>/<dhcp>: multiple IPv4 dhcp sections"),
        "{e}"
    );
    // DHCPv6 on a subnet shorter than /64 (dnsmasq refuses it).
    let e = err(&net(
        "<ip family='ipv6' address='2001:db8::1' prefix='48'><dhcp>\
         <range start='2001:db8::10' end='2001:db8::ff'/></dhcp></ip>",
    ));
    assert!(e.contains("DHCPv6 needs a prefix of at least 64"), "{e}");
    // Leases: default unit minutes, infinite written without a unit.
    let (def, text) = round_trip(&ip(
        "<range start='192.168.1.2' end='192.168.1.9'><lease expiry='10'/></range>\
         <host mac='52:54:00:AA:00:01' name='a' ip='192.168.1.5'><lease expiry='0' unit='hours'/></host>",
    ));
    let d = def.ips[0].dhcp.as_ref().unwrap();
    assert_eq!(d.ranges[0].lease.unwrap().dnsmasq(), "10m");
    assert_eq!(d.hosts[0].lease.unwrap().dnsmasq(), "infinite");
    assert_eq!(d.hosts[0].mac.as_deref(), Some("52:54:00:aa:00:01"));
    assert!(
        text.contains("<lease expiry='10' unit='minutes'/>"),
        "{text}"
    );
    assert!(text.contains("<lease expiry='0'/>"), "{text}");
}

#[test]
fn dns_rules() {
    let e = err(&net(
        "<dns enable='no'><host ip='10.0.0.5'><hostname>a</hostname></host></dns>",
    ));
    assert!(
        e.contains("a disabled DNS (enable='no') cannot have"),
        "{e}"
    );
    let e = err(&net("<dns><host ip='10.0.0.5'/></dns>"));
    assert_eq!(e, "missing <dns>/<host>/<hostname>");
    let e = err(&net("<dns><host><hostname>a</hostname></host></dns>"));
    assert_eq!(e, "missing <dns>/<host> attribute 'ip'");
    let e = err(&net("<dns><forwarder/></dns>"));
    assert!(e.contains("at least one of addr or domain"), "{e}");
    let e = err(&net("<dns><txt name='a b' value='x'/></dns>"));
    assert!(e.contains("<dns>/<txt> attribute 'name'"), "{e}");
    let e = err(&net(
        "<dns><srv service='name' protocol='tcp' port='1'/></dns>",
    ));
    assert!(e.contains("not permitted without a target"), "{e}");
    let e = err(&net("<dns><srv service='na.me' protocol='tcp'/></dns>"));
    assert!(e.contains("<dns>/<srv> attribute 'service'"), "{e}");
    let (def, text) = round_trip(&net(
        "<dns forwardPlainNames='no'><forwarder addr='8.8.8.8'/>\
         <forwarder domain='example.com' addr='8.8.4.4'/><forwarder domain='local'/>\
         <host ip='192.168.122.2'><hostname>myhost</hostname><hostname>alias</hostname></host>\
         <txt name='example' value='example value'/>\
         <srv service='name' protocol='tcp' target='.' port='1' priority='0' weight='10'/></dns>",
    ));
    let dns = def.dns.unwrap();
    assert_eq!(dns.forwarders.len(), 3);
    assert_eq!(dns.hosts[0].hostnames, ["myhost", "alias"]);
    assert_eq!(dns.srvs[0].priority, None);
    // libvirt's order: forwarders, txt, srv, host; domain before addr.
    let f = text
        .find("<forwarder domain='example.com' addr='8.8.4.4'/>")
        .unwrap();
    let t = text.find("<txt").unwrap();
    let s = text
        .find("<srv service='name' protocol='tcp' target='.' port='1' weight='10'/>")
        .unwrap();
    let h = text.find("<host ip='192.168.122.2'>").unwrap();
    assert!(f < t && t < s && s < h, "{text}");
    // An empty <dns/> is dropped, as libvirt does.
    let (def, _) = round_trip(&net("<dns/>"));
    assert!(def.dns.is_none());
}

#[test]
fn top_level_rules() {
    assert_eq!(err("<network/>"), "missing <name>");
    let e = err("<net><name>x</name></net>");
    assert!(e.contains("root element must be <network>"), "{e}");
    let e = err("<network><name>a/b</name></network>");
    assert!(e.contains("<name>"), "{e}");
    let e = err(&net("<uuid>x</uuid>"));
    assert!(e.contains("may appear only once"), "{e}");
    let e = err("<network><name>x</name><uuid>nonsense</uuid></network>");
    assert!(e.contains("invalid value 'nonsense' for <uuid>"), "{e}");
    let e = err(&net("<mac address='01:00:5e:00:00:01'/>"));
    assert!(e.contains("<mac> attribute 'address'"), "{e}");
    let e = err(&net("<bridge name='averyveryverylongname'/>"));
    assert!(e.contains("at most 15 bytes"), "{e}");
    let e = err(&net("<bridge name='br&quot;0'/>"));
    assert!(e.contains("quotes"), "{e}");
    let e = err(&net(
        "<forward mode='nat' dev='eth 0'/><ip address='10.0.0.1' prefix='24'/>",
    ));
    assert!(e.contains("<forward>/<interface> attribute 'dev'"), "{e}");
    // A newline would start a dnsmasq option of its own.
    let e = err(&net(
        "<dns><txt name='x' value='a&#10;dhcp-script=/bin/sh'/></dns>",
    ));
    assert!(e.contains("<dns>/<txt> attribute 'value'"), "{e}");
    let e = err(&net("<domain name='a&#10;b'/>"));
    assert!(e.contains("control characters"), "{e}");
    let e = err(&net("<bridge name='br0' stp='maybe'/>"));
    assert!(e.contains("<bridge> attribute 'stp'"), "{e}");
    let e = err(&net("<mtu size='big'/>"));
    assert!(e.contains("<mtu> attribute 'size'"), "{e}");
    let e = err("<!DOCTYPE network><network/>");
    assert!(e.contains("DOCTYPE"), "{e}");
}

#[test]
fn size_is_bounded() {
    let big = net(&" ".repeat(MAX_NETWORK_XML_BYTES));
    match parse_network(&big) {
        Err(XmlError::TooLarge { what, limit, .. }) => {
            assert_eq!(what, "network");
            assert_eq!(limit, MAX_NETWORK_XML_BYTES);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_content_survives_in_place() {
    let (def, text) = round_trip(&net(
        "<title>T</title><description>D &amp; more</description>\
         <metadata><app:x xmlns:app='urn:app'>1</app:x></metadata>\
         <route address='192.168.222.0' prefix='24' gateway='192.168.122.2'/>\
         <portgroup name='a'/><port isolated='yes'/>\
         <forward mode='nat' future='1'><interface dev='eth0' speed='10'/></forward>\
         <ip address='192.168.122.1' prefix='24'><!-- c --><dhcp>\
         <range start='192.168.122.2' end='192.168.122.9' x='y'><lease expiry='5' z='1'/></range>\
         <other/></dhcp></ip><gadget/>",
    ));
    assert_eq!(def.title.as_deref(), Some("T"));
    assert_eq!(def.description.as_deref(), Some("D & more"));
    for bit in [
        "<app:x xmlns:app='urn:app'>1</app:x>",
        "<forward dev='eth0' mode='nat' future='1'>",
        "<interface dev='eth0' speed='10'/>",
        "<!-- c -->",
        "<range start='192.168.122.2' end='192.168.122.9' x='y'>",
        "<lease expiry='5' unit='minutes' z='1'/>",
        "<other/>",
        "<gadget/>",
    ] {
        assert!(text.contains(bit), "{bit} in {text}");
    }
    // libvirt's order for the kept libvirt elements: port before the <ip>s, route and
    // portgroup after.
    let port = text.find("<port isolated").unwrap();
    let ip = text.find("<ip ").unwrap();
    let route = text.find("<route").unwrap();
    let pg = text.find("<portgroup").unwrap();
    assert!(port < ip && ip < route && route < pg, "{text}");
    let unknown = def.unknown_elements();
    for path in [
        "network/port",
        "network/route",
        "network/portgroup",
        "network/forward/@future",
        "network/ip/dhcp/other",
        "network/gadget",
    ] {
        assert!(unknown.contains(&path.to_string()), "{path} in {unknown:?}");
    }
}

#[test]
fn bridge_names_are_assigned_like_libvirt() {
    let mut def = parse_network(&net("<ip address='10.0.0.1' prefix='24'/>")).unwrap();
    assert_eq!(def.bridge_name(), None);
    assign_bridge_name(&mut def, &|n| n == "virbr0" || n == "virbr1");
    assert_eq!(def.bridge_name(), Some("virbr2"));
    // A name given in full stays.
    assign_bridge_name(&mut def, &|_| true);
    assert_eq!(def.bridge_name(), Some("virbr2"));
    // A template.
    let mut def = parse_network(&net(
        "<bridge name='lab%d'/><ip address='10.0.0.1' prefix='24'/>",
    ))
    .unwrap();
    assert_eq!(def.bridge_name(), None);
    assign_bridge_name(&mut def, &|n| n == "lab0");
    assert_eq!(def.bridge_name(), Some("lab1"));
    // Everything taken: stays unassigned.
    let mut def = parse_network(&net("<ip address='10.0.0.1' prefix='24'/>")).unwrap();
    assign_bridge_name(&mut def, &|_| true);
    assert_eq!(def.bridge_name(), None);
    // Bridge mode names an existing bridge; nothing to assign.
    let mut def = parse_network(&net("<forward mode='bridge' dev='eth0'/>")).unwrap();
    assign_bridge_name(&mut def, &|_| false);
    assert!(def.bridge.is_none());
}

#[test]
fn macs_are_assigned_once() {
    let mut def = parse_network(&net("<ip address='10.0.0.1' prefix='24'/>")).unwrap();
    assign_mac(&mut def);
    let mac = def.mac.clone().unwrap();
    assert!(mac.starts_with("52:54:00:"), "{mac}");
    assert!(virtplane_xml::values::mac(&mac).is_ok());
    assign_mac(&mut def);
    assert_eq!(def.mac.as_deref(), Some(mac.as_str()));
    let (again, _) = round_trip(&format_network(&def));
    assert_eq!(again.mac, def.mac);
    let mut bridged = parse_network(&net("<forward mode='bridge'/><bridge name='br0'/>")).unwrap();
    assign_mac(&mut bridged);
    assert!(bridged.mac.is_none());
}

#[test]
fn subnet_overlap_is_found() {
    let a = parse_network(&net("<ip address='192.168.122.1' prefix='24'/>")).unwrap();
    let b = parse_network(&net("<ip address='192.168.0.1' prefix='16'/>")).unwrap();
    let c = parse_network(&net("<ip address='192.168.123.1' prefix='24'/>")).unwrap();
    assert_eq!(
        a.subnet_overlap(&b),
        Some(("192.168.122.0/24".to_string(), "192.168.0.0/16".to_string()))
    );
    assert_eq!(a.subnet_overlap(&c), None);
    assert!(a.contains("192.168.122.77".parse().unwrap()));
    assert!(!a.contains("192.168.123.77".parse().unwrap()));
}

fn nat_with_hosts() -> NetworkDef {
    parse_network(&net(
        "<forward mode='nat'/><ip address='192.168.122.1' prefix='24'><dhcp>\
         <range start='192.168.122.2' end='192.168.122.254'/>\
         <host mac='52:54:00:00:00:01' name='a' ip='192.168.122.10'/></dhcp></ip>\
         <ip family='ipv6' address='2001:db8::1' prefix='64'/>",
    ))
    .unwrap()
}

#[test]
fn update_dhcp_hosts() {
    use UpdateCommand::*;
    let def = nat_with_hosts();
    let sec = UpdateSection::IpDhcpHost;
    let new = apply_update(
        &def,
        AddFirst,
        sec,
        None,
        "<host mac='52:54:00:00:00:02' name='b' ip='192.168.122.11'/>",
    )
    .unwrap();
    let hosts = new.ips[0].hosts();
    assert_eq!(hosts.len(), 2);
    assert_eq!(hosts[0].name.as_deref(), Some("b"));
    let e = apply_update(
        &new,
        AddLast,
        sec,
        Some(0),
        "<host mac='52:54:00:00:00:02' name='c' ip='192.168.122.12'/>",
    )
    .unwrap_err();
    assert!(matches!(e, UpdateError::Invalid(_)), "{e:?}");
    assert!(
        e.to_string()
            .contains("there is an existing dhcp host entry in network 'n' that matches"),
        "{e}"
    );
    // Modify finds by MAC.
    let new = apply_update(
        &new,
        Modify,
        sec,
        None,
        "<host mac='52:54:00:00:00:02' name='b2' ip='192.168.122.20'/>",
    )
    .unwrap();
    assert_eq!(
        new.ips[0].hosts()[0].ip,
        Some("192.168.122.20".parse().unwrap())
    );
    let e = apply_update(
        &new,
        Modify,
        sec,
        None,
        "<host mac='52:54:00:00:00:99' name='zz' ip='192.168.122.99'/>",
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("couldn't locate an existing dhcp host entry"),
        "{e}"
    );
    // Delete by name only.
    let new = apply_update(&new, Delete, sec, None, "<host name='a'/>").unwrap();
    assert_eq!(new.ips[0].hosts().len(), 1);
    // Index out of range; the IPv6 <ip> refuses a MAC.
    let e = apply_update(
        &new,
        AddLast,
        sec,
        Some(5),
        "<host mac='52:54:00:00:00:03' ip='192.168.122.3'/>",
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("no <ip> element found at index 5"),
        "{e}"
    );
    let e = apply_update(
        &new,
        AddLast,
        sec,
        Some(1),
        "<host mac='52:54:00:00:00:03' ip='2001:db8::3'/>",
    )
    .unwrap_err();
    assert!(matches!(e, UpdateError::Xml(_)), "{e:?}");
    // Adding outside the subnet's family and an invalid element.
    let e = apply_update(&new, AddLast, sec, None, "<range start='1' end='2'/>").unwrap_err();
    assert!(
        e.to_string()
            .contains("unexpected element <range>, expecting <host>"),
        "{e}"
    );
    // Deleting the last host of an <ip> without ranges drops the <dhcp>.
    let only_hosts = parse_network(&net(
        "<ip address='10.0.0.1' prefix='24'><dhcp><host name='x' ip='10.0.0.5'/></dhcp></ip>",
    ))
    .unwrap();
    let new = apply_update(&only_hosts, Delete, sec, None, "<host ip='10.0.0.5'/>").unwrap();
    assert!(new.ips[0].dhcp.is_none());
    assert!(!format_network(&new).contains("<dhcp"));
}

#[test]
fn update_dns_hosts_and_unsupported_sections() {
    use UpdateCommand::*;
    let def = nat_with_hosts();
    let sec = UpdateSection::DnsHost;
    let new = apply_update(
        &def,
        AddLast,
        sec,
        None,
        "<host ip='192.168.122.5'><hostname>web</hostname></host>",
    )
    .unwrap();
    assert_eq!(new.dns.as_ref().unwrap().hosts[0].hostnames, ["web"]);
    let e = apply_update(
        &new,
        AddLast,
        sec,
        None,
        "<host ip='192.168.122.5'><hostname>other</hostname></host>",
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("already at least one DNS HOST record"),
        "{e}"
    );
    let e = apply_update(
        &new,
        Modify,
        sec,
        None,
        "<host ip='192.168.122.5'><hostname>web</hostname></host>",
    )
    .unwrap_err();
    assert!(matches!(e, UpdateError::Unsupported(_)), "{e:?}");
    let gone = apply_update(
        &new,
        Delete,
        sec,
        None,
        "<host><hostname>web</hostname></host>",
    )
    .unwrap();
    assert!(gone.dns.is_none());
    let e = apply_update(
        &def,
        Delete,
        sec,
        None,
        "<host><hostname>web</hostname></host>",
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("couldn't locate a matching DNS HOST record in network n"),
        "{e}"
    );
    // A disabled DNS refuses records (the result is validated like a definition).
    let off = parse_network(&net(
        "<dns enable='no'/><ip address='10.0.0.1' prefix='24'/>",
    ))
    .unwrap();
    let e = apply_update(
        &off,
        AddLast,
        sec,
        None,
        "<host ip='10.0.0.5'><hostname>x</hostname></host>",
    )
    .unwrap_err();
    assert!(e.to_string().contains("disabled DNS"), "{e}");
    for section in UpdateSection::ALL {
        if matches!(section, UpdateSection::IpDhcpHost | UpdateSection::DnsHost) {
            continue;
        }
        let e = apply_update(&def, AddLast, section, None, "<x/>").unwrap_err();
        match e {
            UpdateError::Unsupported(m) => assert!(m.contains(section.as_str()), "{m}"),
            other => panic!("{section}: {other:?}"),
        }
        assert_eq!(UpdateSection::parse(section.as_str()), Some(section));
    }
    assert_eq!(UpdateCommand::parse("add"), Some(AddLast));
    assert_eq!(UpdateCommand::parse("add-first"), Some(AddFirst));
    assert_eq!(UpdateCommand::parse("replace"), None);
}

#[test]
fn ports_round_trip() {
    let xml = "<networkport>\n  <uuid>5d744f21-ba4a-4d6e-bdb2-30a35ff3207d</uuid>\n  <owner>\n    \
        <name>myguest</name>\n    <uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>\n  </owner>\n  \
        <mac address='52:54:00:7b:35:93'/>\n  <bandwidth>\n    <inbound average='1000'/>\n  \
        </bandwidth>\n  <plug type='network' bridge='virbr0'/>\n</networkport>\n";
    let port = parse_port(xml).unwrap();
    assert_eq!(port.owner_name, "myguest");
    assert_eq!(port.bridge.as_deref(), Some("virbr0"));
    assert_eq!(port.plug_type.as_deref(), Some("network"));
    assert_eq!(format_port(&port), xml);
    let made = PortDef::new(
        "5d744f21-ba4a-4d6e-bdb2-30a35ff3207d",
        "myguest",
        "c7a5fdbd-edaf-9455-926a-d65c16db1809",
        "52:54:00:7b:35:93",
        "virbr0",
    );
    assert_eq!(parse_port(&format_port(&made)).unwrap(), made);
    let e =
        parse_port("<networkport><uuid>5d744f21-ba4a-4d6e-bdb2-30a35ff3207d</uuid></networkport>")
            .unwrap_err()
            .to_string();
    assert_eq!(e, "missing <owner>");
    let e = parse_port(
        "<networkport><uuid>5d744f21-ba4a-4d6e-bdb2-30a35ff3207d</uuid><owner><name>g</name>\
         <uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid></owner><mac address='52:54:00:7b:35:93'/>\
         <plug type='bridge'/></networkport>",
    )
    .unwrap_err()
    .to_string();
    assert_eq!(e, "missing <plug> attribute 'bridge'");
}
