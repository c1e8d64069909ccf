//! W3C trace context (`traceparent`, <https://www.w3.org/TR/trace-context/>): read from a
//! request, continued or started, and written onto the requests a hop makes. virtplane exports
//! no spans; the trace id ties the log lines of one call together across the gateway and the
//! services, and a caller's own tracing system sees its trace id in them.

use std::fmt;

/// The request header that carries the trace context.
pub const TRACEPARENT: &str = "traceparent";
/// Vendor-specific trace state; passed on unchanged with a continued trace, dropped when the
/// trace is restarted (its entries describe the caller's discarded `traceparent`).
pub const TRACESTATE: &str = "tracestate";

/// One hop of a trace: the trace id, this hop's own span id, and the span id of the caller's
/// hop when the request carried a valid `traceparent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    /// The caller's span id; `None` when this hop started the trace.
    pub parent_span_id: Option<[u8; 8]>,
    /// The trace flags (bit 0: the caller samples this trace), kept as the caller sent them.
    pub flags: u8,
}

/// The parts of a `traceparent` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: [u8; 16],
    pub parent_id: [u8; 8],
    pub flags: u8,
}

impl TraceParent {
    /// Parses a `traceparent` value as the W3C rules say a receiver must: version `00` is
    /// exactly `00-<32 hex>-<16 hex>-<2 hex>`, a later version may append `-…` fields (which
    /// are ignored), version `ff` and all-zero ids are invalid, hex is lowercase.
    pub fn parse(value: &str) -> Option<Self> {
        let bytes = value.as_bytes();
        // ASCII only, so the slices below fall on character boundaries.
        if bytes.len() < 55 || !value.is_ascii() {
            return None;
        }
        let version = decode_hex::<1>(&value[0..2])?[0];
        if version == 0xff || bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
            return None;
        }
        if (version == 0 && bytes.len() != 55) || (bytes.len() > 55 && bytes[55] != b'-') {
            return None;
        }
        let trace_id = decode_hex::<16>(&value[3..35])?;
        let parent_id = decode_hex::<8>(&value[36..52])?;
        let flags = decode_hex::<1>(&value[53..55])?[0];
        if trace_id == [0; 16] || parent_id == [0; 8] {
            return None;
        }
        Some(Self {
            trace_id,
            parent_id,
            flags,
        })
    }
}

impl TraceContext {
    /// The context of a hop that received `traceparent` (if any): the caller's trace continued
    /// with a new span id, or a new trace when the header is missing or invalid.
    pub fn from_header(traceparent: Option<&str>) -> Self {
        match traceparent.and_then(TraceParent::parse) {
            Some(parent) => Self {
                trace_id: parent.trace_id,
                span_id: new_span_id(),
                parent_span_id: Some(parent.parent_id),
                flags: parent.flags,
            },
            None => Self::new_root(),
        }
    }

    /// A new trace (random ids, not sampled: nothing records it).
    pub fn new_root() -> Self {
        let mut trace_id: [u8; 16] = rand::random();
        if trace_id == [0; 16] {
            trace_id[15] = 1;
        }
        Self {
            trace_id,
            span_id: new_span_id(),
            parent_span_id: None,
            flags: 0,
        }
    }

    /// Whether this hop continues a caller's trace (else it started one).
    pub fn is_continued(&self) -> bool {
        self.parent_span_id.is_some()
    }

    /// The `traceparent` this hop sends on its own requests: same trace, this hop's span id
    /// as their parent.
    pub fn traceparent(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            hex::encode(self.trace_id),
            hex::encode(self.span_id),
            self.flags
        )
    }

    /// The trace id as 32 lowercase hex digits (what logs show).
    pub fn trace_id_hex(&self) -> String {
        hex::encode(self.trace_id)
    }

    /// This hop's span id as 16 lowercase hex digits.
    pub fn span_id_hex(&self) -> String {
        hex::encode(self.span_id)
    }
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.traceparent())
    }
}

fn new_span_id() -> [u8; 8] {
    let mut id: [u8; 8] = rand::random();
    if id == [0; 8] {
        id[7] = 1;
    }
    id
}

/// `N` bytes from exactly `2 * N` lowercase hex digits.
fn decode_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N
        || !text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let mut out = [0; N];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_the_w3c_example() {
        let parent = TraceParent::parse(EXAMPLE).unwrap();
        assert_eq!(
            hex::encode(parent.trace_id),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(hex::encode(parent.parent_id), "00f067aa0ba902b7");
        assert_eq!(parent.flags, 1);
    }

    #[test]
    fn rejects_what_the_spec_calls_invalid() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            // Uppercase hex.
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            // All-zero trace id, all-zero parent id.
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            // Version ff, and version 00 with extra fields.
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            // Wrong separators, non-hex.
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            // A later version must still separate its extra fields with '-'.
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_later_version_with_more_fields_is_read() {
        let value = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-what-comes";
        let parent = TraceParent::parse(value).unwrap();
        assert_eq!(parent.flags, 0);
    }

    #[test]
    fn a_continued_trace_keeps_the_id_and_flags_with_a_new_span() {
        let hop = TraceContext::from_header(Some(EXAMPLE));
        assert!(hop.is_continued());
        assert_eq!(hop.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(
            hop.parent_span_id.map(hex::encode).unwrap(),
            "00f067aa0ba902b7"
        );
        let next = hop.traceparent();
        assert!(
            next.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            "{next}"
        );
        assert!(next.ends_with("-01"), "{next}");
        assert_ne!(&next[36..52], "00f067aa0ba902b7", "the hop's own span id");
        let reread = TraceParent::parse(&next).unwrap();
        assert_eq!(reread.parent_id, hop.span_id);
    }

    #[test]
    fn a_missing_or_invalid_header_starts_a_new_trace() {
        for header in [None, Some("garbage")] {
            let hop = TraceContext::from_header(header);
            assert!(!hop.is_continued());
            assert_eq!(hop.flags, 0);
            assert_ne!(hop.trace_id, [0; 16]);
            let value = hop.traceparent();
            assert_eq!(TraceParent::parse(&value).unwrap().trace_id, hop.trace_id);
        }
        assert_ne!(
            TraceContext::new_root().trace_id,
            TraceContext::new_root().trace_id
        );
    }
}
