//! dnsmasq's configuration for one network, in libvirt's layout
//! (`networkDnsmasqConfContents`; compare libvirt's tests/networkxml2confdata), plus the
//! contents of the two files it names: the DHCP hosts file (`dhcp-hostsfile`, static
//! leases) and the additional hosts file (`addn-hosts`, DNS host records). Both are
//! written even when empty and reread on SIGHUP, so `net-update` of hosts needs no
//! restart.
//!
//! Differences from libvirt, on purpose: `no-hosts` (never serve the host's /etc/hosts),
//! a `dhcp-leasefile` of our own instead of libvirt's lease helper script, a header naming
//! virtplane, and no `<dnsmasq:options>` passthrough (raw options would let a network
//! definition run programs as root through `dhcp-script`; they stay in the XML as unknown
//! content). The host's /etc/resolv.conf is still read for upstream servers unless the
//! network has forwarders or is isolated, as libvirt does: that is how NAT guests resolve
//! outside names.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::RenderError;
use crate::xml::{IpDef, NetworkDef, prefix_netmask, ptr_domain, range_size};

/// Where the files of one network's dnsmasq live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsmasqPaths {
    pub pid_file: PathBuf,
    pub lease_file: PathBuf,
    /// `dhcp-hostsfile`: one static DHCP host a line.
    pub hosts_file: PathBuf,
    /// `addn-hosts`: DNS host records, /etc/hosts format.
    pub addn_hosts_file: PathBuf,
}

impl DnsmasqPaths {
    /// libvirt's layout in one directory: `DIR/STEM.pid`, `.leases`, `.hostsfile`,
    /// `.addnhosts`.
    pub fn in_dir(dir: &Path, stem: &str) -> Self {
        DnsmasqPaths {
            pid_file: dir.join(format!("{stem}.pid")),
            lease_file: dir.join(format!("{stem}.leases")),
            hosts_file: dir.join(format!("{stem}.hostsfile")),
            addn_hosts_file: dir.join(format!("{stem}.addnhosts")),
        }
    }
}

/// What to write for one network's dnsmasq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsmasqConfig {
    /// The configuration file (`--conf-file`).
    pub conf: String,
    /// The DHCP hosts file, when the configuration names one (the network serves DHCP).
    pub hosts: Option<String>,
    /// The additional hosts file, when the configuration names one (DNS is enabled).
    pub addn_hosts: Option<String>,
}

impl DnsmasqConfig {
    /// The hosts files with their paths, to write before dnsmasq starts or is reloaded.
    pub fn hosts_files(&self, paths: &DnsmasqPaths) -> Vec<(PathBuf, String)> {
        let mut v = Vec::new();
        if let Some(h) = &self.hosts {
            v.push((paths.hosts_file.clone(), h.clone()));
        }
        if let Some(h) = &self.addn_hosts {
            v.push((paths.addn_hosts_file.clone(), h.clone()));
        }
        v
    }
}

/// Whether the network runs a dnsmasq at all (libvirt's `networkStartDhcpDaemon`): it
/// must have a bridge of its own and an address, and serve DHCP or DNS.
pub fn needs_dnsmasq(def: &NetworkDef) -> bool {
    def.has_own_bridge()
        && !def.ips.is_empty()
        && (def.dns_enabled() || def.ips.iter().any(IpDef::has_dhcp))
}

