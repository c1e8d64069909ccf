//! Memory sizes read the way virsh reads them (`virScaleInteger`), so `setmem web 2G` and
//! `setmem web 2097152` mean the same thing here as they do with virsh.
//!
//! - a plain number is KiB (virsh's default scale for memory commands);
//! - `b`, `byte`, `bytes`: bytes;
//! - `k`, `KiB`, `m`, `MiB`, `g`, `GiB`, `t`, `TiB`, `p`, `PiB`, `e`, `EiB` (any case): powers
//!   of 1024;
//! - `KB`, `MB`, `GB`, `TB`, `PB`, `EB` (any case of the letters): powers of 1000.
//!
//! The result is in KiB, rounded up as virsh does (`VIR_DIV_UP(bytes, 1024)`), because the
//! API takes KiB.

/// Parses a virsh size into KiB. The error names the value and says what was wrong, and is
/// shown by clap as `invalid value '<v>' for '<SIZE>': <why>`.
pub fn parse_kib(input: &str) -> Result<u64, String> {
    let text = input.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    if number.is_empty() {
        return Err(format!(
            "'{input}' is not a size: expected a number with an optional unit such as 512M or 4GiB"
        ));
    }
    let value: u64 = number
        .parse()
        .map_err(|_| format!("'{input}' is too large"))?;
    let bytes_per_unit = unit_bytes(unit).ok_or_else(|| {
        format!(
            "'{input}' has an unknown unit '{unit}': use b, KiB/k, KB, MiB/M, MB, GiB/G, GB, TiB/T, TB (a plain number is KiB)"
        )
    })?;
    let bytes = value
        .checked_mul(bytes_per_unit)
        .ok_or_else(|| format!("'{input}' is too large"))?;
    Ok(bytes.div_ceil(1024))
}

/// Bytes per unit for a memory size's suffix; no suffix is virsh's memory default, KiB.
fn unit_bytes(unit: &str) -> Option<u64> {
    if unit.is_empty() {
        return Some(1024);
    }
    unit_scale(unit)
}

/// Bytes per unit for a suffix, as `virScaleInteger` reads them (any case): none, `b`,
/// `byte`, `bytes` = 1; `k`/`KiB` … `e`/`EiB` = powers of 1024; `KB` … `EB` = powers of 1000.
/// `None` for a suffix virsh refuses. Callers decide what no suffix means.
pub fn unit_scale(unit: &str) -> Option<u64> {
    let lower = unit.to_ascii_lowercase();
    if matches!(lower.as_str(), "" | "b" | "byte" | "bytes") {
        return Some(1);
    }
    let mut chars = lower.chars();
    let power = match chars.next()? {
        'k' => 1,
        'm' => 2,
        'g' => 3,
        't' => 4,
        'p' => 5,
        'e' => 6,
        _ => return None,
    };
    let base: u64 = match chars.as_str() {
        "" | "ib" => 1024,
        "b" => 1000,
        _ => return None,
    };
    base.checked_pow(power)
}

#[cfg(test)]
mod tests {
    use super::parse_kib;

    #[test]
    fn plain_number_is_kib() {
        assert_eq!(parse_kib("1024"), Ok(1024));
        assert_eq!(parse_kib("0"), Ok(0));
        assert_eq!(parse_kib(" 42 "), Ok(42));
    }

    #[test]
    fn binary_suffixes() {
        assert_eq!(parse_kib("1k"), Ok(1));
        assert_eq!(parse_kib("1K"), Ok(1));
        assert_eq!(parse_kib("1KiB"), Ok(1));
        assert_eq!(parse_kib("512M"), Ok(512 * 1024));
        assert_eq!(parse_kib("512mib"), Ok(512 * 1024));
        assert_eq!(parse_kib("2G"), Ok(2 * 1024 * 1024));
        assert_eq!(parse_kib("2GiB"), Ok(2 * 1024 * 1024));
        assert_eq!(parse_kib("1T"), Ok(1024 * 1024 * 1024));
        assert_eq!(parse_kib("1TiB"), Ok(1024 * 1024 * 1024));
    }

    #[test]
    fn decimal_suffixes() {
        // 1 KB = 1000 bytes = 0.98 KiB, rounded up to 1.
        assert_eq!(parse_kib("1KB"), Ok(1));
        assert_eq!(parse_kib("1kb"), Ok(1));
        assert_eq!(parse_kib("2048KB"), Ok(2000));
        assert_eq!(parse_kib("1MB"), Ok(977)); // 1_000_000 / 1024 = 976.56 → 977
        assert_eq!(parse_kib("1GB"), Ok(976_563));
        assert_eq!(parse_kib("1TB"), Ok(976_562_500));
    }

    #[test]
    fn bytes_round_up() {
        assert_eq!(parse_kib("1b"), Ok(1));
        assert_eq!(parse_kib("1024b"), Ok(1));
        assert_eq!(parse_kib("1025bytes"), Ok(2));
        assert_eq!(parse_kib("2048byte"), Ok(2));
        assert_eq!(parse_kib("0b"), Ok(0));
    }

    #[test]
    fn bad_sizes_name_the_value() {
        for bad in [
            "", "M", "12Q", "1.5G", "-1", "1Gi", "1GiBs", "12 M x", "1 G",
        ] {
            let err = parse_kib(bad).unwrap_err();
            assert!(err.contains(&format!("'{bad}'")), "{bad}: {err}");
        }
        assert!(parse_kib("12Q").unwrap_err().contains("unknown unit 'Q'"));
    }

    #[test]
    fn overflow_is_an_error() {
        assert!(parse_kib("99999999999999999999").is_err());
        assert!(parse_kib("100000000E").unwrap_err().contains("too large"));
    }
}
