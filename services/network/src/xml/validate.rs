//! Rules across elements, checked after the model is built: libvirt's
//! `virNetworkDefParseXML` tail (what each forward mode allows) and the parts of the bridge
//! driver's `networkValidate` that need no host state (one DHCP per address family, no
//! addresses or DNS on networks whose bridge is not ours).

use virtplane_xml::{Node, XmlError};

use super::forward::ForwardMode;
use super::network::NetworkDef;

/// Longest Linux interface name (IFNAMSIZ less the NUL).
pub const MAX_IFNAME: usize = 15;

impl NetworkDef {
    /// Checks the rules spanning several elements.
    pub fn validate(&self) -> Result<(), XmlError> {
        if let Some(c) = self.name.chars().find(|c| *c == '/' || *c == '\n') {
            return Err(XmlError::value(
                "<name>",
                self.name.as_str(),
                format!("a name without {c:?}"),
            ));
        }
        if let Some(b) = self.bridge.as_ref().and_then(|b| b.name.as_deref()) {
            check_ifname(b).map_err(|e| XmlError::value("<bridge> attribute 'name'", b, e))?;
        }
        if let Some(f) = &self.forward {
            for i in &f.interfaces {
                check_ifname(&i.dev).map_err(|e| {
                    XmlError::value("<forward>/<interface> attribute 'dev'", i.dev.as_str(), e)
                })?;
            }
        }
        self.validate_forward()?;
        self.validate_dhcp()?;
        self.validate_config_strings()?;
        Ok(())
    }

    /// Values that end up in dnsmasq's line-based files may not hold control characters
    /// (a newline, written as `&#10;` in XML, would start an option of its own there).
    fn validate_config_strings(&self) -> Result<(), XmlError> {
        let mut values: Vec<(&str, &str)> = Vec::new();
        if let Some(d) = &self.domain {
            values.push(("<domain> attribute 'name'", &d.name));
        }
        if let Some(dns) = &self.dns {
            for f in &dns.forwarders {
                if let Some(d) = &f.domain {
                    values.push(("<dns>/<forwarder> attribute 'domain'", d));
                }
            }
            for t in &dns.txts {
                values.push(("<dns>/<txt> attribute 'name'", &t.name));
                values.push(("<dns>/<txt> attribute 'value'", &t.value));
            }
            for r in &dns.srvs {
                for (what, v) in [
                    ("<dns>/<srv> attribute 'domain'", &r.domain),
                    ("<dns>/<srv> attribute 'target'", &r.target),
                ] {
                    if let Some(v) = v {
                        values.push((what, v));
                    }
                }
            }
            for h in &dns.hosts {
                for n in &h.hostnames {
                    values.push(("<dns>/<host>/<hostname>", n));
                }
            }
        }
        for ip in &self.ips {
            if let Some(t) = &ip.tftp_root {
                values.push(("<ip>/<tftp> attribute 'root'", t));
            }
            if let Some(d) = &ip.dhcp {
                if let Some(b) = &d.bootp {
                    values.push(("<ip>/<dhcp>/<bootp> attribute 'file'", &b.file));
                }
                for h in &d.hosts {
                    if let Some(n) = &h.name {
                        values.push(("<ip>/<dhcp>/<host> attribute 'name'", n));
                    }
                }
            }
        }
        for (location, value) in values {
            if value.chars().any(char::is_control) {
                return Err(XmlError::value(
                    location,
                    value.escape_debug().to_string(),
                    "text without control characters (newlines, tabs)",
                ));
            }
        }
        Ok(())
    }

