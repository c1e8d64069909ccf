//! Host failures in the service's terms: a bridge name someone else holds is a resource in
//! use (→ FAILED_PRECONDITION with reason RESOURCE_IN_USE, as another network's would be); anything
//! else the host refused is an operation failure carrying the host's own words.

use crate::error::NetworkError;
use crate::host::bridge::BridgeError;
use crate::host::network::HostError;

/// `action` (start, stop, …) of network `network` failed on the host with `error`.
pub fn host(network: &str, action: &str, error: HostError) -> NetworkError {
    let message = format!("cannot {action} network '{network}': {error}");
    match error {
        HostError::Bridge(BridgeError::BridgeExists(_) | BridgeError::NameTaken { .. }) => {
            NetworkError::InUse(message)
        }
        _ => NetworkError::OperationFailed(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_bridge_name_is_in_use_and_named() {
        let error = host(
            "web",
            "start",
            HostError::Bridge(BridgeError::BridgeExists("br-web".into())),
        );
        assert!(matches!(error, NetworkError::InUse(_)), "{error:?}");
        let text = error.to_string();
        assert!(
            text.contains("network 'web'") && text.contains("br-web"),
            "{text}"
        );
    }

    #[test]
    fn other_host_failures_carry_the_hosts_words() {
        let error = host(
            "web",
            "stop",
            HostError::Bridge(BridgeError::Permission("delete bridge 'br-web'".into())),
        );
        assert!(
            matches!(error, NetworkError::OperationFailed(_)),
            "{error:?}"
        );
        assert!(error.to_string().contains("CAP_NET_ADMIN"), "{error}");
    }
}
