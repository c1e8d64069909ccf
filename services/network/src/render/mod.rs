//! Pure generators from a network definition to the host's configuration text, golden-file
//! tested (tests/render_golden.rs): `dnsmasq` (dnsmasq.conf and its two hosts files, in
//! libvirt's layout) and `nft` (the network's own nftables table). Nothing here touches the
//! host; `host/` applies the text.

pub mod dnsmasq;
pub mod nft;
pub mod plan;

#[cfg(test)]
mod tests;

/// Why a definition cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The bridge name has not been assigned yet (`assign_bridge_name` runs at define).
    #[error("network '{0}' has no bridge name")]
    NoBridge(String),
    /// The network's forward mode has no bridge, addresses or firewall of ours.
    #[error("network '{network}' with forward mode '{mode}' has nothing to render")]
    NotOurs { network: String, mode: String },
    /// `localPtr='yes'` on a subnet whose prefix is not a whole number of bytes (IPv4) or
    /// nibbles (IPv6), as libvirt refuses it.
    #[error(
        "network '{network}': the PTR domain for {family} network with prefix {prefix} cannot \
         be created automatically (localPtr='yes')"
    )]
    PtrDomain {
        network: String,
        family: &'static str,
        prefix: u8,
    },
    /// A value that would break out of its line or string (a newline, a quote): the XML
    /// layer refuses these, so this guards against other callers.
    #[error("network '{network}': {what} '{value}' cannot be written into {target}")]
    Unsafe {
        network: String,
        what: String,
        value: String,
        target: &'static str,
    },
}