/// Renders the configuration and hosts files of `def`'s dnsmasq.
pub fn render(def: &NetworkDef, paths: &DnsmasqPaths) -> Result<DnsmasqConfig, RenderError> {
    if !def.has_own_bridge() {
        return Err(RenderError::NotOurs {
            network: def.name.clone(),
            mode: def.forward_mode().to_string(),
        });
    }
    let bridge = def
        .bridge_name()
        .ok_or_else(|| RenderError::NoBridge(def.name.clone()))?;
    let mut w = Writer {
        network: &def.name,
        out: String::new(),
    };
    let want_dns = def.dns_enabled();
    let dns = def.dns.clone().unwrap_or_default();

    w.line(format_args!(
        "## dnsmasq configuration of virtplane network '{}'.\n\
         ## Generated: changes are lost when the network is started or updated;\n\
         ## change the network's XML instead (virtctl net-edit, net-update).",
        w.clean("network name", &def.name)?
    ));
    w.raw("strict-order");
    w.raw("no-hosts");
    if !want_dns {
        w.raw("port=0");
    }
    if want_dns && !dns.forwarders.is_empty() {
        let mut no_resolv = false;
        for f in &dns.forwarders {
            let mut line = String::from("server=");
            if let Some(d) = &f.domain {
                let _ = write!(line, "/{}/", w.clean("forwarder domain", d)?);
            }
            match f.addr {
                Some(a) => {
                    let _ = write!(line, "{a}");
                    no_resolv |= f.domain.is_none();
                }
                // "Don't forward requests for this domain."
                None => line.push('#'),
            }
            w.raw(&line);
        }
        if no_resolv {
            w.raw("no-resolv");
        }
    }
    if let Some(domain) = &def.domain {
        let name = w.clean("domain name", &domain.name)?;
        if domain.local_only == Some(true) {
            w.line(format_args!("local=/{name}/"));
        }
        w.line(format_args!("domain={name}"));
        w.raw("expand-hosts");
    }
    if want_dns {
        for ip in def.ips.iter().filter(|i| i.local_ptr == Some(true)) {
            let prefix = ip.prefix_len();
            let ptr = ptr_domain(ip.address, prefix).ok_or_else(|| RenderError::PtrDomain {
                network: def.name.clone(),
                family: if ip.is_ipv4() { "IPv4" } else { "IPv6" },
                prefix,
            })?;
            w.line(format_args!("local=/{ptr}/"));
        }
    }
    if want_dns && dns.forward_plain_names == Some(false) {
        w.raw("domain-needed");
        w.raw("local=//");
    }
    w.line(format_args!(
        "pid-file={}",
        w.path("pid file", &paths.pid_file)?
    ));
    w.raw("except-interface=lo");
    w.raw("bind-dynamic");
    w.line(format_args!(
        "interface={}",
        w.clean("bridge name", bridge)?
    ));
    if def.forward.is_none() {
        // Isolated: no default route over DHCP, no forwarding of queries to the host's
        // servers, and IPv6 router advertisements with a zero router lifetime.
        w.raw("dhcp-option=3");
        w.raw("no-resolv");
        w.raw("ra-param=*,0,0");
    }
    if want_dns {
        for t in &dns.txts {
            w.line(format_args!(
                "txt-record={},{}",
                w.clean("TXT record name", &t.name)?,
                w.clean("TXT record value", &t.value)?
            ));
        }
        for s in &dns.srvs {
            let mut line = format!(
                "srv-host=_{}._{}",
                w.clean("SRV service", &s.service)?,
                w.clean("SRV protocol", &s.protocol)?
            );
            if let Some(d) = &s.domain {
                let _ = write!(line, ".{}", w.clean("SRV domain", d)?);
            }
            // An empty or "." target means "not available here": nothing else matters.
            if let Some(target) = s.target.as_deref().filter(|t| *t != ".") {
                let _ = write!(line, ",{}", w.clean("SRV target", target)?);
                let (port, prio, weight) = (
                    s.port.unwrap_or(0),
                    s.priority.unwrap_or(0),
                    s.weight.unwrap_or(0),
                );
                if port != 0 || prio != 0 || weight != 0 {
                    let _ = write!(line, ",{}", if port == 0 { 1 } else { port });
                }
                if prio != 0 || weight != 0 {
                    let _ = write!(line, ",{prio}");
                }
                if weight != 0 {
                    let _ = write!(line, ",{weight}");
                }
            }
            w.raw(&line);
        }
    }
    // TFTP of every IPv4 address, in order.
    let mut tftp = false;
    for ip in def.ipv4s() {
        if let Some(root) = &ip.tftp_root {
            if !tftp {
                w.raw("enable-tftp");
                tftp = true;
            }
            w.line(format_args!("tftp-root={}", w.clean("tftp root", root)?));
        }
    }
    let ipv4_dhcp = def.dhcp_ip(true);
    let ipv6_dhcp = def.dhcp_ip(false);
    let mut leases: u32 = 0;
    let mut hosts_file = String::new();
    for ip in [ipv4_dhcp, ipv6_dhcp].into_iter().flatten() {
        leases = leases.saturating_add(dhcp_lines(&mut w, ip, &mut hosts_file)?);
    }
    if leases > 0 {
        w.line(format_args!("dhcp-lease-max={leases}"));
    }
    let serves_dhcp = ipv4_dhcp.is_some() || ipv6_dhcp.is_some();
    if serves_dhcp {
        w.line(format_args!(
            "dhcp-hostsfile={}",
            w.path("hosts file", &paths.hosts_file)?
        ));
        w.line(format_args!(
            "dhcp-leasefile={}",
            w.path("lease file", &paths.lease_file)?
        ));
    }
    let addn_hosts = if want_dns {
        w.line(format_args!(
            "addn-hosts={}",
            w.path("additional hosts file", &paths.addn_hosts_file)?
        ));
        Some(addn_hosts_text(&mut w, def)?)
    } else {
        None
    };
    if let Some(mtu) = def.mtu.filter(|m| *m > 0) {
        w.line(format_args!("dhcp-option=option:mtu,{mtu}"));
    }
    if ipv6_dhcp.is_some() {
        w.raw("enable-ra");
    } else {
        for ip in def.ipv6s().filter(|i| !i.has_dhcp()) {
            w.line(format_args!("dhcp-range={},ra-only", ip.address));
        }
    }
    Ok(DnsmasqConfig {
        conf: w.out,
        hosts: serves_dhcp.then_some(hosts_file),
        addn_hosts,
    })
}

