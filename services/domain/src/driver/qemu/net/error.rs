//! What can go wrong making a VM's host-side network devices, in words that say what to do.

use std::time::Duration;

use crate::error::DomainError;

/// How a failed port call reads for the caller of the domain call (the network service is a
/// sibling service: its calls fail as any sibling's do).
pub use crate::service_call::CallErrorKind as PortErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The definition asks for something impossible (→ INVALID_ARGUMENT).
    #[error("{what}: {why}")]
    Invalid { what: String, why: String },
    #[error(
        "bridge '{0}' does not exist in the domain service's network namespace; create it \
         first (e.g. `ip link add {0} type bridge`)"
    )]
    NoBridge(String),
    #[error("'{name}' is not a bridge but a {kind} device")]
    NotABridge { name: String, kind: String },
    /// A tap of this name exists: another VM's, or one left behind.
    #[error(
        "a tap named '{0}' already exists (another VM's, or left behind); choose another \
         <target dev> or remove it"
    )]
    TapExists(String),
    #[error(
        "the name '{name}' is taken by a {kind} device, not a tap; choose another <target dev>"
    )]
    NotATap { name: String, kind: String },
    #[error(
        "no permission to {0}: the domain service needs CAP_NET_ADMIN and access to \
         /dev/net/tun (run it as root) for bridge and ethernet interfaces"
    )]
    Permission(String),
    #[error("no unused vnetN name is left for a tap")]
    NoFreeName,
    #[error(
        "<interface type='network'> needs the network service, and this domain service runs \
         without one (start virtplane-domaind with --network-service ADDR)"
    )]
    NoNetworkService,
    /// The network service refused or failed a call about `network`; `message` is its own
    /// words (which name the network), or says why it could not be asked; `kind` says which
    /// way to map it.
    #[error("{message}")]
    Port {
        network: String,
        message: String,
        kind: PortErrorKind,
    },
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

impl NetError {
    /// An I/O error of `what`, told apart when it is a missing permission.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        let what = what.into();
        match source.raw_os_error() {
            Some(libc::EPERM | libc::EACCES) => Self::Permission(what),
            _ => Self::Io { what, source },
        }
    }

    /// The error as the domain service reports it for `action` ("start") on domain `name`.
    pub fn for_domain(self, name: &str, action: &str) -> DomainError {
        let message = format!("cannot {action} domain '{name}': {self}");
        match self {
            Self::Invalid { .. } => DomainError::InvalidArg(message),
            Self::NoBridge(_)
            | Self::NotABridge { .. }
            | Self::TapExists(_)
            | Self::NotATap { .. } => DomainError::OperationInvalid(message),
            Self::Timeout { .. } => DomainError::Timeout(message),
            Self::NoNetworkService => DomainError::OperationInvalid(message),
            Self::Port { kind, .. } => match kind {
                PortErrorKind::Refused => DomainError::OperationInvalid(message),
                PortErrorKind::Unavailable => DomainError::Unavailable(message),
                PortErrorKind::Timeout => DomainError::Timeout(message),
                PortErrorKind::Failed => DomainError::OperationFailed(message),
            },
            Self::Permission(_) | Self::NoFreeName | Self::Io { .. } | Self::Netlink { .. } => {
                DomainError::OperationFailed(message)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_errors_are_told_apart() {
        let denied = NetError::io(
            "open /dev/net/tun",
            std::io::Error::from_raw_os_error(libc::EACCES),
        );
        assert!(matches!(denied, NetError::Permission(_)), "{denied:?}");
        assert!(denied.to_string().contains("CAP_NET_ADMIN"), "{denied}");
        let other = NetError::io(
            "open /dev/net/tun",
            std::io::Error::from_raw_os_error(libc::ENOENT),
        );
        assert!(matches!(other, NetError::Io { .. }), "{other:?}");
    }

    #[test]
    fn errors_name_the_domain_and_map_to_the_right_kind() {
        let e = NetError::NoBridge("br9".into()).for_domain("web", "start");
        assert!(matches!(e, DomainError::OperationInvalid(_)));
        assert_eq!(
            e.to_string(),
            "cannot start domain 'web': bridge 'br9' does not exist in the domain service's \
             network namespace; create it first (e.g. `ip link add br9 type bridge`)"
        );
        let e = NetError::Invalid {
            what: "<target dev='a/b'>".into(),
            why: "bad".into(),
        }
        .for_domain("web", "start");
        assert!(matches!(e, DomainError::InvalidArg(_)));
    }
}
