//! Volume sizes read and shown the way virsh reads and shows them.
//!
//! Reading (`virshVolSize` = `virStrToLong_ullp` + `virScaleInteger` with scale 1): a plain
//! number is bytes; `b`, `byte`, `bytes` are bytes; `k`, `KiB`, `M`, `MiB`, `G`, `GiB`, `T`,
//! `TiB`, `P`, `PiB`, `E`, `EiB` (any case) are powers of 1024; `KB`, `MB`, `GB`, `TB`, `PB`,
//! `EB` (any case) powers of 1000. Leading blanks and a `+` are accepted, as `strtoull` does;
//! anything else after the number (a fraction, a blank, an unknown unit) is refused, and so is
//! a result past 2^64 - 1.
//!
//! Showing (`vshPrettyCapacity` + `"%.2lf %s"`): the largest binary unit the value reaches,
//! from `B` to `EiB`, with two decimals ("1.00 GiB", "512.00 MiB", "0.00 B").

use crate::size::unit_scale;

/// Parses a virsh volume size into bytes. The error names the value and says what is wrong;
/// clap shows it as `invalid value '<v>' for '<CAPACITY>': <why>`.
pub fn parse_bytes(input: &str) -> Result<u64, String> {
    let text = input.trim_start();
    let text = text.strip_prefix('+').unwrap_or(text);
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    if number.is_empty() {
        return Err(format!(
            "'{input}' is not a size: expected a number of bytes with an optional unit such as 512M, 10GiB or 1GB"
        ));
    }
    let value: u64 = number
        .parse()
        .map_err(|_| format!("'{input}' is too large: sizes go up to 16 EiB"))?;
    // A plain number of a volume size is bytes.
    let scale = unit_scale(unit).ok_or_else(|| {
        format!(
            "'{input}' has an unknown unit '{unit}': use b, K/KiB, KB, M/MiB, MB, G/GiB, GB, T/TiB, TB, P/PiB, PB, E/EiB, EB (a plain number is bytes)"
        )
    })?;
    value
        .checked_mul(scale)
        .ok_or_else(|| format!("'{input}' is too large: sizes go up to 16 EiB"))
}

/// A `vol-resize` capacity: virsh lets a leading `-` stand for "shrink by" (it needs
/// `--shrink`, and implies `--delta`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedSize {
    pub negative: bool,
    pub bytes: u64,
    /// The size as written, without leading blanks and without the `-`: virsh's messages
    /// quote it so ("successfully changed by 1G").
    pub text: String,
}

/// Parses a `vol-resize` capacity (`virSkipSpaces`, an optional `-`, then [`parse_bytes`]).
pub fn parse_signed(input: &str) -> Result<SignedSize, String> {
    let text = input.trim_start();
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let bytes = parse_bytes(rest)
        .map_err(|why| why.replacen(&format!("'{rest}'"), &format!("'{input}'"), 1))?;
    Ok(SignedSize {
        negative,
        bytes,
        text: rest.to_string(),
    })
}

/// `vshPrettyCapacity`: the value in the largest binary unit it reaches, computed in double
/// precision as virsh does.
pub fn pretty_capacity(value: u64) -> (f64, &'static str) {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    // The comparisons are done in double, as in C (`val < limit` converts `val`).
    let val = value as f64;
    let mut limit = 1024.0_f64;
    if val < limit {
        return (val, "B");
    }
    for unit in &UNITS[..UNITS.len() - 1] {
        limit *= 1024.0;
        if val < limit {
            return (val / (limit / 1024.0), unit);
        }
    }
    limit *= 1024.0;
    (val / (limit / 1024.0), "EiB")
}

