//! Roles and the permission sets they grant.
//!
//! - `viewer`: every read-only permission (`getattr`, `read`, `search_*`), nothing else.
//! - `operator`: everything except `domain:passthrough`.
//! - `admin`: everything.

use std::fmt;
use std::str::FromStr;

use virtplane_common::identity::Caller;
use virtplane_proto::acl::{MethodTable, is_read_only_permission};

/// The one permission operators lack: raw QMP/HMP, raw agent commands, `<qemu:commandline>`.
pub const PASSTHROUGH: &str = "domain:passthrough";

/// libvirt's permission vocabulary (REFERENCE.md §1.2) plus virtplane's `domain:passthrough`.
/// The viewer's forwarded permission list is the read-only part of this and of every
/// permission the descriptor set mentions.
pub const VOCABULARY: &[&str] = &[
    "connect:getattr",
    "connect:read",
    "connect:write",
    "connect:search_domains",
    "connect:search_networks",
    "connect:search_storage_pools",
    "connect:search_node_devices",
    "connect:search_interfaces",
    "connect:search_secrets",
    "connect:search_nwfilters",
    "connect:search_nwfilter_bindings",
    "connect:detect_storage_pools",
    "connect:pm_control",
    "connect:interface_transaction",
    "domain:getattr",
    "domain:read",
    "domain:write",
    "domain:read_secure",
    "domain:start",
    "domain:stop",
    "domain:reset",
    "domain:save",
    "domain:delete",
    "domain:migrate",
    "domain:snapshot",
    "domain:suspend",
    "domain:hibernate",
    "domain:core_dump",
    "domain:pm_control",
    "domain:init_control",
    "domain:inject_nmi",
    "domain:send_input",
    "domain:send_signal",
    "domain:fs_trim",
    "domain:fs_freeze",
    "domain:block_read",
    "domain:block_write",
    "domain:mem_read",
    "domain:open_graphics",
    "domain:open_device",
    "domain:screenshot",
    "domain:open_namespace",
    "domain:set_time",
    "domain:set_password",
    PASSTHROUGH,
    "interface:getattr",
    "interface:read",
    "interface:write",
    "interface:save",
    "interface:delete",
    "interface:start",
    "interface:stop",
    "network:getattr",
    "network:read",
    "network:write",
    "network:save",
    "network:delete",
    "network:start",
    "network:stop",
    "node_device:getattr",
    "node_device:read",
    "node_device:write",
    "node_device:start",
    "node_device:stop",
    "node_device:detach",
    "nwfilter:getattr",
    "nwfilter:read",
    "nwfilter:write",
    "nwfilter:save",
    "nwfilter:delete",
    "nwfilter_binding:getattr",
    "nwfilter_binding:read",
    "nwfilter_binding:create",
    "nwfilter_binding:delete",
    "secret:getattr",
    "secret:read",
    "secret:write",
    "secret:read_secure",
    "secret:save",
    "secret:delete",
    "storage_pool:getattr",
    "storage_pool:read",
    "storage_pool:write",
    "storage_pool:save",
    "storage_pool:delete",
    "storage_pool:start",
    "storage_pool:stop",
    "storage_pool:refresh",
    "storage_pool:search_storage_vols",
    "storage_pool:format",
    "storage_vol:getattr",
    "storage_vol:read",
    "storage_vol:create",
    "storage_vol:delete",
    "storage_vol:format",
    "storage_vol:resize",
    "storage_vol:data_read",
    "storage_vol:data_write",
];

/// A user's role, from the tokens file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }

    /// True when this role holds `permission`.
    pub fn grants(self, permission: &str) -> bool {
        match self {
            Self::Viewer => is_read_only_permission(permission),
            Self::Operator => permission != PASSTHROUGH,
            Self::Admin => true,
        }
    }

    /// The identity forwarded to the services for `user` in this role: admin `*`, operator
    /// `*,-domain:passthrough`, viewer the explicit list of read-only permissions.
    pub fn caller(self, user: &str, table: &MethodTable) -> Caller {
        match self {
            Self::Admin => Caller::with_permissions(user, self.as_str(), ["*"]),
            Self::Operator => Caller::with_permissions(
                user,
                self.as_str(),
                ["*".to_owned(), format!("-{PASSTHROUGH}")],
            ),
            Self::Viewer => {
                Caller::with_permissions(user, self.as_str(), read_only_permissions(table))
            }
        }
    }
}

/// Every read-only permission known: the vocabulary's and any the descriptor set declares
/// (flag-conditional ones included), sorted and deduplicated.
pub fn read_only_permissions(table: &MethodTable) -> Vec<String> {
    let declared = table.iter().flat_map(|method| {
        method.perms.iter().map(String::as_str).chain(
            // "domain:read_secure if secure": the permission is the first word.
            method
                .flag_perms
                .iter()
                .filter_map(|rule| rule.split_whitespace().next()),
        )
    });
    let mut list: Vec<String> = VOCABULARY
        .iter()
        .copied()
        .chain(declared)
        .filter(|p| is_read_only_permission(p))
        .map(str::to_owned)
        .collect();
    list.sort_unstable();
    list.dedup();
    list
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|role| role.as_str() == text)
            .ok_or_else(|| format!("unknown role '{text}': expected viewer, operator or admin"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_permission(table: &MethodTable) -> Vec<String> {
        let mut all: Vec<String> = VOCABULARY.iter().map(|p| (*p).to_owned()).collect();
        for method in table.iter() {
            all.extend(method.perms.iter().cloned());
        }
        all
    }

    #[test]
    fn viewer_gets_exactly_the_read_only_permissions() {
        let table = MethodTable::load().unwrap();
        for perm in every_permission(&table) {
            assert_eq!(
                Role::Viewer.grants(&perm),
                is_read_only_permission(&perm),
                "{perm}"
            );
        }
        assert!(Role::Viewer.grants("storage_pool:search_storage_vols"));
        assert!(!Role::Viewer.grants("domain:read_secure"));
        assert!(!Role::Viewer.grants("domain:open_device"));
        assert!(!Role::Viewer.grants("domain:write"));
    }

    #[test]
    fn operator_gets_everything_but_passthrough_and_admin_everything() {
        let table = MethodTable::load().unwrap();
        for perm in every_permission(&table) {
            assert_eq!(Role::Operator.grants(&perm), perm != PASSTHROUGH, "{perm}");
            assert!(Role::Admin.grants(&perm), "{perm}");
        }
    }

    #[test]
    fn the_forwarded_identity_matches_the_role() {
        let table = MethodTable::load().unwrap();
        for role in Role::ALL {
            let caller = role.caller("ann", &table);
            assert_eq!(caller.role, role.as_str());
            for perm in every_permission(&table) {
                assert_eq!(caller.has(&perm), role.grants(&perm), "{role} {perm}");
            }
        }
        let mut metadata = tonic::metadata::MetadataMap::new();
        Role::Operator
            .caller("op", &table)
            .to_metadata(&mut metadata);
        assert_eq!(
            metadata
                .get(virtplane_common::identity::PERMISSIONS_HEADER)
                .unwrap(),
            "*,-domain:passthrough"
        );
    }

    #[test]
    fn roles_parse() {
        assert_eq!("viewer".parse::<Role>().unwrap(), Role::Viewer);
        assert_eq!("admin".parse::<Role>().unwrap(), Role::Admin);
        let err = "root".parse::<Role>().unwrap_err();
        assert!(err.contains("unknown role 'root'"), "{err}");
    }
}
