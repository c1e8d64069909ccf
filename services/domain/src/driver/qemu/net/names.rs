//! Pure rules for host-side NIC devices: tap names (libvirt's `vnetN`), name validity, and
//! the MAC addresses of a tap and of a guest NIC that has none.

use std::collections::HashSet;

/// The prefix of generated tap names (libvirt's `VIR_NET_GENERATED_VNET_PREFIX`).
pub const VNET_PREFIX: &str = "vnet";

/// `IFNAMSIZ` less the terminating NUL.
pub const MAX_NAME_LEN: usize = 15;

/// How many candidates a generation tries before giving up (libvirt: 10000).
const MAX_ATTEMPTS: u32 = 10_000;

/// libvirt's `virNetDevGenerateName` for `vnet`: a counter per service that only moves up
/// (wrapping before it overflows), skipping names that exist. Not "the lowest free number":
/// the kernel and other tools reuse a just-released name at once, and a name that moves on
/// keeps a stopped VM's statistics or firewall rules from being mistaken for a new one's.
/// After a service restart the names of running VMs are [reserved](Self::reserve) so the
/// counter continues above them, as libvirt's `virNetDevReserveName` does.
#[derive(Debug)]
pub struct NameCounter {
    last: i64,
}

impl Default for NameCounter {
    fn default() -> Self {
        Self { last: -1 }
    }
}

impl NameCounter {
    /// The largest number that still fits `vnetN` into [`MAX_NAME_LEN`] (capped as libvirt
    /// caps it, at `INT_MAX`).
    fn max_id() -> i64 {
        let digits = MAX_NAME_LEN - VNET_PREFIX.len();
        10_i64
            .checked_pow(digits as u32)
            .unwrap_or(i64::MAX)
            .min(i64::from(i32::MAX))
    }

    /// The next `vnetN` that is not in `taken`; `None` after [`MAX_ATTEMPTS`] taken names.
    pub fn next(&mut self, taken: &HashSet<String>) -> Option<String> {
        for _ in 0..MAX_ATTEMPTS {
            self.last += 1;
            let id = self.last;
            if self.last >= Self::max_id() {
                self.last = -1;
            }
            let name = format!("{VNET_PREFIX}{id}");
            if !taken.contains(&name) {
                return Some(name);
            }
        }
        None
    }

    /// Moves the counter past `name` if it is a generated name (`vnetN`).
    pub fn reserve(&mut self, name: &str) {
        let Some(digits) = name.strip_prefix(VNET_PREFIX) else {
            return;
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return;
        }
        if let Ok(id) = digits.parse::<i64>()
            && id > self.last
            && id < Self::max_id()
        {
            self.last = id;
        }
    }
}

/// Why `name` cannot name a network device (the kernel's `dev_valid_name`, plus `,`, which
/// would split QEMU's `-netdev` option list); `None` when it can.
pub fn invalid_name(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("it is empty");
    }
    if name.len() > MAX_NAME_LEN {
        return Some("it is longer than 15 bytes");
    }
    if name == "." || name == ".." {
        return Some("'.' and '..' are reserved");
    }
    if name
        .chars()
        .any(|c| c == '/' || c == ':' || c == ',' || c.is_whitespace() || c.is_control())
    {
        return Some("it contains '/', ':', ',', a space or a control character");
    }
    None
}

