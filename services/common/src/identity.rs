//! The caller's identity as the gateway forwards it to the services.
//!
//! The gateway authenticates the user, strips every `x-virtplane-*` header the client sent
//! (`virtplane_proto::headers::PREFIX`), and adds these. A service trusts them because only the gateway and sibling services can reach its
//! unix socket (mode 0600) or mTLS port. A request that carries none of them came straight
//! from such a trusted local peer (e.g. root on the socket) and is granted everything, as
//! libvirt's read-write socket is.

use std::collections::HashSet;
use std::sync::Arc;

use tonic::metadata::MetadataMap;

/// Header carrying the authenticated user's name.
pub const USER_HEADER: &str = "x-virtplane-user";
/// Header carrying the user's role (`viewer`, `operator`, `admin`).
pub const ROLE_HEADER: &str = "x-virtplane-role";
/// Header carrying the granted permissions, comma-separated (`domain:read,domain:start,…`),
/// or `*` for every permission, optionally followed by exclusions (`*,-domain:passthrough`,
/// the operator role), which keeps the header short.
pub const PERMISSIONS_HEADER: &str = "x-virtplane-permissions";

/// Who is calling and what they may do.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: String,
    pub role: String,
    grants: Grants,
}

#[derive(Debug, Clone)]
enum Grants {
    All,
    AllExcept(Arc<HashSet<String>>),
    Some(Arc<HashSet<String>>),
}

impl Caller {
    /// A trusted local peer with every permission.
    pub fn local() -> Self {
        Self {
            user: "local".into(),
            role: "admin".into(),
            grants: Grants::All,
        }
    }

    /// A caller with exactly these permissions (`*` = all, `-perm` = all but that one when
    /// `*` is present).
    pub fn with_permissions<I, S>(user: &str, role: &str, permissions: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let set: HashSet<String> = permissions.into_iter().map(Into::into).collect();
        let grants = if set.contains("*") {
            let excluded: HashSet<String> = set
                .iter()
                .filter_map(|p| p.strip_prefix('-').map(str::to_owned))
                .collect();
            if excluded.is_empty() {
                Grants::All
            } else {
                Grants::AllExcept(Arc::new(excluded))
            }
        } else {
            Grants::Some(Arc::new(set))
        };
        Self {
            user: user.into(),
            role: role.into(),
            grants,
        }
    }

    /// Reads the forwarded identity; no identity headers means a trusted local peer. A
    /// permissions header that is present but unreadable grants nothing.
    pub fn from_metadata(metadata: &MetadataMap) -> Self {
        let Some(header) = metadata.get(PERMISSIONS_HEADER) else {
            return Self::local();
        };
        let Ok(permissions) = header.to_str() else {
            return Self::with_permissions("unknown", "none", std::iter::empty::<String>());
        };
        let text = |name| {
            metadata
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        Self::with_permissions(
            &text(USER_HEADER),
            &text(ROLE_HEADER),
            permissions
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty()),
        )
    }

    /// Writes this identity into outgoing metadata (service-to-service calls pass it on).
    pub fn to_metadata(&self, metadata: &mut MetadataMap) {
        let permissions = match &self.grants {
            Grants::All => "*".to_owned(),
            Grants::AllExcept(set) => {
                let mut list: Vec<String> = set.iter().map(|p| format!("-{p}")).collect();
                list.sort_unstable();
                list.insert(0, "*".to_owned());
                list.join(",")
            }
            Grants::Some(set) => {
                let mut list: Vec<&str> = set.iter().map(String::as_str).collect();
                list.sort_unstable();
                list.join(",")
            }
        };
        for (name, value) in [
            (USER_HEADER, self.user.as_str()),
            (ROLE_HEADER, self.role.as_str()),
            (PERMISSIONS_HEADER, permissions.as_str()),
        ] {
            if let Ok(value) = value.parse() {
                metadata.insert(name, value);
            }
        }
    }

    /// True when the caller holds `permission`.
    pub fn has(&self, permission: &str) -> bool {
        match &self.grants {
            Grants::All => true,
            Grants::AllExcept(set) => !set.contains(permission),
            Grants::Some(set) => set.contains(permission),
        }
    }

    /// Fails with PERMISSION_DENIED naming the permission and why it was needed.
    pub fn require(&self, permission: &str, because: &str) -> Result<(), tonic::Status> {
        if self.has(permission) {
            return Ok(());
        }
        Err(crate::status::with_reason(
            tonic::Code::PermissionDenied,
            format!(
                "permission denied: user '{}' (role {}) lacks '{permission}', needed {because}",
                self.user, self.role
            ),
            "PERMISSION_DENIED",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_headers_means_trusted_local_peer() {
        let caller = Caller::from_metadata(&MetadataMap::new());
        assert!(caller.has("domain:read_secure"));
        assert_eq!(caller.user, "local");
    }

    #[test]
    fn forwarded_permissions_round_trip() {
        let viewer = Caller::with_permissions("ann", "viewer", ["domain:read", "domain:getattr"]);
        let mut metadata = MetadataMap::new();
        viewer.to_metadata(&mut metadata);
        let back = Caller::from_metadata(&metadata);
        assert_eq!(back.user, "ann");
        assert_eq!(back.role, "viewer");
        assert!(back.has("domain:read"));
        assert!(!back.has("domain:read_secure"));
        let denied = back
            .require("domain:read_secure", "for the secure flag")
            .unwrap_err();
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
        assert!(
            denied.message().contains("domain:read_secure"),
            "{}",
            denied.message()
        );
    }

    #[test]
    fn star_grants_everything_and_survives_forwarding() {
        let admin = Caller::with_permissions("root", "admin", ["*"]);
        let mut metadata = MetadataMap::new();
        admin.to_metadata(&mut metadata);
        assert!(Caller::from_metadata(&metadata).has("domain:passthrough"));
    }

    #[test]
    fn exclusions_survive_forwarding() {
        let operator = Caller::with_permissions("op", "operator", ["*", "-domain:passthrough"]);
        let mut metadata = MetadataMap::new();
        operator.to_metadata(&mut metadata);
        let back = Caller::from_metadata(&metadata);
        assert!(back.has("domain:start"));
        assert!(!back.has("domain:passthrough"));
    }

    #[test]
    fn unreadable_permission_header_grants_nothing() {
        let mut metadata = MetadataMap::new();
        metadata.insert(
            PERMISSIONS_HEADER,
            tonic::metadata::MetadataValue::try_from(&b"*\xff"[..]).unwrap(),
        );
        assert!(!Caller::from_metadata(&metadata).has("domain:read"));
    }

    #[test]
    fn empty_permission_header_grants_nothing() {
        let mut metadata = MetadataMap::new();
        metadata.insert(PERMISSIONS_HEADER, "".parse().unwrap());
        assert!(!Caller::from_metadata(&metadata).has("domain:read"));
    }
}
