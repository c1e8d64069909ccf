//! libvirt's scaled integers (`<memory unit='GiB'>4</memory>`), following `virScaleInteger`:
//! `b`/`byte`/`bytes`; a letter k, m, g, t, p, e alone or with `iB` is a power of 1024; with
//! `B` a power of 1000. Case does not matter. No unit means KiB for memory.

/// Why a scaled value was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitError {
    UnknownUnit,
    NotANumber,
    TooLarge,
}

/// Bytes per `unit`, or `None` for an unknown unit.
pub fn unit_scale(unit: &str) -> Option<u64> {
    let lower = unit.to_ascii_lowercase();
    if matches!(lower.as_str(), "b" | "byte" | "bytes") {
        return Some(1);
    }
    let mut chars = lower.chars();
    let letter = chars.next()?;
    let rest = chars.as_str();
    let base: u64 = match rest {
        "" | "ib" => 1024,
        "b" => 1000,
        _ => return None,
    };
    let power = match letter {
        'k' => 1,
        'm' => 2,
        'g' => 3,
        't' => 4,
        'p' => 5,
        'e' => 6,
        _ => return None,
    };
    base.checked_pow(power)
}

/// Converts `value` in `unit` (default KiB) to KiB, rounding partial KiB up as libvirt does.
pub fn to_kib(value: &str, unit: Option<&str>) -> Result<u64, UnitError> {
    let scale = match unit {
        None | Some("") => 1024,
        Some(u) => unit_scale(u).ok_or(UnitError::UnknownUnit)?,
    };
    let v = value.trim();
    if v.starts_with('+') {
        return Err(UnitError::NotANumber);
    }
    let n: u64 = v.parse().map_err(|_| UnitError::NotANumber)?;
    let bytes = n.checked_mul(scale).ok_or(UnitError::TooLarge)?;
    Ok(bytes.div_ceil(1024))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_follow_libvirt() {
        assert_eq!(to_kib("4", None), Ok(4));
        assert_eq!(to_kib("4", Some("KiB")), Ok(4));
        assert_eq!(to_kib("4", Some("k")), Ok(4));
        assert_eq!(to_kib("1", Some("MiB")), Ok(1024));
        assert_eq!(to_kib("1", Some("M")), Ok(1024));
        assert_eq!(to_kib("1", Some("G")), Ok(1024 * 1024));
        assert_eq!(to_kib("1", Some("gib")), Ok(1024 * 1024));
        assert_eq!(to_kib("2", Some("TiB")), Ok(2 * 1024 * 1024 * 1024));
        assert_eq!(to_kib("1000", Some("KB")), Ok(977));
        assert_eq!(to_kib("1", Some("MB")), Ok(977));
        assert_eq!(to_kib("1", Some("GB")), Ok(976_563));
        assert_eq!(to_kib("1025", Some("bytes")), Ok(2));
        assert_eq!(to_kib("1024", Some("b")), Ok(1));
        assert_eq!(to_kib("1", Some("XB")), Err(UnitError::UnknownUnit));
        assert_eq!(to_kib("1", Some("KiBB")), Err(UnitError::UnknownUnit));
        assert_eq!(to_kib("abc", None), Err(UnitError::NotANumber));
        assert_eq!(to_kib("-1", None), Err(UnitError::NotANumber));
        assert_eq!(to_kib("99999999999", Some("EiB")), Err(UnitError::TooLarge));
    }
}
