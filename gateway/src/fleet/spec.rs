//! The fleet's command-line forms: `--backend [NODE/]SERVICE=ADDR` for nodes named in the
//! configuration, `--node-dns SERVICE=HOST:PORT` for nodes found through DNS (a Kubernetes
//! headless Service).

use std::str::FromStr;

pub use virtplane_proto::headers::is_node_name;

use crate::backends::BackendSpec;

/// The node a `--backend` without `NODE/` belongs to: the one-host setup.
pub const DEFAULT_NODE: &str = "local";

/// Why a fleet flag could not be parsed; each names the flag, the value and the form.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error(
        "invalid --backend '{0}': expected [NODE/]SERVICE=ADDR, e.g. domain=unix:/run/virtplane/domain.sock or node-a/domain=10.0.0.5:7101"
    )]
    Backend(String),
    #[error(
        "invalid node name '{name}' in --backend '{spec}': use letters, digits, '-', '_' and '.' (at most 253, as a Kubernetes node name)"
    )]
    NodeName { name: String, spec: String },
    #[error(
        "invalid --node-dns '{0}': expected SERVICE=HOST:PORT, e.g. domain=virtplane-node.virtplane.svc.cluster.local:7101"
    )]
    Dns(String),
}

/// `--backend [NODE/]SERVICE=ADDR`: one service of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeBackendSpec {
    pub node: String,
    pub backend: BackendSpec,
}

impl FromStr for NodeBackendSpec {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || SpecError::Backend(text.to_owned());
        let (service, _) = text.split_once('=').ok_or_else(bad)?;
        let (node, rest) = match service.split_once('/') {
            Some((node, _)) => (node, &text[node.len() + 1..]),
            None => (DEFAULT_NODE, text),
        };
        if !is_node_name(node) {
            return Err(SpecError::NodeName {
                name: node.to_owned(),
                spec: text.to_owned(),
            });
        }
        let backend: BackendSpec = rest.parse().map_err(|_| bad())?;
        Ok(Self {
            node: node.to_owned(),
            backend,
        })
    }
}

/// `--node-dns SERVICE=HOST:PORT`: every address HOST resolves to is one node, whose SERVICE
/// listens on PORT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeDnsSpec {
    pub service: String,
    pub host: String,
    pub port: u16,
}

impl FromStr for NodeDnsSpec {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || SpecError::Dns(text.to_owned());
        let (service, target) = text.split_once('=').ok_or_else(bad)?;
        let (host, port) = target.rsplit_once(':').ok_or_else(bad)?;
        if service.is_empty() || host.is_empty() {
            return Err(bad());
        }
        let port: u16 = port.parse().ok().filter(|p| *p != 0).ok_or_else(bad)?;
        Ok(Self {
            service: service.to_owned(),
            host: host.to_owned(),
            port,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_belong_to_the_named_node_or_the_local_one() {
        let spec: NodeBackendSpec = "domain=unix:/run/d.sock".parse().unwrap();
        assert_eq!(spec.node, DEFAULT_NODE);
        assert_eq!(spec.backend.name, "domain");
        let spec: NodeBackendSpec = "node-a/network=127.0.0.1:7102".parse().unwrap();
        assert_eq!(spec.node, "node-a");
        assert_eq!(spec.backend.name, "network");
        assert_eq!(spec.backend.addr.to_string(), "127.0.0.1:7102");
        // A slash in the unix path is not a node.
        let spec: NodeBackendSpec = "b/storage=unix:/run/b/s.sock".parse().unwrap();
        assert_eq!(spec.node, "b");
        assert_eq!(spec.backend.addr.to_string(), "unix:/run/b/s.sock");
    }

    #[test]
    fn bad_backends_name_the_value() {
        for bad in [
            "domain",
            "a/domain",
            "a b/domain=unix:/x",
            "/domain=unix:/x",
            "a/=unix:/x",
        ] {
            let err = bad.parse::<NodeBackendSpec>().unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
    }

    #[test]
    fn dns_specs() {
        let spec: NodeDnsSpec = "domain=virtplane-node.virtplane.svc:7101".parse().unwrap();
        assert_eq!(spec.service, "domain");
        assert_eq!(spec.host, "virtplane-node.virtplane.svc");
        assert_eq!(spec.port, 7101);
        for bad in [
            "domain",
            "domain=host",
            "=h:1",
            "domain=:1",
            "domain=h:0",
            "domain=h:x",
        ] {
            let err = bad.parse::<NodeDnsSpec>().unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
    }
}
