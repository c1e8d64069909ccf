//! Host-side primitives of the bridge driver: what starting and stopping a network does to
//! the host, one concern per file. Each works in the network namespace of the calling thread
//! (tests run them inside namespaces of their own), bounds every external call with a
//! timeout, and reports failures naming the object and the operation.
//!
//! - `bridge`: the Linux bridge and its addresses, over rtnetlink.
//! - `dnsmasq`: one dnsmasq daemon per network: start, reattach from its pid file, reload,
//!   stop.
//! - `leases`: dnsmasq's lease file, parsed.
//! - `nft`: the network's own nftables table(s), replaced atomically with `nft -f -`, and the
//!   other tables' drop policies that may conflict.
//! - `sysctl`: IP forwarding and the bridge's IPv6 settings.
//! - `command`, `process`: running a tool with a timeout; a pidfd handle on a daemon.
//! - `network`: the above composed: start, stop and re-adopt one network from a rendered
//!   plan, in libvirt's order, undoing a failed start.

pub mod bridge;
pub mod command;
pub mod dnsmasq;
pub mod leases;
pub mod network;
pub mod nft;
pub mod process;
pub mod sysctl;
