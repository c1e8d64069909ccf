//! Object name rules shared by every service (domains, networks, pools, volumes).
//!
//! Names become file names under the state dir and pool directories, so they must never be
//! able to leave them: no `/`, no `.`/`..`, no NUL or other control characters, bounded length.

/// Longest accepted name, in bytes.
pub const MAX_NAME_BYTES: usize = 256;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("name must not be empty")]
    Empty,
    #[error("name is {0} bytes long; at most {MAX_NAME_BYTES} are allowed")]
    TooLong(usize),
    #[error("name must not contain '/'")]
    Slash,
    #[error("name must not be '.' or '..'")]
    Dots,
    #[error("name must not contain control characters (found U+{0:04X})")]
    Control(u32),
    #[error("name must not start with '-'")]
    LeadingDash,
}

/// Checks an object name against the rules above.
pub fn validate_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(NameError::TooLong(name.len()));
    }
    if name.contains('/') {
        return Err(NameError::Slash);
    }
    if name == "." || name == ".." {
        return Err(NameError::Dots);
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(NameError::Control(c as u32));
    }
    if name.starts_with('-') {
        return Err(NameError::LeadingDash);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for name in ["web", "test", "vm-01.example", "ünïcode", "a b", "x..y"] {
            assert_eq!(validate_name(name), Ok(()), "{name}");
        }
        assert_eq!(validate_name(&"a".repeat(256)), Ok(()));
    }

    #[test]
    fn refuses_each_bad_name_with_its_reason() {
        assert_eq!(validate_name(""), Err(NameError::Empty));
        assert_eq!(
            validate_name(&"a".repeat(257)),
            Err(NameError::TooLong(257))
        );
        assert_eq!(validate_name("a/b"), Err(NameError::Slash));
        assert_eq!(validate_name("../etc"), Err(NameError::Slash));
        assert_eq!(validate_name(".."), Err(NameError::Dots));
        assert_eq!(validate_name("."), Err(NameError::Dots));
        assert_eq!(validate_name("a\0b"), Err(NameError::Control(0)));
        assert_eq!(validate_name("a\nb"), Err(NameError::Control(10)));
        assert_eq!(validate_name("-rf"), Err(NameError::LeadingDash));
    }
}