/// virsh's `"%.2lf %s"` of [`pretty_capacity`]: "1.00 GiB". (`%2.2lf` in pool-info and
/// vol-info prints the same: the width 2 never pads a number with two decimals.)
pub fn pretty(value: u64) -> String {
    let (v, unit) = pretty_capacity(value);
    format!("{v:.2} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_number_is_bytes() {
        assert_eq!(parse_bytes("0"), Ok(0));
        assert_eq!(parse_bytes("1"), Ok(1));
        assert_eq!(parse_bytes("1073741824"), Ok(1 << 30));
        assert_eq!(parse_bytes("  42"), Ok(42));
        assert_eq!(parse_bytes("+42"), Ok(42));
        assert_eq!(parse_bytes("18446744073709551615"), Ok(u64::MAX));
    }

    #[test]
    fn binary_and_decimal_units() {
        assert_eq!(parse_bytes("1G"), Ok(1_073_741_824));
        assert_eq!(parse_bytes("1g"), Ok(1_073_741_824));
        assert_eq!(parse_bytes("1GiB"), Ok(1_073_741_824));
        assert_eq!(parse_bytes("1gib"), Ok(1_073_741_824));
        assert_eq!(parse_bytes("1GB"), Ok(1_000_000_000));
        assert_eq!(parse_bytes("1gb"), Ok(1_000_000_000));
        assert_eq!(parse_bytes("512M"), Ok(512 << 20));
        assert_eq!(parse_bytes("4k"), Ok(4096));
        assert_eq!(parse_bytes("4KB"), Ok(4000));
        assert_eq!(parse_bytes("2T"), Ok(2 << 40));
        assert_eq!(parse_bytes("3TB"), Ok(3_000_000_000_000));
        assert_eq!(parse_bytes("1P"), Ok(1 << 50));
        assert_eq!(parse_bytes("1PB"), Ok(1_000_000_000_000_000));
        assert_eq!(parse_bytes("15E"), Ok(15 << 60));
        assert_eq!(parse_bytes("1EB"), Ok(1_000_000_000_000_000_000));
        assert_eq!(parse_bytes("100b"), Ok(100));
        assert_eq!(parse_bytes("100Byte"), Ok(100));
        assert_eq!(parse_bytes("100bytes"), Ok(100));
    }

    #[test]
    fn junk_is_refused_naming_the_value() {
        for bad in [
            "", "G", "-1", "1.5G", "1 G", "12Q", "1Gi", "1GiBs", "0x10", "1KiBB", "1bb",
        ] {
            let err = parse_bytes(bad).unwrap_err();
            assert!(err.contains(&format!("'{bad}'")), "{bad}: {err}");
        }
        assert!(parse_bytes("12Q").unwrap_err().contains("unknown unit 'Q'"));
    }

    #[test]
    fn overflow_is_refused() {
        assert!(
            parse_bytes("18446744073709551616")
                .unwrap_err()
                .contains("too large")
        );
        assert!(parse_bytes("16E").unwrap_err().contains("too large"));
        assert!(
            parse_bytes("18446744073709551615k")
                .unwrap_err()
                .contains("too large")
        );
        assert!(
            parse_bytes("99999999999999999999999")
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn signed_sizes_for_resize() {
        assert_eq!(
            parse_signed("-1G"),
            Ok(SignedSize {
                negative: true,
                bytes: 1 << 30,
                text: "1G".into()
            })
        );
        assert_eq!(
            parse_signed(" 2GB"),
            Ok(SignedSize {
                negative: false,
                bytes: 2_000_000_000,
                text: "2GB".into()
            })
        );
        let err = parse_signed("-x").unwrap_err();
        assert!(err.contains("'-x'"), "{err}");
        assert!(parse_signed("--1G").is_err());
    }

    #[test]
    fn pretty_like_vsh_pretty_capacity() {
        assert_eq!(pretty(0), "0.00 B");
        assert_eq!(pretty(1023), "1023.00 B");
        assert_eq!(pretty(1024), "1.00 KiB");
        assert_eq!(pretty(1536), "1.50 KiB");
        // Ties round to even on the exact binary value, as glibc's printf does.
        assert_eq!(pretty(1152), "1.12 KiB");
        assert_eq!(pretty(512 << 20), "512.00 MiB");
        assert_eq!(pretty((1 << 20) - 1), "1024.00 KiB");
        assert_eq!(pretty(1 << 30), "1.00 GiB");
        assert_eq!(pretty(10_000_000_000), "9.31 GiB");
        assert_eq!(pretty(3 << 40), "3.00 TiB");
        assert_eq!(pretty(5 << 50), "5.00 PiB");
        assert_eq!(pretty(u64::MAX), "16.00 EiB");
        assert_eq!(pretty_capacity(1 << 30), (1.0, "GiB"));
    }
}
