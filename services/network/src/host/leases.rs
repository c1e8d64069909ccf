//! dnsmasq's lease file (`dhcp-leasefile=`), the record of a network's DHCP leases.
//!
//! How leases are recorded: each network's dnsmasq keeps its own lease file in the network's
//! run dir (`--dhcp-leasefile`, see `dnsmasq.rs`), which dnsmasq rewrites (and fsyncs) on
//! every change and reads back when it starts, so leases survive a restart of dnsmasq or of
//! the service. libvirt instead runs dnsmasq with `--leasefile-ro` and a helper script that
//! keeps a JSON status file; the plain file carries the same facts for `net-dhcp-leases` and
//! `domifaddr` (IPv6 leases carry no MAC, so it is taken from the client's DUID when that
//! embeds one, as DUID-LL and DUID-LLT do).
//!
//! The format, as dnsmasq's `lease_update_file` writes it, one lease a line, IPv4 first:
//! ```text
//! EXPIRY MAC IPV4 HOSTNAME CLIENTID
//! duid SERVER-DUID
//! EXPIRY [T]IAID IPV6 HOSTNAME CLIENT-DUID
//! ```
//! EXPIRY is seconds since the epoch, 0 for an infinite lease; HOSTNAME and CLIENTID are `*`
//! when unknown; a MAC of another hardware type than Ethernet is prefixed with its type
//! (`06-…`), an empty one is just the type (`00-`); `T` marks a temporary IPv6 address.

use std::net::IpAddr;
use std::path::Path;

/// One DHCP lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// When the lease ends, in seconds since the epoch; `None` for an infinite lease.
    pub expiry: Option<u64>,
    pub ip: IpAddr,
    /// IPv4: the client's hardware address as dnsmasq wrote it: lower-case `aa:bb:…`, with a
    /// `TT-` type prefix when not Ethernet. IPv6: taken from the client's DUID, when it
    /// embeds an Ethernet address; else `None`.
    pub mac: Option<String>,
    /// The IAID of an IPv6 lease.
    pub iaid: Option<u32>,
    /// An IPv6 temporary address (IA_TA).
    pub temporary: bool,
    pub hostname: Option<String>,
    /// IPv4: the DHCP client identifier (option 61); IPv6: the client's DUID; as hex bytes
    /// separated by `:`.
    pub client_id: Option<String>,
}

/// A whole lease file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leases {
    pub leases: Vec<Lease>,
    /// The server's own DUID (the `duid` line), present once DHCPv6 has been served.
    pub server_duid: Option<String>,
    /// Lines that could not be read, skipped; the driver logs them. A lease file is read
    /// while dnsmasq may be rewriting it, so one odd line must not hide every other lease.
    pub malformed: Vec<MalformedLine>,
}

/// A line of the lease file that is not a lease.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line} of the lease file ({text:?}): {why}")]
pub struct MalformedLine {
    pub line: usize,
    pub text: String,
    pub why: String,
}

/// Reading the lease file failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the DHCP lease file {path}: {source}")]
pub struct LeaseFileError {
    pub path: String,
    #[source]
    pub source: std::io::Error,
}

