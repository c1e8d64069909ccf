//! virtplane's network service: virtual networks in libvirt's network XML, run by a driver.
//!
//! - `host`: what the bridge driver does to the host, one concern per file: the Linux bridge
//!   and its addresses (rtnetlink), one dnsmasq per network, the network's own nftables
//!   table, and the DHCP lease file.

pub mod host;
pub mod render;
pub mod xml;
