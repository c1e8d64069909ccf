//! IP address arithmetic the network model needs: parsing, prefixes (libvirt's
//! `virSocketAddrGetIPPrefix`), subnet membership, and DHCP range checks
//! (`virSocketAddrGetRange`). Addresses are `std::net` types; their `Display` is the
//! canonical form libvirt writes too (RFC 5952 for IPv6).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Parses a numeric IPv4 or IPv6 address; returns what was expected on failure.
pub fn ip(value: &str) -> Result<IpAddr, String> {
    value
        .trim()
        .parse()
        .map_err(|_| "an IPv4 or IPv6 address".to_string())
}

/// The number of leading one bits of a netmask, or `None` when the mask is not contiguous.
pub fn netmask_prefix(mask: Ipv4Addr) -> Option<u8> {
    let bits = u32::from(mask);
    let ones = bits.leading_ones();
    (bits.checked_shl(ones).unwrap_or(0) == 0).then_some(ones as u8)
}

/// The netmask of an IPv4 prefix length (0..=32).
pub fn prefix_netmask(prefix: u8) -> Ipv4Addr {
    let bits = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    };
    Ipv4Addr::from(bits)
}

/// The prefix length libvirt uses for an address: the explicit prefix (when > 0), else the
/// netmask's, else the "natural" one: the IPv4 class (A: 8, B: 16, C: 24; none for D and E)
/// or 64 for IPv6 (0 for the unspecified addresses).
pub fn effective_prefix(
    address: IpAddr,
    netmask: Option<Ipv4Addr>,
    prefix: Option<u8>,
) -> Option<u8> {
    if let Some(p) = prefix.filter(|p| *p > 0) {
        return Some(p);
    }
    if let Some(m) = netmask {
        return netmask_prefix(m);
    }
    match address {
        IpAddr::V4(a) => {
            if a.is_unspecified() {
                return Some(0);
            }
            let octet = a.octets()[0];
            if octet & 0x80 == 0 {
                Some(8)
            } else if octet & 0xC0 == 0x80 {
                Some(16)
            } else if octet & 0xE0 == 0xC0 {
                Some(24)
            } else {
                None
            }
        }
        IpAddr::V6(a) => Some(if a.is_unspecified() { 0 } else { 64 }),
    }
}

/// The address with every bit past `prefix` cleared.
pub fn network_address(address: IpAddr, prefix: u8) -> IpAddr {
    match address {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask32(prefix))),
        IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask128(prefix))),
    }
}

/// The IPv4 broadcast address of `address/prefix`.
pub fn broadcast(address: Ipv4Addr, prefix: u8) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(address) | !mask32(prefix))
}

/// Whether `candidate` lies in the subnet `network/prefix` (same family required).
pub fn in_subnet(candidate: IpAddr, network: IpAddr, prefix: u8) -> bool {
    match (candidate, network) {
        (IpAddr::V4(c), IpAddr::V4(n)) => {
            u32::from(c) & mask32(prefix) == u32::from(n) & mask32(prefix)
        }
        (IpAddr::V6(c), IpAddr::V6(n)) => {
            u128::from(c) & mask128(prefix) == u128::from(n) & mask128(prefix)
        }
        _ => false,
    }
}

/// Whether two subnets share any address.
pub fn subnets_overlap(a: IpAddr, a_prefix: u8, b: IpAddr, b_prefix: u8) -> bool {
    let p = a_prefix.min(b_prefix);
    a.is_ipv4() == b.is_ipv4() && in_subnet(a, b, p)
}

fn mask32(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    }
}

fn mask128(prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix.min(128)))
    }
}

/// Checks a DHCP range like libvirt's `virSocketAddrGetRange` and returns how many
/// addresses it holds. With a subnet, both ends must lie inside it, and for IPv4 the range
/// may not start at the network address or end at the broadcast address. Like libvirt, a
/// range may span at most the last two bytes (IPv4) or the last two bytes of 16 (IPv6).
pub fn range_size(start: IpAddr, end: IpAddr, subnet: Option<(IpAddr, u8)>) -> Result<u32, String> {
    if start.is_ipv4() != end.is_ipv4() {
        return Err(format!(
            "mismatch of address family in range {start} - {end}"
        ));
    }
    if let Some((net, prefix)) = subnet {
        if start.is_ipv4() != net.is_ipv4() {
            return Err(format!(
                "mismatch of address family in range {start} - {end} for network {net}"
            ));
        }
        if !in_subnet(start, net, prefix) || !in_subnet(end, net, prefix) {
            return Err(format!(
                "range {start} - {end} is not entirely within network {net}/{prefix}"
            ));
        }
        if let IpAddr::V4(n) = net {
            if start == network_address(net, prefix) {
                return Err(format!(
                    "start of range {start} - {end} in network {net}/{prefix} is the network address"
                ));
            }
            if end == IpAddr::V4(broadcast(n, prefix)) {
                return Err(format!(
                    "end of range {start} - {end} in network {net}/{prefix} is the broadcast address"
                ));
            }
        }
    }
    let (s, e): (u128, u128) = match (start, end) {
        (IpAddr::V4(s), IpAddr::V4(e)) => (u32::from(s).into(), u32::from(e).into()),
        (IpAddr::V6(s), IpAddr::V6(e)) => (u128::from(s), u128::from(e)),
        _ => unreachable!("families checked above"),
    };
    if s >> 16 != e >> 16 {
        return Err(format!("range {start} - {end} is too large (> 65535)"));
    }
    if e < s {
        return Err(format!("range {start} - {end} is reversed"));
    }
    Ok((e - s) as u32 + 1)
}

