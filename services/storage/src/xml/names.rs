//! Pool and volume names. A volume's name becomes a file name inside its pool's directory
//! and a pool's name a file name in the state dir, so a name must be one path component:
//! libvirt refuses only `/` in a pool name (and leaves volume names to its drivers); we
//! apply one rule to both, at parse, so no driver can forget it.

use virtplane_xml::XmlError;

/// Longest name, in bytes: the usual file name limit (`NAME_MAX`).
pub const MAX_NAME_BYTES: usize = 255;

/// Checks a pool or volume name (`kind`: "pool" or "volume"): non-empty, no `/`, not `.`
/// or `..`, no control characters, at most 255 bytes. The error names the value and the
/// rule it breaks.
pub fn check_name(kind: &str, name: &str) -> Result<(), XmlError> {
    let location = format!("{kind} <name>");
    let refuse = |rule: &str| {
        Err(XmlError::value(
            location.as_str(),
            name.escape_debug().to_string(),
            rule,
        ))
    };
    if name.is_empty() {
        return Err(XmlError::invalid(location, "a name may not be empty"));
    }
    if name.contains('/') {
        return refuse("a name without '/'");
    }
    if name == "." || name == ".." {
        return refuse("a name other than '.' and '..'");
    }
    if name.chars().any(char::is_control) {
        return refuse("a name without control characters (newlines, tabs, …)");
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(XmlError::invalid(
            location,
            format!(
                "a name of {} bytes is too long: at most {MAX_NAME_BYTES} bytes are allowed",
                name.len()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in [
            "default",
            "vm disk.qcow2",
            "<sparse>.img",
            ".hidden",
            "a..b",
            "é",
        ] {
            assert!(check_name("volume", ok).is_ok(), "{ok}");
        }
        assert!(check_name("pool", &"x".repeat(255)).is_ok());
        let cases = [
            ("", "pool <name>: a name may not be empty"),
            (
                "a/b",
                "invalid value 'a/b' for pool <name>: expected a name without '/'",
            ),
            (
                "..",
                "invalid value '..' for pool <name>: expected a name other than",
            ),
            (".", "invalid value '.' for pool <name>"),
            (
                "a\nb",
                "invalid value 'a\\nb' for pool <name>: expected a name without control",
            ),
            ("a\u{7f}", "control characters"),
        ];
        for (bad, want) in cases {
            let e = check_name("pool", bad).unwrap_err().to_string();
            assert!(e.contains(want), "{bad:?}: {e}");
        }
        let e = check_name("volume", &"é".repeat(128))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("volume <name>: a name of 256 bytes is too long"),
            "{e}"
        );
    }
}
