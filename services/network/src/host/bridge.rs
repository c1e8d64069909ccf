//! A network's Linux bridge over rtnetlink: create it (name, MAC, MTU, STP, forward delay),
//! give it its addresses, bring it up, look it up, delete it — in the network namespace of
//! the thread that opens the [`Netlink`] connection.
//!
//! As libvirt's `networkStartNetworkVirtual`: the bridge is created down with its MAC (so it
//! keeps that address whatever ports join it), then its MTU is set, then the addresses are
//! added, and the driver brings it up last. A name that is already taken is an error that
//! says whether the device there is a bridge (another network's, or one left behind) or
//! something else; this module never adopts or deletes a device it is not told to, and
//! [`Netlink::delete_bridge`] refuses to delete anything but a bridge.
//!
//! STP and the forward delay are set in the same request that creates the bridge
//! (`IFLA_INFO_DATA`: `IFLA_BR_FORWARD_DELAY` before `IFLA_BR_STP_STATE`, which is the order
//! the kernel applies them). With STP on, the kernel raises a forward delay under 2 s to 2 s
//! (its minimum for STP), so libvirt's default `stp='on' delay='0'` gives 2 s here as it
//! does under libvirt.
//!
//! Every request has a timeout; the connection lives as long as one [`Netlink`] value.

use std::collections::HashSet;
use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

use futures::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::link::{
    BridgeStpState, InfoBridge, InfoData, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use rtnetlink::{Handle, LinkBridge, LinkMessageBuilder, LinkUnspec};

/// One netlink request: the kernel answers at once; this only bounds a wedged socket.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The kernel's limit on device names (IFNAMSIZ less the NUL).
const MAX_NAME_LEN: usize = 15;

/// What can go wrong, naming the device and the operation.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("invalid bridge name '{name}': {why}")]
    InvalidName { name: String, why: String },
    #[error(
        "cannot create bridge '{0}': a bridge of that name already exists (another \
         network's, or one left behind); choose another bridge name or delete it"
    )]
    BridgeExists(String),
    #[error(
        "cannot create bridge '{name}': the name is taken by a {kind} device, not a bridge; \
         choose another bridge name"
    )]
    NameTaken { name: String, kind: String },
    #[error("bridge '{0}' does not exist")]
    NotFound(String),
    #[error("'{name}' is not a bridge but a {kind} device; it is left alone")]
    NotABridge { name: String, kind: String },
    #[error("cannot {what}: the address is already on the bridge")]
    AddressExists { what: String },
    #[error("invalid prefix length /{prefix} for {address}")]
    InvalidPrefix { address: IpAddr, prefix: u8 },
    #[error(
        "no permission to {0}: the network service needs CAP_NET_ADMIN (run it as root) to \
         manage bridges"
    )]
    Permission(String),
    #[error("cannot {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot {what}: {message}")]
    Netlink { what: String, message: String },
    #[error("{what}: no answer from the kernel within {} s", .after.as_secs())]
    Timeout { what: String, after: Duration },
}

impl BridgeError {
    /// An I/O error of `what`, told apart when it is a missing permission.
    fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        let what = what.into();
        match source.raw_os_error() {
            Some(libc::EPERM | libc::EACCES) => Self::Permission(what),
            _ => Self::Io { what, source },
        }
    }
}

/// The bridge to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeConfig {
    pub name: String,
    /// The bridge's own MAC (the network's `<mac address>`); `None` lets the kernel choose.
    pub mac: Option<[u8; 6]>,
    /// `None` leaves the kernel's default (1500).
    pub mtu: Option<u32>,
    /// `<bridge stp='on'>`.
    pub stp: bool,
    /// `<bridge delay='N'>`, in seconds.
    pub forward_delay_secs: u32,
}

/// An address on a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IfAddress {
    pub address: IpAddr,
    pub prefix: u8,
}

impl std::fmt::Display for IfAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

/// What the kernel says about a device (bridge or not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub index: u32,
    pub name: String,
    /// `IFLA_INFO_KIND`: "bridge", "veth", "tun", ...; `None` for plain devices (`lo`, NICs).
    pub kind: Option<String>,
    /// Lower-case `aa:bb:cc:dd:ee:ff`.
    pub mac: Option<String>,
    pub mtu: Option<u32>,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// A bridge's STP state (on for kernel or user STP).
    pub stp: Option<bool>,
    /// A bridge's forward delay, in the kernel's unit (centiseconds).
    pub forward_delay_centisecs: Option<u32>,
    /// Its IPv4 and IPv6 addresses, link-local ones included.
    pub addresses: Vec<IfAddress>,
}