/// The `dhcp-range`, `dhcp-no-override`, `dhcp-authoritative` and `dhcp-boot` lines of
/// one address (`networkDnsmasqConfDHCP`), adding its static hosts to `hosts_file`;
/// returns how many addresses its ranges hold.
fn dhcp_lines(w: &mut Writer<'_>, ip: &IpDef, hosts_file: &mut String) -> Result<u32, RenderError> {
    let prefix = ip.prefix_len();
    let mut count: u32 = 0;
    for r in ip.ranges() {
        let mut line = if ip.is_ipv6() {
            format!("dhcp-range={},{},{prefix}", r.start, r.end)
        } else {
            format!(
                "dhcp-range={},{},{}",
                r.start,
                r.end,
                prefix_netmask(prefix)
            )
        };
        if let Some(l) = &r.lease {
            let _ = write!(line, ",{}", l.dnsmasq());
        }
        w.raw(&line);
        // Validated at parse; a failure here would only mean 0 leases.
        count = count
            .saturating_add(range_size(r.start, r.end, Some((ip.address, prefix))).unwrap_or(0));
    }
    // Static-only DHCP needs a range of its own to switch the service on.
    if ip.ranges().is_empty() && !ip.hosts().is_empty() {
        let mut line = format!("dhcp-range={},static", ip.address);
        if ip.is_ipv6() {
            let _ = write!(line, ",{prefix}");
        }
        w.raw(&line);
    }
    for h in ip.hosts() {
        let Some(addr) = h.ip else { continue };
        let mut line = String::new();
        let name = h
            .name
            .as_deref()
            .map(|n| w.clean("DHCP host name", n))
            .transpose()?;
        if ip.is_ipv6() {
            match (h.id.as_deref(), name) {
                (Some(id), Some(n)) => {
                    let _ = write!(line, "id:{},{n}", w.clean("DHCP host id", id)?);
                }
                (None, Some(n)) => line.push_str(n),
                (Some(id), None) => {
                    let _ = write!(line, "id:{}", w.clean("DHCP host id", id)?);
                }
                (None, None) => {}
            }
            let _ = write!(line, ",[{addr}]");
        } else {
            match (h.mac.as_deref(), name) {
                (Some(mac), Some(n)) => {
                    let _ = write!(line, "{mac},{addr},{n}");
                }
                (None, Some(n)) => {
                    let _ = write!(line, "{n},{addr}");
                }
                (mac, None) => {
                    let _ = write!(line, "{},{addr}", mac.unwrap_or_default());
                }
            }
        }
        if let Some(l) = &h.lease {
            let _ = write!(line, ",{}", l.dnsmasq());
        }
        hosts_file.push_str(&line);
        hosts_file.push('\n');
    }
    if ip.is_ipv4() {
        w.raw("dhcp-no-override");
        w.raw("dhcp-authoritative");
        if let Some(b) = ip.dhcp.as_ref().and_then(|d| d.bootp.as_ref()) {
            let file = w.clean("bootp file", &b.file)?;
            match b.server {
                Some(server) => w.line(format_args!("dhcp-boot={file},,{server}")),
                None => w.line(format_args!("dhcp-boot={file}")),
            }
        }
    }
    Ok(count)
}

/// The additional hosts file: one line per address, its names tab-separated (libvirt's
/// `addnhostsWrite`, which merges records of the same address).
fn addn_hosts_text(w: &mut Writer<'_>, def: &NetworkDef) -> Result<String, RenderError> {
    let mut by_ip: Vec<(IpAddr, Vec<&str>)> = Vec::new();
    for h in def.dns.iter().flat_map(|d| &d.hosts) {
        let Some(ip) = h.ip else { continue };
        let at = match by_ip.iter().position(|(a, _)| *a == ip) {
            Some(i) => i,
            None => {
                by_ip.push((ip, Vec::new()));
                by_ip.len() - 1
            }
        };
        for n in &h.hostnames {
            by_ip[at].1.push(w.clean("DNS host name", n)?);
        }
    }
    let mut out = String::new();
    for (ip, names) in by_ip {
        let _ = write!(out, "{ip}\t");
        for n in names {
            let _ = write!(out, "{n}\t");
        }
        out.push('\n');
    }
    Ok(out)
}

/// Accumulates lines and refuses values that would break out of theirs.
struct Writer<'a> {
    network: &'a str,
    out: String,
}

impl Writer<'_> {
    fn raw(&mut self, line: &str) {
        self.out.push_str(line);
        self.out.push('\n');
    }

    fn line(&mut self, args: std::fmt::Arguments<'_>) {
        let _ = self.out.write_fmt(args);
        self.out.push('\n');
    }

    /// `value` unchanged when it holds no control character (a newline would start a new
    /// option).
    fn clean<'v>(&self, what: &str, value: &'v str) -> Result<&'v str, RenderError> {
        if value.chars().any(char::is_control) {
            return Err(RenderError::Unsafe {
                network: self.network.to_string(),
                what: what.to_string(),
                value: value.escape_debug().to_string(),
                target: "dnsmasq's configuration",
            });
        }
        Ok(value)
    }

    fn path(&self, what: &str, path: &Path) -> Result<String, RenderError> {
        let text = path.to_string_lossy();
        self.clean(what, &text).map(str::to_string)
    }
}