    fn validate_forward(&self) -> Result<(), XmlError> {
        let Some(fwd) = &self.forward else {
            return Ok(());
        };
        let mode = fwd.mode.as_str();
        let bridge = self.bridge.clone().unwrap_or_default();
        let has_unknown = |name: &str| {
            fwd.extra
                .nodes
                .iter()
                .any(|(_, n)| matches!(n, Node::Element(e) if e.name == name))
        };
        let has_pf = has_unknown("pf");
        let has_pci = has_unknown("address");
        let bad = |location: &str, reason: String| Err(XmlError::invalid(location, reason));
        match fwd.mode {
            ForwardMode::Nat | ForwardMode::Route | ForwardMode::Open => {
                if self.ips.is_empty() {
                    return bad(
                        "<forward>",
                        format!("{mode} forwarding requested, but no <ip> address provided"),
                    );
                }
                if fwd.interfaces.len() > 1 {
                    return bad(
                        "<forward>/<interface>",
                        "multiple forwarding interfaces specified, only one is supported".into(),
                    );
                }
                if fwd.mode == ForwardMode::Open && !fwd.interfaces.is_empty() {
                    return bad(
                        "<forward> attribute 'dev'",
                        "a forward dev is not allowed with forward mode='open'".into(),
                    );
                }
            }
            ForwardMode::Bridge
            | ForwardMode::Private
            | ForwardMode::Vepa
            | ForwardMode::Passthrough
            | ForwardMode::Hostdev => {
                if fwd.mode != ForwardMode::Bridge {
                    if bridge.name.is_some() {
                        return bad(
                            "<bridge> attribute 'name'",
                            format!("a bridge name is not allowed in {mode} mode"),
                        );
                    }
                    if bridge.mac_table_manager.is_some() {
                        return bad(
                            "<bridge> attribute 'macTableManager'",
                            format!("macTableManager is not allowed in {mode} mode"),
                        );
                    }
                }
                if bridge.delay.is_some_and(|d| d > 0)
                    || bridge.stp.is_some()
                    || bridge.zone.is_some()
                {
                    return bad(
                        "<bridge>",
                        format!(
                            "bridge delay/stp/zone options are only allowed in route, nat, open \
                             and isolated mode, not in {mode}"
                        ),
                    );
                }
                if bridge.name.is_some() && (!fwd.interfaces.is_empty() || has_pf) {
                    return bad(
                        "<forward>",
                        format!(
                            "a network with forward mode='{mode}' can specify a bridge name or a \
                             forward dev, but not both"
                        ),
                    );
                }
                if self.mtu.is_some() {
                    return bad(
                        "<mtu>",
                        format!(
                            "an mtu is only allowed in open, route, nat and isolated mode, not \
                             in {mode}"
                        ),
                    );
                }
                // networkValidate: only the driver's own bridge gets addresses and services.
                let unsupported = |what: &str| {
                    bad(
                        what,
                        format!("not supported in a network with forward mode='{mode}'"),
                    )
                };
                if self.mac.is_some() {
                    return unsupported("<mac>");
                }
                if !self.ips.is_empty() {
                    return unsupported("<ip>");
                }
                if self.dns.as_ref().is_some_and(|d| {
                    !(d.txts.is_empty() && d.hosts.is_empty() && d.srvs.is_empty())
                }) {
                    return unsupported("<dns>");
                }
                if self.domain.is_some() {
                    return unsupported("<domain>");
                }
                let bandwidth_ok = fwd.mode == ForwardMode::Bridge && bridge.name.is_some();
                let has_bandwidth = self.kept.iter().any(|e| e.name == "bandwidth");
                if has_bandwidth && !bandwidth_ok {
                    return unsupported("<bandwidth>");
                }
            }
        }
        if fwd.mode == ForwardMode::Hostdev
            && let Some(i) = fwd.interfaces.first()
        {
            return bad(
                "<forward>/<interface>",
                format!(
                    "hostdev networks list their devices by PCI address, not by network device \
                     name ('{}')",
                    i.dev
                ),
            );
        }
        if has_pci && fwd.mode != ForwardMode::Hostdev {
            return bad(
                "<forward>/<address>",
                format!(
                    "a device pool of PCI addresses is only supported with forward \
                     mode='hostdev', not '{mode}'"
                ),
            );
        }
        if usize::from(has_pf) + usize::from(!fwd.interfaces.is_empty()) + usize::from(has_pci) > 1
        {
            return bad(
                "<forward>",
                "<address>, <interface> and <pf> elements are mutually exclusive".into(),
            );
        }
        Ok(())
    }

    fn validate_dhcp(&self) -> Result<(), XmlError> {
        for (v4, family) in [(true, "IPv4"), (false, "IPv6")] {
            let with_dhcp: Vec<_> = self
                .ips
                .iter()
                .filter(|i| i.is_ipv4() == v4 && i.has_dhcp())
                .collect();
            if let Some(second) = with_dhcp.get(1) {
                return Err(XmlError::invalid(
                    format!("<ip address='{}'>/<dhcp>", second.address),
                    format!(
                        "multiple {family} dhcp sections found -- dhcp is supported only for a \
                         single {family} address on each network"
                    ),
                ));
            }
        }
        // dnsmasq refuses a DHCPv6 range on a subnet shorter than /64 ("prefix length must
        // be at least 64"): say so at define rather than when the network starts.
        for ip in self.ipv6s().filter(|i| i.has_dhcp()) {
            if ip.prefix_len() < 64 {
                return Err(XmlError::invalid(
                    format!("<ip address='{}'> attribute 'prefix'", ip.address),
                    format!(
                        "DHCPv6 needs a prefix of at least 64 (dnsmasq's limit), not {}",
                        ip.prefix_len()
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// The kernel's rules for an interface name (`dev_valid_name`), with libvirt's `%d`
/// template allowed.
pub fn check_ifname(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." {
        return Err("a Linux interface name".into());
    }
    if name.len() > MAX_IFNAME {
        return Err(format!("an interface name of at most {MAX_IFNAME} bytes"));
    }
    // The kernel refuses '/', ':' and whitespace; quotes and backslashes could not be
    // written into an nftables rule.
    if name
        .chars()
        .any(|c| matches!(c, '/' | ':' | '"' | '\'' | '\\') || c.is_whitespace() || c.is_control())
    {
        return Err("an interface name without '/', ':', quotes, backslashes or whitespace".into());
    }
    if name.matches('%').count() > usize::from(name.contains("%d")) {
        return Err("an interface name with at most one '%d' template and no other '%'".into());
    }
    Ok(())
}
