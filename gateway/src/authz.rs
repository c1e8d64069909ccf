//! The per-call decision: a pure function of the method's declared permissions, the caller's
//! role and (when known) the object the request names.

use virtplane_proto::acl::{MethodAcl, ObjectKey};

use crate::roles::Role;

/// What the gateway does with a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// PERMISSION_DENIED with this message.
    Deny(String),
}

/// `DomainService/Start` for `/virtplane.v1.DomainService/Start`.
pub fn short_method(acl: &MethodAcl) -> String {
    let service = acl.service.rsplit('.').next().unwrap_or(&acl.service);
    format!("{service}/{}", acl.method)
}

/// Decides whether `user` in `role` may call the method. Every declared permission must be
/// granted; a method that declares none is denied to everyone (deny by default).
pub fn decide(acl: &MethodAcl, user: &str, role: Role, object: Option<&ObjectKey>) -> Decision {
    if acl.is_unannotated() {
        return Decision::Deny(format!(
            "permission denied: {} declares no permissions, so it is denied to everyone",
            short_method(acl)
        ));
    }
    let Some(missing) = acl.perms.iter().find(|perm| !role.grants(perm)) else {
        return Decision::Allow;
    };
    let on = object
        .map(|key| format!(" on {} '{}'", key.kind.as_str(), key.value))
        .unwrap_or_default();
    Decision::Deny(format!(
        "permission denied: user '{user}' (role {role}) lacks '{missing}' for {}{on}",
        short_method(acl)
    ))
}

#[cfg(test)]
mod tests {
    use virtplane_proto::acl::{MethodTable, ObjectKind};

    use super::*;

    #[test]
    fn decisions() {
        let table = MethodTable::load().unwrap();
        let web = ObjectKey {
            kind: ObjectKind::Domain,
            value: "web".into(),
        };
        let deny = |text: &str| Decision::Deny(text.to_owned());
        let cases: &[(&str, Role, Option<&ObjectKey>, Decision)] = &[
            (
                "/virtplane.v1.DomainService/GetInfo",
                Role::Viewer,
                None,
                Decision::Allow,
            ),
            (
                "/virtplane.v1.DomainService/List",
                Role::Viewer,
                None,
                Decision::Allow,
            ),
            (
                "/virtplane.v1.DomainService/WatchEvents",
                Role::Viewer,
                None,
                Decision::Allow,
            ),
            (
                "/virtplane.v1.HostService/GetVersion",
                Role::Viewer,
                None,
                Decision::Allow,
            ),
            (
                "/virtplane.v1.DomainService/Start",
                Role::Viewer,
                Some(&web),
                deny(
                    "permission denied: user 'ann' (role viewer) lacks 'domain:start' for DomainService/Start on domain 'web'",
                ),
            ),
            (
                "/virtplane.v1.DomainService/Start",
                Role::Viewer,
                None,
                deny(
                    "permission denied: user 'ann' (role viewer) lacks 'domain:start' for DomainService/Start",
                ),
            ),
            (
                "/virtplane.v1.DomainService/Define",
                Role::Viewer,
                None,
                deny(
                    "permission denied: user 'ann' (role viewer) lacks 'domain:write' for DomainService/Define",
                ),
            ),
            (
                "/virtplane.v1.DomainService/Start",
                Role::Operator,
                Some(&web),
                Decision::Allow,
            ),
            (
                "/virtplane.v1.DomainService/Define",
                Role::Operator,
                None,
                Decision::Allow,
            ),
            (
                "/virtplane.v1.DomainService/Define",
                Role::Admin,
                None,
                Decision::Allow,
            ),
        ];
        for (path, role, object, expected) in cases {
            let acl = table.get(path).unwrap();
            assert_eq!(
                &decide(acl, "ann", *role, *object),
                expected,
                "{path} as {role}"
            );
        }
    }

    #[test]
    fn every_method_follows_the_role_sets() {
        let table = MethodTable::load().unwrap();
        for acl in table.iter() {
            let read_only = !acl.is_mutating();
            assert_eq!(
                decide(acl, "v", Role::Viewer, None) == Decision::Allow,
                read_only,
                "{}",
                acl.path
            );
            let passthrough = acl.perms.iter().any(|p| p == crate::roles::PASSTHROUGH);
            assert_eq!(
                decide(acl, "o", Role::Operator, None) == Decision::Allow,
                !passthrough,
                "{}",
                acl.path
            );
            assert_eq!(
                decide(acl, "a", Role::Admin, None),
                Decision::Allow,
                "{}",
                acl.path
            );
        }
    }

    #[test]
    fn unannotated_methods_are_denied_to_admins_too() {
        // A descriptor set whose method has no acl option: take a real entry and drop its perms.
        let table = MethodTable::load().unwrap();
        let mut acl = table
            .get("/virtplane.v1.DomainService/GetInfo")
            .unwrap()
            .clone();
        acl.perms.clear();
        let Decision::Deny(message) = decide(&acl, "root", Role::Admin, None) else {
            panic!("allowed an unannotated method");
        };
        assert!(
            message.contains("DomainService/GetInfo declares no permissions"),
            "{message}"
        );
    }

    #[test]
    fn short_method_names() {
        let table = MethodTable::load().unwrap();
        let acl = table.get("/virtplane.v1.HostService/GetNodeInfo").unwrap();
        assert_eq!(short_method(acl), "HostService/GetNodeInfo");
    }
}
