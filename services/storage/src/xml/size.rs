//! Sizes in bytes with libvirt's units (`<capacity unit='GiB'>10</capacity>`), as
//! `virStorageSize` reads them: a non-negative decimal integer scaled by the unit
//! (`virScaleInteger`: `b`/`byte`/`bytes`; `K`, `KiB` = 1024, `KB` = 1000, and so on through
//! `E`/`EiB`/`EB`; case does not matter), bytes when no unit is given, and at most
//! 2^63 − 1 bytes (a file's size is a signed `off_t`: libvirt's limit too).

use virtplane_xml::units::unit_scale;

/// Largest size accepted, in bytes (`LLONG_MAX`, libvirt's limit for storage sizes).
pub const MAX_SIZE: u64 = i64::MAX as u64;

/// Why a size was refused; each message names the value as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    #[error(
        "unknown unit '{0}': expected b, bytes, K/KiB/KB, M/MiB/MB, G/GiB/GB, T/TiB/TB, \
         P/PiB/PB or E/EiB/EB"
    )]
    UnknownUnit(String),
    #[error("'{0}' is not a size: expected a non-negative whole number")]
    NotANumber(String),
    #[error("{value} {unit} is too large: at most {MAX_SIZE} bytes are allowed")]
    TooLarge { value: String, unit: String },
}

/// Converts `value` in `unit` (bytes when `None` or empty) to bytes.
pub fn parse_size(value: &str, unit: Option<&str>) -> Result<u64, SizeError> {
    let scale = match unit {
        None | Some("") => 1,
        Some(u) => unit_scale(u).ok_or_else(|| SizeError::UnknownUnit(u.to_string()))?,
    };
    let v = value.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SizeError::NotANumber(value.to_string()));
    }
    let too_large = || SizeError::TooLarge {
        value: v.to_string(),
        unit: unit
            .filter(|u| !u.is_empty())
            .unwrap_or("bytes")
            .to_string(),
    };
    // All digits, so the only way to fail is overflow.
    let n: u64 = v.parse().map_err(|_| too_large())?;
    n.checked_mul(scale)
        .filter(|b| *b <= MAX_SIZE)
        .ok_or_else(too_large)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_libvirts() {
        let cases: &[(&str, Option<&str>, u64)] = &[
            ("10", None, 10),
            ("10", Some(""), 10),
            ("10", Some("b"), 10),
            ("10", Some("Bytes"), 10),
            ("10", Some("byte"), 10),
            ("1", Some("K"), 1024),
            ("1", Some("KiB"), 1024),
            ("1", Some("kib"), 1024),
            ("1", Some("KB"), 1000),
            ("1", Some("kb"), 1000),
            ("1", Some("M"), 1 << 20),
            ("1", Some("MiB"), 1 << 20),
            ("1", Some("MB"), 1_000_000),
            ("5", Some("G"), 5 << 30),
            ("10", Some("GB"), 10_000_000_000),
            ("1", Some("TiB"), 1 << 40),
            ("1", Some("TB"), 1_000_000_000_000),
            ("1", Some("P"), 1 << 50),
            ("1", Some("PB"), 1_000_000_000_000_000),
            ("7", Some("EiB"), 7 << 60),
            ("1", Some("EB"), 1_000_000_000_000_000_000),
            (" 3 ", Some("k"), 3072),
            ("0", Some("EiB"), 0),
        ];
        for (v, u, want) in cases {
            assert_eq!(parse_size(v, *u), Ok(*want), "{v} {u:?}");
        }
    }

    #[test]
    fn bad_sizes_name_the_value() {
        for bad in ["-1", "+1", "", "1.5", "0x10", "ten"] {
            let e = parse_size(bad, None).unwrap_err();
            assert_eq!(e, SizeError::NotANumber(bad.to_string()));
            assert!(e.to_string().contains(&format!("'{bad}'")), "{e}");
        }
        let e = parse_size("1", Some("XB")).unwrap_err();
        assert!(e.to_string().starts_with("unknown unit 'XB'"), "{e}");
        assert!(parse_size("1", Some("KiBB")).is_err());
        assert!(parse_size("1", Some("iB")).is_err());
    }

    #[test]
    fn overflow_is_an_error() {
        assert_eq!(parse_size("9223372036854775807", None), Ok(MAX_SIZE));
        let e = parse_size("9223372036854775808", None).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("9223372036854775808 bytes is too large: at most {MAX_SIZE} bytes are allowed")
        );
        let e = parse_size("8", Some("EiB")).unwrap_err();
        assert!(e.to_string().starts_with("8 EiB is too large"), "{e}");
        // Beyond u64 itself.
        assert!(matches!(
            parse_size("99999999999999999999999", Some("b")),
            Err(SizeError::TooLarge { .. })
        ));
        assert!(parse_size("16", Some("EiB")).is_err());
    }
}