impl Device {
    pub fn is_bridge(&self) -> bool {
        self.kind.as_deref() == Some("bridge")
    }

    /// What to call it in messages.
    pub fn describe_kind(&self) -> String {
        self.kind.clone().unwrap_or_else(|| "network".into())
    }

    fn from_message(message: &LinkMessage) -> Self {
        let mut device = Device {
            index: message.header.index,
            name: String::new(),
            kind: None,
            mac: None,
            mtu: None,
            up: message.header.flags.contains(LinkFlags::Up),
            stp: None,
            forward_delay_centisecs: None,
            addresses: Vec::new(),
        };
        for attribute in &message.attributes {
            match attribute {
                LinkAttribute::IfName(name) => device.name = name.clone(),
                LinkAttribute::Mtu(mtu) => device.mtu = Some(*mtu),
                LinkAttribute::Address(bytes) if !bytes.is_empty() => {
                    device.mac = Some(format_hw(bytes))
                }
                LinkAttribute::LinkInfo(infos) => {
                    for info in infos {
                        match info {
                            LinkInfo::Kind(kind) => device.kind = Some(kind.to_string()),
                            LinkInfo::Data(InfoData::Bridge(options)) => {
                                for option in options {
                                    match option {
                                        InfoBridge::StpState(state) => {
                                            device.stp = Some(*state != BridgeStpState::Disabled)
                                        }
                                        InfoBridge::ForwardDelay(delay) => {
                                            device.forward_delay_centisecs = Some(*delay)
                                        }
                                        _ => {}
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        device
    }
}

/// `aa:bb:…` for any length of hardware address.
pub fn format_hw(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Checks a device name as the kernel's `dev_valid_name` does, so a bad name is refused
/// with a reason before any request.
pub fn check_name(name: &str) -> Result<(), BridgeError> {
    let why = if name.is_empty() {
        Some("it is empty".to_owned())
    } else if name.len() > MAX_NAME_LEN {
        Some(format!(
            "it is {} bytes long; device names have at most {MAX_NAME_LEN}",
            name.len()
        ))
    } else if name == "." || name == ".." {
        Some("'.' and '..' are not device names".to_owned())
    } else {
        name.chars()
            .find(|c| *c == '/' || *c == ':' || c.is_whitespace())
            .map(|c| format!("device names cannot contain {c:?}"))
    };
    match why {
        None => Ok(()),
        Some(why) => Err(BridgeError::InvalidName {
            name: name.to_owned(),
            why,
        }),
    }
}

/// An rtnetlink connection in the current thread's network namespace.
pub struct Netlink {
    handle: Handle,
    connection: tokio::task::JoinHandle<()>,
}

impl Drop for Netlink {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl Netlink {
    /// Opens a connection. Must be called inside a tokio runtime.
    pub fn open() -> Result<Self, BridgeError> {
        let (connection, handle, _) =
            rtnetlink::new_connection().map_err(|e| BridgeError::io("open a netlink socket", e))?;
        Ok(Self {
            handle,
            connection: tokio::spawn(connection),
        })
    }

    /// The device called `name` with its addresses, if there is one.
    pub async fn device(&self, name: &str) -> Result<Option<Device>, BridgeError> {
        check_name(name)?;
        let what = format!("look up network device '{name}'");
        let request = self
            .handle
            .link()
            .get()
            .match_name(name.to_owned())
            .execute();
        let mut device = match bounded(&what, request.try_collect::<Vec<_>>()).await? {
            Ok(messages) => match messages.first() {
                Some(message) => Device::from_message(message),
                None => return Ok(None),
            },
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => {
                return Ok(None);
            }
            Err(error) => return Err(netlink_error(what, error)),
        };
        device.addresses = self.addresses(&device).await?;
        Ok(Some(device))
    }

    /// The names of every device in the namespace (to choose a free `virbrN`).
    pub async fn names(&self) -> Result<HashSet<String>, BridgeError> {
        let what = "list network devices";
        let request = self.handle.link().get().execute();
        let messages = bounded(what, request.try_collect::<Vec<_>>())
            .await?
            .map_err(|e| netlink_error(what, e))?;
        Ok(messages
            .iter()
            .map(|m| Device::from_message(m).name)
            .collect())
    }

    /// Creates the bridge, down, with its MAC, STP state and forward delay, then sets its
    /// MTU. Fails without touching anything when the name is taken. If setting the MTU
    /// fails, the new bridge is deleted again.
    pub async fn create_bridge(&self, config: &BridgeConfig) -> Result<Device, BridgeError> {
        let name = &config.name;
        if let Some(existing) = self.device(name).await? {
            return Err(taken(existing));
        }
        let what = format!("create bridge '{name}'");
        // `LinkBridge::new` would also bring it up; the builder leaves it down.
        let mut builder = LinkMessageBuilder::<LinkBridge>::new(name)
            .forward_delay(config.forward_delay_secs.saturating_mul(100))
            .stp_state(if config.stp {
                BridgeStpState::KernelStp
            } else {
                BridgeStpState::Disabled
            });
        if let Some(mac) = config.mac {
            builder = builder.address(mac.to_vec());
        }
        let request = self.handle.link().add(builder.build()).execute();
        match bounded(&what, request).await? {
            Ok(()) => {}
            // Made by someone else between the lookup and the request.
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::EEXIST => {
                return Err(match self.device(name).await? {
                    Some(existing) => taken(existing),
                    None => BridgeError::BridgeExists(name.clone()),
                });
            }
            Err(error) => return Err(netlink_error(what, error)),
        }
        let device = self
            .device(name)
            .await?
            .ok_or_else(|| BridgeError::NotFound(name.clone()))?;
        if let Some(mtu) = config.mtu {
            if let Err(error) = self.set_mtu(&device, mtu).await {
                let _ = self.delete(&device).await;
                return Err(error);
            }
            return self
                .device(name)
                .await?
                .ok_or_else(|| BridgeError::NotFound(name.clone()));
        }
        Ok(device)
    }

    /// Sets a device's MTU (`ip link set DEV mtu MTU`). On a bridge this also pins the MTU,
    /// so ports that join later do not lower it.
    pub async fn set_mtu(&self, device: &Device, mtu: u32) -> Result<(), BridgeError> {
        let what = format!("set the MTU of '{}' to {mtu}", device.name);
        self.set(
            what,
            LinkUnspec::new_with_index(device.index).mtu(mtu).build(),
        )
        .await
    }

    /// Adds `address/prefix` to the device (`ip addr add`), with the broadcast address for
    /// IPv4 as `ip` sets it.
    pub async fn add_address(
        &self,
        device: &Device,
        address: IpAddr,
        prefix: u8,
    ) -> Result<(), BridgeError> {
        let max = if address.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(BridgeError::InvalidPrefix { address, prefix });
        }
        let what = format!("add address {address}/{prefix} to '{}'", device.name);
        let request = self
            .handle
            .address()
            .add(device.index, address, prefix)
            .execute();
        match bounded(&what, request).await? {
            Ok(()) => Ok(()),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::EEXIST => {
                Err(BridgeError::AddressExists { what })
            }
            Err(error) => Err(netlink_error(what, error)),
        }
    }

    /// Brings the device up (`ip link set DEV up`).
    pub async fn set_up(&self, device: &Device) -> Result<(), BridgeError> {
        let what = format!("bring '{}' up", device.name);
        self.set(what, LinkUnspec::new_with_index(device.index).up().build())
            .await
    }

    /// Brings the device down.
    pub async fn set_down(&self, device: &Device) -> Result<(), BridgeError> {
        let what = format!("bring '{}' down", device.name);
        self.set(
            what,
            LinkUnspec::new_with_index(device.index).down().build(),
        )
        .await
    }

    /// Deletes the bridge called `name` (its addresses go with it; its ports are let go, not
    /// deleted). Returns false when there is no such device; refuses a device that is not a
    /// bridge.
    pub async fn delete_bridge(&self, name: &str) -> Result<bool, BridgeError> {
        let Some(device) = self.device(name).await? else {
            return Ok(false);
        };
        if !device.is_bridge() {
            return Err(BridgeError::NotABridge {
                name: device.name.clone(),
                kind: device.describe_kind(),
            });
        }
        match self.delete(&device).await {
            Ok(()) => Ok(true),
            // Deleted by someone else meanwhile.
            Err(BridgeError::Io { source, .. }) if source.raw_os_error() == Some(libc::ENODEV) => {
                Ok(false)
            }
            Err(error) => Err(error),
        }
    }

    async fn delete(&self, device: &Device) -> Result<(), BridgeError> {
        let what = format!("delete bridge '{}'", device.name);
        bounded(&what, self.handle.link().del(device.index).execute())
            .await?
            .map_err(|e| netlink_error(what, e))
    }

    async fn addresses(&self, device: &Device) -> Result<Vec<IfAddress>, BridgeError> {
        let what = format!("list the addresses of '{}'", device.name);
        let request = self
            .handle
            .address()
            .get()
            .set_link_index_filter(device.index)
            .execute();
        let messages = bounded(&what, request.try_collect::<Vec<_>>())
            .await?
            .map_err(|e| netlink_error(what, e))?;
        Ok(messages
            .iter()
            // The kernel may ignore the filter on some versions: filter here too.
            .filter(|m| m.header.index == device.index)
            .filter_map(address_of)
            .collect())
    }

    async fn set(&self, what: String, message: LinkMessage) -> Result<(), BridgeError> {
        bounded(&what, self.handle.link().set(message).execute())
            .await?
            .map_err(|e| netlink_error(what, e))
    }
}

/// The error for a name that is taken by `existing`.
fn taken(existing: Device) -> BridgeError {
    if existing.is_bridge() {
        BridgeError::BridgeExists(existing.name)
    } else {
        BridgeError::NameTaken {
            kind: existing.describe_kind(),
            name: existing.name,
        }
    }
}

/// The address of an address message: `IFA_LOCAL` (the interface's own address; on
/// point-to-point links `IFA_ADDRESS` is the peer's), else `IFA_ADDRESS`.
fn address_of(message: &AddressMessage) -> Option<IfAddress> {
    let mut local = None;
    let mut address = None;
    for attribute in &message.attributes {
        match attribute {
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Address(ip) => address = Some(*ip),
            _ => {}
        }
    }
    local.or(address).map(|address| IfAddress {
        address,
        prefix: message.header.prefix_len,
    })
}

/// Runs one request with [`REQUEST_TIMEOUT`].
async fn bounded<T>(what: &str, request: impl Future<Output = T>) -> Result<T, BridgeError> {
    tokio::time::timeout(REQUEST_TIMEOUT, request)
        .await
        .map_err(|_| BridgeError::Timeout {
            what: what.to_owned(),
            after: REQUEST_TIMEOUT,
        })
}

/// A netlink failure in the kernel's words, told apart when it is a missing permission.
fn netlink_error(what: impl Into<String>, error: rtnetlink::Error) -> BridgeError {
    match error {
        rtnetlink::Error::NetlinkError(message) => BridgeError::io(what, message.to_io()),
        other => BridgeError::Netlink {
            what: what.into(),
            message: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_as_the_kernel_does() {
        check_name("virbr0").unwrap();
        check_name("a-bridge.name_1").unwrap();
        for (name, why) in [
            ("", "empty"),
            ("virbr-far-too-long", "18 bytes long"),
            ("..", "'.' and '..'"),
            ("br/0", "'/'"),
            ("br:0", "':'"),
            ("br 0", "' '"),
        ] {
            let error = check_name(name).unwrap_err().to_string();
            assert!(error.starts_with("invalid bridge name"), "{error}");
            assert!(error.contains(why), "{name:?}: {error}");
        }
    }

    #[test]
    fn taken_names_say_whether_a_bridge_is_there() {
        let mut device = Device {
            index: 3,
            name: "virbr0".into(),
            kind: Some("bridge".into()),
            mac: None,
            mtu: None,
            up: false,
            stp: None,
            forward_delay_centisecs: None,
            addresses: Vec::new(),
        };
        assert_eq!(
            taken(device.clone()).to_string(),
            "cannot create bridge 'virbr0': a bridge of that name already exists (another \
             network's, or one left behind); choose another bridge name or delete it"
        );
        device.kind = None;
        device.name = "eth0".into();
        assert_eq!(
            taken(device).to_string(),
            "cannot create bridge 'eth0': the name is taken by a network device, not a \
             bridge; choose another bridge name"
        );
    }

    #[test]
    fn permission_errors_are_told_apart() {
        let denied = BridgeError::io(
            "create bridge 'virbr0'",
            std::io::Error::from_raw_os_error(libc::EPERM),
        );
        assert!(denied.to_string().contains("CAP_NET_ADMIN"), "{denied}");
        let other = BridgeError::io(
            "create bridge 'virbr0'",
            std::io::Error::from_raw_os_error(libc::EINVAL),
        );
        assert!(
            other
                .to_string()
                .starts_with("cannot create bridge 'virbr0': "),
            "{other}"
        );
    }

    #[test]
    fn formats_hardware_addresses() {
        assert_eq!(
            format_hw(&[0x52, 0x54, 0, 0xab, 0xcd, 0xef]),
            "52:54:00:ab:cd:ef"
        );
    }
}