/// Reads and parses the lease file at `path`; a file that does not exist yet (no client has
/// asked) has no leases.
pub async fn read_leases(path: &Path) -> Result<Leases, LeaseFileError> {
    match tokio::fs::read_to_string(path).await {
        Ok(text) => Ok(parse_leases(&text)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Leases::default()),
        Err(source) => Err(LeaseFileError {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// Parses the text of a lease file (module docs). Never fails: lines that are not leases
/// are listed in [`Leases::malformed`].
pub fn parse_leases(text: &str) -> Leases {
    let mut leases = Leases::default();
    // IPv6 leases follow the `duid` line; before it every lease is IPv4.
    let mut in_v6 = false;
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        // Split on single spaces: an empty hardware address leaves an empty field, which
        // `split_whitespace` would swallow and shift every field after it.
        let fields: Vec<&str> = line.trim_end().split(' ').collect();
        let malformed = |why: &str| MalformedLine {
            line: line_no,
            text: line.to_owned(),
            why: why.to_owned(),
        };
        match fields[0] {
            "duid" => {
                in_v6 = true;
                match fields.get(1) {
                    Some(duid) if fields.len() == 2 && !duid.is_empty() => {
                        leases.server_duid = Some((*duid).to_owned())
                    }
                    _ => leases
                        .malformed
                        .push(malformed("a duid line has one field")),
                }
            }
            first if first.bytes().all(|b| b.is_ascii_digit()) && !first.is_empty() => {
                match parse_lease(&fields, in_v6) {
                    Ok(lease) => leases.leases.push(lease),
                    Err(why) => leases.malformed.push(malformed(&why)),
                }
            }
            // Newer dnsmasq versions may append extra records (`agent-info …`) after the
            // leases; they are not leases.
            _ => {}
        }
    }
    leases
}

fn parse_lease(fields: &[&str], in_v6: bool) -> Result<Lease, String> {
    let [expiry, id, ip, hostname, client_id] = fields else {
        return Err(format!("a lease has 5 fields, not {}", fields.len()));
    };
    let expiry: u64 = expiry
        .parse()
        .map_err(|_| format!("bad expiry time {expiry:?}"))?;
    let ip: IpAddr = ip.parse().map_err(|_| format!("bad IP address {ip:?}"))?;
    let hostname = optional(hostname);
    let client_id = optional(client_id);
    let expiry = (expiry != 0).then_some(expiry);
    if in_v6 || ip.is_ipv6() {
        if !ip.is_ipv6() {
            return Err(format!("an IPv4 address {ip} after the duid line"));
        }
        let (temporary, iaid) = match id.strip_prefix('T') {
            Some(rest) => (true, rest),
            None => (false, *id),
        };
        let iaid = iaid.parse().map_err(|_| format!("bad IAID {id:?}"))?;
        let mac = client_id.as_deref().and_then(mac_from_duid);
        Ok(Lease {
            expiry,
            ip,
            mac,
            iaid: Some(iaid),
            temporary,
            hostname,
            client_id,
        })
    } else {
        Ok(Lease {
            expiry,
            ip,
            mac: optional(id),
            iaid: None,
            temporary: false,
            hostname,
            client_id,
        })
    }
}

/// `*` (and an empty field) means unknown.
fn optional(field: &str) -> Option<String> {
    (!field.is_empty() && field != "*").then(|| field.to_owned())
}

/// The Ethernet address inside a DUID-LLT (type 1: type, hardware type, time, address) or a
/// DUID-LL (type 3: type, hardware type, address), written as hex bytes with `:`.
pub fn mac_from_duid(duid: &str) -> Option<String> {
    let bytes: Vec<&str> = duid.split(':').collect();
    let address = match bytes.as_slice() {
        ["00", "01", "00", "01", _, _, _, _, mac @ ..] => mac,
        ["00", "03", "00", "01", mac @ ..] => mac,
        _ => return None,
    };
    let well_formed = address
        .iter()
        .all(|b| b.len() == 2 && b.bytes().all(|c| c.is_ascii_hexdigit()));
    (address.len() == 6 && well_formed).then(|| address.join(":").to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first line is what dnsmasq 2.90 wrote in `tests/host_dnsmasq.rs` for busybox's
    /// udhcpc with a `dhcp-host` entry; the others follow dnsmasq's `lease_update_file`: a
    /// client that sent a hostname, an infinite lease, then DHCPv6 after the `duid` line (a
    /// client with a DUID-LLT, a temporary address of one with a DUID-LL).
    const SAMPLE: &str = "\
1795351418 52:54:00:12:34:56 192.168.77.50 fixedhost 01:52:54:00:12:34:56
1732278800 52:54:00:aa:bb:cc 192.168.77.173 guest1 01:52:54:00:aa:bb:cc
0 52:54:00:00:00:01 192.168.77.9 static-host *
duid 00:01:00:01:2e:d1:0a:c2:8e:57:46:1f:22:9d
1732282400 1013359 2001:db8:ac10:fe01::5a guest6 00:01:00:01:2e:d1:0b:11:52:54:00:12:34:56
1732282400 T7 2001:db8:ac10:fe01::77 * 00:03:00:01:52:54:00:aa:bb:cc
";

    #[test]
    fn parses_v4_and_v6_leases() {
        let parsed = parse_leases(SAMPLE);
        assert!(parsed.malformed.is_empty(), "{:?}", parsed.malformed);
        assert_eq!(
            parsed.server_duid.as_deref(),
            Some("00:01:00:01:2e:d1:0a:c2:8e:57:46:1f:22:9d")
        );
        let leases = &parsed.leases;
        assert_eq!(leases.len(), 5);
        assert_eq!(
            leases[0],
            Lease {
                expiry: Some(1795351418),
                ip: "192.168.77.50".parse().unwrap(),
                mac: Some("52:54:00:12:34:56".into()),
                iaid: None,
                temporary: false,
                hostname: Some("fixedhost".into()),
                client_id: Some("01:52:54:00:12:34:56".into()),
            }
        );
        assert_eq!(leases[1].hostname.as_deref(), Some("guest1"));
        assert_eq!(leases[2].expiry, None, "0 is an infinite lease");
        assert_eq!(leases[2].client_id, None);
        assert_eq!(
            leases[3],
            Lease {
                expiry: Some(1732282400),
                ip: "2001:db8:ac10:fe01::5a".parse().unwrap(),
                mac: Some("52:54:00:12:34:56".into()),
                iaid: Some(1013359),
                temporary: false,
                hostname: Some("guest6".into()),
                client_id: Some("00:01:00:01:2e:d1:0b:11:52:54:00:12:34:56".into()),
            }
        );
        assert!(leases[4].temporary);
        assert_eq!(leases[4].iaid, Some(7));
        assert_eq!(leases[4].mac.as_deref(), Some("52:54:00:aa:bb:cc"));
    }

    #[test]
    fn keeps_odd_hardware_addresses_and_skips_malformed_lines() {
        let text = "\
1732278712 00- 192.168.77.3 * 01:02:03
1732278712 06-00:11:22:33:44:55 192.168.77.4 * *
1732278712 52:54:00:12:34:56 not-an-ip * *
garbage
1732278712 52:54:00:12:34:57 192.168.77.5
agent-info 192.168.77.3 01:02
";
        let parsed = parse_leases(text);
        assert_eq!(parsed.leases.len(), 2, "{parsed:?}");
        assert_eq!(parsed.leases[0].mac.as_deref(), Some("00-"));
        assert_eq!(
            parsed.leases[1].mac.as_deref(),
            Some("06-00:11:22:33:44:55")
        );
        assert_eq!(parsed.malformed.len(), 2, "{:?}", parsed.malformed);
        assert_eq!(parsed.malformed[0].line, 3);
        assert_eq!(
            parsed.malformed[0].to_string(),
            "line 3 of the lease file (\"1732278712 52:54:00:12:34:56 not-an-ip * *\"): bad \
             IP address \"not-an-ip\""
        );
        assert_eq!(parsed.malformed[1].line, 5);
        assert!(parsed.malformed[1].why.contains("5 fields"));
    }

    #[test]
    fn an_empty_file_has_no_leases() {
        assert_eq!(parse_leases(""), Leases::default());
        assert_eq!(parse_leases("\n\n"), Leases::default());
    }

    #[test]
    fn macs_come_only_from_duids_that_embed_ethernet_addresses() {
        assert_eq!(
            mac_from_duid("00:03:00:01:52:54:00:AA:BB:CC").as_deref(),
            Some("52:54:00:aa:bb:cc")
        );
        // DUID-EN (type 2) and DUID-UUID (type 4) carry no MAC; nor does an LL of another
        // hardware type, nor a truncated one.
        assert_eq!(mac_from_duid("00:02:00:00:ab:11:01:02:03:04"), None);
        assert_eq!(mac_from_duid("00:04:01:02:03:04:05:06:07:08"), None);
        assert_eq!(mac_from_duid("00:03:00:06:52:54:00:aa:bb:cc"), None);
        assert_eq!(mac_from_duid("00:03:00:01:52:54:00"), None);
    }

    #[tokio::test]
    async fn a_missing_file_has_no_leases() {
        let dir = tempfile::tempdir().unwrap();
        let leases = read_leases(&dir.path().join("none.leases")).await.unwrap();
        assert_eq!(leases, Leases::default());
        std::fs::write(dir.path().join("a.leases"), SAMPLE).unwrap();
        let leases = read_leases(&dir.path().join("a.leases")).await.unwrap();
        assert_eq!(leases.leases.len(), 5);
    }
}