/// Six bytes of `aa:bb:cc:dd:ee:ff` (the model keeps MACs canonical: lowercase, two digits).
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut out {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The tap's own MAC for a guest NIC with `guest`: the same address with the first byte
/// 0xFE (0xFA if the guest's already starts with 0xFE), as libvirt does. The tap must not
/// share the guest's address (the kernel would log "received packet with own address as
/// source address"), and a high first byte keeps a Linux bridge, which takes the lowest MAC
/// of its ports, from adopting the tap's.
pub fn tap_mac(guest: [u8; 6]) -> [u8; 6] {
    let mut mac = guest;
    mac[0] = if mac[0] == 0xFE { 0xFA } else { 0xFE };
    mac
}

/// A MAC for a guest NIC defined without one: QEMU/KVM's 52:54:00 prefix and three bytes
/// from `random` (libvirt's `virDomainNetGenerateMAC`).
pub fn generated_guest_mac(random: [u8; 3]) -> [u8; 6] {
    [0x52, 0x54, 0x00, random[0], random[1], random[2]]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taken(names: &[&str]) -> HashSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn generated_names_count_up_and_skip_existing_devices() {
        let mut counter = NameCounter::default();
        assert_eq!(counter.next(&taken(&[])).as_deref(), Some("vnet0"));
        assert_eq!(
            counter.next(&taken(&["vnet1", "vnet2", "eth0"])).as_deref(),
            Some("vnet3")
        );
        // A name released meanwhile is not handed out again at once (libvirt's counter).
        assert_eq!(counter.next(&taken(&[])).as_deref(), Some("vnet4"));
    }

    #[test]
    fn generation_gives_up_when_every_candidate_exists() {
        let mut counter = NameCounter::default();
        let all: HashSet<String> = (0..20_000).map(|i| format!("vnet{i}")).collect();
        assert_eq!(counter.next(&all), None);
    }

    #[test]
    fn the_counter_wraps_before_the_name_gets_too_long() {
        let mut counter = NameCounter {
            last: NameCounter::max_id() - 1,
        };
        let name = counter.next(&taken(&[])).unwrap();
        assert_eq!(name, format!("vnet{}", i32::MAX));
        assert!(name.len() <= MAX_NAME_LEN);
        assert_eq!(counter.next(&taken(&[])).as_deref(), Some("vnet0"));
    }

    #[test]
    fn reserving_running_vms_names_moves_the_counter_past_them() {
        let mut counter = NameCounter::default();
        counter.reserve("vnet7");
        counter.reserve("vnet3");
        counter.reserve("mytap9");
        counter.reserve("vnet");
        counter.reserve("vnet1x");
        counter.reserve("vnet+8");
        assert_eq!(counter.next(&taken(&[])).as_deref(), Some("vnet8"));
    }

    #[test]
    fn device_names_follow_the_kernels_rules() {
        assert_eq!(invalid_name("vnet0"), None);
        assert_eq!(invalid_name("tap-web_1.a"), None);
        assert_eq!(invalid_name("123456789012345"), None);
        assert!(invalid_name("").is_some());
        assert!(invalid_name("1234567890123456").is_some());
        assert!(invalid_name(".").is_some());
        assert!(invalid_name("..").is_some());
        for bad in ["a/b", "a:b", "a,b", "a b", "a\tb", "a\u{1}b"] {
            assert!(invalid_name(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn the_tap_gets_the_guest_mac_with_a_high_first_byte() {
        let guest = parse_mac("52:54:00:12:34:56").unwrap();
        assert_eq!(format_mac(tap_mac(guest)), "fe:54:00:12:34:56");
        let fe = parse_mac("fe:54:00:12:34:56").unwrap();
        assert_eq!(format_mac(tap_mac(fe)), "fa:54:00:12:34:56");
        assert_ne!(tap_mac(guest), guest);
    }

    #[test]
    fn macs_parse_and_format() {
        assert_eq!(
            parse_mac("52:54:00:aB:c:01"),
            Some([0x52, 0x54, 0, 0xab, 0x0c, 1])
        );
        assert_eq!(parse_mac("52:54:00:ab:cd"), None);
        assert_eq!(parse_mac("52:54:00:ab:cd:ef:01"), None);
        assert_eq!(parse_mac("52:54:00:ab:cd:zz"), None);
        assert_eq!(
            format_mac([0x52, 0x54, 0, 0xab, 0x0c, 1]),
            "52:54:00:ab:0c:01"
        );
        assert_eq!(
            format_mac(generated_guest_mac([1, 2, 3])),
            "52:54:00:01:02:03"
        );
    }
}