/// The reverse-DNS zone of a subnet (`virSocketAddrPTRDomain`): `122.168.192.in-addr.arpa`
/// for 192.168.122.0/24; `None` when the prefix is not a whole number of bytes (IPv4) or
/// nibbles (IPv6).
pub fn ptr_domain(address: IpAddr, prefix: u8) -> Option<String> {
    match address {
        IpAddr::V4(a) => {
            if prefix == 0 || prefix >= 32 || !prefix.is_multiple_of(8) {
                return None;
            }
            let o = a.octets();
            let mut parts: Vec<String> = (0..usize::from(prefix / 8))
                .rev()
                .map(|i| o[i].to_string())
                .collect();
            parts.push("in-addr.arpa".into());
            Some(parts.join("."))
        }
        IpAddr::V6(a) => {
            if prefix == 0 || prefix >= 128 || !prefix.is_multiple_of(4) {
                return None;
            }
            let bits = u128::from(a);
            let mut parts: Vec<String> = (0..u32::from(prefix / 4))
                .rev()
                .map(|i| format!("{:x}", (bits >> (124 - 4 * i)) & 0xf))
                .collect();
            parts.push("ip6.arpa".into());
            Some(parts.join("."))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn prefixes() {
        assert_eq!(netmask_prefix("255.255.255.0".parse().unwrap()), Some(24));
        assert_eq!(netmask_prefix("255.255.0.255".parse().unwrap()), None);
        assert_eq!(netmask_prefix("0.0.0.0".parse().unwrap()), Some(0));
        assert_eq!(
            prefix_netmask(24),
            "255.255.255.0".parse::<Ipv4Addr>().unwrap()
        );
        assert_eq!(prefix_netmask(0), Ipv4Addr::UNSPECIFIED);
        assert_eq!(effective_prefix(a("10.1.2.3"), None, None), Some(8));
        assert_eq!(effective_prefix(a("172.16.0.1"), None, None), Some(16));
        assert_eq!(effective_prefix(a("192.168.1.1"), None, None), Some(24));
        assert_eq!(effective_prefix(a("224.0.0.1"), None, None), None);
        assert_eq!(effective_prefix(a("2001:db8::1"), None, None), Some(64));
        assert_eq!(effective_prefix(a("10.1.2.3"), None, Some(20)), Some(20));
    }

    #[test]
    fn ranges() {
        let net = Some((a("192.168.122.1"), 24));
        assert_eq!(
            range_size(a("192.168.122.2"), a("192.168.122.254"), net),
            Ok(253)
        );
        let err = range_size(a("192.168.122.0"), a("192.168.122.9"), net).unwrap_err();
        assert!(err.contains("network address"), "{err}");
        let err = range_size(a("192.168.122.2"), a("192.168.122.255"), net).unwrap_err();
        assert!(err.contains("broadcast"), "{err}");
        let err = range_size(a("192.168.123.2"), a("192.168.123.9"), net).unwrap_err();
        assert!(
            err.contains("not entirely within network 192.168.122.1/24"),
            "{err}"
        );
        let err = range_size(a("192.168.122.9"), a("192.168.122.2"), net).unwrap_err();
        assert!(err.contains("reversed"), "{err}");
        let err = range_size(a("10.0.0.1"), a("10.2.0.1"), None).unwrap_err();
        assert!(err.contains("too large"), "{err}");
        let v6 = Some((a("2001:db8:ac10:fd01::1"), 64));
        assert_eq!(
            range_size(
                a("2001:db8:ac10:fd01::1:10"),
                a("2001:db8:ac10:fd01::1:ff"),
                v6
            ),
            Ok(240)
        );
    }

    #[test]
    fn ptr_domains() {
        assert_eq!(
            ptr_domain(a("192.168.122.1"), 24).as_deref(),
            Some("122.168.192.in-addr.arpa")
        );
        assert_eq!(ptr_domain(a("192.168.122.1"), 20), None);
        assert_eq!(
            ptr_domain(a("2001:db8:ac10:fd01::1"), 64).as_deref(),
            Some("1.0.d.f.0.1.c.a.8.b.d.0.1.0.0.2.ip6.arpa")
        );
    }

    #[test]
    fn overlaps() {
        assert!(subnets_overlap(a("10.0.0.1"), 8, a("10.1.0.1"), 16));
        assert!(!subnets_overlap(a("10.0.0.1"), 16, a("10.1.0.1"), 16));
        assert!(!subnets_overlap(a("10.0.0.1"), 8, a("::1"), 8));
    }
}
