//! Converters for attribute and text values. Each returns, on failure, what was expected, so
//! the caller can build an [`super::XmlError::InvalidValue`] naming the spot.

use std::str::FromStr;

/// A value that must be one of a fixed set of words.
pub fn one_of(value: &str, allowed: &[&str]) -> Result<String, String> {
    if allowed.contains(&value) {
        Ok(value.to_string())
    } else {
        Err(format!("one of {}", allowed.join(", ")))
    }
}

pub const YES_NO: &[&str] = &["yes", "no"];
pub const ON_OFF: &[&str] = &["on", "off"];

/// An unsigned integer (no sign, surrounding whitespace allowed).
pub fn uint<T: FromStr>(value: &str) -> Result<T, String> {
    let v = value.trim();
    if v.starts_with('+') {
        return Err("a non-negative integer".into());
    }
    v.parse().map_err(|_| "a non-negative integer".to_string())
}

/// An unsigned integer in decimal or, with `0x`, hexadecimal (libvirt reads PCI ports and
/// addresses this way).
pub fn uint_hex(value: &str) -> Result<u32, String> {
    const EXPECTED: &str = "a non-negative integer (decimal, or hexadecimal with 0x)";
    let v = value.trim();
    match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) if !hex.starts_with(['+', '-']) => {
            u32::from_str_radix(hex, 16).map_err(|_| EXPECTED.to_string())
        }
        None if !v.starts_with('+') => v.parse().map_err(|_| EXPECTED.to_string()),
        _ => Err(EXPECTED.into()),
    }
}

/// An integer of at least 1.
pub fn positive(value: &str) -> Result<u32, String> {
    let v = value.trim();
    match v.parse::<u32>() {
        Ok(n) if n >= 1 && !v.starts_with('+') => Ok(n),
        _ => Err("a positive integer".into()),
    }
}

/// A TCP port or -1 ("allocate one"), as graphics `port` takes.
pub fn port_or_auto(value: &str) -> Result<i32, String> {
    match value.trim().parse::<i32>() {
        Ok(n) if (-1..=65535).contains(&n) => Ok(n),
        _ => Err("a port number from 0 to 65535, or -1".into()),
    }
}

/// A unicast MAC address `xx:xx:xx:xx:xx:xx` (1 or 2 hex digits per byte, like libvirt);
/// returned in canonical lowercase two-digit form.
pub fn mac(value: &str) -> Result<String, String> {
    const EXPECTED: &str = "a MAC address like 52:54:00:12:34:56";
    let parts: Vec<&str> = value.split(':').collect();
    if parts.len() != 6 {
        return Err(EXPECTED.into());
    }
    let mut bytes = [0u8; 6];
    for (b, p) in bytes.iter_mut().zip(&parts) {
        if p.is_empty() || p.len() > 2 || !p.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(EXPECTED.into());
        }
        *b = u8::from_str_radix(p, 16).map_err(|_| EXPECTED.to_string())?;
    }
    if bytes[0] & 1 == 1 {
        return Err("a unicast MAC address (the first byte's lowest bit must be 0)".into());
    }
    Ok(bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":"))
}

/// A UUID with or without dashes (libvirt ignores dashes anywhere); returned canonical:
/// lowercase and hyphenated.
pub fn uuid(value: &str) -> Result<String, String> {
    let digits: String = value.trim().chars().filter(|c| *c != '-').collect();
    if digits.len() != 32 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err("a UUID of 32 hexadecimal digits, optionally with dashes".into());
    }
    uuid::Uuid::try_parse(&digits)
        .map(|u| u.hyphenated().to_string())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs() {
        assert_eq!(mac("52:54:0:AB:cd:1").unwrap(), "52:54:00:ab:cd:01");
        for bad in [
            "",
            "52:54:00:ab:cd",
            "52:54:00:ab:cd:ef:00",
            "52:54:00:ab:cd:xy",
            "52:54:00:ab:cd:123",
        ] {
            assert!(mac(bad).is_err(), "{bad}");
        }
        assert!(mac("01:00:5e:00:00:01").unwrap_err().contains("unicast"));
    }

    #[test]
    fn uuids() {
        let canon = "c7a5fdbd-edaf-9455-926a-d65c16db1809";
        assert_eq!(uuid("C7A5FDBDEDAF9455926AD65C16DB1809").unwrap(), canon);
        assert_eq!(uuid(canon).unwrap(), canon);
        assert_eq!(uuid("c7a5fdbd-edaf9455-926ad65c-16db1809").unwrap(), canon);
        assert!(uuid("not-a-uuid").is_err());
        assert!(uuid("c7a5fdbd-edaf-9455-926a-d65c16db180").is_err());
    }

    #[test]
    fn numbers() {
        assert_eq!(positive(" 4 "), Ok(4));
        assert!(positive("0").is_err());
        assert!(positive("+1").is_err());
        assert!(positive("-1").is_err());
        assert!(uint::<u32>("x").is_err());
        assert_eq!(uint_hex("0x1f"), Ok(31));
        assert_eq!(uint_hex("12"), Ok(12));
        assert!(uint_hex("0x-1").is_err());
        assert!(uint_hex("+3").is_err());
        assert_eq!(port_or_auto("-1"), Ok(-1));
        assert!(port_or_auto("70000").is_err());
    }
}
