//! The one error type of the XML model.
//!
//! Every message names the element (and attribute) it is about, so a user who sees it over the
//! API can find the offending spot in their document without reading our source.

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// The document is larger than its type allows (`what`: "domain", "network", …);
    /// checked before parsing so a huge upload costs nothing.
    #[error("{what} XML is {size} bytes; at most {limit} bytes are allowed")]
    TooLarge {
        what: &'static str,
        size: usize,
        limit: usize,
    },
    /// Not well-formed XML.
    #[error("malformed XML at line {line}, column {column}: {message}")]
    Malformed {
        line: usize,
        column: usize,
        message: String,
    },
    /// Well-formed but refused for safety (DOCTYPE, entity declarations, excessive nesting).
    #[error("{0}")]
    Forbidden(String),
    /// A value or structure that breaks a rule; `location` is e.g. `<vcpu>`,
    /// `<memory unit='XB'>` or `<devices>/<disk>/<target dev='vda'>`.
    #[error("{location}: {reason}")]
    Invalid { location: String, reason: String },
    /// A value that does not parse as what the element or attribute holds.
    #[error("invalid value '{value}' for {location}: expected {expected}")]
    InvalidValue {
        location: String,
        value: String,
        expected: String,
    },
    /// A required element or attribute is absent.
    #[error("missing {location}")]
    Missing { location: String },
}

impl XmlError {
    pub fn invalid(location: impl Into<String>, reason: impl Into<String>) -> Self {
        XmlError::Invalid {
            location: location.into(),
            reason: reason.into(),
        }
    }

    pub fn missing(location: impl Into<String>) -> Self {
        XmlError::Missing {
            location: location.into(),
        }
    }

    pub fn value(
        location: impl Into<String>,
        value: impl Into<String>,
        expected: impl Into<String>,
    ) -> Self {
        XmlError::InvalidValue {
            location: location.into(),
            value: value.into(),
            expected: expected.into(),
        }
    }
}
