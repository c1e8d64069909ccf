//! The network devices of the service's network namespace over rtnetlink: look a device up,
//! list the names in use, configure a tap (MAC, MTU, bridge, up) and delete it. Each request
//! has a timeout; the connection lives as long as one [`Netlink`] value.

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use futures::TryStreamExt;
use rtnetlink::packet_route::link::{LinkAttribute, LinkInfo, LinkLayerType, LinkMessage};
use rtnetlink::{Handle, LinkUnspec};

use super::error::NetError;

/// One netlink request: the kernel answers at once; this only bounds a wedged socket.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// What the service needs to know about an existing device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub index: u32,
    pub name: String,
    /// `IFLA_INFO_KIND`: "bridge", "tun", "veth", ...; `None` for plain devices (`lo`, NICs).
    pub kind: Option<String>,
    /// ARPHRD_ETHER: a tap is, a tun is not.
    pub ethernet: bool,
    pub mtu: Option<u32>,
    /// The bridge (or other controller) it is attached to.
    pub controller: Option<u32>,
}

impl Device {
    /// A tap (not a tun, not anything else).
    pub fn is_tap(&self) -> bool {
        self.kind.as_deref() == Some("tun") && self.ethernet
    }

    pub fn is_bridge(&self) -> bool {
        self.kind.as_deref() == Some("bridge")
    }

    /// What to call it in messages.
    pub fn describe_kind(&self) -> String {
        match self.kind.as_deref() {
            Some("tun") if !self.ethernet => "tun".into(),
            Some(kind) => kind.into(),
            None => "network".into(),
        }
    }

    fn from_message(message: &LinkMessage) -> Self {
        let mut device = Device {
            index: message.header.index,
            name: String::new(),
            kind: None,
            ethernet: message.header.link_layer_type == LinkLayerType::Ether,
            mtu: None,
            controller: None,
        };
        for attribute in &message.attributes {
            match attribute {
                LinkAttribute::IfName(name) => device.name = name.clone(),
                LinkAttribute::Mtu(mtu) => device.mtu = Some(*mtu),
                LinkAttribute::Controller(index) => device.controller = Some(*index),
                LinkAttribute::LinkInfo(infos) => {
                    for info in infos {
                        if let LinkInfo::Kind(kind) = info {
                            device.kind = Some(kind.to_string());
                        }
                    }
                }
                _ => {}
            }
        }
        device
    }
}

/// An rtnetlink connection in the current network namespace.
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
    pub fn open() -> Result<Self, NetError> {
        let (connection, handle, _) =
            rtnetlink::new_connection().map_err(|e| NetError::io("open a netlink socket", e))?;
        Ok(Self {
            handle,
            connection: tokio::spawn(connection),
        })
    }

    /// The device called `name`, if there is one.
    pub async fn device(&self, name: &str) -> Result<Option<Device>, NetError> {
        let what = format!("look up network device '{name}'");
        let request = self.handle.link().get().match_name(name).execute();
        match bounded(&what, request.try_collect::<Vec<_>>()).await? {
            Ok(messages) => Ok(messages.first().map(Device::from_message)),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => Ok(None),
            Err(error) => Err(netlink_error(what, error)),
        }
    }

    /// The names of every device in the namespace.
    pub async fn names(&self) -> Result<HashSet<String>, NetError> {
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

    /// Sets a device's MAC address.
    pub async fn set_mac(&self, device: &Device, mac: [u8; 6]) -> Result<(), NetError> {
        let what = format!(
            "set the MAC address of '{}' to {}",
            device.name,
            super::names::format_mac(mac)
        );
        self.set(
            what,
            LinkUnspec::new_with_index(device.index)
                .address(mac.to_vec())
                .build(),
        )
        .await
    }

    pub async fn set_mtu(&self, device: &Device, mtu: u32) -> Result<(), NetError> {
        let what = format!("set the MTU of '{}' to {mtu}", device.name);
        self.set(
            what,
            LinkUnspec::new_with_index(device.index).mtu(mtu).build(),
        )
        .await
    }

    /// Attaches a device to a bridge (`ip link set DEV master BRIDGE`).
    pub async fn attach(&self, device: &Device, bridge: &Device) -> Result<(), NetError> {
        let what = format!("attach '{}' to bridge '{}'", device.name, bridge.name);
        self.set(
            what,
            LinkUnspec::new_with_index(device.index)
                .controller(bridge.index)
                .build(),
        )
        .await
    }

    pub async fn set_up(&self, device: &Device) -> Result<(), NetError> {
        let what = format!("bring '{}' up", device.name);
        self.set(what, LinkUnspec::new_with_index(device.index).up().build())
            .await
    }

    pub async fn delete(&self, device: &Device) -> Result<(), NetError> {
        let what = format!("delete '{}'", device.name);
        bounded(&what, self.handle.link().del(device.index).execute())
            .await?
            .map_err(|e| netlink_error(what, e))
    }

    async fn set(&self, what: String, message: LinkMessage) -> Result<(), NetError> {
        bounded(&what, self.handle.link().set(message).execute())
            .await?
            .map_err(|e| netlink_error(what, e))
    }
}

/// Runs one request with [`REQUEST_TIMEOUT`].
async fn bounded<T>(what: &str, request: impl Future<Output = T>) -> Result<T, NetError> {
    tokio::time::timeout(REQUEST_TIMEOUT, request)
        .await
        .map_err(|_| NetError::Timeout {
            what: what.to_owned(),
            after: REQUEST_TIMEOUT,
        })
}

/// A netlink failure in the kernel's words, told apart when it is a missing permission.
fn netlink_error(what: impl Into<String>, error: rtnetlink::Error) -> NetError {
    match error {
        rtnetlink::Error::NetlinkError(message) => NetError::io(what, message.to_io()),
        other => NetError::Netlink {
            what: what.into(),
            message: other.to_string(),
        },
    }
}
